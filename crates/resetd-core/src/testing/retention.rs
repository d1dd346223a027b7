//! [`Retention`] for [`MemoryStore`], with the SQL stores' rules: each kind's oldest rows first,
//! at most `batch` of each.

use async_trait::async_trait;

use super::store::MemoryStore;
use crate::model::{OutboxStatus, Timestamp};
use crate::ports::{Purged, Retention, RetentionPolicy, StoreError};

#[async_trait]
impl Retention for MemoryStore {
    async fn purge(
        &self,
        now: Timestamp,
        policy: &RetentionPolicy,
        batch: u32,
    ) -> Result<Purged, StoreError> {
        self.write("purge", |s| {
            let batch = batch as usize;
            let mut purged = Purged::default();
            let tokens_before = now.plus_secs(-policy.tokens_after_secs);
            let mut n = 0;
            s.tokens.retain(|t| {
                let gone = n < batch && t.expires_at < tokens_before;
                n += usize::from(gone);
                !gone
            });
            purged.tokens = n as u64;
            let messages_before = now.plus_secs(-policy.outbox_after_secs);
            let done: Vec<i64> = s
                .outbox
                .values()
                .filter(|m| {
                    m.status != OutboxStatus::Pending && m.message.created_at < messages_before
                })
                .map(|m| m.id)
                .take(batch)
                .collect();
            for id in &done {
                s.outbox.remove(id);
            }
            purged.messages = done.len() as u64;
            if let Some(after) = policy.audit_after_secs {
                let before = now.plus_secs(-after);
                let mut n = 0;
                s.audit.retain(|(_, e)| {
                    let gone = n < batch && e.at < before;
                    n += usize::from(gone);
                    !gone
                });
                purged.audit_events = n as u64;
            }
            Ok(purged)
        })
    }
}
