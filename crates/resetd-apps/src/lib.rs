//! Adapters of the external-credentials port (`resetd_core::ports::ExternalCredentials`, issue 17) for
//! applications reached over HTTP:
//!
//! - [`unleash`]: a running Unleash server holds the tenant's people and passwords; accounts are
//!   looked up and passwords set through its admin API with an admin API token, and a password is
//!   checked by signing in to Unleash (`POST /auth/simple/login`).
//! - [`webhook`]: any application behind a signed HTTP endpoint (Standard Webhooks) receives the
//!   new password's hash (Argon2id or bcrypt, PHC strings); the people stay in resetd.
//!
//! The binary builds one per `[credentials.<tenant>]` section with [`connect_unleash`] or
//! [`connect_webhook`], handing over the section's table without its `kind` key. Both check the
//! whole table at start-up and never put a secret (a token, a signing secret, a password) in an
//! error, a log line or a `Debug` output.

use std::sync::Arc;

use resetd_core::ports::ExternalCredentials;

mod config;
mod http;
#[cfg(feature = "testing")]
pub mod testing;
pub mod unleash;
pub mod webhook;

/// The Unleash adapter for one tenant, from its `[credentials.<tenant>]` table (`kind` removed).
/// The error names the key at fault and never the value of a secret.
pub fn connect_unleash(table: &toml::Table) -> Result<Arc<dyn ExternalCredentials>, String> {
    let config = unleash::UnleashConfig::from_table(table)?;
    Ok(Arc::new(unleash::Unleash::new(config)?))
}

/// The signed-webhook sink for one tenant, from its `[credentials.<tenant>]` table (`kind`
/// removed). The error names the key at fault and never the value of a secret.
pub fn connect_webhook(table: &toml::Table) -> Result<Arc<dyn ExternalCredentials>, String> {
    let config = webhook::WebhookConfig::from_table(table)?;
    Ok(Arc::new(webhook::Webhook::new(config)?))
}
