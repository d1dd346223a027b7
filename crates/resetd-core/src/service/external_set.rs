//! Password sets and logins for a tenant whose passwords live in an external system, following
//! the rule of `docs/architecture.md` ("The rule for a password set that spans two systems"):
//! claim the token, write the password there, consume the token on the claim.

use serde_json::json;

use crate::error::CoreError;
use crate::model::{Person, ResetToken, Tenant};
use crate::policy::PasswordPolicy;
use crate::ports::{ClaimId, ExternalCredentials, ExternalError, LoginAttempt, PasswordChange};
use crate::secret::ResetSecret;
use crate::types::{Login, Password, TenantId};

use super::external::{external_failure, Found, EXTERNAL_CLAIM_LEASE_SECS};
use super::{personal_words, Actor, Authenticated, Result, Service};

/// A reset to complete through an external system: what `complete_reset_with` has checked.
pub(super) struct ExternalReset<'a> {
    pub tenant: &'a Tenant,
    pub backend: &'a dyn ExternalCredentials,
    pub token: &'a ResetToken,
    pub person: Person,
    pub secret: &'a ResetSecret,
    pub policy: PasswordPolicy,
    pub ip: Option<&'a str>,
}

impl Service {
    /// The policy check of a password set through `backend`, and the hash resetd keeps: none
    /// where the system checks passwords itself (so no history either), else as for a local
    /// tenant.
    async fn external_hash(
        &self,
        t: &Tenant,
        backend: &dyn ExternalCredentials,
        policy: &PasswordPolicy,
        person: &Person,
        password: &Password,
    ) -> Result<Option<String>> {
        if !backend.capabilities().verifies_passwords {
            return Ok(Some(self.checked_hash(t, policy, person, password).await?));
        }
        let verdict = self
            .policy_verdict(t, policy, password, &personal_words(person))
            .await?;
        if !verdict.is_ok() {
            return Err(CoreError::Policy(verdict));
        }
        Ok(None)
    }

    fn kept_history(t: &Tenant, backend: &dyn ExternalCredentials) -> u32 {
        if backend.capabilities().verifies_passwords {
            0
        } else {
            t.settings.password_history
        }
    }

    /// Completes a reset through the external system: claim, write, consume.
    pub(super) async fn complete_external(
        &self,
        r: ExternalReset<'_>,
        password: &Password,
    ) -> Result<Person> {
        let t = r.tenant;
        let new_hash = self
            .external_hash(t, r.backend, &r.policy, &r.person, password)
            .await?;
        // Before the claim: a system that cannot be asked leaves the token as it was.
        let account = match self.account_of(r.backend, &r.person).await {
            Ok(a) => a,
            Err(ExternalError::NoAccount) => return Err(CoreError::TokenGone),
            Err(e) => return Err(external_failure(e)),
        };
        let hash = r.secret.hash();
        let claim = ClaimId::generate();
        let now = self.now();
        let lease_until = now.plus_secs(EXTERNAL_CLAIM_LEASE_SECS);
        self.store
            .claim_token(hash, &claim, now, lease_until)
            .await?;
        let written = self
            .write_external(r.backend, &account, password, claim.as_str(), lease_until)
            .await;
        if let Err(e) = written {
            return Err(match e {
                // The password may have changed: the claim stays, and lapses with its lease.
                ExternalError::Indeterminate(m) => {
                    CoreError::Unavailable(format!("credential backend outcome unknown: {m}"))
                }
                // A definite answer: nothing changed there, so the token is usable again.
                definite => {
                    self.store
                        .release_token_claim(hash, &claim, self.now())
                        .await?;
                    match definite {
                        ExternalError::NoAccount => CoreError::TokenGone,
                        other => external_failure(other),
                    }
                }
            });
        }
        let audit = self.audit(
            &t.id,
            Some(&r.person.id),
            "reset_completed",
            &Actor::Anonymous,
            r.ip,
            json!({}),
        );
        let (at, unlock) = (self.now(), t.settings.reset_unlocks);
        let change = PasswordChange {
            tenant: t.id.clone(),
            person: r.person.id.clone(),
            token: Some(hash),
            claim: Some(claim),
            new_hash: new_hash.clone(),
            must_change_password: false,
            unlock,
            keep_history: Self::kept_history(t, r.backend),
            at,
            message: Some(self.password_changed_message(&r.person, t, r.token.client.as_ref())?),
            audit,
        };
        // A failure here leaves the token claimed (never live again) with the new password in
        // the external system: the person asks for a new link at worst.
        self.store.change_password(change).await?;
        let person = r.person;
        Ok(Person {
            password_hash: new_hash,
            password_changed_at: Some(at),
            must_change_password: false,
            failed_logins: if unlock { 0 } else { person.failed_logins },
            locked_until: if unlock { None } else { person.locked_until },
            updated_at: at,
            ..person
        })
    }

