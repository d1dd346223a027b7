//! `resetd person list|show|update|disable|enable|set-password|unlock|delete`: the native API's
//! people administration over the same database.

use std::io::Read;

use clap::Args;
use resetd_core::model::{Lookup, Person};
use resetd_core::ports::PeoplePage;
use resetd_core::service::{Actor, PersonPatch};
use resetd_core::types::{DisplayName, Email, Locale, Login, Password, PersonId, TenantId};
use resetd_server::native::person_json;

use super::{explain_in, json_line, tid};
use crate::App;

/// Which person: their id, or `--login`, or `--email` (exactly one).
#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct PersonRef {
    /// The person's id (as `resetd person list` shows it).
    id: Option<String>,
    /// The person with this login.
    #[arg(long)]
    login: Option<String>,
    /// The (oldest) person with this email address.
    #[arg(long)]
    email: Option<String>,
}

/// The tenant and the person a command is about.
#[derive(Args)]
pub struct Target {
    #[arg(long)]
    tenant: String,
    #[command(flatten)]
    person: PersonRef,
}

impl Target {
    /// The tenant and the person, read from the store; a clear line when either is missing.
    async fn resolve(&self, app: &App) -> Result<(TenantId, Person), String> {
        let t = tid(&self.tenant)?;
        let explain = explain_in(&self.tenant);
        let r = &self.person;
        let lookup = match (&r.id, &r.login, &r.email) {
            (Some(id), _, _) => {
                let id = PersonId::parse(id).map_err(|_| format!("{id:?} is not a person id"))?;
                Lookup::id(&id)
            }
            (None, Some(l), _) => {
                Lookup::login(&Login::parse(l).map_err(|e| format!("--login: {e}"))?)
            }
            (None, None, Some(e)) => {
                Lookup::email(&Email::parse(e).map_err(|e| format!("--email: {e}"))?)
            }
            (None, None, None) => return Err("name the person: ID, --login or --email".into()),
        };
        let p = app
            .service
            .find_person(&t, &lookup)
            .await
            .map_err(|e| match e {
                resetd_core::CoreError::NotFound(_) => {
                    format!("no such person in tenant {}", self.tenant)
                }
                other => explain(other),
            })?;
        Ok((t, p))
    }
}

#[derive(Args)]
pub struct ListArgs {
    #[arg(long)]
    tenant: String,
    /// Only people whose login, email or display name contains this (ASCII letters in any case).
    #[arg(long)]
    search: Option<String>,
    /// Start after this person number (the last number of the previous page).
    #[arg(long, default_value_t = 0)]
    after: i64,
    /// At most this many (1 to 1000); with --all, the page size.
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// Every matching person, page after page.
    #[arg(long)]
    all: bool,
    /// One JSON object per line (the API's person form) instead of tab-separated columns.
    #[arg(long)]
    json: bool,
}

/// Tab-separated: id, number, login, email, enabled, locked, display name.
fn line(p: &Person, now: resetd_core::model::Timestamp) -> String {
    let locked = p.locked_until.is_some_and(|u| u > now);
    format!(
        "{}\t{}\t{}\t{}\t{}\t{}\t{}",
        p.id,
        p.number,
        p.login,
        p.email,
        if p.enabled { "enabled" } else { "disabled" },
        if locked { "locked" } else { "-" },
        p.display_name
    )
}

pub async fn list(app: &App, a: ListArgs) -> Result<(), String> {
    let t = tid(&a.tenant)?;
    let explain = explain_in(&a.tenant);
    let mut after = a.after;
    loop {
        let page = PeoplePage::parse(after, a.limit, a.search.as_deref())
            .map_err(explain_in(&a.tenant))?;
        let people = app.service.list_people(&t, &page).await.map_err(&explain)?;
        let now = app.service.now();
        for p in &people {
            if a.json {
                json_line(&person_json(p, now));
            } else {
                println!("{}", line(p, now));
            }
        }
        match people.last() {
            Some(last) if a.all && people.len() as u32 == a.limit => after = last.number,
            _ => return Ok(()),
        }
    }
}

pub async fn show(app: &App, target: Target, json: bool) -> Result<(), String> {
    let (_, p) = target.resolve(app).await?;
    let v = person_json(&p, app.service.now());
    if json {
        json_line(&v);
    } else if let Some(fields) = v.as_object() {
        for (k, v) in fields {
            println!("{k}\t{v}");
        }
    }
    Ok(())
}

