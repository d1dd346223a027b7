//! The outbox port. Messages are queued by the other ports, in the transaction that decided to
//! send them; the mail worker delivers them through this one (claim, mark sent, mark failed), and
//! the admin surfaces list and retry them.

use async_trait::async_trait;

use super::StoreError;
use crate::model::{OutboxMessage, OutboxStatus, Timestamp};
use crate::types::TenantId;

/// The queue of outgoing email.
#[async_trait]
pub trait Outbox: Send + Sync {
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
