//! `resetd audit`.

use clap::Args;
use resetd_server::native::audit_json;

use super::{explain_in, json_line, tid};
use crate::App;

#[derive(Args)]
pub struct AuditArgs {
    #[arg(long)]
    tenant: String,
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Only events older than this id (the last id of the previous page).
    #[arg(long)]
    before: Option<i64>,
    /// One JSON object per line (the API's event form) instead of tab-separated columns (id,
    /// time, kind, actor, person, detail).
    #[arg(long)]
    json: bool,
}

pub async fn run(app: &App, args: AuditArgs) -> Result<(), String> {
    for e in app
        .service
        .audit_log(&tid(&args.tenant)?, args.before, args.limit)
        .await
        .map_err(explain_in(&args.tenant))?
    {
        if args.json {
            json_line(&audit_json(&e));
            continue;
        }
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
