//! The persistence ports: one small trait per capability, sized to the code that uses it, so a
//! user names only what it needs (the mail worker takes an [`Outbox`], not the whole store) and a
//! different backend can take over one capability (a directory holding the passwords implements
//! [`Credentials`]). Each method that changes more than one record does so in one transaction.
//!
//! [`Store`] is every port at once, for the code that still takes the whole store. Which port
//! serves whom, and the rule for a password set that spans two systems, is in
//! `docs/architecture.md` ("Ports").

mod api_keys;
mod audit;
mod breached;
mod credentials;
mod directory;
mod external;
mod lifecycle;
mod outbox;
mod recovery;
mod retention;
mod schema;

pub use self::api_keys::ApiKeys;
pub use self::audit::Audit;
pub use self::breached::{password_sha1, BreachError, BreachedPasswords, RangeEntry};
pub use self::credentials::{Credentials, LoginAccount, LoginAttempt, LoginStart, PasswordChange};
pub use self::directory::Directory;
pub use self::external::{
    AccountQuery, Capabilities, ExternalAccount, ExternalCredentials, ExternalError,
};
pub use self::lifecycle::{
    could_name, matches_search, Lifecycle, PeoplePage, TenantRemoval, PERSONAL_DETAIL_KEYS,
};
pub use self::outbox::Outbox;
pub use self::recovery::{ClaimId, IssueToken, Recovery, Resolution, Resolved};
pub use self::retention::{Purged, Retention, RetentionPolicy, DEFAULT_RETENTION};
pub use self::schema::Schema;

/// A storage failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A unique key is taken (the text names which, never a secret).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The record the change was about does not exist.
    #[error("not found")]
    NotFound,
    /// The token was consumed or voided by a concurrent request.
    #[error("token no longer valid")]
    TokenGone,
    /// The database cannot serve for now (unreachable, restarting, locked, disk full); the same
    /// call may succeed later. The text is for logs.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The outbox message's body was erased when it was sent or given up (it held a reset
    /// link), so it cannot be sent again.
    #[error("the message body was erased")]
    Erased,
    /// The database failed; the text is for logs.
    #[error("database: {0}")]
    Backend(String),
}

/// Every port at once: what the SQLite and PostgreSQL stores implement. Implemented for any type
/// that implements all nine, so a backend implements the ports and never this trait.
pub trait Store:
    Directory + ApiKeys + Recovery + Credentials + Audit + Outbox + Schema + Lifecycle + Retention
{
}

impl<T> Store for T where
    T: Directory
        + ApiKeys
        + Recovery
        + Credentials
        + Audit
        + Outbox
        + Schema
        + Lifecycle
        + Retention
        + ?Sized
{
}
