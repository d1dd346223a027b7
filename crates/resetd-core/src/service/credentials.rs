//! Passwords outside a reset: checking a candidate, an administrator setting one, logging in, and
//! unlocking.

use serde_json::json;

use crate::error::CoreError;
use crate::model::{Person, Tenant};
use crate::policy::{PasswordPolicy, PolicyMode, Verdict, Violation};
use crate::store::{LoginAttempt, PasswordChange};
use crate::types::{Login, Password, PersonId, TenantId};

use super::{personal_words, policy_for, Actor, Result, Service};

/// A successful login.
#[derive(Debug, Clone, PartialEq)]
pub struct Authenticated {
    pub person: Person,
    /// The caller must make them change their password now.
    pub must_change_password: bool,
}

impl Service {
    /// Policy (and optional reuse) check, then hash.
    pub(super) async fn checked_hash(
        &self,
        t: &Tenant,
        policy: &PasswordPolicy,
        person: &Person,
        password: &Password,
    ) -> Result<String> {
        let mut verdict = self
            .policy_verdict(t, policy, password, &personal_words(person))
            .await?;
        if verdict.is_ok() && t.settings.password_history > 0 {
            let mut previous = self
                .store
                .password_history(&t.id, &person.id, t.settings.password_history)
                .await?;
            previous.extend(person.password_hash.clone());
            for h in previous {
                if self.hasher.verify(password, &h).await?.ok {
                    verdict.violations.push(Violation {
                        code: "reused",
                        message: "Choose a password you have not used before.".into(),
                    });
                    break;
                }
            }
        }
        if !verdict.is_ok() {
            return Err(CoreError::Policy(verdict));
        }
        Ok(self.hasher.hash(password).await?)
    }

    /// The policy's verdict on a candidate password. Only the given login is used as personal
    /// context, so the answer never depends on whether an account exists.
    pub async fn check_password(
        &self,
        tenant: &TenantId,
        password: &Password,
        login: Option<&Login>,
    ) -> Result<Verdict> {
        self.check_password_with(tenant, password, login, None)
            .await
    }

    /// [`Service::check_password`] with `mode` instead of the tenant's rules when given.
    pub async fn check_password_with(
        &self,
        tenant: &TenantId,
        password: &Password,
        login: Option<&Login>,
        mode: Option<PolicyMode>,
    ) -> Result<Verdict> {
        let t = self.tenant(tenant).await?;
        let words: Vec<&str> = login.map(|l| vec![l.as_str()]).unwrap_or_default();
        self.policy_verdict(&t, &policy_for(&t, mode), password, &words)
            .await
    }

    /// An administrator sets a password directly (the policy still applies).
    #[allow(clippy::too_many_arguments)]
    pub async fn admin_set_password(
        &self,
        tenant: &TenantId,
        id: &PersonId,
        password: &Password,
        unlock: bool,
        must_change: bool,
        actor: &Actor,
        ip: Option<&str>,
    ) -> Result<()> {
        let t = self.tenant(tenant).await?;
        let person = self.get_person(tenant, id).await?;
        if let Some(backend) = self.external(tenant) {
            return self
                .admin_set_external(
                    &t,
                    backend.as_ref(),
                    &person,
                    password,
                    unlock,
                    must_change,
                    actor,
                    ip,
                )
                .await;
        }
        let new_hash = self
            .checked_hash(&t, &t.settings.policy(), &person, password)
            .await?;
        let audit = self.audit(
            tenant,
            Some(id),
            "password_set_by_admin",
            actor,
            ip,
            json!({"unlock": unlock, "must_change_password": must_change}),
        );
        let change = PasswordChange {
            tenant: tenant.clone(),
            person: id.clone(),
            token: None,
            claim: None,
            new_hash: Some(new_hash),
            must_change_password: must_change,
            unlock,
            keep_history: t.settings.password_history,
            at: self.now(),
            message: Some(self.password_changed_message(&person, &t, None)?),
            audit,
        };
        Ok(self.store.change_password(change).await?)
    }