/// The fields `resetd person update` can change (unnamed ones keep their value).
#[derive(Args)]
pub struct UpdateArgs {
    /// A new email address.
    #[arg(long)]
    new_email: Option<String>,
    /// Display name.
    #[arg(long)]
    name: Option<String>,
    /// Email locale; `--locale ''` clears it.
    #[arg(long)]
    locale: Option<String>,
    /// Whether the email address is confirmed (true or false).
    #[arg(long)]
    verified: Option<bool>,
    /// Replaces the roles (repeatable; `--role ''` alone clears them).
    #[arg(long = "role")]
    roles: Option<Vec<String>>,
    /// Replaces the attributes with this JSON object.
    #[arg(long)]
    attributes: Option<String>,
}

impl UpdateArgs {
    fn patch(self) -> Result<PersonPatch, String> {
        let attributes = self
            .attributes
            .map(|a| serde_json::from_str(&a).map_err(|e| format!("--attributes: {e}")))
            .transpose()?;
        Ok(PersonPatch {
            email: self
                .new_email
                .map(|e| Email::parse(&e).map_err(|e| format!("--new-email: {e}")))
                .transpose()?,
            display_name: self
                .name
                .map(|n| DisplayName::parse(&n).map_err(|e| format!("--name: {e}")))
                .transpose()?,
            locale: self
                .locale
                .map(|l| match l.as_str() {
                    "" => Ok(None),
                    l => Locale::parse(l)
                        .map(Some)
                        .map_err(|e| format!("--locale: {e}")),
                })
                .transpose()?,
            enabled: None,
            verified: self.verified,
            roles: self
                .roles
                .map(|r| r.into_iter().filter(|r| !r.is_empty()).collect()),
            attributes,
        })
    }
}

pub async fn update(app: &App, target: Target, patch: PersonPatch) -> Result<(), String> {
    let (t, p) = target.resolve(app).await?;
    let explain = explain_in(&target.tenant);
    let p = app
        .service
        .update_person(&t, &p.id, patch, &Actor::Cli)
        .await
        .map_err(explain)?;
    println!("person {} updated", p.id);
    Ok(())
}

pub async fn update_fields(app: &App, target: Target, fields: UpdateArgs) -> Result<(), String> {
    update(app, target, fields.patch()?).await
}

pub async fn set_enabled(app: &App, target: Target, enabled: bool) -> Result<(), String> {
    let patch = PersonPatch {
        enabled: Some(enabled),
        ..PersonPatch::default()
    };
    update(app, target, patch).await
}

/// Reads the first line of standard input as a password (never from the command line, which
/// other users can read in the process list).
fn password_from_stdin() -> Result<Password, String> {
    let mut buf = String::new();
    std::io::stdin()
        .read_to_string(&mut buf)
        .map_err(|e| format!("reading the password: {e}"))?;
    let line = buf.lines().next().unwrap_or("");
    Password::parse(line).map_err(|e| format!("the password from standard input: {e}"))
}

pub async fn set_password(
    app: &App,
    target: Target,
    unlock: bool,
    must_change: bool,
) -> Result<(), String> {
    let (t, p) = target.resolve(app).await?;
    let password = password_from_stdin()?;
    app.service
        .admin_set_password(&t, &p.id, &password, unlock, must_change, &Actor::Cli, None)
        .await
        .map_err(explain_in(&target.tenant))?;
    println!("password of person {} set", p.id);
    Ok(())
}

pub async fn unlock(app: &App, target: Target) -> Result<(), String> {
    let (t, p) = target.resolve(app).await?;
    app.service
        .unlock(&t, &p.id, &Actor::Cli, None)
        .await
        .map_err(explain_in(&target.tenant))?;
    println!("person {} unlocked", p.id);
    Ok(())
}

pub async fn delete(app: &App, target: Target) -> Result<(), String> {
    let (t, p) = target.resolve(app).await?;
    let pseudonym = app
        .service
        .erase_person(&t, &p.id, &Actor::Cli)
        .await
        .map_err(|e| match e {
            resetd_core::CoreError::NotFound(_) => format!("person {} is already erased", p.id),
            other => explain_in(&target.tenant)(other),
        })?;
    println!(
        "person {} erased; their audit events now carry the id {pseudonym}",
        p.id
    );
    Ok(())
}
