//! The SQL behind the [`Directory`](resetd_core::ports::Directory) port on SQLite: tenants,
//! people (and their import) and clients (API keys: `keys`).
//!
//! Write operations run on the writer thread inside the batch transaction and their own
//! savepoint (see [`super`]), so an `Err` returned from here undoes everything the operation did
//! and nothing else.

use resetd_core::model::{fold_login, Client, Lookup, NewAudit, Person, Tenant, TenantSettings};
use resetd_core::ports::StoreError;
use resetd_core::types::{ClientName, ObjectId, PersonId, TenantId};
use rusqlite::{params, Connection};

use super::audit::insert_audit;
use super::rows::{self, all, exec, get, one};
use crate::common::{found, pick_any_case, to_json};

// ---- tenants ----------------------------------------------------------------------------------

pub(crate) fn create_tenant(c: &Connection, t: &Tenant) -> Result<(), StoreError> {
    exec(
        c,
        "INSERT INTO tenant (id, settings, created_at) VALUES (?1, ?2, ?3)",
        params![t.id.as_str(), to_json(&t.settings)?, t.created_at.0],
    )?;
    Ok(())
}

pub(crate) fn get_tenant(c: &Connection, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
    let sql = format!("SELECT {} FROM tenant WHERE id = ?1", rows::TENANT_COLS);
    one(c, &sql, [id.as_str()], rows::tenant)
}

pub(crate) fn update_tenant_settings(
    c: &Connection,
    id: &TenantId,
    s: &TenantSettings,
) -> Result<(), StoreError> {
    found(exec(
        c,
        "UPDATE tenant SET settings = ?2 WHERE id = ?1",
        params![id.as_str(), to_json(s)?],
    )?)
}

pub(crate) fn list_tenants(c: &Connection) -> Result<Vec<Tenant>, StoreError> {
    let sql = format!("SELECT {} FROM tenant ORDER BY id", rows::TENANT_COLS);
    all(c, &sql, [], rows::tenant)
}
// ---- people -----------------------------------------------------------------------------------

pub(crate) fn insert_person(
    c: &Connection,
    p: &Person,
    audit: &NewAudit,
) -> Result<i64, StoreError> {
    let number = insert_person_row(c, p)?;
    insert_audit(c, audit)?;
    Ok(number)
}

/// Inserts a person with the next number of its tenant, which it returns.
fn insert_person_row(c: &Connection, p: &Person) -> Result<i64, StoreError> {
    // The writer is the only writer of this process and holds the database's write lock (BEGIN
    // IMMEDIATE), so max + 1 cannot race with another insert, here or in another process.
    let number: i64 = one(
        c,
        "SELECT COALESCE(MAX(number), 0) + 1 FROM person WHERE tenant = ?1",
        [p.tenant.as_str()],
        |r| get(r, 0),
    )?
    .unwrap_or(1);
    exec(
        c,
        "INSERT INTO person (id, tenant, number, login, email, display_name, locale, enabled, roles, attributes, \
         password_hash, password_changed_at, must_change_password, failed_logins, locked_until, created_at, \
         updated_at, verified, login_folded) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
        params![
            p.id.as_str(),
            p.tenant.as_str(),
            number,
            p.login.as_str(),
            p.email.as_str(),
            p.display_name.as_str(),
            p.locale.as_ref().map(|l| l.as_str()),
            p.enabled,
            to_json(&p.roles)?,
            to_json(&p.attributes)?,
            p.password_hash,
            p.password_changed_at.map(|t| t.0),
            p.must_change_password,
            p.failed_logins,
            p.locked_until.map(|t| t.0),
            p.created_at.0,
            p.updated_at.0,
            p.verified,
            fold_login(p.login.as_str())
        ],
    )?;
    Ok(number)
}

