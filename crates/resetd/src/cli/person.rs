//! `resetd person …`.

use std::io::Read;
use std::path::PathBuf;

use clap::Subcommand;
use resetd_core::service::{Actor, NewPersonInput};
use resetd_core::types::{DisplayName, Email, Locale, Login, Password};

use super::{explain_in, person_ops, tid};
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
    /// List people in number order, a page at a time (tab-separated: id, number, login, email,
    /// enabled, locked, display name; or --json).
    List(person_ops::ListArgs),
    /// Show one person.
    Show {
        #[command(flatten)]
        target: person_ops::Target,
        /// One JSON object (the API's person form).
        #[arg(long)]
        json: bool,
    },
    /// Change a person's profile fields (unnamed fields keep their value).
    Update {
        #[command(flatten)]
        target: person_ops::Target,
        #[command(flatten)]
        fields: person_ops::UpdateArgs,
    },
    /// Disable a person: no reset links, no logins.
    Disable(person_ops::Target),
    /// Enable a disabled person.
    Enable(person_ops::Target),
    /// Set a person's password, read from standard input (first line).
    SetPassword {
        #[command(flatten)]
        target: person_ops::Target,
        /// Also clear the login's failed attempts and lock.
        #[arg(long)]
        unlock: bool,
        /// Make the person change it at their next login.
        #[arg(long)]
        must_change_password: bool,
    },
    /// Clear a person's failed logins and lock.
    Unlock(person_ops::Target),
    /// Erase a person's personal data for good (see docs/erasure.md); their audit events stay
    /// under a random id.
    Delete(person_ops::Target),
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
                .map_err(explain_in(&tenant))?;
            println!("{}", p.id);
            Ok(())
        }
        PersonCmd::Import {
            tenant,
            format,
            dry_run,
            file,
        } => {
            let t = tid(&tenant)?;
            // Before the first `serve` there is no tenant: say how to make one, before reading.
            app.service.tenant(&t).await.map_err(explain_in(&tenant))?;
            super::import::run(&app.service, t, format, dry_run, &file).await
        }
        PersonCmd::List(args) => person_ops::list(app, args).await,
        PersonCmd::Show { target, json } => person_ops::show(app, target, json).await,
        PersonCmd::Update { target, fields } => {
            person_ops::update_fields(app, target, fields).await
        }
        PersonCmd::Disable(target) => person_ops::set_enabled(app, target, false).await,
        PersonCmd::Enable(target) => person_ops::set_enabled(app, target, true).await,
        PersonCmd::SetPassword {
            target,
            unlock,
            must_change_password,
        } => person_ops::set_password(app, target, unlock, must_change_password).await,
        PersonCmd::Unlock(target) => person_ops::unlock(app, target).await,
        PersonCmd::Delete(target) => person_ops::delete(app, target).await,
    }
}
