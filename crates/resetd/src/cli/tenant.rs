//! `resetd tenant …`.

use clap::{Args, Subcommand};
use resetd_core::model::{Tenant, TenantSettings};
use resetd_core::service::Actor;
use resetd_core::CoreError;

use super::{explain, explain_in, json_line, tid};
use crate::App;

#[derive(Subcommand)]
pub enum TenantCmd {
    /// Create a tenant.
    Add {
        name: String,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Change a tenant's settings (unnamed settings keep their value).
    Set {
        name: String,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// List tenants and their settings (tab-separated: name, settings as JSON; or --json).
    List {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Show a tenant and its settings.
    Show {
        name: String,
        /// One JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Remove a tenant with its API keys, clients and queued email. A tenant with people only
    /// with --force, which erases them (see docs/erasure.md).
    Remove {
        name: String,
        /// Erase the tenant's people too.
        #[arg(long)]
        force: bool,
    },
}

fn tenant_json(t: &Tenant) -> serde_json::Value {
    serde_json::json!({"id": t.id, "settings": t.settings, "created_at": t.created_at.rfc3339()})
}

#[derive(Args)]
pub struct SettingsArgs {
    /// Minimum password length.
    #[arg(long)]
    min_password_length: Option<usize>,
    /// Reset link lifetime in seconds.
    #[arg(long)]
    token_ttl: Option<i64>,
    /// Seconds between two reset emails to one account.
    #[arg(long)]
    cooldown: Option<i64>,
    /// Failed logins before a lock.
    #[arg(long)]
    lockout_threshold: Option<u32>,
    /// Lock duration in seconds.
    #[arg(long)]
    lockout_secs: Option<i64>,
    /// Previous passwords that may not be reused (0: off).
    #[arg(long)]
    password_history: Option<u32>,
    /// Default email locale.
    #[arg(long)]
    default_locale: Option<String>,
    /// Refuse passwords the breach corpus saw at least this many times (0: off).
    #[arg(long)]
    breached_min_count: Option<u32>,
    /// Who may use the breached range endpoint: off, api_key or public.
    #[arg(long)]
    breached_range: Option<String>,
    /// Check the password against the breach corpus at each successful login too: a hit makes
    /// the person change it (true or false).
    #[arg(long)]
    breached_check_at_login: Option<bool>,
}

impl SettingsArgs {
    pub fn apply(self, s: &mut TenantSettings) -> Result<(), String> {
        if let Some(v) = self.min_password_length {
            s.min_password_length = v;
        }
        if let Some(v) = self.token_ttl {
            s.token_ttl_secs = v;
        }
        if let Some(v) = self.cooldown {
            s.cooldown_secs = v;
        }
        if let Some(v) = self.lockout_threshold {
            s.lockout_threshold = v;
        }
        if let Some(v) = self.lockout_secs {
            s.lockout_secs = v;
        }
        if let Some(v) = self.password_history {
            s.password_history = v;
        }
        if let Some(v) = self.default_locale {
            s.default_locale = v;
        }
        if let Some(v) = self.breached_min_count {
            s.breached_min_count = v;
        }
        if let Some(v) = self.breached_range {
            s.breached_range = serde_json::from_value(serde_json::Value::String(v.clone()))
                .map_err(|_| format!("--breached-range {v:?}: expected off, api_key or public"))?;
        }
        if let Some(v) = self.breached_check_at_login {
            s.breached_check_at_login = v;
        }
        Ok(())
    }
}

pub async fn run(app: &App, cmd: TenantCmd) -> Result<(), String> {
    match cmd {
        TenantCmd::Add { name, settings } => {
            let mut s = TenantSettings::default();
            settings.apply(&mut s)?;
            app.service
                .create_tenant(tid(&name)?, s)
                .await
                .map_err(explain)?;
            println!("tenant {name} created");
        }
        TenantCmd::Set { name, settings } => {
            let t = tid(&name)?;
            let mut s = app
                .service
                .tenant(&t)
                .await
                .map_err(explain_in(&name))?
                .settings;
            settings.apply(&mut s)?;
            app.service
                .update_tenant_settings(&t, s)
                .await
                .map_err(explain)?;
            println!("tenant {name} updated");
        }
        TenantCmd::List { json } => {
            for t in app.store.list_tenants().await.map_err(|e| e.to_string())? {
                if json {
                    json_line(&tenant_json(&t));
                } else {
                    println!(
                        "{}\t{}",
                        t.id,
                        serde_json::to_string(&t.settings).unwrap_or_default()
                    );
                }
            }
        }
        TenantCmd::Show { name, json } => {
            let t = app
                .service
                .tenant(&tid(&name)?)
                .await
                .map_err(explain_in(&name))?;
            if json {
                json_line(&tenant_json(&t));
            } else {
                println!("name\t{}", t.id);
                println!("created_at\t{}", t.created_at.rfc3339());
                let settings = serde_json::to_value(&t.settings).unwrap_or_default();
                for (k, v) in settings.as_object().into_iter().flatten() {
                    println!("{k}\t{v}");
                }
            }
        }
        TenantCmd::Remove { name, force } => {
            let removed = app
                .service
                .remove_tenant(&tid(&name)?, force, &Actor::Cli)
                .await
                .map_err(|e| match e {
                    CoreError::Conflict(_) => format!(
                        "tenant {name} has people: add --force to erase them with it \
                         (see docs/erasure.md)"
                    ),
                    other => explain_in(&name)(other),
                })?;
            println!("tenant {name} removed ({} people erased)", removed.people);
        }
    }
    Ok(())
}
