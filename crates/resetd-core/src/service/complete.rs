//! Using a reset token: what the hosted page and the dialects may learn about it, and setting the
//! new password with it.

use serde_json::json;

use crate::error::CoreError;
use crate::model::{Lookup, Person, ResetToken, Timestamp, TokenPurpose};
use crate::policy::{PolicyMode, Verdict};
use crate::secret::ResetSecret;
use crate::store::PasswordChange;
use crate::types::{Login, Password, TenantId};

use super::external_set::ExternalReset;
use super::{personal_words, policy_for, Actor, Result, Service};

/// A valid reset token's public facts.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenInfo {
    /// When it expires.
    pub expires_at: Timestamp,
    /// The person's login, for the page to show whose password is being reset.
    pub login: Login,
    /// The person's min-length policy, for the page to show.
    pub min_password_length: usize,
    /// The whole person, for surfaces that describe the token's owner in their own terms
    /// (Unleash's token user). Never shown as is: it holds the password hash.
    pub person: Person,
    /// When it was issued.
    pub issued_at: Timestamp,
}

/// How a surface wants a reset completed, beyond the token and the new password.
#[derive(Debug, Clone, Default)]
pub struct CompleteOptions {
    /// The token only counts when it belongs to this account; any other token is `TokenGone`
    /// (Alfresco names the person in the path next to the token).
    pub holder: Option<Lookup>,
    /// Check the new password with this rule set instead of the tenant's (Unleash's OWASP rules).
    pub mode: Option<PolicyMode>,
}

impl Service {
    /// Looks up a reset token and its person; `TokenGone` unless it is live and for a reset.
    async fn live_token(
        &self,
        tenant: &TenantId,
        secret: &ResetSecret,
    ) -> Result<(ResetToken, Person)> {
        let presented = secret.hash();
        let token = self
            .store
            .find_token(presented)
            .await?
            .ok_or(CoreError::TokenGone)?;
        let now = self.now();
        // A token minted for another purpose is refused like an unknown one (no oracle).
        let live = token.hash.ct_eq(&presented)
            && token.purpose == TokenPurpose::Reset
            && &token.tenant == tenant
            && token.used_at.is_none()
            && token.revoked_at.is_none()
            && !token.claimed
            && token.expires_at > now;
        if !live {
            return Err(CoreError::TokenGone);
        }
        let person = self
            .store
            .get_person(tenant, &token.person)
            .await?
            .ok_or(CoreError::TokenGone)?;
        let after_change = person
            .password_changed_at
            .is_none_or(|c| token.created_at >= c);
        if !person.enabled || !after_change {
            return Err(CoreError::TokenGone);
        }
        Ok((token, person))
    }

    /// Whether a reset token can still be used, and until when.
    pub async fn inspect_token(
        &self,
        tenant: &TenantId,
        secret: &ResetSecret,
    ) -> Result<TokenInfo> {
        let t = self.tenant(tenant).await?;
        let (token, person) = self.live_token(tenant, secret).await?;
        Ok(TokenInfo {
            expires_at: token.expires_at,
            login: person.login.clone(),
            min_password_length: t.settings.min_password_length,
            person,
            issued_at: token.created_at,
        })
    }

    /// The policy's verdict on a candidate password for the person a live reset token belongs
    /// to, with their whole personal context (login, email, name), without using the token or
    /// hashing anything. The hosted page uses it to list policy violations together with its own
    /// form errors (a mistyped confirmation); `complete_reset` still decides.
    pub async fn check_reset_password(
        &self,
        tenant: &TenantId,
        secret: &ResetSecret,
        password: &Password,
    ) -> Result<Verdict> {
        let t = self.tenant(tenant).await?;
        let (_, person) = self.live_token(tenant, secret).await?;
        self.policy_verdict(&t, &t.settings.policy(), password, &personal_words(&person))
            .await
    }

    /// Completes a reset: sets the new password and consumes the token (exactly once). Returns the
    /// person as now stored.
    pub async fn complete_reset(
        &self,
        tenant: &TenantId,
        secret: &ResetSecret,
        password: &Password,
        ip: Option<&str>,
    ) -> Result<Person> {
        self.complete_reset_with(tenant, secret, password, &CompleteOptions::default(), ip)
            .await
    }

    /// [`Service::complete_reset`] with a surface's own conditions: the token must belong to
    /// `options.holder`, and the password is checked with `options.mode`. The token is checked
    /// before the password, so a policy verdict only ever reaches the holder of a live token.
    pub async fn complete_reset_with(
        &self,
        tenant: &TenantId,
        secret: &ResetSecret,
        password: &Password,
        options: &CompleteOptions,
        ip: Option<&str>,
    ) -> Result<Person> {
        let t = self.tenant(tenant).await?;
        let (token, person) = self.live_token(tenant, secret).await?;
        if options.holder.as_ref().is_some_and(|h| !h.matches(&person)) {
            return Err(CoreError::TokenGone);
        }
        let policy = policy_for(&t, options.mode);
        if let Some(backend) = self.external(tenant) {
            let reset = ExternalReset {
                tenant: &t,
                backend: backend.as_ref(),
                token: &token,
                person,
                secret,
                policy,
                ip,
            };
            return self.complete_external(reset, password).await;
        }
        let new_hash = self.checked_hash(&t, &policy, &person, password).await?;
        let audit = self.audit(
            tenant,
            Some(&person.id),
            "reset_completed",
            &Actor::Anonymous,
            ip,
            json!({}),
        );
        let (at, unlock) = (self.now(), t.settings.reset_unlocks);
        let change = PasswordChange {
            tenant: tenant.clone(),
            person: person.id.clone(),
            token: Some(secret.hash()),
            claim: None,
            new_hash: Some(new_hash.clone()),
            must_change_password: false,
            unlock,
            keep_history: t.settings.password_history,
            at,
            message: Some(self.password_changed_message(&person, &t, token.client.as_ref())?),
            audit,
        };
        self.store.change_password(change).await?;
        // Committed. The answer is the person with the change applied here, not read back: a
        // database failing between the commit and a second read would otherwise turn a completed
        // reset into an error telling the client to retry, and the retry would find the token
        // used.
        Ok(Person {
            password_hash: Some(new_hash),
            password_changed_at: Some(at),
            must_change_password: false,
            failed_logins: if unlock { 0 } else { person.failed_logins },
            locked_until: if unlock { None } else { person.locked_until },
            updated_at: at,
            ..person
        })
    }
}
