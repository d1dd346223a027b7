//! The credentials port: setting and checking passwords, their history, and the login counters.
//! This is the seam where a backend that keeps passwords elsewhere (an LDAP directory) plugs in;
//! the rule it must follow when a password set spans two systems is in `docs/architecture.md`
//! ("Ports").
//!
//! [`Credentials::change_password`] is here, and not in the recovery port, although it consumes
//! the reset token: what it guarantees is about the password (it changes exactly once per token,
//! and never without the token's consumption), and an administrator's set uses it with no token.

use async_trait::async_trait;

use super::StoreError;
use crate::model::{NewAudit, NewMessage, Timestamp};
use crate::secret::SecretHash;
use crate::types::{Login, PersonId, TenantId};

use super::ClaimId;

/// A password change (by reset token or by an administrator), with everything that goes with it.
#[derive(Debug, Clone)]
pub struct PasswordChange {
    pub tenant: TenantId,
    pub person: PersonId,
    /// For a token reset: the token to consume (exactly once across all instances).
    pub token: Option<SecretHash>,
    /// With `token`: the claim taken on it before an external write
    /// ([`super::Recovery::claim_token`]). The token is then consumed only while this claim is
    /// on it (`TokenGone` otherwise), whatever its lease; `None`: the token must be live.
    pub claim: Option<ClaimId>,
    /// The new PHC hash; `None` when the password lives only in an external system that checks
    /// it (no hash is stored, and a stored one is cleared).
    pub new_hash: Option<String>,
    /// Set must-change-on-next-login.
    pub must_change_password: bool,
    /// Clear the counter (failed logins and any lock) of the person's login.
    pub unlock: bool,
    /// How many hashes of history to keep (0: none).
    pub keep_history: u32,
    pub at: Timestamp,
    /// The "your password was changed" email.
    pub message: Option<NewMessage>,
    pub audit: NewAudit,
}

/// The account an authentication names, as far as checking a password needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginAccount {
    pub person: PersonId,
    /// Disabled people cannot log in.
    pub enabled: bool,
    /// The stored PHC string (or an imported foreign hash); `None`: no password set.
    pub password_hash: Option<String>,
    /// Must change the password at this login.
    pub must_change_password: bool,
}

/// Whether an authentication may check its password: see [`Credentials::begin_login`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginAttempt {
    /// The attempt is reserved and may be verified. It counts as a failure (`failures` in the
    /// window, this one included) unless a success gives it back; `locked_until` is set when this
    /// reservation reached the threshold, so every later one is refused until then.
    Granted {
        /// Attempts counted in the window, this one included.
        failures: u32,
        /// Set when this reservation locked the login.
        locked_until: Option<Timestamp>,
    },
    /// The login is locked: the password must not be checked.
    Locked { until: Timestamp },
}

/// The outcome of [`Credentials::begin_login`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginStart {
    /// Whether the password may be checked.
    pub attempt: LoginAttempt,
    /// The person with that login, if any (whether or not they may log in).
    pub account: Option<LoginAccount>,
}

/// Passwords and login counters.
#[async_trait]
pub trait Credentials: Send + Sync {
    /// Changes a password. With a token, consumes it with a conditional update so exactly one
    /// caller wins (`TokenGone` for the others); voids the person's other live tokens either way.
    async fn change_password(&self, change: PasswordChange) -> Result<(), StoreError>;
    /// The person's previous password hashes, newest first.
    async fn password_history(
        &self,
        tenant: &TenantId,
        person: &PersonId,
        limit: u32,
    ) -> Result<Vec<String>, StoreError>;

    /// Starts an authentication for `login` in `tenant`, in one atomic step across instances:
    /// reserves an attempt against the login's counter (kept per tenant and login, whether or
    /// not anyone has that login, so a lock tells nothing about who exists) and reads the
    /// account. Every call writes the counter, granted or not, so all paths cost the same.
    ///
    /// The counter: while it is live (`now` before its window's end) and holds `threshold`
    /// attempts, the answer is `Locked` until the window's end. Otherwise the attempt is
    /// granted and counted (a count whose window ended starts again at 1) and the window ends at
    /// `until`; the grant that reaches `threshold` locks the login until `until`. So at most
    /// `threshold` passwords are ever checked per window, however many requests arrive at once.
    /// Also removes a few counters whose window ended, so the table stays small.
    async fn begin_login(
        &self,
        tenant: &TenantId,
        login: &Login,
        threshold: u32,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<LoginStart, StoreError>;
    /// After a verified password: forgets the login's counter (the caller's reservation
    /// included, and any lock) and stores `rehash` as `person`'s hash when given. `compromised`
    /// (evidence that the password is known to others, such as a breach corpus) marks the person
    /// as having to change their password and records its audit event, in the same step.
    async fn record_login_success(
        &self,
        tenant: &TenantId,
        login: &Login,
        person: &PersonId,
        rehash: Option<String>,
        compromised: Option<NewAudit>,
    ) -> Result<(), StoreError>;
    /// Gives back one attempt that [`Credentials::begin_login`] reserved but whose password could
    /// not be checked (the external system that checks it was unavailable): the login's count
    /// drops by one, and a lock set at `threshold` goes when the count falls below it. Nothing
    /// when the login has no counter.
    async fn forgive_login_attempt(
        &self,
        tenant: &TenantId,
        login: &Login,
        threshold: u32,
    ) -> Result<(), StoreError>;
    /// Clears the counter (failures and any lock) of the person's login.
    async fn unlock(
        &self,
        tenant: &TenantId,
        person: &PersonId,
        audit: NewAudit,
    ) -> Result<(), StoreError>;
}
