//! `resetd audit`.

use clap::Args;

use super::{explain, tid};
use crate::App;

#[derive(Args)]
pub struct AuditArgs {
    #[arg(long)]
    tenant: String,
    #[arg(long, default_value_t = 50)]
    limit: u32,
}

pub async fn run(app: &App, args: AuditArgs) -> Result<(), String> {
    for e in app
        .service
        .audit_log(&tid(&args.tenant)?, None, args.limit)
        .await
        .map_err(explain)?
    {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            e.id,
            e.at.rfc3339(),
            e.kind,
            e.actor,
            e.person.unwrap_or_default(),
            e.detail
        );
    }
    Ok(())
}
