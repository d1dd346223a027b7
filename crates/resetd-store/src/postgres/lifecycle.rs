//! The [`Lifecycle`] port on PostgreSQL: people by page, erasure, client and tenant removal, each
//! change in one transaction. Row locks follow the order of [`super::recovery`]: tenant, then
//! person.
//!
//! A deleted or updated row stays in the table's pages as a dead tuple until `VACUUM` (autovacuum)
//! reclaims it, and in the WAL until its segment is recycled: `docs/erasure.md` says so.

use async_trait::async_trait;
use resetd_core::model::{Lookup, NewAudit, Person};
use resetd_core::ports::{could_name, Lifecycle, PeoplePage, StoreError, TenantRemoval};
use resetd_core::types::{ClientName, PersonId, TenantId};
use tokio_postgres::GenericClient;

use super::audit::insert_audit;
use super::pool::Db;
use super::rows::{self, get, map_all};
use super::PostgresStore;
use crate::common::{found, limit};

/// The ASCII-only lowercase both backends search with (SQLite's `LIKE`).
const ASCII_LOWER: &str =
    "translate({}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')";

fn lower(column: &str) -> String {
    ASCII_LOWER.replace("{}", column)
}

/// The search text as a `LIKE` pattern with its wildcards escaped, ASCII letters lowercased.
fn like_pattern(search: &str) -> String {
    let mut p = String::with_capacity(search.len() + 2);
    p.push('%');
    for ch in search.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(ch.to_ascii_lowercase());
    }
    p.push('%');
    p
}

/// Erases one person inside the caller's transaction (see [`Lifecycle::erase_person`]).
async fn erase<C: GenericClient + Sync>(
    db: &Db<'_, C>,
    tenant: &TenantId,
    id: &PersonId,
    pseudonym: &PersonId,
) -> Result<(), StoreError> {
    let (t, pid) = (tenant.as_str(), id.as_str());
    let sql = format!(
        "SELECT {} FROM person WHERE tenant = $1 AND id = $2 FOR UPDATE",
        rows::PERSON_COLS
    );
    let p = match db.opt(&sql, &[&t, &pid]).await? {
        Some(r) => rows::person(&r)?,
        None => return Err(StoreError::NotFound),
    };
    db.exec(
        "DELETE FROM reset_token WHERE tenant = $1 AND person = $2",
        &[&t, &pid],
    )
    .await?;
    db.exec(
        "DELETE FROM password_history WHERE tenant = $1 AND person = $2",
        &[&t, &pid],
    )
    .await?;
    let outbox = format!(
        "DELETE FROM outbox WHERE tenant = $1 AND {} = {}",
        lower("recipient"),
        lower("$2")
    );
    db.exec(&outbox, &[&t, &p.email.as_str()]).await?;
    db.exec(
        "DELETE FROM login_attempt WHERE tenant = $1 AND login = $2",
        &[&t, &p.login.as_str()],
    )
    .await?;
    let requests = db
        .all(
            "SELECT id, lookup FROM reset_request WHERE tenant = $1 FOR UPDATE",
            &[&t],
        )
        .await?;
    for r in requests {
        let rid: i64 = get(&r, 0)?;
        let lookup: String = get(&r, 1)?;
        // A lookup this build cannot read names nobody it knows.
        if serde_json::from_str::<Lookup>(&lookup).is_ok_and(|l| could_name(&l, &p)) {
            db.exec("DELETE FROM reset_request WHERE id = $1", &[&rid])
                .await?;
        }
    }
    db.exec(
        "UPDATE audit_event SET person = $3, ip = NULL, \
         detail = (detail::jsonb - 'login' - 'email' - 'display_name')::text \
         WHERE tenant = $1 AND person = $2",
        &[&t, &pid, &pseudonym.as_str()],
    )
    .await?;
    found(
        db.exec(
            "DELETE FROM person WHERE tenant = $1 AND id = $2",
            &[&t, &pid],
        )
        .await?,
    )
}

#[async_trait]
impl Lifecycle for PostgresStore {
    async fn list_people(
        &self,
        tenant: &TenantId,
        page: &PeoplePage,
    ) -> Result<Vec<Person>, StoreError> {
        let sql = format!(
            "SELECT {} FROM person WHERE tenant = $1 AND number > $2 AND ($3::text IS NULL OR \
             {} LIKE $3 OR {} LIKE $3 OR {} LIKE $3) ORDER BY number LIMIT $4",
            rows::PERSON_COLS,
            lower("login"),
            lower("email"),
            lower("display_name"),
        );
        let pattern = page.search.as_deref().map(like_pattern);
        let mut c = self.pool.get().await?;
        let found = c
            .db()
            .all(
                &sql,
                &[&tenant.as_str(), &page.after, &pattern, &limit(page.limit)],
            )
            .await?;
        map_all(found, rows::person)
    }

    async fn erase_person(
        &self,
        tenant: &TenantId,
        id: &PersonId,
        pseudonym: &PersonId,
        audit: NewAudit,
    ) -> Result<(), StoreError> {
        let mut c = self.pool.get().await?;
        let tx = c.begin().await?;
        let result = async {
            let db = tx.db();
            erase(&db, tenant, id, pseudonym).await?;
            insert_audit(&db, &audit).await
        }
        .await;
        tx.finish(result).await
    }

    async fn delete_client(
        &self,
        tenant: &TenantId,
        name: &ClientName,
        audit: NewAudit,
    ) -> Result<(), StoreError> {
        let mut c = self.pool.get().await?;
        let tx = c.begin().await?;
        let result = async {
            let db = tx.db();
            found(
                db.exec(
                    "DELETE FROM client WHERE tenant = $1 AND name = $2",
                    &[&tenant.as_str(), &name.as_str()],
                )
                .await?,
            )?;
            insert_audit(&db, &audit).await
        }
        .await;
        tx.finish(result).await
    }

    async fn delete_tenant(
        &self,
        tenant: &TenantId,
        force: bool,
        audit: NewAudit,
    ) -> Result<TenantRemoval, StoreError> {
        let mut c = self.pool.get().await?;
        let tx = c.begin().await?;
        let result = async {
            let db = tx.db();
            let t = tenant.as_str();
            // The tenant row first: it serialises with inserts of people into this tenant.
            if db
                .opt("SELECT 1 FROM tenant WHERE id = $1 FOR UPDATE", &[&t])
                .await?
                .is_none()
            {
                return Err(StoreError::NotFound);
            }
            let ids = db
                .all("SELECT id FROM person WHERE tenant = $1", &[&t])
                .await?;
            if !ids.is_empty() && !force {
                return Err(StoreError::Conflict("people".into()));
            }
            for r in &ids {
                let id: String = get(r, 0)?;
                let id = PersonId::parse(&id).map_err(|_| rows::corrupt("person id"))?;
                erase(&db, tenant, &id, &PersonId::generate()).await?;
            }
            for table in [
                "api_key",
                "client",
                "reset_request",
                "reset_token",
                "outbox",
                "login_attempt",
            ] {
                db.exec(&format!("DELETE FROM {table} WHERE tenant = $1"), &[&t])
                    .await?;
            }
            db.exec("DELETE FROM tenant WHERE id = $1", &[&t]).await?;
            insert_audit(&db, &audit).await?;
            Ok(TenantRemoval {
                people: ids.len() as u64,
            })
        }
        .await;
        tx.finish(result).await
    }
}
