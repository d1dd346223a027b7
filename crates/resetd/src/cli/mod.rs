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
pub mod person_ops;
pub mod tenant;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
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

/// The headings `resetd --help` groups the commands under, in order; every command is in one.
const GROUPS: &[(&str, &[&str])] = &[
    ("Service", &["serve", "migrate", "check-config"]),
    ("Directory", &["tenant", "person", "client", "apikey"]),
    ("Records", &["audit", "outbox"]),
    ("Password data", &["breached"]),
];

/// The command line with its commands grouped in the top-level help (clap lists subcommands
/// under one heading only, so the list is written here from [`GROUPS`] and each command's
/// own one-line help).
pub fn command() -> clap::Command {
    let cmd = Cli::command();
    let width = GROUPS
        .iter()
        .flat_map(|(_, names)| names.iter())
        .map(|n| n.len())
        .max()
        .unwrap_or(0);
    let mut list = String::new();
    for (heading, names) in GROUPS {
        list.push_str(&format!("{heading}:\n"));
        for name in *names {
            let about = cmd
                .find_subcommand(name)
                .and_then(|c| c.get_about())
                .map(|a| a.to_string())
                .unwrap_or_default();
            list.push_str(&format!("  {name:<width$}  {about}\n"));
        }
        list.push('\n');
    }
    cmd.help_template(format!(
        "{{before-help}}{{about-with-newline}}\n{{usage-heading}} {{usage}}\n\n{list}\
         `resetd help COMMAND` or `resetd COMMAND --help` shows a command's options.\n\n\
         Options:\n{{options}}{{after-help}}"
    ))
}

/// Parses the command line (exits with clap's message and status on bad usage).
pub fn parse() -> Cli {
    let matches = command().get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

pub fn tid(s: &str) -> Result<TenantId, String> {
    TenantId::parse(s).map_err(|e| format!("tenant {s:?}: {e}"))
}

/// A core error as one line for the terminal.
pub fn explain(e: CoreError) -> String {
    match e {
        CoreError::Policy(v) => {
            let list: Vec<String> = v
                .violations
                .iter()
                .map(|v| format!("{} ({})", v.message, v.code))
                .collect();
            format!("the password does not meet the policy: {}", list.join("; "))
        }
        other => other.to_string(),
    }
}

/// [`explain`] for a command on `tenant`: an unknown tenant says how to create one (a fresh
/// database has none until the first `resetd serve` or `resetd tenant add`).
pub fn explain_in(tenant: &str) -> impl Fn(CoreError) -> String + '_ {
    move |e| match e {
        CoreError::UnknownTenant => format!(
            "unknown tenant {tenant:?}: create it with `resetd tenant add {tenant}` \
             (the first `resetd serve` creates the bootstrap tenant, \"default\" unless configured)"
        ),
        other => explain(other),
    }
}

/// Prints one JSON object on one line (the `--json` form of every list).
pub fn json_line(v: &serde_json::Value) {
    println!("{v}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_is_in_one_help_group() {
        let cmd = Cli::command();
        let mut grouped: Vec<&str> = GROUPS.iter().flat_map(|(_, n)| n.iter().copied()).collect();
        let mut real: Vec<&str> = cmd.get_subcommands().map(|c| c.get_name()).collect();
        grouped.sort_unstable();
        real.sort_unstable();
        assert_eq!(grouped, real);
        command().debug_assert();
    }
}
