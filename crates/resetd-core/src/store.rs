//! The persistence port. Each method that changes more than one record does so in one transaction.

use async_trait::async_trait;

use crate::model::{
    ApiKey, AuditEvent, Client, Lookup, NewAudit, NewMessage, NewResetRequest, OutboxMessage,
    OutboxStatus, Person, ResetRequest, ResetToken, Tenant, TenantSettings, Timestamp,
};
use crate::secret::SecretHash;
use crate::types::{ClientName, Login, PersonId, TenantId};

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

/// Issuing a token for a resolved reset request.
#[derive(Debug, Clone)]
pub struct IssueToken {
    /// The token (its hash and metadata).
    pub token: ResetToken,
    /// If the person already got a token after this instant, nothing is issued (cool-down).
    pub cooldown_since: Timestamp,
    /// The email carrying the link.
    pub message: NewMessage,
    /// The audit event for a successful issue.
    pub audit: NewAudit,
}

/// What to do with a recorded reset request.
#[derive(Debug, Clone)]
pub enum Resolution {
    /// No token: unknown or disabled account. The audit event is recorded.
    Discard(NewAudit),
    /// Issue a token, superseding the person's earlier live tokens.
    Issue(Box<IssueToken>),
}

/// The outcome of [`Store::resolve_reset_request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    /// The request was dropped.
    Discarded,
    /// A token and its email were stored.
    Issued,
    /// The person is in cool-down; nothing was issued.
    CoolingDown,
}

/// A password change (by reset token or by an administrator), with everything that goes with it.
#[derive(Debug, Clone)]
pub struct PasswordChange {
    /// Tenant.
    pub tenant: TenantId,
    /// Whose password.
    pub person: PersonId,
    /// For a token reset: the token to consume (exactly once across all instances).
    pub token: Option<SecretHash>,
    /// The new PHC hash.
    pub new_hash: String,
    /// Set must-change-on-next-login.
    pub must_change_password: bool,
    /// Clear the counter (failed logins and any lock) of the person's login.
    pub unlock: bool,
    /// How many hashes of history to keep (0: none).
    pub keep_history: u32,
    /// Now.
    pub at: Timestamp,
    /// The "your password was changed" email.
    pub message: Option<NewMessage>,
    /// The audit event.
    pub audit: NewAudit,
}

/// The account an authentication names, as far as checking a password needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginAccount {
    /// Who.
    pub person: PersonId,
    /// Disabled people cannot log in.
    pub enabled: bool,
    /// The stored PHC string (or an imported foreign hash); `None`: no password set.
    pub password_hash: Option<String>,
    /// Must change the password at this login.
    pub must_change_password: bool,
}

/// Whether an authentication may check its password: see [`Store::begin_login`].
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
    Locked {
        /// Until when.
        until: Timestamp,
    },
}

/// The outcome of [`Store::begin_login`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginStart {
    /// Whether the password may be checked.
    pub attempt: LoginAttempt,
    /// The person with that login, if any (whether or not they may log in).
    pub account: Option<LoginAccount>,
}

/// The storage port implemented by the SQLite and PostgreSQL stores.
#[async_trait]
pub trait Store: Send + Sync {
    /// Creates or upgrades the schema; safe to call from several processes at once.
    async fn migrate(&self) -> Result<(), StoreError>;
    /// Whether the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Creates a tenant; `Conflict` if the name is taken.
    async fn create_tenant(&self, tenant: &Tenant) -> Result<(), StoreError>;
    /// A tenant by id.
    async fn get_tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError>;
    /// Replaces a tenant's settings.
    async fn update_tenant_settings(
        &self,
        id: &TenantId,
        settings: &TenantSettings,
    ) -> Result<(), StoreError>;
    /// All tenants.
    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError>;

    /// Creates a person (its `number` is assigned by the store and returned); `Conflict` on a taken login.
    async fn insert_person(&self, person: &Person, audit: NewAudit) -> Result<i64, StoreError>;
    /// A person by id.
    async fn get_person(
        &self,
        tenant: &TenantId,
        id: &PersonId,
    ) -> Result<Option<Person>, StoreError>;
    /// A person by login, email (the oldest with that address), id, number or ObjectId.
    async fn find_person(
        &self,
        tenant: &TenantId,
        lookup: &Lookup,
    ) -> Result<Option<Person>, StoreError>;
    /// Writes a person's profile fields (login, email, names, locale, enabled, roles, attributes).
    async fn update_person(&self, person: &Person, audit: NewAudit) -> Result<(), StoreError>;
    /// Imports people in one transaction, matched by login: a new login is inserted (its
    /// `number` assigned), an existing one gets its profile fields (email, name, locale, enabled,
    /// verified, roles, attributes) replaced and keeps its id, number and counters. A row's
    /// `password_hash` (when `Some`) replaces the stored one only when that is missing or not
    /// Argon2id, so a re-run never undoes a password set or upgraded in resetd. Returns, per row,
    /// whether it was inserted (`true`) or updated. One audit event for the batch.
    async fn upsert_people(
        &self,
        people: &[Person],
        audit: NewAudit,
    ) -> Result<Vec<bool>, StoreError>;

