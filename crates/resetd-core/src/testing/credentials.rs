//! [`Credentials`] for [`MemoryStore`]: password changes that consume their token exactly once
//! and void the person's other tokens, the history, and the per-login counter of
//! `begin_login` with the SQL stores' rules (`resetd-store`'s `sqlite/login.rs`).

use async_trait::async_trait;

use super::store::{next, Counter, MemoryStore};
use crate::model::{NewAudit, Timestamp};
use crate::ports::{
    Credentials, LoginAccount, LoginAttempt, LoginStart, PasswordChange, StoreError,
};
use crate::types::{Login, PersonId, TenantId};

/// Counters whose window ended that one `begin_login` removes, as the SQL stores do.
const PURGE_PER_CALL: usize = 2;

#[async_trait]
impl Credentials for MemoryStore {
    async fn change_password(&self, ch: PasswordChange) -> Result<(), StoreError> {
        self.write("change_password", |s| {
            if let Some(hash) = &ch.token {
                // Single use: only a live token of this person, unexpired at the change, is
                // consumed; anything else is `TokenGone`.
                // With a claim, the claim decides (it was taken on a live token); without
                // one, the token must be live and unclaimed.
                let claim = s.claims.get(hash).map(|(id, _)| id.clone());
                let token = s.tokens.iter_mut().find(|t| {
                    t.hash == *hash
                        && t.tenant == ch.tenant
                        && t.person == ch.person
                        && t.used_at.is_none()
                        && match &ch.claim {
                            Some(ours) => t.claimed && claim.as_ref() == Some(ours),
                            None => !t.claimed && t.revoked_at.is_none() && t.expires_at > ch.at,
                        }
                });
                token.ok_or(StoreError::TokenGone)?.used_at = Some(ch.at);
            }
            let i = s
                .person_index(&ch.tenant, &ch.person)
                .ok_or(StoreError::NotFound)?;
            if ch.keep_history > 0 {
                if let Some(old) = s.people[i].password_hash.clone() {
                    let id = next(&mut s.sequences.history);
                    s.history
                        .push((id, ch.tenant.clone(), ch.person.clone(), old));
                }
                // Keep the newest `keep_history` of this person's entries.
                let mine: Vec<i64> = s
                    .history
                    .iter()
                    .filter(|(_, t, p, _)| *t == ch.tenant && *p == ch.person)
                    .map(|(id, ..)| *id)
                    .collect();
                let drop = mine.len().saturating_sub(ch.keep_history as usize);
                let dropped = &mine[..drop];
                s.history.retain(|(id, ..)| !dropped.contains(id));
            }
            let p = &mut s.people[i];
            p.password_hash = ch.new_hash.clone();
            p.password_changed_at = Some(ch.at);
            p.must_change_password = ch.must_change_password;
            p.updated_at = ch.at;
            if ch.unlock {
                s.clear_counter(&ch.tenant, &ch.person);
            }
            // The consumed token is used, so this voids every other live token.
            s.revoke_live_tokens(&ch.tenant, &ch.person, ch.at);
            if let Some(m) = &ch.message {
                s.insert_message(m);
            }
            s.insert_audit(&ch.audit);
            Ok(())
        })
    }

    async fn password_history(
        &self,
        tenant: &TenantId,
        person: &PersonId,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        self.read("password_history", |s| {
            s.history
                .iter()
                .rev()
                .filter(|(_, t, p, _)| t == tenant && p == person)
                .take(limit as usize)
                .map(|(.., h)| h.clone())
                .collect()
        })
    }

    async fn begin_login(
        &self,
        tenant: &TenantId,
        login: &Login,
        threshold: u32,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<LoginStart, StoreError> {
        self.write("begin_login", |s| {
            let key = (tenant.clone(), login.clone());
            let (failures, window_until, granted) = match s.counters.get_mut(&key) {
                None => {
                    let c = Counter {
                        failures: 1,
                        window_until: until,
                        locked_until: (threshold <= 1).then_some(until),
                    };
                    s.counters.insert(key, c);
                    (1, until, true)
                }
                Some(c) => {
                    let refused = (c.window_until > now && c.failures >= threshold)
                        || c.locked_until.is_some_and(|l| l > now);
                    if !refused {
                        c.failures = if c.window_until <= now {
                            1
                        } else {
                            c.failures.saturating_add(1)
                        };
                        c.locked_until = (c.failures >= threshold).then_some(until);
                        c.window_until = until;
                    }
                    (c.failures, c.window_until, !refused)
                }
            };
            let attempt = if granted {
                LoginAttempt::Granted {
                    failures,
                    locked_until: (failures >= threshold).then_some(until),
                }
            } else {
                LoginAttempt::Locked {
                    until: window_until,
                }
            };
            let ended: Vec<_> = s
                .counters
                .iter()
                .filter(|(_, c)| c.window_until <= now)
                .map(|(k, _)| k.clone())
                .take(PURGE_PER_CALL)
                .collect();
            for k in ended {
                s.counters.remove(&k);
            }
            let account = s
                .people
                .iter()
                .find(|p| &p.tenant == tenant && &p.login == login)
                .map(|p| LoginAccount {
                    person: p.id.clone(),
                    enabled: p.enabled,
                    password_hash: p.password_hash.clone(),
                    must_change_password: p.must_change_password,
                });
            Ok(LoginStart { attempt, account })
        })
    }

    async fn record_login_success(
        &self,
        tenant: &TenantId,
        login: &Login,
        person: &PersonId,
        rehash: Option<String>,
        compromised: Option<NewAudit>,
    ) -> Result<(), StoreError> {
        self.write("record_login_success", |s| {
            let i = s.person_index(tenant, person).ok_or(StoreError::NotFound)?;
            // A rehash keeps password_changed_at: the password did not change, tokens stay valid.
            if let Some(h) = &rehash {
                s.people[i].password_hash = Some(h.clone());
            }
            if let Some(audit) = &compromised {
                s.people[i].must_change_password = true;
                s.insert_audit(audit);
            }
            s.counters.remove(&(tenant.clone(), login.clone()));
            Ok(())
        })
    }

    async fn forgive_login_attempt(
        &self,
        tenant: &TenantId,
        login: &Login,
        threshold: u32,
    ) -> Result<(), StoreError> {
        self.write("forgive_login_attempt", |s| {
            if let Some(c) = s.counters.get_mut(&(tenant.clone(), login.clone())) {
                c.failures = c.failures.saturating_sub(1);
                if c.failures < threshold {
                    c.locked_until = None;
                }
            }
            Ok(())
        })
    }

    async fn unlock(
        &self,
        tenant: &TenantId,
        person: &PersonId,
        audit: NewAudit,
    ) -> Result<(), StoreError> {
        self.write("unlock", |s| {
            s.person_index(tenant, person).ok_or(StoreError::NotFound)?;
            s.clear_counter(tenant, person);
            s.insert_audit(&audit);
            Ok(())
        })
    }
}
