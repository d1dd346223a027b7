//! `resetd person …`.

use std::io::Read;
use std::path::PathBuf;

use clap::Subcommand;
use resetd_core::service::{Actor, NewPersonInput};
use resetd_core::types::{DisplayName, Email, Locale, Login, Password};

use super::{explain, tid};
use crate::App;

#[derive(Subcommand)]
pub enum PersonCmd {
    /// Add a person.
    Add {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        login: String,
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        locale: Option<String>,
        /// Read an initial password from standard input (first line).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Import people (upsert by login) from CSV or JSON Lines, with their existing password
    /// hashes (see docs/import.md).
    Import {
        #[arg(long)]
        tenant: String,
        /// csv or jsonl (default: from the file extension).
        #[arg(long)]
        format: Option<String>,
        /// Check every row and count what would change, writing nothing.
        #[arg(long)]
        dry_run: bool,
        /// The file, or `-` for standard input.
        file: PathBuf,
    },
}

pub async fn run(app: &App, cmd: PersonCmd) -> Result<(), String> {
    match cmd {
        PersonCmd::Add {
            tenant,
            login,
            email,
            name,
            locale,
            password_stdin,
        } => {
            let password = if password_stdin {
                let mut buf = String::new();
                std::io::stdin()
                    .read_to_string(&mut buf)
                    .map_err(|e| format!("reading the password: {e}"))?;
                let line = buf.lines().next().unwrap_or("");
                Some(Password::parse(line).map_err(|e| e.to_string())?)
            } else {
                None
            };
            let input = NewPersonInput {
                login: Login::parse(&login).map_err(|e| e.to_string())?,
                email: Email::parse(&email).map_err(|e| e.to_string())?,
                display_name: name
                    .as_deref()
                    .map(DisplayName::parse)
                    .transpose()
                    .map_err(|e| e.to_string())?,
                locale: locale
                    .as_deref()
                    .map(Locale::parse)
                    .transpose()
                    .map_err(|e| e.to_string())?,
                enabled: true,
                verified: false,
                roles: vec![],
                attributes: serde_json::json!({}),
                password,
            };
            let p = app
                .service
                .create_person(&tid(&tenant)?, input, &Actor::Cli)
                .await
                .map_err(explain)?;
            println!("{}", p.id);
            Ok(())
        }
        PersonCmd::Import {
            tenant,
            format,
            dry_run,
            file,
        } => super::import::run(&app.service, tid(&tenant)?, format, dry_run, &file).await,
    }
}
