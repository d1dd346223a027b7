//! The command line: the clap types of every command and the admin commands, one module per noun.
//! `main.rs` stays the composition root: it parses, opens the store and the service once
//! (`App`), and hands each noun's command to its module here.

pub mod apikey;
pub mod audit;
pub mod breached;
pub mod client;
pub mod import;
pub mod outbox;
pub mod person;
pub mod tenant;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use resetd_core::types::TenantId;
use resetd_core::CoreError;

#[derive(Parser)]
#[command(
    name = "resetd",
    version,
    about = "Self-hosted password reset and account recovery"
)]
pub struct Cli {
    /// TOML configuration file.
    #[arg(long, global = true, env = "RESETD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory for the SQLite database and demo mail.
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the HTTP service (the default demo needs no configuration).
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:8080 (port 0 picks a free one).
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Create or upgrade the database schema.
    Migrate,
    /// Validate the configuration and print it.
    CheckConfig,
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(tenant::TenantCmd),
    /// Manage people.
    #[command(subcommand)]
    Person(person::PersonCmd),
    /// Manage API keys.
    #[command(subcommand)]
    Apikey(apikey::ApiKeyCmd),
    /// Manage registered clients (where reset links point).
    #[command(subcommand)]
    Client(client::ClientCmd),
    /// Show a tenant's audit log, newest first.
    Audit(audit::AuditArgs),
    /// Inspect and retry outgoing email.
    #[command(subcommand)]
    Outbox(outbox::OutboxCmd),
    /// The breached-password index.
    #[command(subcommand)]
    Breached(breached::BreachedCmd),
}

pub fn tid(s: &str) -> Result<TenantId, String> {
    TenantId::parse(s).map_err(|e| e.to_string())
}

pub fn explain(e: CoreError) -> String {
    match e {
        CoreError::Policy(v) => {
            let list: Vec<String> = v
                .violations
                .iter()
                .map(|v| format!("  - {} ({})", v.message, v.code))
                .collect();
            format!(
                "the password does not meet the policy:\n{}",
                list.join("\n")
            )
        }
        other => other.to_string(),
    }
}