    /// Clears a person's failed logins and lock.
    pub async fn unlock(
        &self,
        tenant: &TenantId,
        id: &PersonId,
        actor: &Actor,
        ip: Option<&str>,
    ) -> Result<()> {
        self.get_person(tenant, id).await?;
        let audit = self.audit(tenant, Some(id), "unlocked", actor, ip, json!({}));
        Ok(self.store.unlock(tenant, id, audit).await?)
    }

    /// Checks a login and password so that no answer depends on whether the login exists:
    ///
    /// 1. The attempt is reserved against the login's counter ([`Store::begin_login`], kept per
    ///    tenant and login for unknown logins too) before any password is checked, so however
    ///    many guesses arrive at once, at most `lockout_threshold` are checked per window; the
    ///    same call reads the account.
    /// 2. Exactly one Argon2 verification follows: against the person's hash when the attempt was
    ///    granted and the person may log in, against the dummy hash (same parameters) otherwise —
    ///    unknown login, disabled person, no password, or locked login.
    /// 3. A failure writes nothing more (it was counted when reserved), except an audit event
    ///    when it locked the login, known or not; a success gives the attempt back and clears
    ///    the count.
    ///
    /// So unknown, wrong, disabled and locked logins each cost one write, one read and one hash,
    /// and answer `BadCredentials`, or `Locked` once the login's count reached the threshold.
    ///
    /// [`Store::begin_login`]: crate::ports::Credentials::begin_login
    pub async fn authenticate(
        &self,
        tenant: &TenantId,
        login: &Login,
        password: &Password,
        ip: Option<&str>,
    ) -> Result<Authenticated> {
        let t = self.tenant(tenant).await?;
        if let Some(backend) = self
            .external(tenant)
            .filter(|b| b.capabilities().verifies_passwords)
        {
            return self
                .authenticate_external(&t, backend.as_ref(), login, password, ip)
                .await;
        }
        let s = &t.settings;
        let now = self.now();
        let start = self
            .store
            .begin_login(
                tenant,
                login,
                s.lockout_threshold,
                now,
                now.plus_secs(s.lockout_secs),
            )
            .await?;
        let usable = start
            .account
            .as_ref()
            .filter(|a| a.enabled)
            .and_then(|a| Some((a, a.password_hash.as_deref()?)));
        let (failures, locked_now) = match start.attempt {
            LoginAttempt::Locked { until } => {
                self.hasher.verify_dummy(password).await?;
                return Err(CoreError::Locked { until });
            }
            LoginAttempt::Granted {
                failures,
                locked_until,
            } => (failures, locked_until.is_some()),
        };
        let verified = match usable {
            Some((account, hash)) => {
                Some((account, self.hasher.verify(password, hash).await?)).filter(|(_, v)| v.ok)
            }
            None => {
                self.hasher.verify_dummy(password).await?;
                None
            }
        };
        let Some((account, verified)) = verified else {
            if locked_now {
                let a = self.audit(
                    tenant,
                    start.account.as_ref().map(|a| &a.person),
                    "locked",
                    &Actor::Anonymous,
                    ip,
                    json!({ "failures": failures }),
                );
                self.store.append_audit(a).await?;
            }
            return Err(CoreError::BadCredentials);
        };
        let rehash = if verified.needs_rehash {
            Some(self.hasher.hash(password).await?)
        } else {
            None
        };
        let compromised = (s.breached_check_at_login
            && !account.must_change_password
            && self.seen_in_breaches(&t, password))
        .then(|| {
            self.audit(
                tenant,
                Some(&account.person),
                "breached_at_login",
                &Actor::Anonymous,
                ip,
                json!({}),
            )
        });
        let must_change_password = account.must_change_password || compromised.is_some();
        self.store
            .record_login_success(tenant, login, &account.person, rehash, compromised)
            .await?;
        Ok(Authenticated {
            must_change_password,
            person: self.get_person(tenant, &account.person).await?,
        })
    }
}
