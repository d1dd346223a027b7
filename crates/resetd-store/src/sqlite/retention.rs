//! The [`Retention`] port on SQLite: each kind's oldest rows first, a batch at a time, in one
//! short write on the writer thread.
//!
//! Tokens are found by their expiry (indexed, migration 11). Email rows and audit events are
//! taken in id order (ids grow with time), so no index on their times is needed: the oldest
//! `batch` finished rows are looked at and those old enough deleted. A pending email is never
//! among them.

use async_trait::async_trait;
use resetd_core::model::Timestamp;
use resetd_core::ports::{Purged, Retention, RetentionPolicy, StoreError};
use rusqlite::{params, Connection};

use super::rows::exec;
use super::SqliteStore;
use crate::common::limit;

fn purge(
    c: &Connection,
    now: Timestamp,
    policy: &RetentionPolicy,
    batch: u32,
) -> Result<Purged, StoreError> {
    let n = limit(batch);
    let tokens = exec(
        c,
        "DELETE FROM reset_token WHERE rowid IN \
         (SELECT rowid FROM reset_token WHERE expires_at < ?1 LIMIT ?2)",
        params![now.plus_secs(-policy.tokens_after_secs).0, n],
    )?;
    let messages = exec(
        c,
        "DELETE FROM outbox WHERE id IN \
         (SELECT id FROM outbox WHERE status <> 'pending' ORDER BY id LIMIT ?2) AND created_at < ?1",
        params![now.plus_secs(-policy.outbox_after_secs).0, n],
    )?;
    let audit_events = match policy.audit_after_secs {
        Some(after) => exec(
            c,
            "DELETE FROM audit_event WHERE id IN \
             (SELECT id FROM audit_event ORDER BY id LIMIT ?2) AND at < ?1",
            params![now.plus_secs(-after).0, n],
        )?,
        None => 0,
    };
    Ok(Purged {
        tokens: tokens as u64,
        messages: messages as u64,
        audit_events: audit_events as u64,
    })
}

#[async_trait]
impl Retention for SqliteStore {
    async fn purge(
        &self,
        now: Timestamp,
        policy: &RetentionPolicy,
        batch: u32,
    ) -> Result<Purged, StoreError> {
        let policy = *policy;
        self.write(move |c| purge(c, now, &policy, batch)).await
    }
}