pub(crate) fn upsert_shadow_person(c: &Connection, p: &Person) -> Result<Person, StoreError> {
    let updated = exec(
        c,
        "UPDATE person SET login = ?3, email = ?4, display_name = ?5, enabled = ?6, updated_at = ?7, \
         login_folded = ?8 WHERE tenant = ?1 AND id = ?2",
        params![
            p.tenant.as_str(),
            p.id.as_str(),
            p.login.as_str(),
            p.email.as_str(),
            p.display_name.as_str(),
            p.enabled,
            p.updated_at.0,
            fold_login(p.login.as_str())
        ],
    )?;
    if updated == 0 {
        insert_person_row(c, p)?;
    }
    get_person(c, &p.tenant, &p.id)?.ok_or(StoreError::NotFound)
}

pub(crate) fn get_person(
    c: &Connection,
    tenant: &TenantId,
    id: &PersonId,
) -> Result<Option<Person>, StoreError> {
    let sql = format!(
        "SELECT {} FROM person WHERE tenant = ?1 AND id = ?2",
        rows::PERSON_COLS
    );
    one(c, &sql, [tenant.as_str(), id.as_str()], rows::person)
}

pub(crate) fn find_person(
    c: &Connection,
    tenant: &TenantId,
    lookup: &Lookup,
) -> Result<Option<Person>, StoreError> {
    match lookup {
        Lookup::Login(login) => {
            let sql = format!(
                "SELECT {} FROM person WHERE tenant = ?1 AND login = ?2",
                rows::PERSON_COLS
            );
            one(c, &sql, [tenant.as_str(), login], rows::person)
        }
        Lookup::LoginAnyCase(login) => {
            // The exact login first; else the one fold match (two or more: nobody). LIMIT 2 is
            // enough to tell one from several.
            let sql = format!(
                "SELECT {} FROM person WHERE tenant = ?1 AND login_folded = ?3 \
                 ORDER BY login = ?2 DESC LIMIT 2",
                rows::PERSON_COLS
            );
            let found = all(
                c,
                &sql,
                [tenant.as_str(), login, &fold_login(login)],
                rows::person,
            )?;
            Ok(pick_any_case(found, login))
        }
        Lookup::Email(email) => {
            // ASCII case-insensitive, as people type addresses with any capitalisation; the oldest
            // account with the address wins.
            let sql = format!(
                "SELECT {} FROM person WHERE tenant = ?1 AND email = ?2 COLLATE NOCASE ORDER BY number LIMIT 1",
                rows::PERSON_COLS
            );
            one(c, &sql, [tenant.as_str(), email], rows::person)
        }
        Lookup::Id(id) => match PersonId::parse(id) {
            Ok(id) => get_person(c, tenant, &id),
            Err(_) => Ok(None),
        },
        Lookup::Number(n) => {
            let sql = format!(
                "SELECT {} FROM person WHERE tenant = ?1 AND number = ?2",
                rows::PERSON_COLS
            );
            one(c, &sql, params![tenant.as_str(), n], rows::person)
        }
        Lookup::ObjectId(oid) => {
            // The ObjectId is the first 24 hex digits of the id: a range scan on the primary key.
            // Ids are random, so two people sharing a prefix is not a practical concern; should
            // it ever happen, the older one wins, as with email.
            match ObjectId::parse(oid) {
                Ok(oid) => {
                    let sql = format!(
                        "SELECT {} FROM person WHERE id >= ?2 AND id <= ?3 AND tenant = ?1 \
                         ORDER BY number LIMIT 1",
                        rows::PERSON_COLS
                    );
                    let (low, high) = (format!("{oid}00000000"), format!("{oid}ffffffff"));
                    one(c, &sql, [tenant.as_str(), &low, &high], rows::person)
                }
                Err(_) => Ok(None),
            }
        }
    }
}

