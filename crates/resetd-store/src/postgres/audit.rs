//! The SQL behind the [`Audit`](resetd_core::ports::Audit) port on PostgreSQL. The other ports
//! write the events that go with their changes through [`insert_audit`], in their transaction.

use resetd_core::model::{AuditEvent, NewAudit};
use resetd_core::ports::StoreError;
use resetd_core::types::{PersonId, TenantId};
use tokio_postgres::GenericClient;

use super::pool::{Db, Pooled};
use super::rows::{self, map_all};
use crate::common::{limit, to_json};

pub(crate) async fn insert_audit<C: GenericClient + Sync>(
    db: &Db<'_, C>,
    a: &NewAudit,
) -> Result<(), StoreError> {
    let detail = to_json(&a.detail)?;
    db.exec(
        "INSERT INTO audit_event (tenant, person, kind, actor, ip, at, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &a.tenant.as_str(),
            &a.person.as_ref().map(PersonId::as_str),
            &a.kind,
            &a.actor,
            &a.ip,
            &a.at.0,
            &detail,
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn append_audit(c: &mut Pooled, a: &NewAudit) -> Result<(), StoreError> {
    insert_audit(&c.db(), a).await
}

pub(crate) async fn list_audit(
    c: &mut Pooled,
    tenant: &TenantId,
    before: Option<i64>,
    n: u32,
) -> Result<Vec<AuditEvent>, StoreError> {
    let sql = format!(
        "SELECT {} FROM audit_event WHERE tenant = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        rows::AUDIT_COLS
    );
    let rows = c
        .db()
        .all(
            &sql,
            &[&tenant.as_str(), &before.unwrap_or(i64::MAX), &limit(n)],
        )
        .await?;
    map_all(rows, rows::audit)
}
