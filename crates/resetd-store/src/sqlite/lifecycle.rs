//! The [`Lifecycle`] port on SQLite: people by page, erasure, client and tenant removal.
//!
//! Erasure relies on `secure_delete` (set on every connection, see [`super::configure`]): the
//! deleted rows' bytes are zeroed in the database file rather than left in free space. Their
//! older images can still sit in the WAL until a checkpoint, so each erasure ends with a
//! `wal_checkpoint(TRUNCATE)` that empties it.

use async_trait::async_trait;
use resetd_core::model::{Lookup, NewAudit, Person};
use resetd_core::ports::{
    could_name, Lifecycle, PeoplePage, StoreError, TenantRemoval, PERSONAL_DETAIL_KEYS,
};
use resetd_core::types::{ClientName, PersonId, TenantId};
use rusqlite::{params, Connection};

use super::audit::insert_audit;
use super::rows::{self, all, exec};
use super::{db, directory, open_rw, SqliteStore};
use crate::common::{found, limit};

/// `LIKE` with `\` escaping its wildcards, so the search text matches as written.
fn like_pattern(search: &str) -> String {
    let mut p = String::with_capacity(search.len() + 2);
    p.push('%');
    for ch in search.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(ch);
    }
    p.push('%');
    p
}

fn list_people(
    c: &Connection,
    tenant: &TenantId,
    page: &PeoplePage,
) -> Result<Vec<Person>, StoreError> {
    // SQLite's LIKE ignores the case of ASCII letters only: the port's search rule.
    let sql = format!(
        "SELECT {} FROM person WHERE tenant = ?1 AND number > ?2 AND (?3 IS NULL OR \
         login LIKE ?3 ESCAPE '\\' OR email LIKE ?3 ESCAPE '\\' OR display_name LIKE ?3 ESCAPE '\\') \
         ORDER BY number LIMIT ?4",
        rows::PERSON_COLS
    );
    let pattern = page.search.as_deref().map(like_pattern);
    all(
        c,
        &sql,
        params![tenant.as_str(), page.after, pattern, limit(page.limit)],
        rows::person,
    )
}

/// Erases one person inside the caller's savepoint (see [`Lifecycle::erase_person`]).
fn erase(
    c: &Connection,
    tenant: &TenantId,
    id: &PersonId,
    pseudonym: &PersonId,
) -> Result<(), StoreError> {
    let p = directory::get_person(c, tenant, id)?.ok_or(StoreError::NotFound)?;
    let (t, pid) = (tenant.as_str(), id.as_str());
    exec(
        c,
        "DELETE FROM reset_token WHERE tenant = ?1 AND person = ?2",
        [t, pid],
    )?;
    exec(
        c,
        "DELETE FROM password_history WHERE tenant = ?1 AND person = ?2",
        [t, pid],
    )?;
    exec(
        c,
        "DELETE FROM outbox WHERE tenant = ?1 AND recipient = ?2 COLLATE NOCASE",
        [t, p.email.as_str()],
    )?;
    exec(
        c,
        "DELETE FROM login_attempt WHERE tenant = ?1 AND login = ?2",
        [t, p.login.as_str()],
    )?;
    let requests: Vec<(i64, String)> = all(
        c,
        "SELECT id, lookup FROM reset_request WHERE tenant = ?1",
        [t],
        |r| Ok((rows::get(r, 0)?, rows::get(r, 1)?)),
    )?;
    for (rid, lookup) in requests {
        // A lookup this build cannot read names nobody it knows.
        let names = serde_json::from_str::<Lookup>(&lookup).is_ok_and(|l| could_name(&l, &p));
        if names {
            exec(c, "DELETE FROM reset_request WHERE id = ?1", [rid])?;
        }
    }
    let [k1, k2, k3] = PERSONAL_DETAIL_KEYS.map(|k| format!("$.{k}"));
    exec(
        c,
        "UPDATE audit_event SET person = ?3, ip = NULL, detail = json_remove(detail, ?4, ?5, ?6) \
         WHERE tenant = ?1 AND person = ?2",
        params![t, pid, pseudonym.as_str(), k1, k2, k3],
    )?;
    found(exec(
        c,
        "DELETE FROM person WHERE tenant = ?1 AND id = ?2",
        [t, pid],
    )?)
}

fn delete_tenant(
    c: &Connection,
    tenant: &TenantId,
    force: bool,
    audit: &NewAudit,
) -> Result<TenantRemoval, StoreError> {
    let t = tenant.as_str();
    if directory::get_tenant(c, tenant)?.is_none() {
        return Err(StoreError::NotFound);
    }
    let ids: Vec<String> = all(c, "SELECT id FROM person WHERE tenant = ?1", [t], |r| {
        rows::get(r, 0)
    })?;
    if !ids.is_empty() && !force {
        return Err(StoreError::Conflict("people".into()));
    }
    for id in &ids {
        let id = PersonId::parse(id).map_err(|_| rows::corrupt("person id"))?;
        erase(c, tenant, &id, &PersonId::generate())?;
    }
    for table in [
        "api_key",
        "client",
        "reset_request",
        "reset_token",
        "outbox",
        "login_attempt",
    ] {
        exec(c, &format!("DELETE FROM {table} WHERE tenant = ?1"), [t])?;
    }
    exec(c, "DELETE FROM tenant WHERE id = ?1", [t])?;
    insert_audit(c, audit)?;
    Ok(TenantRemoval {
        people: ids.len() as u64,
    })
}

impl SqliteStore {
    /// Empties the WAL after an erasure, so the erased rows' earlier page images leave it. Best
    /// effort: a reader in the middle of a transaction can keep part of it until the next one.
    async fn checkpoint(&self) {
        let path = self.inner.path.clone();
        let done = tokio::task::spawn_blocking(move || {
            let conn = open_rw(&path)?;
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .map_err(db)
        })
        .await;
        if !matches!(done, Ok(Ok(()))) {
            tracing::warn!("the checkpoint after an erasure did not finish; the next one will");
        }
    }
}

#[async_trait]
impl Lifecycle for SqliteStore {
    async fn list_people(
        &self,
        tenant: &TenantId,
        page: &PeoplePage,
    ) -> Result<Vec<Person>, StoreError> {
        let (t, page) = (tenant.clone(), page.clone());
        self.read(move |c| list_people(c, &t, &page)).await
    }

    async fn erase_person(
        &self,
        tenant: &TenantId,
        id: &PersonId,
        pseudonym: &PersonId,
        audit: NewAudit,
    ) -> Result<(), StoreError> {
        let (t, id, pseudonym) = (tenant.clone(), id.clone(), pseudonym.clone());
        self.write(move |c| {
            erase(c, &t, &id, &pseudonym)?;
            insert_audit(c, &audit)
        })
        .await?;
        self.checkpoint().await;
        Ok(())
    }

    async fn delete_client(
        &self,
        tenant: &TenantId,
        name: &ClientName,
        audit: NewAudit,
    ) -> Result<(), StoreError> {
        let (t, name) = (tenant.clone(), name.clone());
        self.write(move |c| {
            found(exec(
                c,
                "DELETE FROM client WHERE tenant = ?1 AND name = ?2",
                [t.as_str(), name.as_str()],
            )?)?;
            insert_audit(c, &audit)
        })
        .await
    }

    async fn delete_tenant(
        &self,
        tenant: &TenantId,
        force: bool,
        audit: NewAudit,
    ) -> Result<TenantRemoval, StoreError> {
        let t = tenant.clone();
        let removed = self
            .write(move |c| delete_tenant(c, &t, force, &audit))
            .await?;
        self.checkpoint().await;
        Ok(removed)
    }
}
