//! API keys: creating them, checking the one a caller presents (the same check for every
//! surface), and their lifecycle: list, show, revoke, rotate. See `docs/api-keys.md`.

use serde_json::json;

use crate::api_key::{ApiKey, ApiKeyId, KeyState, NewApiKey, Overlap, LAST_USED_RESOLUTION_SECS};
use crate::error::CoreError;
use crate::model::{Scope, Timestamp};
use crate::secret::{hex, random_bytes, ApiKeySecret};
use crate::store::StoreError;
use crate::types::{InvalidInput, TenantId};

use super::{Actor, Result, Service};

impl Service {
    /// Creates an admin-style key with no expiry (the bootstrap key, older callers); see
    /// [`Service::create_key`].
    pub async fn create_api_key(
        &self,
        tenant: &TenantId,
        name: &str,
        scopes: Vec<Scope>,
        actor: &Actor,
    ) -> Result<(ApiKey, ApiKeySecret)> {
        let new = NewApiKey {
            name: name.to_owned(),
            scopes,
            expires_at: None,
        };
        self.create_key(tenant, new, actor).await
    }

    /// Creates an API key and returns its secret, which is never shown again. Audited (the id and
    /// name, never the secret).
    pub async fn create_key(
        &self,
        tenant: &TenantId,
        new: NewApiKey,
        actor: &Actor,
    ) -> Result<(ApiKey, ApiKeySecret)> {
        self.tenant(tenant).await?;
        let name = new.name.trim();
        if name.is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
            return Err(InvalidInput::new("name", "must be 1 to 128 printable characters").into());
        }
        let now = self.now();
        if new.expires_at.is_some_and(|e| e <= now) {
            return Err(InvalidInput::new("expires_at", "must be in the future").into());
        }
        let mut scopes: Vec<Scope> = Vec::with_capacity(new.scopes.len());
        for s in new.scopes {
            if !scopes.contains(&s) {
                scopes.push(s);
            }
        }
        let secret = ApiKeySecret::generate();
        let key = ApiKey {
            id: hex(&random_bytes::<8>()),
            tenant: tenant.clone(),
            name: name.to_owned(),
            scopes,
            created_at: now,
            revoked_at: None,
            expires_at: new.expires_at,
            last_used_at: None,
            previous_until: None,
        };
        let audit = self.audit(
            tenant,
            None,
            "api_key_created",
            actor,
            None,
            json!({
                "key_id": key.id,
                "name": key.name,
                "scopes": key.scopes,
                "expires_at": key.expires_at.map(Timestamp::rfc3339),
            }),
        );
        self.store
            .insert_api_key(&key, secret.hash(), Some(audit))
            .await?;
        Ok((key, secret))
    }

    /// The live key behind `secret`, whatever its tenant and scopes; `Unauthenticated` when it is
    /// unknown, revoked, expired or a secret rotated out, all alike, so that no surface can tell
    /// them apart. Every surface that takes keys checks them here. Records the use (at most once
    /// a minute per key, see [`LAST_USED_RESOLUTION_SECS`]).
    pub async fn identify_api_key(&self, secret: &ApiKeySecret) -> Result<ApiKey> {
        let now = self.now();
        let key = self
            .store
            .find_api_key(secret.hash(), now)
            .await?
            .ok_or(CoreError::Unauthenticated)?;
        if key.state(now) != KeyState::Active {
            return Err(CoreError::Unauthenticated);
        }
        self.note_use(&key, now).await;
        Ok(key)
    }

    /// Checks that `secret` is a live key of `tenant` whose scopes grant `need`: `Unauthenticated`
    /// as [`Service::identify_api_key`], `Forbidden` for a live key of another tenant or without
    /// the scope.
    pub async fn authorize(
        &self,
        tenant: &TenantId,
        secret: &ApiKeySecret,
        need: Scope,
    ) -> Result<ApiKey> {
        let key = self.identify_api_key(secret).await?;
        if &key.tenant != tenant || !key.permits(need) {
            return Err(CoreError::Forbidden);
        }
        Ok(key)
    }

    /// Writes `last_used_at` when neither the stored value nor this process's last write is
    /// within the resolution. A failed write is not the caller's failure: the key was checked.
    async fn note_use(&self, key: &ApiKey, now: Timestamp) {
        let window = LAST_USED_RESOLUTION_SECS * 1000;
        if key.last_used_at.is_some_and(|t| now.0 - t.0 < window) {
            return;
        }
        {
            let mut touched = self.key_touches.lock().unwrap_or_else(|e| e.into_inner());
            if touched
                .get(&key.id)
                .is_some_and(|t: &Timestamp| now.0 - t.0 < window)
            {
                return;
            }
            touched.insert(key.id.clone(), now);
        }
        let _ = self.store.touch_api_key(&key.id, now).await;
    }

    /// The keys of `tenant` (its admin API), or of every tenant (`None`, the command line),
    /// oldest first. Never their secrets: the store has only hashes.
    pub async fn api_keys(&self, tenant: Option<&TenantId>) -> Result<Vec<ApiKey>> {
        if let Some(t) = tenant {
            self.tenant(t).await?;
        }
        Ok(self.store.list_api_keys(tenant).await?)
    }

    /// One key, of `tenant` when given; `NotFound("API key")` otherwise, also for a key of
    /// another tenant.
    pub async fn api_key(&self, tenant: Option<&TenantId>, id: &ApiKeyId) -> Result<ApiKey> {
        if let Some(t) = tenant {
            self.tenant(t).await?;
        }
        self.store
            .get_api_key(id)
            .await?
            .filter(|k| tenant.is_none_or(|t| &k.tenant == t))
            .ok_or(CoreError::NotFound("API key"))
    }

    /// Revokes a key: both its secrets stop at once, on every surface. `KeyRevoked` when it was
    /// revoked already. Audited.
    pub async fn revoke_api_key(
        &self,
        tenant: Option<&TenantId>,
        id: &ApiKeyId,
        actor: &Actor,
        ip: Option<&str>,
    ) -> Result<ApiKey> {
        let key = self.api_key(tenant, id).await?;
        if key.revoked_at.is_some() {
            return Err(CoreError::KeyRevoked);
        }
        let audit = self.audit(
            &key.tenant,
            None,
            "api_key_revoked",
            actor,
            ip,
            json!({"key_id": key.id, "name": key.name}),
        );
        self.store
            .revoke_api_key(&key.tenant, id, self.now(), audit)
            .await
            .map_err(|e| lifecycle_error(e, CoreError::KeyRevoked))
    }

    /// Gives a key a new secret, returned once; the old one keeps working for `overlap`, then
    /// stops. A key keeps its id, scopes, expiry and audit trail. `KeyRevoked` or `KeyExpired` for
    /// a key that no secret opens any more. Audited.
    pub async fn rotate_api_key(
        &self,
        tenant: Option<&TenantId>,
        id: &ApiKeyId,
        overlap: Overlap,
        actor: &Actor,
        ip: Option<&str>,
    ) -> Result<(ApiKey, ApiKeySecret)> {
        let key = self.api_key(tenant, id).await?;
        let now = self.now();
        match key.state(now) {
            KeyState::Active => {}
            KeyState::Revoked => return Err(CoreError::KeyRevoked),
            KeyState::Expired => return Err(CoreError::KeyExpired),
        }
        let until = now.plus_secs(overlap.secs());
        let audit = self.audit(
            &key.tenant,
            None,
            "api_key_rotated",
            actor,
            ip,
            json!({
                "key_id": key.id,
                "name": key.name,
                "previous_valid_until": until.rfc3339(),
            }),
        );
        let secret = ApiKeySecret::generate();
        let key = self
            .store
            .rotate_api_key(&key.tenant, id, secret.hash(), until, now, audit)
            .await
            .map_err(|e| lifecycle_error(e, CoreError::KeyRevoked))?;
        Ok((key, secret))
    }
}

/// A lifecycle write that lost a race: the key went away (`NotFound`) or changed state
/// (`Conflict`) between the read and the conditional write.
fn lifecycle_error(e: StoreError, conflict: CoreError) -> CoreError {
    match e {
        StoreError::NotFound => CoreError::NotFound("API key"),
        StoreError::Conflict(_) => conflict,
        other => other.into(),
    }
}
