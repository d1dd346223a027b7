//! `resetd apikey …`.

use clap::Subcommand;
use resetd_core::model::Scope;
use resetd_core::service::Actor;

use super::{explain, tid};
use crate::App;

#[derive(Subcommand)]
pub enum ApiKeyCmd {
    /// Create an API key and print it once.
    Create {
        #[arg(long)]
        tenant: String,
        /// Scope of the key (only `admin` exists today).
        #[arg(long, default_value = "admin")]
        scope: String,
        #[arg(long, default_value = "cli")]
        name: String,
    },
}

pub async fn run(app: &App, cmd: ApiKeyCmd) -> Result<(), String> {
    match cmd {
        ApiKeyCmd::Create {
            tenant,
            scope,
            name,
        } => {
            let scope = match scope.as_str() {
                "admin" => Scope::Admin,
                other => return Err(format!("unknown scope {other:?} (known: admin)")),
            };
            let (key, secret) = app
                .service
                .create_api_key(&tid(&tenant)?, &name, vec![scope], &Actor::Cli)
                .await
                .map_err(explain)?;
            eprintln!(
                "API key {} created for tenant {tenant}; it is shown only now:",
                key.id
            );
            println!("{}", secret.expose());
            Ok(())
        }
    }
}
