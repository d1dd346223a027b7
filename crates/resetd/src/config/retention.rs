//! `[retention]`: how long finished records are kept.

use serde::{Deserialize, Serialize};

/// How long finished records are kept before the retention worker deletes them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    /// Seconds after its expiry a token (used, voided or not) is deleted; at least a day, since
    /// a tenant's cool-down (at most a day) counts earlier tokens.
    pub tokens_after_secs: u64,
    /// Seconds after it was queued a sent or dead email's row is deleted (its body is erased
    /// when it is sent); pending email is never deleted.
    pub outbox_after_secs: u64,
    /// Seconds an audit event is kept; 0 keeps the audit log for ever.
    pub audit_after_secs: u64,
    /// Seconds between two passes of the worker.
    pub interval_secs: u64,
}

impl Default for Retention {
    fn default() -> Self {
        let d = resetd_core::ports::DEFAULT_RETENTION;
        Self {
            tokens_after_secs: d.tokens_after_secs as u64,
            outbox_after_secs: d.outbox_after_secs as u64,
            audit_after_secs: d.audit_after_secs.map_or(0, |s| s as u64),
            interval_secs: 60,
        }
    }
}

impl Retention {
    /// The policy, once [`super::Config::validate`] has bounded the values.
    pub fn policy(&self) -> resetd_core::ports::RetentionPolicy {
        resetd_core::ports::RetentionPolicy {
            tokens_after_secs: self.tokens_after_secs as i64,
            outbox_after_secs: self.outbox_after_secs as i64,
            audit_after_secs: (self.audit_after_secs > 0).then_some(self.audit_after_secs as i64),
        }
    }

    pub(super) fn validate(&self) -> Result<(), String> {
        const TEN_YEARS: u64 = 10 * 366 * 24 * 3600;
        if !(86_400..=TEN_YEARS).contains(&self.tokens_after_secs) {
            return Err("retention.tokens_after_secs must be between 86400 (a day, the longest cool-down) and ten years".into());
        }
        if !(3_600..=TEN_YEARS).contains(&self.outbox_after_secs) {
            return Err("retention.outbox_after_secs must be between 3600 and ten years".into());
        }
        if self.audit_after_secs != 0 && !(86_400..=TEN_YEARS).contains(&self.audit_after_secs) {
            return Err(
                "retention.audit_after_secs must be 0 (keep for ever) or between 86400 and ten years"
                    .into(),
            );
        }
        if !(1..=86_400).contains(&self.interval_secs) {
            return Err("retention.interval_secs must be between 1 and 86400".into());
        }
        Ok(())
    }
}
