//! The external-credentials port: a system outside resetd where a tenant's passwords are used
//! (an LDAP directory, Unleash's own user store, an application behind a signed webhook). Issue 17.
//!
//! resetd still owns the recovery (requests, tokens, cool-down, outbox, audit, lockout counters);
//! the password lands in the external system. The order of claim, write and consume that keeps a
//! token and a password change consistent across the two systems is in `docs/architecture.md`
//! ("The rule for a password set that spans two systems"); the core follows it, an adapter only
//! answers the calls below truthfully.
//!
//! Adapters return plain strings in [`ExternalAccount`]; the core parses them into its checked
//! types before anything is stored (a directory entry with an unusable email is no account).

use async_trait::async_trait;

use crate::types::Password;

/// What an external system does for its tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// People live there: request-reset and authenticate look accounts up in it (by login or
    /// email), and resetd keeps only a shadow row per account (keyed by the stable id) for
    /// tokens, cool-down, audit and lockout. `false`: people live in resetd (a webhook sink).
    pub holds_people: bool,
    /// Passwords are checked there (an LDAP bind): resetd stores no hash for the tenant.
    /// `false`: resetd keeps its own hash as well and authenticates against it.
    pub verifies_passwords: bool,
}

/// How the core asks for an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountQuery {
    /// By login (exactly as given; the system's own matching rules apply, e.g. LDAP's
    /// case-insensitive `uid`).
    Login(String),
    /// By email address.
    Email(String),
}

/// An account as the external system describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalAccount {
    /// The stable id that survives renames (`entryUUID`, Unleash's user id, resetd's person id
    /// for a sink). The shadow row is keyed by it.
    pub stable_id: String,
    /// Where the system finds the account again (an LDAP DN, Unleash's numeric id). Opaque to
    /// the core; never shown.
    pub locator: String,
    /// The login the person signs in with.
    pub login: String,
    /// Where reset links go; `None`: the account has no address (no link can be sent).
    pub email: Option<String>,
    pub display_name: Option<String>,
    /// Whether the system lets the account sign in at all.
    pub enabled: bool,
}

/// Why an external call did not succeed. The texts are for logs and, for [`Refused`], for the
/// person; an adapter never puts a password, a bind secret or a token in them.
///
/// [`Refused`]: ExternalError::Refused
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExternalError {
    /// The system refused the new password with a definite answer (its password policy, e.g.
    /// OpenLDAP ppolicy's "Password fails quality checking policy"): nothing changed there. The
    /// text is the system's own reason, shown to the person as a policy violation.
    #[error("refused by the credential backend: {0}")]
    Refused(String),
    /// The system could not be reached, or answered that it cannot serve now, before it could
    /// have changed anything (connection refused, TLS failure, 503): nothing changed there.
    #[error("credential backend unavailable: {0}")]
    Unavailable(String),
    /// The request may have reached the system but no answer came back in time (a timeout or a
    /// connection lost after sending): the password may or may not have changed.
    #[error("credential backend outcome unknown: {0}")]
    Indeterminate(String),
    /// The account is no longer there.
    #[error("the account is gone from the credential backend")]
    NoAccount,
    /// Anything else (misconfiguration, an answer the adapter does not understand).
    #[error("credential backend failed: {0}")]
    Failed(String),
}

/// A tenant's external credential system. Every call is bounded in time by the adapter (its
/// configured timeout), so nothing waits forever on a silent server.
#[async_trait]
pub trait ExternalCredentials: Send + Sync {
    /// What the system does.
    fn capabilities(&self) -> Capabilities;
    /// Finds the one account the query names; `Ok(None)` when none (or several) match. Only
    /// called when [`Capabilities::holds_people`].
    async fn find_account(
        &self,
        query: &AccountQuery,
    ) -> Result<Option<ExternalAccount>, ExternalError>;
    /// Sets the account's password. Must be idempotent: the core may repeat the same call
    /// after [`ExternalError::Indeterminate`], with the same `change_id` (random, one per password
    /// change; a webhook sends it as `webhook-id` so the receiver can drop a repeat).
    async fn set_password(
        &self,
        account: &ExternalAccount,
        password: &Password,
        change_id: &str,
    ) -> Result<(), ExternalError>;
    /// Whether `password` is the account's password (`Ok(false)`: wrong password, or the
    /// system says the account may not sign in). Only called when
    /// [`Capabilities::verifies_passwords`].
    async fn verify_password(
        &self,
        account: &ExternalAccount,
        password: &Password,
    ) -> Result<bool, ExternalError>;
    /// Does the work of a [`ExternalCredentials::verify_password`] that fails (the same kind of
    /// round trip to the system), for a login that names no account: the answer to a login
    /// attempt then takes as long whether the account exists or not. `Ok` whatever the system
    /// said; `Err` only when it could not answer. Only called when
    /// [`Capabilities::verifies_passwords`].
    async fn verify_nobody(&self, password: &Password) -> Result<(), ExternalError>;
}
