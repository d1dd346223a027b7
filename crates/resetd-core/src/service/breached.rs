//! The breach-corpus check every password set goes through, and the range lookup the tenant's own
//! applications may use instead of Have I Been Pwned's.

use std::sync::Arc;

use crate::error::CoreError;
use crate::model::Tenant;
use crate::policy::{PasswordPolicy, PolicyMode, Verdict};
use crate::ports::{password_sha1, BreachedPasswords, RangeEntry};
use crate::types::{Password, TenantId};

use super::{Result, Service};

impl Service {
    /// Checks passwords against `index` too (`[breached]` in the configuration).
    pub fn with_breached(mut self, index: Arc<dyn BreachedPasswords>) -> Self {
        self.breached = Some(index);
        self
    }

    /// The policy's verdict with the breach check added: the one door every password set and
    /// every check goes through.
    pub(super) async fn policy_verdict(
        &self,
        t: &Tenant,
        policy: &PasswordPolicy,
        password: &Password,
        words: &[&str],
    ) -> Result<Verdict> {
        let mut verdict = self.hasher.check_policy(policy, password, words).await?;
        self.add_breach_verdict(t, policy, password, &mut verdict)?;
        Ok(verdict)
    }

    fn add_breach_verdict(
        &self,
        t: &Tenant,
        policy: &PasswordPolicy,
        password: &Password,
        verdict: &mut Verdict,
    ) -> Result<()> {
        let Some(index) = &self.breached else {
            return Ok(());
        };
        let min = t.settings.breached_min_count;
        // An Unleash-style verdict lists exactly the composition rules while one fails (its UI
        // matches on them), so the corpus is only consulted once they pass.
        let composition_failed = policy.mode == PolicyMode::Owasp
            && verdict
                .violations
                .iter()
                .any(|v| !matches!(v.code, "common" | "personal"));
        if min == 0 || password.expose().is_empty() || composition_failed {
            return Ok(());
        }
        // Fail closed: a password is not set unchecked because the index could not be read.
        let seen = index
            .count(&password_sha1(password))
            .map_err(|e| CoreError::Internal(e.to_string()))?;
        if seen.is_some_and(|n| n >= min) {
            verdict.add_breached();
        }
        Ok(())
    }

    /// Whether the corpus saw `password` at least the tenant's threshold, for the check at login.
    /// Unlike a password set, which fails closed, an index that cannot be read counts as not seen
    /// here: the person has just proved the password, and refusing the login would lock everyone
    /// out over a file; the next password set is checked (and fails closed) all the same.
    pub(super) fn seen_in_breaches(&self, t: &Tenant, password: &Password) -> bool {
        let (Some(index), min) = (&self.breached, t.settings.breached_min_count) else {
            return false;
        };
        min > 0
            && index
                .count(&password_sha1(password))
                .ok()
                .flatten()
                .is_some_and(|n| n >= min)
    }

    /// The corpus' hashes whose SHA-1 starts with the 20 bits of `prefix`; `None` when no index
    /// is configured or it keeps only truncated hashes. Who may ask is the caller's check
    /// ([`crate::model::TenantSettings::breached_range`]).
    pub async fn breached_range(
        &self,
        tenant: &TenantId,
        prefix: u32,
    ) -> Result<Option<Vec<RangeEntry>>> {
        self.tenant(tenant).await?;
        let Some(index) = &self.breached else {
            return Ok(None);
        };
        index
            .range(prefix)
            .map_err(|e| CoreError::Internal(e.to_string()))
    }
}
