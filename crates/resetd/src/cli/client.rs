//! `resetd client …`.

use clap::Subcommand;
use resetd_core::model::{Client, LinkTemplate};
use resetd_core::service::Actor;
use resetd_core::types::ClientName;
use resetd_core::CoreError;
use resetd_server::native::client_json;

use super::{explain_in, json_line, tid};
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
    /// List a tenant's clients (tab-separated: name, link template, allowed prefixes; or --json).
    List {
        #[arg(long)]
        tenant: String,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Show one client.
    Show {
        #[arg(long)]
        tenant: String,
        name: String,
        /// One JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Remove a client: reset requests naming it are refused afterwards (links already sent
    /// keep working).
    Remove {
        #[arg(long)]
        tenant: String,
        name: String,
    },
}

fn line(c: &Client) -> String {
    format!(
        "{}\t{}\t{}",
        c.name,
        serde_json::to_value(&c.link_template)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        c.allowed_prefixes.join(" ")
    )
}

fn name(raw: &str) -> Result<ClientName, String> {
    ClientName::parse(raw).map_err(|e| format!("client name {raw:?}: {e}"))
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
                .map_err(explain_in(&tenant))?;
            println!("client {name} registered");
            Ok(())
        }
        ClientCmd::List { tenant, json } => {
            let clients = app
                .service
                .list_clients(&tid(&tenant)?)
                .await
                .map_err(explain_in(&tenant))?;
            for c in &clients {
                if json {
                    json_line(&client_json(c));
                } else {
                    println!("{}", line(c));
                }
            }
            Ok(())
        }
        ClientCmd::Show {
            tenant,
            name: raw,
            json,
        } => {
            let t = tid(&tenant)?;
            app.service.tenant(&t).await.map_err(explain_in(&tenant))?;
            let c = app
                .service
                .client(&t, &name(&raw)?)
                .await
                .map_err(|e| match e {
                    CoreError::UnknownClient => format!("no client {raw} in tenant {tenant}"),
                    other => explain_in(&tenant)(other),
                })?;
            if json {
                json_line(&client_json(&c));
            } else {
                println!("{}", line(&c));
            }
            Ok(())
        }
        ClientCmd::Remove { tenant, name: raw } => {
            app.service
                .remove_client(&tid(&tenant)?, &name(&raw)?, &Actor::Cli)
                .await
                .map_err(|e| match e {
                    CoreError::NotFound(_) => format!("no client {raw} in tenant {tenant}"),
                    other => explain_in(&tenant)(other),
                })?;
            println!("client {raw} removed");
            Ok(())
        }
    }
}
