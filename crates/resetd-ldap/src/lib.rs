//! resetd's LDAP credential backend (issue 17): a tenant's people and passwords in an LDAP
//! directory, OpenLDAP or Active Directory. An adapter of the core's external-credentials port
//! ([`resetd_core::ports::ExternalCredentials`]); it depends on the core only.
//!
//! The binary hands [`connect`] the `[credentials.<tenant>]` table of `kind = "ldap"`; the
//! fields, the directory's ACL and the password-policy notes are in `docs/credentials.md`.

mod ad;
mod backend;
mod config;
mod filter;
mod outcome;
mod tls;

#[cfg(feature = "testing")]
pub mod testing;

use std::sync::Arc;

use resetd_core::ports::ExternalCredentials;

pub use backend::LdapBackend;
pub use config::{LdapConfig, Mode, PasswordWrite, DEFAULT_TIMEOUT_SECS};

/// Checks the table and builds the backend. No network traffic: the directory may be down at
/// start-up (calls then answer `Unavailable`). The error names the bad field and never contains
/// the bind password.
pub fn connect(table: &toml::Value) -> Result<Arc<dyn ExternalCredentials>, String> {
    Ok(backend(table)?)
}

/// As [`connect`], keeping the concrete type (for [`LdapBackend::probe`]).
pub fn backend(table: &toml::Value) -> Result<Arc<LdapBackend>, String> {
    let table = table
        .as_table()
        .ok_or_else(|| "credentials (ldap): expected a table".to_owned())?;
    connect_config(LdapConfig::from_table(table)?)
}

/// Builds the backend from an already read configuration.
pub fn connect_config(config: LdapConfig) -> Result<Arc<LdapBackend>, String> {
    Ok(Arc::new(LdapBackend::new(config.check()?)))
}

/// Checks the table as [`connect`] does, without building anything (for `check-config`).
pub fn check(table: &toml::Value) -> Result<(), String> {
    backend(table).map(|_| ())
}
