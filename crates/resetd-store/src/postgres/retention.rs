//! The [`Retention`] port on PostgreSQL, with SQLite's rules (see `sqlite/retention.rs`): tokens
//! by their indexed expiry (migration 10), email rows and audit events in id order, a batch of
//! each per statement, each statement its own transaction.

use async_trait::async_trait;
use resetd_core::model::Timestamp;
use resetd_core::ports::{Purged, Retention, RetentionPolicy, StoreError};

use super::PostgresStore;
use crate::common::limit;

#[async_trait]
impl Retention for PostgresStore {
    async fn purge(
        &self,
        now: Timestamp,
        policy: &RetentionPolicy,
        batch: u32,
    ) -> Result<Purged, StoreError> {
        let n = limit(batch);
        let mut c = self.pool.get().await?;
        let db = c.db();
        let tokens = db
            .exec(
                "DELETE FROM reset_token WHERE hash IN \
                 (SELECT hash FROM reset_token WHERE expires_at < $1 LIMIT $2)",
                &[&now.plus_secs(-policy.tokens_after_secs).0, &n],
            )
            .await?;
        let messages = db
            .exec(
                "DELETE FROM outbox WHERE id IN \
                 (SELECT id FROM outbox WHERE status <> 'pending' ORDER BY id LIMIT $2) \
                 AND created_at < $1",
                &[&now.plus_secs(-policy.outbox_after_secs).0, &n],
            )
            .await?;
        let audit_events = match policy.audit_after_secs {
            Some(after) => {
                db.exec(
                    "DELETE FROM audit_event WHERE id IN \
                     (SELECT id FROM audit_event ORDER BY id LIMIT $2) AND at < $1",
                    &[&now.plus_secs(-after).0, &n],
                )
                .await?
            }
            None => 0,
        };
        Ok(Purged {
            tokens,
            messages,
            audit_events,
        })
    }
}
