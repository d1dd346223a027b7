//! The SQL behind the [`Directory`](resetd_core::ports::Directory) port on PostgreSQL: tenants,
//! people (and their import) and clients (API keys: `keys`).
//!
//! Row locks follow the order written once in [`super::recovery`]: tenant, then person, then
//! that person's tokens.

use resetd_core::model::{fold_login, Client, Lookup, NewAudit, Person, Tenant, TenantSettings};
use resetd_core::ports::StoreError;
use resetd_core::types::{ClientName, ObjectId, PersonId, TenantId};
use tokio_postgres::GenericClient;

use super::audit::insert_audit;
use super::pool::{Db, Pooled};
use super::rows::{self, get, map_all};
use crate::common::{found, pick_any_case, to_json};

// ---- tenants ----------------------------------------------------------------------------------

pub(crate) async fn create_tenant(c: &mut Pooled, t: &Tenant) -> Result<(), StoreError> {
    let settings = to_json(&t.settings)?;
    c.db()
        .exec(
            "INSERT INTO tenant (id, settings, created_at) VALUES ($1, $2, $3)",
            &[&t.id.as_str(), &settings, &t.created_at.0],
        )
        .await?;
    Ok(())
}

pub(crate) async fn get_tenant(
    c: &mut Pooled,
    id: &TenantId,
) -> Result<Option<Tenant>, StoreError> {
    let sql = format!("SELECT {} FROM tenant WHERE id = $1", rows::TENANT_COLS);
    c.db()
        .opt(&sql, &[&id.as_str()])
        .await?
        .map(|r| rows::tenant(&r))
        .transpose()
}

pub(crate) async fn update_tenant_settings(
    c: &mut Pooled,
    id: &TenantId,
    s: &TenantSettings,
) -> Result<(), StoreError> {
    let settings = to_json(s)?;
    found(
        c.db()
            .exec(
                "UPDATE tenant SET settings = $2 WHERE id = $1",
                &[&id.as_str(), &settings],
            )
            .await?,
    )
}

pub(crate) async fn list_tenants(c: &mut Pooled) -> Result<Vec<Tenant>, StoreError> {
    let sql = format!("SELECT {} FROM tenant ORDER BY id", rows::TENANT_COLS);
    map_all(c.db().all(&sql, &[]).await?, rows::tenant)
}
// ---- people -----------------------------------------------------------------------------------

/// Locks the tenant row and returns the next free person number (`NotFound` without the tenant).
/// The lock serialises the inserts of one tenant, so MAX + 1 cannot race (NO KEY UPDATE: it does
/// not block foreign-key checks against the tenant).
async fn lock_next_person_number<C: GenericClient + Sync>(
    db: &Db<'_, C>,
    tenant: &TenantId,
) -> Result<i64, StoreError> {
    let tenant = tenant.as_str();
    let tenant_exists = db
        .opt(
            "SELECT 1 FROM tenant WHERE id = $1 FOR NO KEY UPDATE",
            &[&tenant],
        )
        .await?
        .is_some();
    if !tenant_exists {
        return Err(StoreError::NotFound);
    }
    get(
        &db.one(
            "SELECT COALESCE(MAX(number), 0) + 1 FROM person WHERE tenant = $1",
            &[&tenant],
        )
        .await?,
        0,
    )
}

