//! The SQL behind the [`Audit`](resetd_core::ports::Audit) port on SQLite. The other ports write
//! the events that go with their changes through [`insert_audit`], in the same savepoint.

use resetd_core::model::{AuditEvent, NewAudit};
use resetd_core::ports::StoreError;
use resetd_core::types::{PersonId, TenantId};
use rusqlite::{params, Connection};

use super::rows::{self, all, exec};
use crate::common::{limit, to_json};

pub(crate) fn insert_audit(c: &Connection, a: &NewAudit) -> Result<(), StoreError> {
    exec(
        c,
        "INSERT INTO audit_event (tenant, person, kind, actor, ip, at, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            a.tenant.as_str(),
            a.person.as_ref().map(PersonId::as_str),
            a.kind,
            a.actor,
            a.ip,
            a.at.0,
            to_json(&a.detail)?
        ],
    )?;
    Ok(())
}

pub(crate) fn append_audit(c: &Connection, a: &NewAudit) -> Result<(), StoreError> {
    insert_audit(c, a)
}

pub(crate) fn list_audit(
    c: &Connection,
    tenant: &TenantId,
    before: Option<i64>,
    n: u32,
) -> Result<Vec<AuditEvent>, StoreError> {
    let sql = format!(
        "SELECT {} FROM audit_event WHERE tenant = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
        rows::AUDIT_COLS
    );
    all(
        c,
        &sql,
        params![tenant.as_str(), before.unwrap_or(i64::MAX), limit(n)],
        rows::audit,
    )
}
