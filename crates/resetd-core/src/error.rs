//! The core's one error enum; each API surface maps it to its own wire shape once.

use crate::hash::HashError;
use crate::model::Timestamp;
use crate::policy::Verdict;
use crate::store::StoreError;
use crate::types::InvalidInput;

/// Why a use case did not succeed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CoreError {
    /// An input failed its checked constructor.
    #[error("invalid input: {0}")]
    Invalid(#[from] InvalidInput),
    /// No such tenant.
    #[error("unknown tenant")]
    UnknownTenant,
    /// No such record (`what` names the kind: "person", "client", "message").
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A unique key is taken.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The client named in a reset request is not registered.
    #[error("unknown client")]
    UnknownClient,
    /// A caller-supplied reset page URL matches no allowed prefix of a registered client.
    #[error("the reset page URL is not allowed")]
    LinkNotAllowed,
    /// The outbox message died and its body was erased (it held a reset link): it cannot be
    /// sent again; the person asks for a new email instead.
    #[error("the message body was erased")]
    MessageErased,
    /// The person is disabled, so no reset link is sent (for callers that may know this).
    #[error("the person is disabled")]
    Disabled,
    /// A reset email went to this person within the tenant's cool-down (for callers that may
    /// know this; anonymous requests never see it).
    #[error("a reset email was sent recently")]
    CoolingDown {
        /// When another email may be sent, at the latest.
        until: Timestamp,
    },
    /// The reset token is unknown, expired, used, superseded or older than the last password change.
    #[error("the reset link is no longer valid")]
    TokenGone,
    /// The new password breaks the policy; every violation is listed.
    #[error("the password does not meet the policy")]
    Policy(Verdict),
    /// Wrong login or password (the same for an unknown login).
    #[error("invalid credentials")]
    BadCredentials,
    /// Too many failed logins.
    #[error("account locked")]
    Locked {
        /// Until when.
        until: Timestamp,
    },
    /// Missing, invalid or revoked API key.
    #[error("authentication required")]
    Unauthenticated,
    /// The key may not do this.
    #[error("forbidden")]
    Forbidden,
    /// The API key named by an administrator is revoked (revoking or rotating it again).
    #[error("the API key is revoked")]
    KeyRevoked,
    /// The API key named by an administrator is past its expiry (rotating it).
    #[error("the API key has expired")]
    KeyExpired,
    /// Hashing is saturated; retry later.
    #[error("overloaded")]
    Overloaded,
    /// The database is unavailable for now (see [`StoreError::Unavailable`]); the text goes to
    /// logs only.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// An internal failure; the text goes to logs only.
    #[error("internal: {0}")]
    Internal(String),
}

/// Seconds a client should wait before retrying after [`CoreError::Overloaded`].
pub const RETRY_OVERLOADED_SECS: i64 = 1;
/// Seconds a client should wait before retrying after [`CoreError::Unavailable`]: a locked or
/// restarting database usually recovers within a few seconds.
pub const RETRY_UNAVAILABLE_SECS: i64 = 5;

impl CoreError {
    /// For a transient failure (overloaded, database unavailable): the seconds to put in
    /// `Retry-After`. `None` for every other error.
    pub fn retry_after(&self) -> Option<i64> {
        match self {
            CoreError::Overloaded => Some(RETRY_OVERLOADED_SECS),
            CoreError::Unavailable(_) => Some(RETRY_UNAVAILABLE_SECS),
            _ => None,
        }
    }
}

impl From<StoreError> for CoreError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => CoreError::Conflict(what),
            StoreError::NotFound => CoreError::NotFound("record"),
            StoreError::TokenGone => CoreError::TokenGone,
            StoreError::Unavailable(m) => CoreError::Unavailable(m),
            StoreError::Erased => CoreError::MessageErased,
            StoreError::Backend(m) => CoreError::Internal(m),
        }
    }
}

impl From<HashError> for CoreError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Overloaded => CoreError::Overloaded,
            HashError::Argon2(m) => CoreError::Internal(m),
        }
    }
}
