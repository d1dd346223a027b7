//! The [`ApiKeys`] port on PostgreSQL: the `api_key` table (migration 9 added the expiry and the
//! replaced secret of a rotation, as SQLite's 10).
//!
//! Lifecycle writes are conditional updates on the key's state, in one transaction with their
//! audit event, so two administrators revoking or rotating at once cannot both win.

use async_trait::async_trait;
use resetd_core::api_key::{ApiKey, ApiKeyId, Scope};
use resetd_core::model::{NewAudit, Timestamp};
use resetd_core::ports::{ApiKeys, StoreError};
use resetd_core::secret::SecretHash;
use resetd_core::types::TenantId;
use tokio_postgres::{GenericClient, Row};

use super::audit::insert_audit;
use super::pool::Db;
use super::rows::{get, json, map_all, opt_ts, tenant_id, ts};
use super::PostgresStore;
use crate::common::to_json;

const COLS: &str =
    "id, tenant, name, scopes, created_at, revoked_at, expires_at, last_used_at, previous_until";

fn key(row: &Row) -> Result<ApiKey, StoreError> {
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

async fn get_key<C: GenericClient + Sync>(
    db: &Db<'_, C>,
    id: &str,
) -> Result<Option<ApiKey>, StoreError> {
    let sql = format!("SELECT {COLS} FROM api_key WHERE id = $1");
    db.opt(&sql, &[&id]).await?.map(|r| key(&r)).transpose()
}

/// After a conditional update changed nothing: `NotFound` when the tenant has no such key,
/// `Conflict` when it exists but was not in the state the update needed.
async fn why_unchanged<C: GenericClient + Sync>(
    db: &Db<'_, C>,
    tenant: &TenantId,
    id: &ApiKeyId,
) -> StoreError {
    match get_key(db, id.as_str()).await {
        Ok(Some(k)) if &k.tenant == tenant => StoreError::Conflict("api_key state".into()),
        Ok(_) => StoreError::NotFound,
        Err(e) => e,
    }
}

/// Runs the conditional `update` (parameters: id, tenant, then `rest`), its audit event and the
/// read-back in one transaction.
async fn lifecycle(
    store: &PostgresStore,
    update: &str,
    tenant: &TenantId,
    id: &ApiKeyId,
    rest: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    audit: &NewAudit,
) -> Result<ApiKey, StoreError> {
    let mut c = store.pool.get().await?;
    let tx = c.begin().await?;
    let result = async {
        let db = tx.db();
        let (id_s, t_s) = (id.as_str(), tenant.as_str());
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&id_s, &t_s];
        params.extend_from_slice(rest);
        if db.exec(update, &params).await? == 0 {
            return Err(why_unchanged(&db, tenant, id).await);
        }
        insert_audit(&db, audit).await?;
        get_key(&db, id.as_str()).await?.ok_or(StoreError::NotFound)
    }
    .await;
    tx.finish(result).await
}

#[async_trait]
impl ApiKeys for PostgresStore {
    async fn insert_api_key(
        &self,
        k: &ApiKey,
        hash: SecretHash,
        audit: Option<NewAudit>,
    ) -> Result<(), StoreError> {
        let scopes = to_json(&k.scopes)?;
        let mut c = self.pool.get().await?;
        let tx = c.begin().await?;
        let result = async {
            let db = tx.db();
            db.exec(
                "INSERT INTO api_key \
                 (id, tenant, name, scopes, hash, created_at, revoked_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &k.id,
                    &k.tenant.as_str(),
                    &k.name,
                    &scopes,
                    &&hash.0[..],
                    &k.created_at.0,
                    &k.revoked_at.map(|t| t.0),
                    &k.expires_at.map(|t| t.0),
                ],
            )
            .await?;
            if let Some(a) = &audit {
                insert_audit(&db, a).await?;
            }
            Ok(())
        }
        .await;
        tx.finish(result).await
    }

    async fn find_api_key(
        &self,
        hash: SecretHash,
        now: Timestamp,
    ) -> Result<Option<ApiKey>, StoreError> {
        let mut c = self.pool.get().await?;
        let db = c.db();
        let sql = format!(
            "SELECT {COLS} FROM api_key WHERE hash = $1 \
             UNION ALL SELECT {COLS} FROM api_key WHERE previous_hash = $1 AND previous_until > $2 \
             LIMIT 1"
        );
        db.opt(&sql, &[&&hash.0[..], &now.0])
            .await?
            .map(|r| key(&r))
            .transpose()
    }

    async fn get_api_key(&self, id: &ApiKeyId) -> Result<Option<ApiKey>, StoreError> {
        let mut c = self.pool.get().await?;
        get_key(&c.db(), id.as_str()).await
    }

    async fn list_api_keys(&self, tenant: Option<&TenantId>) -> Result<Vec<ApiKey>, StoreError> {
        let mut c = self.pool.get().await?;
        let sql = format!(
            "SELECT {COLS} FROM api_key WHERE $1::text IS NULL OR tenant = $1 \
             ORDER BY created_at, id"
        );
        let t = tenant.map(TenantId::as_str);
        map_all(c.db().all(&sql, &[&t]).await?, key)
    }

    async fn revoke_api_key(
        &self,
        tenant: &TenantId,
        id: &ApiKeyId,
        at: Timestamp,
        audit: NewAudit,
    ) -> Result<ApiKey, StoreError> {
        lifecycle(
            self,
            "UPDATE api_key SET revoked_at = $3, previous_hash = NULL, previous_until = NULL \
             WHERE id = $1 AND tenant = $2 AND revoked_at IS NULL",
            tenant,
            id,
            &[&at.0],
            &audit,
        )
        .await
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
        lifecycle(
            self,
            "UPDATE api_key SET previous_hash = hash, previous_until = $4, hash = $3 \
             WHERE id = $1 AND tenant = $2 AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $5)",
            tenant,
            id,
            &[&&hash.0[..], &previous_until.0, &at.0],
            &audit,
        )
        .await
    }

    async fn touch_api_key(&self, id: &str, at: Timestamp) -> Result<(), StoreError> {
        let mut c = self.pool.get().await?;
        c.db()
            .exec(
                "UPDATE api_key SET last_used_at = $2 \
                 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)",
                &[&id, &at.0],
            )
            .await
            .map(|_| ())
    }
}