pub(crate) fn update_person(
    c: &Connection,
    p: &Person,
    audit: &NewAudit,
) -> Result<(), StoreError> {
    found(exec(
        c,
        "UPDATE person SET login = ?3, email = ?4, display_name = ?5, locale = ?6, enabled = ?7, roles = ?8, \
         attributes = ?9, updated_at = ?10, verified = ?11, login_folded = ?12 WHERE tenant = ?1 AND id = ?2",
        params![
            p.tenant.as_str(),
            p.id.as_str(),
            p.login.as_str(),
            p.email.as_str(),
            p.display_name.as_str(),
            p.locale.as_ref().map(|l| l.as_str()),
            p.enabled,
            to_json(&p.roles)?,
            to_json(&p.attributes)?,
            p.updated_at.0,
            p.verified,
            fold_login(p.login.as_str())
        ],
    )?)?;
    insert_audit(c, audit)
}
// ---- clients ----------------------------------------------------------------------------------

pub(crate) fn upsert_client(
    c: &Connection,
    cl: &Client,
    audit: &NewAudit,
) -> Result<(), StoreError> {
    // A replaced client keeps its original registration time.
    exec(
        c,
        "INSERT INTO client (tenant, name, link_template, allowed_prefixes, created_at) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (tenant, name) DO UPDATE SET link_template = excluded.link_template, \
         allowed_prefixes = excluded.allowed_prefixes",
        params![
            cl.tenant.as_str(),
            cl.name.as_str(),
            cl.link_template.as_str(),
            to_json(&cl.allowed_prefixes)?,
            cl.created_at.0
        ],
    )?;
    insert_audit(c, audit)
}

pub(crate) fn get_client(
    c: &Connection,
    tenant: &TenantId,
    name: &ClientName,
) -> Result<Option<Client>, StoreError> {
    let sql = format!(
        "SELECT {} FROM client WHERE tenant = ?1 AND name = ?2",
        rows::CLIENT_COLS
    );
    one(c, &sql, [tenant.as_str(), name.as_str()], rows::client)
}

pub(crate) fn list_clients(c: &Connection, tenant: &TenantId) -> Result<Vec<Client>, StoreError> {
    let sql = format!(
        "SELECT {} FROM client WHERE tenant = ?1 ORDER BY name",
        rows::CLIENT_COLS
    );
    all(c, &sql, [tenant.as_str()], rows::client)
}
// ---- import -----------------------------------------------------------------------------------

/// See [`resetd_core::ports::Directory::upsert_people`]; runs inside the writer's transaction.
pub(crate) fn upsert_people(
    c: &Connection,
    people: &[Person],
    audit: &NewAudit,
) -> Result<Vec<bool>, StoreError> {
    let mut inserted = Vec::with_capacity(people.len());
    for p in people {
        let changed = exec(
            c,
            "UPDATE person SET email = ?3, display_name = ?4, locale = ?5, enabled = ?6, roles = ?7, \
             attributes = ?8, updated_at = ?9, verified = ?10, \
             password_changed_at = CASE WHEN ?11 IS NOT NULL AND (password_hash IS NULL OR password_hash NOT LIKE '$argon2id$%') \
               THEN ?12 ELSE password_changed_at END, \
             password_hash = CASE WHEN ?11 IS NOT NULL AND (password_hash IS NULL OR password_hash NOT LIKE '$argon2id$%') \
               THEN ?11 ELSE password_hash END \
             WHERE tenant = ?1 AND login = ?2",
            params![
                p.tenant.as_str(),
                p.login.as_str(),
                p.email.as_str(),
                p.display_name.as_str(),
                p.locale.as_ref().map(|l| l.as_str()),
                p.enabled,
                to_json(&p.roles)?,
                to_json(&p.attributes)?,
                p.updated_at.0,
                p.verified,
                p.password_hash,
                p.password_changed_at.map(|t| t.0),
            ],
        )?;
        if changed == 0 {
            insert_person_row(c, p)?;
        }
        inserted.push(changed == 0);
    }
    insert_audit(c, audit)?;
    Ok(inserted)
}
