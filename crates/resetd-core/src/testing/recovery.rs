//! [`Recovery`] for [`MemoryStore`]: reset requests claimed with a lease and resolved exactly
//! once, tokens issued under the cool-down (superseding the person's live ones, with their email
//! and audit event in the same step), voided once.

use async_trait::async_trait;

use super::store::{next, MemoryStore, State};
use crate::model::{NewAudit, NewResetRequest, ResetRequest, ResetToken, Timestamp};
use crate::ports::{ClaimId, IssueToken, Recovery, Resolution, Resolved, StoreError};
use crate::secret::SecretHash;
use crate::types::TenantId;

impl State {
    /// Issues a token unless the person is cooling down: supersedes their live tokens, stores
    /// the token, queues its email and records the audit event.
    fn issue(&mut self, issue: &IssueToken) -> Result<Resolved, StoreError> {
        let t = &issue.token;
        let cooling = self.tokens.iter().any(|x| {
            x.tenant == t.tenant && x.person == t.person && x.created_at > issue.cooldown_since
        });
        if cooling {
            return Ok(Resolved::CoolingDown);
        }
        // The token refers to a person (SQL: a foreign key on the id).
        if !self.people.iter().any(|p| p.id == t.person) {
            return Err(StoreError::NotFound);
        }
        if self.tokens.iter().any(|x| x.hash == t.hash) {
            return Err(StoreError::Conflict("reset_token".into()));
        }
        self.revoke_live_tokens(&t.tenant, &t.person, t.created_at);
        self.tokens.push(t.clone());
        self.insert_message(&issue.message);
        self.insert_audit(&issue.audit);
        Ok(Resolved::Issued)
    }
}

#[async_trait]
impl Recovery for MemoryStore {
    async fn insert_reset_request(&self, request: &NewResetRequest) -> Result<i64, StoreError> {
        self.write("insert_reset_request", |s| {
            let id = next(&mut s.sequences.request);
            let r = ResetRequest {
                id,
                tenant: request.tenant.clone(),
                lookup: request.lookup.clone(),
                client: request.client.clone(),
                locale: request.locale.clone(),
                ip: request.ip.clone(),
                created_at: request.created_at,
            };
            s.requests.insert(id, (r, None));
            Ok(id)
        })
    }

    async fn count_reset_requests(&self) -> Result<u64, StoreError> {
        self.read("count_reset_requests", |s| s.requests.len() as u64)
    }

    async fn claim_reset_requests(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ResetRequest>, StoreError> {
        self.write("claim_reset_requests", |s| {
            // Keyed by id, so the oldest come first.
            Ok(s.requests
                .values_mut()
                .filter(|(_, lease)| lease.is_none_or(|l| l <= now))
                .take(limit as usize)
                .map(|(r, lease)| {
                    *lease = Some(lease_until);
                    r.clone()
                })
                .collect())
        })
    }

    async fn resolve_reset_request(
        &self,
        id: i64,
        resolution: Resolution,
    ) -> Result<Resolved, StoreError> {
        self.write("resolve_reset_request", |s| {
            if s.requests.remove(&id).is_none() {
                return Ok(Resolved::Discarded); // resolved elsewhere: change nothing
            }
            match &resolution {
                Resolution::Discard(audit) => {
                    s.insert_audit(audit);
                    Ok(Resolved::Discarded)
                }
                Resolution::Issue(issue) => s.issue(issue),
            }
        })
    }

    async fn discard_reset_requests(
        &self,
        discards: Vec<(i64, NewAudit)>,
    ) -> Result<(), StoreError> {
        self.write("discard_reset_requests", |s| {
            for (id, audit) in &discards {
                if s.requests.remove(id).is_some() {
                    s.insert_audit(audit);
                }
            }
            Ok(())
        })
    }

    async fn issue_token(&self, issue: IssueToken) -> Result<Resolved, StoreError> {
        self.write("issue_token", |s| s.issue(&issue))
    }

    async fn void_token(
        &self,
        tenant: &TenantId,
        hash: SecretHash,
        at: Timestamp,
        audit: NewAudit,
    ) -> Result<bool, StoreError> {
        self.write("void_token", |s| {
            let live = s.tokens.iter_mut().find(|t| {
                t.hash == hash
                    && &t.tenant == tenant
                    && t.used_at.is_none()
                    && t.revoked_at.is_none()
            });
            let Some(t) = live else {
                return Ok(false);
            };
            t.revoked_at = Some(at);
            s.insert_audit(&audit);
            Ok(true)
        })
    }

    async fn find_token(&self, hash: SecretHash) -> Result<Option<ResetToken>, StoreError> {
        self.read("find_token", |s| {
            s.tokens.iter().find(|t| t.hash == hash).cloned()
        })
    }

    async fn claim_token(
        &self,
        hash: SecretHash,
        claim: &ClaimId,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<(), StoreError> {
        self.write("claim_token", |s| {
            let token = s.tokens.iter_mut().find(|t| {
                t.hash == hash
                    && t.used_at.is_none()
                    && t.revoked_at.is_none()
                    && t.expires_at > now
                    && !t.claimed
            });
            token.ok_or(StoreError::TokenGone)?.claimed = true;
            s.claims.insert(hash, (claim.clone(), lease_until));
            Ok(())
        })
    }

    async fn release_token_claim(
        &self,
        hash: SecretHash,
        claim: &ClaimId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.write("release_token_claim", |s| {
            let ours = s
                .claims
                .get(&hash)
                .is_some_and(|(id, until)| id == claim && *until > now);
            let token = s
                .tokens
                .iter_mut()
                .find(|t| t.hash == hash && t.used_at.is_none() && t.claimed);
            match token {
                Some(t) if ours => {
                    t.claimed = false;
                    s.claims.remove(&hash);
                    Ok(true)
                }
                _ => Ok(false),
            }
        })
    }
}
