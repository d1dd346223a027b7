//! [`ApiKeys`] for [`MemoryStore`], with the SQL stores' keys (unique id, unique secret hash over
//! both the current and the replaced secret) and their conditional lifecycle writes.

use async_trait::async_trait;

use super::store::{MemoryStore, State};
use crate::api_key::{ApiKey, ApiKeyId};
use crate::model::{NewAudit, Timestamp};
use crate::ports::{ApiKeys, StoreError};
use crate::secret::SecretHash;
use crate::types::TenantId;

/// A key as the SQL stores keep it: the record, the current secret's hash and, after a
/// rotation, the replaced one's (valid until `key.previous_until`).
#[derive(Debug, Clone)]
pub(super) struct StoredKey {
    pub hash: SecretHash,
    pub previous: Option<SecretHash>,
    pub key: ApiKey,
}

impl State {
    fn key_mut(&mut self, tenant: &TenantId, id: &ApiKeyId) -> Result<&mut StoredKey, StoreError> {
        self.api_keys
            .iter_mut()
            .find(|k| k.key.id == id.as_str() && &k.key.tenant == tenant)
            .ok_or(StoreError::NotFound)
    }

    fn hash_taken(&self, hash: &SecretHash) -> bool {
        self.api_keys
            .iter()
            .any(|k| k.hash == *hash || k.previous.as_ref() == Some(hash))
    }
}

#[async_trait]
impl ApiKeys for MemoryStore {
    async fn insert_api_key(
        &self,
        key: &ApiKey,
        hash: SecretHash,
        audit: Option<NewAudit>,
    ) -> Result<(), StoreError> {
        self.write("insert_api_key", |s| {
            if s.hash_taken(&hash) || s.api_keys.iter().any(|k| k.key.id == key.id) {
                return Err(StoreError::Conflict("api_key".into()));
            }
            if !s.tenant_exists(&key.tenant) {
                return Err(StoreError::NotFound);
            }
            s.api_keys.push(StoredKey {
                hash,
                previous: None,
                key: key.clone(),
            });
            if let Some(a) = &audit {
                s.insert_audit(a);
            }
            Ok(())
        })
    }

    async fn find_api_key(
        &self,
        hash: SecretHash,
        now: Timestamp,
    ) -> Result<Option<ApiKey>, StoreError> {
        self.read("find_api_key", |s| {
            s.api_keys
                .iter()
                .find(|k| {
                    k.hash == hash
                        || (k.previous == Some(hash)
                            && k.key.previous_until.is_some_and(|u| u > now))
                })
                .map(|k| k.key.clone())
        })
    }

    async fn get_api_key(&self, id: &ApiKeyId) -> Result<Option<ApiKey>, StoreError> {
        self.read("get_api_key", |s| {
            s.api_keys
                .iter()
                .find(|k| k.key.id == id.as_str())
                .map(|k| k.key.clone())
        })
    }

    async fn list_api_keys(&self, tenant: Option<&TenantId>) -> Result<Vec<ApiKey>, StoreError> {
        self.read("list_api_keys", |s| {
            let mut keys: Vec<ApiKey> = s
                .api_keys
                .iter()
                .filter(|k| tenant.is_none_or(|t| &k.key.tenant == t))
                .map(|k| k.key.clone())
                .collect();
            keys.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
            keys
        })
    }

    async fn revoke_api_key(
        &self,
        tenant: &TenantId,
        id: &ApiKeyId,
        at: Timestamp,
        audit: NewAudit,
    ) -> Result<ApiKey, StoreError> {
        self.write("revoke_api_key", |s| {
            let k = s.key_mut(tenant, id)?;
            if k.key.revoked_at.is_some() {
                return Err(StoreError::Conflict("revoked".into()));
            }
            k.key.revoked_at = Some(at);
            k.previous = None;
            k.key.previous_until = None;
            let key = k.key.clone();
            s.insert_audit(&audit);
            Ok(key)
        })
    }

    async fn rotate_api_key(
        &self,
        tenant: &TenantId,
        id: &ApiKeyId,
        hash: SecretHash,
        previous_until: Timestamp,
        at: Timestamp,
        audit: NewAudit,
    ) -> Result<ApiKey, StoreError> {
        self.write("rotate_api_key", |s| {
            if s.hash_taken(&hash) {
                return Err(StoreError::Conflict("api_key".into()));
            }
            let k = s.key_mut(tenant, id)?;
            if k.key.revoked_at.is_some() || k.key.expires_at.is_some_and(|e| e <= at) {
                return Err(StoreError::Conflict("inactive".into()));
            }
            k.previous = Some(k.hash);
            k.hash = hash;
            k.key.previous_until = Some(previous_until);
            let key = k.key.clone();
            s.insert_audit(&audit);
            Ok(key)
        })
    }

    async fn touch_api_key(&self, id: &str, at: Timestamp) -> Result<(), StoreError> {
        self.write("touch_api_key", |s| {
            if let Some(k) = s.api_keys.iter_mut().find(|k| k.key.id == id) {
                if k.key.last_used_at.is_none_or(|t| t < at) {
                    k.key.last_used_at = Some(at);
                }
            }
            Ok(())
        })
    }
}
