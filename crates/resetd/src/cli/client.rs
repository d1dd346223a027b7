//! `resetd client …`.

use clap::Subcommand;
use resetd_core::model::LinkTemplate;
use resetd_core::service::Actor;
use resetd_core::types::ClientName;

use super::{explain, tid};
use crate::App;

#[derive(Subcommand)]
pub enum ClientCmd {
    /// Register (or replace) a client.
    Add {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
        /// Link template, e.g. https://app.example.com/reset?token={token}
        #[arg(long)]
        link_template: String,
        /// A URL prefix callers may name as their reset page (repeatable).
        #[arg(long = "allow")]
        allowed_prefixes: Vec<String>,
    },
}

pub async fn run(app: &App, cmd: ClientCmd) -> Result<(), String> {
    match cmd {
        ClientCmd::Add {
            tenant,
            name,
            link_template,
            allowed_prefixes,
        } => {
            let name = ClientName::parse(&name).map_err(|e| e.to_string())?;
            let template = LinkTemplate::parse(&link_template).map_err(|e| e.to_string())?;
            app.service
                .register_client(
                    &tid(&tenant)?,
                    name.clone(),
                    template,
                    allowed_prefixes,
                    &Actor::Cli,
                )
                .await
                .map_err(explain)?;
            println!("client {name} registered");
            Ok(())
        }
    }
}