    /// Stores a new API key under its secret's hash.
    async fn insert_api_key(
        &self,
        key: &ApiKey,
        hash: SecretHash,
        audit: Option<NewAudit>,
    ) -> Result<(), StoreError>;
    /// The key stored under `hash`.
    async fn find_api_key(&self, hash: SecretHash) -> Result<Option<ApiKey>, StoreError>;

    /// Registers or replaces a client.
    async fn upsert_client(&self, client: &Client, audit: NewAudit) -> Result<(), StoreError>;
    /// A client by name.
    async fn get_client(
        &self,
        tenant: &TenantId,
        name: &ClientName,
    ) -> Result<Option<Client>, StoreError>;
    /// A tenant's clients.
    async fn list_clients(&self, tenant: &TenantId) -> Result<Vec<Client>, StoreError>;

    /// Records a reset request durably (committed before this returns) and returns its id.
    async fn insert_reset_request(&self, request: &NewResetRequest) -> Result<i64, StoreError>;
    /// Claims up to `limit` of the oldest unresolved requests that nobody holds (never claimed, or
    /// their lease ended at or before `now`), oldest first: each is leased until `lease_until`, so
    /// that several workers (instances) split the queue instead of all working on the same rows.
    /// A crashed worker's lease simply runs out. The lease only avoids duplicate work; resolving
    /// stays exactly-once on its own (see [`Store::resolve_reset_request`]).
    async fn claim_reset_requests(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ResetRequest>, StoreError>;
    /// Resolves one request in one transaction: deletes it and applies `resolution`, whoever
    /// holds its lease. A request already resolved elsewhere yields `Discarded` and changes
    /// nothing. Issuing is serialised per person, so two requests for one person resolved at the
    /// same time on two instances still honour the cool-down.
    async fn resolve_reset_request(
        &self,
        id: i64,
        resolution: Resolution,
    ) -> Result<Resolved, StoreError>;

    /// Issues a token outside any recorded request (a trusted caller asked for it), in one
    /// transaction: unless the person got a token after `cooldown_since` (`CoolingDown`), voids
    /// their earlier live tokens, stores the token, queues the email and records the audit event
    /// (`Issued`).
    async fn issue_token(&self, issue: IssueToken) -> Result<Resolved, StoreError>;
    /// Voids the live (unused, unrevoked) token stored under `hash` in `tenant` as of `at` and
    /// records `audit`; `false` (and nothing recorded) when there was no such live token.
    async fn void_token(
        &self,
        tenant: &TenantId,
        hash: SecretHash,
        at: Timestamp,
        audit: NewAudit,
    ) -> Result<bool, StoreError>;
    /// The token stored under `hash`.
    async fn find_token(&self, hash: SecretHash) -> Result<Option<ResetToken>, StoreError>;
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
    /// included, and any lock) and stores `rehash` as `person`'s hash when given.
    async fn record_login_success(
        &self,
        tenant: &TenantId,
        login: &Login,
        person: &PersonId,
        rehash: Option<String>,
    ) -> Result<(), StoreError>;
    /// Clears the counter (failures and any lock) of the person's login.
    async fn unlock(
        &self,
        tenant: &TenantId,
        person: &PersonId,
        audit: NewAudit,
    ) -> Result<(), StoreError>;

    /// Records an audit event on its own.
    async fn append_audit(&self, audit: NewAudit) -> Result<(), StoreError>;
    /// A tenant's audit events, newest first, with ids below `before`.
    async fn list_audit(
        &self,
        tenant: &TenantId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, StoreError>;

    /// Claims up to `limit` due messages: each is leased until `lease_until`, so no other worker
    /// takes it meanwhile, and a crashed worker's lease simply runs out.
    ///
    /// Bodies at rest: a store keeps every queued body sealed under a key outside the database
    /// and erases it (empty text, no HTML) once the message is sent or dead. This is the only
    /// method that returns bodies opened; a message whose body cannot be opened (its key is
    /// missing, or it was altered) is not returned but marked dead with the reason.
    async fn claim_outbox(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>, StoreError>;
    /// Marks a message delivered and erases its body.
    async fn mark_sent(&self, id: i64, at: Timestamp) -> Result<(), StoreError>;
    /// Records a failed attempt; `retry_at = None` marks it dead and erases its body.
    async fn mark_failed(
        &self,
        id: i64,
        error: &str,
        retry_at: Option<Timestamp>,
    ) -> Result<(), StoreError>;
    /// Messages by status, newest first, with their bodies as stored (sealed or erased).
    async fn list_outbox(
        &self,
        tenant: Option<&TenantId>,
        status: Option<OutboxStatus>,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>, StoreError>;
    /// Puts a dead or pending message back in the queue, due at `at`, with a full set of
    /// attempts, and returns its tenant; `NotFound` if there is no such message (in `tenant`, when
    /// given) or it was sent; `Erased` if it is dead and its body was erased.
    async fn retry_outbox(
        &self,
        tenant: Option<&TenantId>,
        id: i64,
        at: Timestamp,
    ) -> Result<TenantId, StoreError>;
    /// Counts of messages per status.
    async fn outbox_counts(&self) -> Result<Vec<(OutboxStatus, u64)>, StoreError>;
}