/// Inserts `p` as a new row numbered `number`.
async fn insert_person_row<C: GenericClient + Sync>(
    db: &Db<'_, C>,
    p: &Person,
    number: i64,
) -> Result<(), StoreError> {
    let roles = to_json(&p.roles)?;
    let attributes = to_json(&p.attributes)?;
    let failed = i64::from(p.failed_logins);
    db.exec(
        "INSERT INTO person (id, tenant, number, login, email, display_name, locale, enabled, roles, attributes, \
         password_hash, password_changed_at, must_change_password, failed_logins, locked_until, created_at, \
         updated_at, verified, login_folded) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
        &[
            &p.id.as_str(),
            &p.tenant.as_str(),
            &number,
            &p.login.as_str(),
            &p.email.as_str(),
            &p.display_name.as_str(),
            &p.locale.as_ref().map(|l| l.as_str()),
            &p.enabled,
            &roles,
            &attributes,
            &p.password_hash,
            &p.password_changed_at.map(|t| t.0),
            &p.must_change_password,
            &failed,
            &p.locked_until.map(|t| t.0),
            &p.created_at.0,
            &p.updated_at.0,
            &p.verified,
            &fold_login(p.login.as_str()),
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn insert_person(
    c: &mut Pooled,
    p: &Person,
    audit: &NewAudit,
) -> Result<i64, StoreError> {
    let tx = c.begin().await?;
    let result = async {
        let db = tx.db();
        let number = lock_next_person_number(&db, &p.tenant).await?;
        insert_person_row(&db, p, number).await?;
        insert_audit(&db, audit).await?;
        Ok(number)
    }
    .await;
    tx.finish(result).await
}

pub(crate) async fn upsert_shadow_person(c: &mut Pooled, p: &Person) -> Result<Person, StoreError> {
    let tx = c.begin().await?;
    let result = async {
        let db = tx.db();
        let updated = db
            .exec(
                "UPDATE person SET login = $3, email = $4, display_name = $5, enabled = $6, \
                 updated_at = $7, login_folded = $8 WHERE tenant = $1 AND id = $2",
                &[
                    &p.tenant.as_str(),
                    &p.id.as_str(),
                    &p.login.as_str(),
                    &p.email.as_str(),
                    &p.display_name.as_str(),
                    &p.enabled,
                    &p.updated_at.0,
                    &fold_login(p.login.as_str()),
                ],
            )
            .await?;
        if updated == 0 {
            let number = lock_next_person_number(&db, &p.tenant).await?;
            insert_person_row(&db, p, number).await?;
        }
        let sql = format!(
            "SELECT {} FROM person WHERE tenant = $1 AND id = $2",
            rows::PERSON_COLS
        );
        db.opt(&sql, &[&p.tenant.as_str(), &p.id.as_str()])
            .await?
            .map(|r| rows::person(&r))
            .transpose()?
            .ok_or(StoreError::NotFound)
    }
    .await;
    tx.finish(result).await
}

pub(crate) async fn get_person(
    c: &mut Pooled,
    tenant: &TenantId,
    id: &PersonId,
) -> Result<Option<Person>, StoreError> {
    let sql = format!(
        "SELECT {} FROM person WHERE tenant = $1 AND id = $2",
        rows::PERSON_COLS
    );
    c.db()
        .opt(&sql, &[&tenant.as_str(), &id.as_str()])
        .await?
        .map(|r| rows::person(&r))
        .transpose()
}

pub(crate) async fn find_person(
    c: &mut Pooled,
    tenant: &TenantId,
    lookup: &Lookup,
) -> Result<Option<Person>, StoreError> {
    match lookup {
        Lookup::Login(login) => {
            let sql = format!(
                "SELECT {} FROM person WHERE tenant = $1 AND login = $2",
                rows::PERSON_COLS
            );
            c.db()
                .opt(&sql, &[&tenant.as_str(), login])
                .await?
                .map(|r| rows::person(&r))
                .transpose()
        }
        Lookup::LoginAnyCase(login) => {
            // The exact login first; else the one fold match (two or more: nobody). LIMIT 2 is
            // enough to tell one from several.
            let sql = format!(
                "SELECT {} FROM person WHERE tenant = $1 AND login_folded = $3 \
                 ORDER BY login = $2 DESC LIMIT 2",
                rows::PERSON_COLS
            );
            let found = c
                .db()
                .all(&sql, &[&tenant.as_str(), login, &fold_login(login)])
                .await?
                .iter()
                .map(rows::person)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(pick_any_case(found, login))
        }
        Lookup::Email(email) => {
            // ASCII case-insensitive (the expression of the person_email index); the oldest
            // account with the address wins.
            let sql = format!(
                "SELECT {} FROM person WHERE tenant = $1 AND \
                 translate(email, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') = \
                 translate($2, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') \
                 ORDER BY number LIMIT 1",
                rows::PERSON_COLS
            );
            c.db()
                .opt(&sql, &[&tenant.as_str(), email])
                .await?
                .map(|r| rows::person(&r))
                .transpose()
        }
        Lookup::Id(id) => match PersonId::parse(id) {
            Ok(id) => get_person(c, tenant, &id).await,
            Err(_) => Ok(None),
        },
        Lookup::Number(n) => {
            let sql = format!(
                "SELECT {} FROM person WHERE tenant = $1 AND number = $2",
                rows::PERSON_COLS
            );
            c.db()
                .opt(&sql, &[&tenant.as_str(), n])
                .await?
                .map(|r| rows::person(&r))
                .transpose()
        }
        Lookup::ObjectId(oid) => {
            // The ObjectId is the first 24 hex digits of the id: a range scan on the primary key;
            // should two ids ever share the prefix, the older person wins, as with email.
            let Ok(oid) = ObjectId::parse(oid) else {
                return Ok(None);
            };
            let sql = format!(
                "SELECT {} FROM person WHERE id >= $2 AND id <= $3 AND tenant = $1 ORDER BY number LIMIT 1",
                rows::PERSON_COLS
            );
            let (low, high) = (format!("{oid}00000000"), format!("{oid}ffffffff"));
            c.db()
                .opt(&sql, &[&tenant.as_str(), &low, &high])
                .await?
                .map(|r| rows::person(&r))
                .transpose()
        }
    }
}

pub(crate) async fn update_person(
    c: &mut Pooled,
    p: &Person,
    audit: &NewAudit,
) -> Result<(), StoreError> {
    let roles = to_json(&p.roles)?;
    let attributes = to_json(&p.attributes)?;
    let tx = c.begin().await?;
    let result = async {
        let db = tx.db();
        found(
            db.exec(
                "UPDATE person SET login = $3, email = $4, display_name = $5, locale = $6, enabled = $7, roles = $8, \
                 attributes = $9, updated_at = $10, verified = $11, login_folded = $12 WHERE tenant = $1 AND id = $2",
                &[
                    &p.tenant.as_str(),
                    &p.id.as_str(),
                    &p.login.as_str(),
                    &p.email.as_str(),
                    &p.display_name.as_str(),
                    &p.locale.as_ref().map(|l| l.as_str()),
                    &p.enabled,
                    &roles,
                    &attributes,
                    &p.updated_at.0,
                    &p.verified,
                    &fold_login(p.login.as_str()),
                ],
            )
            .await?,
        )?;
        insert_audit(&db, audit).await
    }
    .await;
    tx.finish(result).await
}
// ---- clients ----------------------------------------------------------------------------------

pub(crate) async fn upsert_client(
    c: &mut Pooled,
    cl: &Client,
    audit: &NewAudit,
) -> Result<(), StoreError> {
    let prefixes = to_json(&cl.allowed_prefixes)?;
    let tx = c.begin().await?;
    let result = async {
        let db = tx.db();
        // A replaced client keeps its original registration time.
        db.exec(
            "INSERT INTO client (tenant, name, link_template, allowed_prefixes, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant, name) DO UPDATE SET link_template = excluded.link_template, \
             allowed_prefixes = excluded.allowed_prefixes",
            &[
                &cl.tenant.as_str(),
                &cl.name.as_str(),
                &cl.link_template.as_str(),
                &prefixes,
                &cl.created_at.0,
            ],
        )
        .await?;
        insert_audit(&db, audit).await
    }
    .await;
    tx.finish(result).await
}

pub(crate) async fn get_client(
    c: &mut Pooled,
    tenant: &TenantId,
    name: &ClientName,
) -> Result<Option<Client>, StoreError> {
    let sql = format!(
        "SELECT {} FROM client WHERE tenant = $1 AND name = $2",
        rows::CLIENT_COLS
    );
    c.db()
        .opt(&sql, &[&tenant.as_str(), &name.as_str()])
        .await?
        .map(|r| rows::client(&r))
        .transpose()
}

pub(crate) async fn list_clients(
    c: &mut Pooled,
    tenant: &TenantId,
) -> Result<Vec<Client>, StoreError> {
    let sql = format!(
        "SELECT {} FROM client WHERE tenant = $1 ORDER BY name",
        rows::CLIENT_COLS
    );
    map_all(c.db().all(&sql, &[&tenant.as_str()]).await?, rows::client)
}
// ---- import -----------------------------------------------------------------------------------

/// See [`resetd_core::ports::Directory::upsert_people`]: one transaction per batch, the tenant row
/// locked so that numbers are assigned without races (as in `insert_person`).
pub(crate) async fn upsert_people(
    c: &mut Pooled,
    people: &[Person],
    audit: &NewAudit,
) -> Result<Vec<bool>, StoreError> {
    let tx = c.begin().await?;
    let result = async {
        let db = tx.db();
        let mut next = lock_next_person_number(&db, &audit.tenant).await?;
        let mut inserted = Vec::with_capacity(people.len());
        for p in people {
            let roles = to_json(&p.roles)?;
            let attributes = to_json(&p.attributes)?;
            let keep = "(password_hash IS NULL OR password_hash NOT LIKE '$argon2id$%')";
            let changed = db
                .exec(
                    &format!(
                        "UPDATE person SET email = $3, display_name = $4, locale = $5, enabled = $6, roles = $7, \
                         attributes = $8, updated_at = $9, verified = $10, \
                         password_changed_at = CASE WHEN $11::TEXT IS NOT NULL AND {keep} THEN $12 ELSE password_changed_at END, \
                         password_hash = CASE WHEN $11::TEXT IS NOT NULL AND {keep} THEN $11 ELSE password_hash END \
                         WHERE tenant = $1 AND login = $2"
                    ),
                    &[
                        &p.tenant.as_str(),
                        &p.login.as_str(),
                        &p.email.as_str(),
                        &p.display_name.as_str(),
                        &p.locale.as_ref().map(|l| l.as_str()),
                        &p.enabled,
                        &roles,
                        &attributes,
                        &p.updated_at.0,
                        &p.verified,
                        &p.password_hash,
                        &p.password_changed_at.map(|t| t.0),
                    ],
                )
                .await?;
            if changed == 0 {
                insert_person_row(&db, p, next).await?;
                next += 1;
            }
            inserted.push(changed == 0);
        }
        insert_audit(&db, audit).await?;
        Ok(inserted)
    }
    .await;
    tx.finish(result).await
}
