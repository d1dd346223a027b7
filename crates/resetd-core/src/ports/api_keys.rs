//! The API-key port: the keys callers present, and their lifecycle (list, revoke, rotate). A
//! small port of its own, so that the directory of people and tenants does not grow with it and a
//! backend could keep keys elsewhere (see `docs/api-keys.md`).

use async_trait::async_trait;

use super::StoreError;
use crate::api_key::{ApiKey, ApiKeyId};
use crate::model::{NewAudit, Timestamp};
use crate::secret::SecretHash;
use crate::types::TenantId;

/// Who may call.
#[async_trait]
pub trait ApiKeys: Send + Sync {
    /// Stores a new API key under its secret's hash; `Conflict` on a taken id or hash,
    /// `NotFound`/`Backend` for an unknown tenant.
    async fn insert_api_key(
        &self,
        key: &ApiKey,
        hash: SecretHash,
        audit: Option<NewAudit>,
    ) -> Result<(), StoreError>;
    /// The key whose secret hashes to `hash`: its current secret, or the one it replaced while
    /// `now` is before the rotation's overlap ends. Revoked and expired keys are returned too;
    /// the caller decides (so that every surface refuses them the same way).
    async fn find_api_key(
        &self,
        hash: SecretHash,
        now: Timestamp,
    ) -> Result<Option<ApiKey>, StoreError>;
    /// The key with this id, whatever its tenant.
    async fn get_api_key(&self, id: &ApiKeyId) -> Result<Option<ApiKey>, StoreError>;
    /// The keys of one tenant, or of all (`None`), oldest first.
    async fn list_api_keys(&self, tenant: Option<&TenantId>) -> Result<Vec<ApiKey>, StoreError>;
    /// Revokes a key of `tenant` that is not revoked yet (both of its secrets stop at once), with
    /// its audit event, and returns it. `NotFound` when the tenant has no such key, `Conflict`
    /// when it was revoked already (nothing is written then).
    async fn revoke_api_key(
        &self,
        tenant: &TenantId,
        id: &ApiKeyId,
        at: Timestamp,
        audit: NewAudit,
    ) -> Result<ApiKey, StoreError>;
    /// Gives a live key of `tenant` (not revoked, not expired at `at`) the secret `hash`; its
    /// current secret keeps working until `previous_until` (one earlier secret at most: a second
    /// rotation ends the first one's overlap). With its audit event; returns the key.
    /// `NotFound` when the tenant has no such key, `Conflict` when it is revoked or expired.
    async fn rotate_api_key(
        &self,
        tenant: &TenantId,
        id: &ApiKeyId,
        hash: SecretHash,
        previous_until: Timestamp,
        at: Timestamp,
        audit: NewAudit,
    ) -> Result<ApiKey, StoreError>;
    /// Records that the key was used at `at` (never moving `last_used_at` back). The use case
    /// calls it at most once a minute per key, so it is not a write per request.
    async fn touch_api_key(&self, id: &str, at: Timestamp) -> Result<(), StoreError>;
}
