//! The [`ApiKeys`] port on SQLite: the `api_key` table (migration 10 added the expiry and the
//! replaced secret of a rotation, `previous_hash` valid until `previous_until`).
//!
//! Lifecycle writes are conditional updates on the key's state, so two administrators revoking
//! or rotating at once cannot both win; the loser reads back why (gone, or no longer live).

use async_trait::async_trait;
use resetd_core::api_key::{ApiKey, ApiKeyId, Scope};
use resetd_core::model::{NewAudit, Timestamp};
use resetd_core::ports::{ApiKeys, StoreError};
use resetd_core::secret::SecretHash;
use resetd_core::types::TenantId;
use rusqlite::{params, Connection, Row};

use super::audit::insert_audit;
use super::rows::{all, exec, get, json, one, opt_ts, tenant_id, ts};
use super::SqliteStore;
use crate::common::to_json;

const COLS: &str =
    "id, tenant, name, scopes, created_at, revoked_at, expires_at, last_used_at, previous_until";

fn key(row: &Row<'_>) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        id: get(row, 0)?,
        tenant: tenant_id(get(row, 1)?)?,
        name: get(row, 2)?,
        scopes: json::<Vec<Scope>>(row, 3, "scopes")?,
        created_at: ts(row, 4)?,
        revoked_at: opt_ts(row, 5)?,
        expires_at: opt_ts(row, 6)?,
        last_used_at: opt_ts(row, 7)?,
        previous_until: opt_ts(row, 8)?,
    })
}

fn insert(
    c: &Connection,
    k: &ApiKey,
    hash: &SecretHash,
    audit: Option<&NewAudit>,
) -> Result<(), StoreError> {
    exec(
        c,
        "INSERT INTO api_key (id, tenant, name, scopes, hash, created_at, revoked_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            k.id,
            k.tenant.as_str(),
            k.name,
            to_json(&k.scopes)?,
            &hash.0[..],
            k.created_at.0,
            k.revoked_at.map(|t| t.0),
            k.expires_at.map(|t| t.0)
        ],
    )?;
    if let Some(a) = audit {
        insert_audit(c, a)?;
    }
    Ok(())
}

fn find(c: &Connection, hash: &SecretHash, now: Timestamp) -> Result<Option<ApiKey>, StoreError> {
    // Two indexed lookups (hash, previous_hash), not an OR the planner may scan for.
    let current = format!("SELECT {COLS} FROM api_key WHERE hash = ?1");
    if let Some(k) = one(c, &current, [&hash.0[..]], key)? {
        return Ok(Some(k));
    }
    let previous =
        format!("SELECT {COLS} FROM api_key WHERE previous_hash = ?1 AND previous_until > ?2");
    one(c, &previous, params![&hash.0[..], now.0], key)
}

fn get_key(c: &Connection, id: &str) -> Result<Option<ApiKey>, StoreError> {
    one(
        c,
        &format!("SELECT {COLS} FROM api_key WHERE id = ?1"),
        [id],
        key,
    )
}

/// After a conditional update changed nothing: `NotFound` when the tenant has no such key,
/// `Conflict` when it exists but was not in the state the update needed.
fn why_unchanged(c: &Connection, tenant: &TenantId, id: &ApiKeyId) -> StoreError {
    match get_key(c, id.as_str()) {
        Ok(Some(k)) if &k.tenant == tenant => StoreError::Conflict("api_key state".into()),
        Ok(_) => StoreError::NotFound,
        Err(e) => e,
    }
}

fn revoke(
    c: &Connection,
    tenant: &TenantId,
    id: &ApiKeyId,
    at: Timestamp,
    audit: &NewAudit,
) -> Result<ApiKey, StoreError> {
    let changed = exec(
        c,
        "UPDATE api_key SET revoked_at = ?3, previous_hash = NULL, previous_until = NULL \
         WHERE id = ?1 AND tenant = ?2 AND revoked_at IS NULL",
        params![id.as_str(), tenant.as_str(), at.0],
    )?;
    if changed == 0 {
        return Err(why_unchanged(c, tenant, id));
    }
    insert_audit(c, audit)?;
    get_key(c, id.as_str())?.ok_or(StoreError::NotFound)
}

fn rotate(
    c: &Connection,
    tenant: &TenantId,
    id: &ApiKeyId,
    hash: &SecretHash,
    previous_until: Timestamp,
    at: Timestamp,
    audit: &NewAudit,
) -> Result<ApiKey, StoreError> {
    let changed = exec(
        c,
        "UPDATE api_key SET previous_hash = hash, previous_until = ?4, hash = ?3 \
         WHERE id = ?1 AND tenant = ?2 AND revoked_at IS NULL \
         AND (expires_at IS NULL OR expires_at > ?5)",
        params![
            id.as_str(),
            tenant.as_str(),
            &hash.0[..],
            previous_until.0,
            at.0
        ],
    )?;
    if changed == 0 {
        return Err(why_unchanged(c, tenant, id));
    }
    insert_audit(c, audit)?;
    get_key(c, id.as_str())?.ok_or(StoreError::NotFound)
}

#[async_trait]
impl ApiKeys for SqliteStore {
    async fn insert_api_key(
        &self,
        key: &ApiKey,
        hash: SecretHash,
        audit: Option<NewAudit>,
    ) -> Result<(), StoreError> {
        let k = key.clone();
        self.write(move |c| insert(c, &k, &hash, audit.as_ref()))
            .await
    }

    async fn find_api_key(
        &self,
        hash: SecretHash,
        now: Timestamp,
    ) -> Result<Option<ApiKey>, StoreError> {
        self.read(move |c| find(c, &hash, now)).await
    }

    async fn get_api_key(&self, id: &ApiKeyId) -> Result<Option<ApiKey>, StoreError> {
        let id = id.as_str().to_owned();
        self.read(move |c| get_key(c, &id)).await
    }

    async fn list_api_keys(&self, tenant: Option<&TenantId>) -> Result<Vec<ApiKey>, StoreError> {
        let t = tenant.map(|t| t.as_str().to_owned());
        self.read(move |c| {
            let sql = format!(
                "SELECT {COLS} FROM api_key WHERE ?1 IS NULL OR tenant = ?1 ORDER BY created_at, id"
            );
            all(c, &sql, [t], key)
        })
        .await
    }

    async fn revoke_api_key(
        &self,
        tenant: &TenantId,
        id: &ApiKeyId,
        at: Timestamp,
        audit: NewAudit,
    ) -> Result<ApiKey, StoreError> {
        let (t, id) = (tenant.clone(), id.clone());
        self.write(move |c| revoke(c, &t, &id, at, &audit)).await
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
        let (t, id) = (tenant.clone(), id.clone());
        self.write(move |c| rotate(c, &t, &id, &hash, previous_until, at, &audit))
            .await
    }

    async fn touch_api_key(&self, id: &str, at: Timestamp) -> Result<(), StoreError> {
        let id = id.to_owned();
        self.write(move |c| {
            exec(
                c,
                "UPDATE api_key SET last_used_at = ?2 \
                 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)",
                params![id, at.0],
            )
            .map(|_| ())
        })
        .await
    }
}
