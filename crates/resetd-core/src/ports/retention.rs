//! Forgetting what is no longer needed: tokens long expired, email rows long delivered or given
//! up, audit events older than the operator keeps them. A store deletes in small batches, so a
//! purge never holds the database for long; the retention worker calls it until a batch comes
//! back short.

use async_trait::async_trait;

use super::StoreError;
use crate::model::Timestamp;

/// What is deleted, and after how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// A token is deleted this long after it expired (whether used, voided or never used): a
    /// live token is never deleted, and a token more than a day old no longer counts for the
    /// cool-down (at most a day).
    pub tokens_after_secs: i64,
    /// A sent or dead email's row (its body is erased when it is sent or given up; the row keeps
    /// the recipient and subject for the outbox listing) is deleted this long after it was
    /// queued. A pending email is never deleted.
    pub outbox_after_secs: i64,
    /// An audit event is deleted this long after it happened; `None` keeps the audit log for
    /// ever.
    pub audit_after_secs: Option<i64>,
}

/// The defaults: tokens and email rows a day and a week after they are done, audit a year.
pub const DEFAULT_RETENTION: RetentionPolicy = RetentionPolicy {
    tokens_after_secs: 24 * 3600,
    outbox_after_secs: 7 * 24 * 3600,
    audit_after_secs: Some(365 * 24 * 3600),
};

/// How many rows of each kind one purge deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub tokens: u64,
    pub messages: u64,
    pub audit_events: u64,
}

impl Purged {
    /// All kinds together.
    pub fn total(&self) -> u64 {
        self.tokens + self.messages + self.audit_events
    }

    /// Whether some kind filled a whole batch of `batch` rows (more may be waiting).
    pub fn filled(&self, batch: u32) -> bool {
        [self.tokens, self.messages, self.audit_events]
            .iter()
            .any(|n| *n >= u64::from(batch))
    }
}

impl std::ops::AddAssign for Purged {
    fn add_assign(&mut self, other: Purged) {
        self.tokens += other.tokens;
        self.messages += other.messages;
        self.audit_events += other.audit_events;
    }
}

/// Deleting expired records.
#[async_trait]
pub trait Retention: Send + Sync {
    /// Deletes at most `batch` rows of each kind that `policy` lets go as of `now`, each kind in
    /// a short transaction. A kind's rows are taken oldest first.
    async fn purge(
        &self,
        now: Timestamp,
        policy: &RetentionPolicy,
        batch: u32,
    ) -> Result<Purged, StoreError>;
}
