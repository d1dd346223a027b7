//! The recovery port: reset requests and the tokens they issue. Consuming a token is part of a
//! password change and lives in [`super::Credentials::change_password`].

use async_trait::async_trait;

use super::StoreError;
use crate::model::{NewAudit, NewMessage, NewResetRequest, ResetRequest, ResetToken, Timestamp};
use crate::secret::SecretHash;
use crate::types::TenantId;

/// Issuing a token for a resolved reset request.
#[derive(Debug, Clone)]
pub struct IssueToken {
    /// The token (its hash, purpose and metadata).
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

/// The outcome of [`Recovery::resolve_reset_request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    /// The request was dropped.
    Discarded,
    /// A token and its email were stored.
    Issued,
    /// The person is in cool-down; nothing was issued.
    CoolingDown,
}

/// The random id of one claim on a token (see [`Recovery::claim_token`]). Not a secret: it only
/// lets the claimer consume or release its own claim, and it is never shown.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClaimId(String);

impl ClaimId {
    /// A fresh random claim id (128 bits from the OS CSPRNG, as hex).
    pub fn generate() -> Self {
        Self(crate::secret::hex(&crate::secret::random_bytes::<16>()))
    }

    /// Wraps a stored claim id.
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Reset requests and tokens.
#[async_trait]
pub trait Recovery: Send + Sync {
    /// Records a reset request durably (committed before this returns) and returns its id.
    async fn insert_reset_request(&self, request: &NewResetRequest) -> Result<i64, StoreError>;
    /// How many requests wait to be resolved (claimed or not), over every instance.
    async fn count_reset_requests(&self) -> Result<u64, StoreError>;
    /// Claims up to `limit` of the oldest unresolved requests that nobody holds (never claimed, or
    /// their lease ended at or before `now`), oldest first: each is leased until `lease_until`, so
    /// that several workers (instances) split the queue instead of all working on the same rows.
    /// A crashed worker's lease simply runs out. The lease only avoids duplicate work; resolving
    /// stays exactly-once on its own (see [`Recovery::resolve_reset_request`]).
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
    /// Resolves many requests with [`Resolution::Discard`], each as
    /// [`Recovery::resolve_reset_request`] would (one already resolved elsewhere changes nothing
    /// and records no audit). A store that can puts them in one transaction, all or none, so
    /// that a flood of requests for accounts nobody has costs a commit per batch, not per
    /// request. This default resolves them one at a time: after an error, the ones before it
    /// are resolved and the rest stay queued.
    async fn discard_reset_requests(
        &self,
        discards: Vec<(i64, NewAudit)>,
    ) -> Result<(), StoreError> {
        for (id, audit) in discards {
            self.resolve_reset_request(id, Resolution::Discard(audit))
                .await?;
        }
        Ok(())
    }

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
    /// The token stored under `hash`, with its purpose. A token whose stored purpose this build
    /// does not know (minted by a newer version on the same database) is `None`, as no use of
    /// this build may accept it.
    async fn find_token(&self, hash: SecretHash) -> Result<Option<ResetToken>, StoreError>;

    /// Claims the token stored under `hash` for a password write to an external system (step 1
    /// of the rule in `docs/architecture.md`), with a conditional update: only a live token
    /// (unused, unrevoked, unexpired at `now`, never claimed) is claimed, so exactly one of any
    /// number of concurrent callers wins; the others get `TokenGone`. From then on the token is
    /// not live ([`ResetToken::claimed`]): while the lease runs it is the claimer's, after it a
    /// claim that was neither consumed nor released is lapsed, for good.
    async fn claim_token(
        &self,
        hash: SecretHash,
        claim: &ClaimId,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<(), StoreError>;
    /// Gives a claim back after the external system refused the password (nothing changed
    /// there): the token is live again. Only the claimer's own, unconsumed claim whose lease is
    /// still running at `now` is released; otherwise nothing changes and the answer is `false`
    /// (a lapsed claim stays lapsed).
    async fn release_token_claim(
        &self,
        hash: SecretHash,
        claim: &ClaimId,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
}
