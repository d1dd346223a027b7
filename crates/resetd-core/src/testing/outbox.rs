//! [`Outbox`] for [`MemoryStore`]: leased claims, delivery states, bodies erased once sent or
//! dead (so a dead message cannot be retried: `Erased`), and retries with the SQL stores' rules.
//! Bodies are kept as queued: sealing at rest is the SQL stores' concern.

use async_trait::async_trait;

use super::store::MemoryStore;
use crate::model::{MessageKind, OutboxMessage, OutboxStatus, Timestamp};
use crate::ports::{Outbox, StoreError};
use crate::types::TenantId;

/// Longest `last_error` kept for a message, in characters (as the SQL stores keep).
pub const MAX_ERROR_CHARS: usize = 500;

fn truncate_error(error: &str) -> String {
    error.chars().take(MAX_ERROR_CHARS).collect()
}

fn erase(m: &mut OutboxMessage) {
    m.message.text.clear();
    m.message.html = None;
}

fn in_scope(m: &OutboxMessage, tenant: Option<&TenantId>) -> bool {
    tenant.is_none_or(|t| &m.message.tenant == t)
}

#[async_trait]
impl Outbox for MemoryStore {
    async fn claim_outbox(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        self.write("claim_outbox", |s| {
            let mut due: Vec<(Timestamp, i64)> = s
                .outbox
                .values()
                .filter(|m| m.status == OutboxStatus::Pending && m.next_attempt_at <= now)
                .map(|m| (m.next_attempt_at, m.id))
                .collect();
            due.sort_unstable();
            let mut claimed = Vec::new();
            for (_, id) in due.into_iter().take(limit as usize) {
                if let Some(m) = s.outbox.get_mut(&id) {
                    m.next_attempt_at = lease_until;
                    m.attempts += 1;
                    claimed.push(m.clone());
                }
            }
            Ok(claimed)
        })
    }

    async fn mark_sent(&self, id: i64, at: Timestamp) -> Result<(), StoreError> {
        self.write("mark_sent", |s| {
            let m = s.outbox.get_mut(&id).ok_or(StoreError::NotFound)?;
            m.status = OutboxStatus::Sent;
            m.sent_at = Some(at);
            // Erased once sent: the body held a live reset link.
            erase(m);
            Ok(())
        })
    }

    async fn mark_failed(
        &self,
        id: i64,
        error: &str,
        retry_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        self.write("mark_failed", |s| {
            let m = s.outbox.get_mut(&id).ok_or(StoreError::NotFound)?;
            m.last_error = Some(truncate_error(error));
            match retry_at {
                Some(at) => m.next_attempt_at = at,
                None => {
                    m.status = OutboxStatus::Dead;
                    // Erased once dead: nobody will send it, and it held a live reset link.
                    erase(m);
                }
            }
            Ok(())
        })
    }

    async fn list_outbox(
        &self,
        tenant: Option<&TenantId>,
        status: Option<OutboxStatus>,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        self.read("list_outbox", |s| {
            s.outbox
                .values()
                .rev()
                .filter(|m| in_scope(m, tenant) && status.is_none_or(|st| m.status == st))
                .take(limit as usize)
                .cloned()
                .collect()
        })
    }

    async fn retry_outbox(
        &self,
        tenant: Option<&TenantId>,
        id: i64,
        at: Timestamp,
    ) -> Result<TenantId, StoreError> {
        self.write("retry_outbox", |s| {
            let m = s
                .outbox
                .get_mut(&id)
                .filter(|m| in_scope(m, tenant) && m.status != OutboxStatus::Sent)
                .ok_or(StoreError::NotFound)?;
            if m.message.text.is_empty() {
                // Its body was erased when it died (or it never had one): nothing to send.
                return Err(match m.status {
                    OutboxStatus::Dead => StoreError::Erased,
                    _ => StoreError::NotFound,
                });
            }
            m.status = OutboxStatus::Pending;
            m.next_attempt_at = at;
            m.attempts = 0;
            // A revived notice gets a fresh retry window as long as its first; a reset link
            // keeps its deadline, the link's expiry.
            if m.message.kind != MessageKind::ResetLink {
                let window = m.message.deliver_by.0 - m.message.created_at.0;
                m.message.deliver_by = m.message.deliver_by.max(Timestamp(at.0 + window));
            }
            Ok(m.message.tenant.clone())
        })
    }

    async fn outbox_counts(&self) -> Result<Vec<(OutboxStatus, u64)>, StoreError> {
        self.read("outbox_counts", |s| {
            [
                OutboxStatus::Pending,
                OutboxStatus::Sent,
                OutboxStatus::Dead,
            ]
            .into_iter()
            .map(|st| {
                let n = s.outbox.values().filter(|m| m.status == st).count();
                (st, n as u64)
            })
            .collect()
        })
    }
}