    /// An administrator's set through the external system: the write there first, then the
    /// local change (no token).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn admin_set_external(
        &self,
        t: &Tenant,
        backend: &dyn ExternalCredentials,
        person: &Person,
        password: &Password,
        unlock: bool,
        must_change: bool,
        actor: &Actor,
        ip: Option<&str>,
    ) -> Result<()> {
        let new_hash = self
            .external_hash(t, backend, &t.settings.policy(), person, password)
            .await?;
        let account = self
            .account_of(backend, person)
            .await
            .map_err(external_failure)?;
        let change_id = ClaimId::generate();
        let until = self.now().plus_secs(EXTERNAL_CLAIM_LEASE_SECS);
        self.write_external(backend, &account, password, change_id.as_str(), until)
            .await
            .map_err(external_failure)?;
        let audit = self.audit(
            &t.id,
            Some(&person.id),
            "password_set_by_admin",
            actor,
            ip,
            json!({"unlock": unlock, "must_change_password": must_change}),
        );
        let change = PasswordChange {
            tenant: t.id.clone(),
            person: person.id.clone(),
            token: None,
            claim: None,
            new_hash,
            must_change_password: must_change,
            unlock,
            keep_history: Self::kept_history(t, backend),
            at: self.now(),
            message: Some(self.password_changed_message(person, t, None)?),
            audit,
        };
        Ok(self.store.change_password(change).await?)
    }

    /// A login checked by the external system. The login's counter works exactly as for a local
    /// tenant (reserved before anything is checked); the account comes from the system (its
    /// shadow row refreshed), and the system checks the password. When the system cannot answer,
    /// the reserved attempt is given back and the answer is `Unavailable`.
    pub(super) async fn authenticate_external(
        &self,
        t: &Tenant,
        backend: &dyn ExternalCredentials,
        login: &Login,
        password: &Password,
        ip: Option<&str>,
    ) -> Result<Authenticated> {
        let s = &t.settings;
        let now = self.now();
        let start = self
            .store
            .begin_login(
                &t.id,
                login,
                s.lockout_threshold,
                now,
                now.plus_secs(s.lockout_secs),
            )
            .await?;
        let (failures, locked_now) = match start.attempt {
            LoginAttempt::Locked { until } => return Err(CoreError::Locked { until }),
            LoginAttempt::Granted {
                failures,
                locked_until,
            } => (failures, locked_until.is_some()),
        };
        let checked = self.check_external(&t.id, backend, login, password).await;
        let person = match checked {
            Ok(Some(p)) => p,
            Ok(None) => {
                if locked_now {
                    let a = self.audit(
                        &t.id,
                        start.account.as_ref().map(|a| &a.person),
                        "locked",
                        &Actor::Anonymous,
                        ip,
                        json!({ "failures": failures }),
                    );
                    self.store.append_audit(a).await?;
                }
                return Err(CoreError::BadCredentials);
            }
            Err(e) => {
                self.store
                    .forgive_login_attempt(&t.id, login, s.lockout_threshold)
                    .await?;
                return Err(e);
            }
        };
        let compromised = (s.breached_check_at_login
            && !person.must_change_password
            && self.seen_in_breaches(t, password))
        .then(|| {
            self.audit(
                &t.id,
                Some(&person.id),
                "breached_at_login",
                &Actor::Anonymous,
                ip,
                json!({}),
            )
        });
        let must_change_password = person.must_change_password || compromised.is_some();
        self.store
            .record_login_success(&t.id, login, &person.id, None, compromised)
            .await?;
        Ok(Authenticated {
            must_change_password,
            person: Person {
                must_change_password,
                failed_logins: 0,
                locked_until: None,
                ..person
            },
        })
    }

    /// The shadow row of the account when the system accepts `password` for it; `None` for a
    /// wrong password, an unknown, unusable or disabled account; `Err` when it cannot answer.
    ///
    /// Every login costs the same round trips: the search, then a bind (as the account, or as
    /// nobody for a login that names none), and the shadow row is written only after the system
    /// accepted the password. Otherwise the answer's timing would tell who has an account: an
    /// unknown login used to return after the search alone, a known one after a store write and
    /// a bind.
    async fn check_external(
        &self,
        tenant: &TenantId,
        backend: &dyn ExternalCredentials,
        login: &Login,
        password: &Password,
    ) -> Result<Option<Person>> {
        let query = crate::ports::AccountQuery::Login(login.as_str().to_owned());
        let account = match backend.find_account(&query).await {
            Ok(Some(a)) => a,
            Ok(None) | Err(ExternalError::NoAccount) => {
                return match backend.verify_nobody(password).await {
                    Ok(()) | Err(ExternalError::NoAccount) | Err(ExternalError::Refused(_)) => {
                        Ok(None)
                    }
                    Err(e) => Err(external_failure(e)),
                };
            }
            Err(e) => return Err(external_failure(e)),
        };
        let accepted = match backend.verify_password(&account, password).await {
            Ok(accepted) => accepted,
            Err(ExternalError::NoAccount) | Err(ExternalError::Refused(_)) => false,
            Err(e) => return Err(external_failure(e)),
        };
        if !accepted || !account.enabled {
            return Ok(None);
        }
        let Found::Person(person) = self.shadow(tenant, &account).await? else {
            return Ok(None);
        };
        if !person.enabled {
            return Ok(None);
        }
        Ok(Some(*person))
    }
}
