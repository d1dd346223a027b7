//! The login counter on SQLite: one row per tenant and login in `login_attempt`, whether or not
//! anyone has that login (see
//! [`Credentials::begin_login`](resetd_core::ports::Credentials::begin_login)).
//! Writes run on the writer thread inside its batch transaction, so each statement here is
//! atomic with respect to every other writer of this process, and `BEGIN IMMEDIATE` serialises
//! it with other processes (the CLI).

use resetd_core::model::{NewAudit, Timestamp};
use resetd_core::store::{LoginAccount, LoginAttempt, LoginStart, StoreError};
use resetd_core::types::{Login, PersonId, TenantId};
use rusqlite::{params, Connection};

use super::ops::{found, insert_audit};
use super::rows::{self, exec, get, one};

/// Counters whose window ended that one call removes: more than one, so they cannot pile up
/// faster than they go, and few, so every call costs about the same.
const PURGE_PER_CALL: i64 = 2;

/// Reserves an attempt and reads the account, in one savepoint of the writer's transaction.
///
/// The upsert always writes the row (a refused attempt stores `granted = 0` and the row as it
/// was), so a locked login costs the same write as a granted one. Every right-hand side of the
/// `SET` reads the row as it was before this statement.
pub(crate) fn begin_login(
    c: &Connection,
    tenant: &TenantId,
    login: &Login,
    threshold: u32,
    now: Timestamp,
    until: Timestamp,
) -> Result<LoginStart, StoreError> {
    let (failures, window_until, granted): (i64, i64, bool) = one(
        c,
        "INSERT INTO login_attempt (tenant, login, failures, window_until, locked_until, granted) \
         VALUES (?1, ?2, 1, ?5, CASE WHEN ?3 <= 1 THEN ?5 END, 1) \
         ON CONFLICT (tenant, login) DO UPDATE SET \
           granted = NOT ((window_until > ?4 AND failures >= ?3) OR COALESCE(locked_until, 0) > ?4), \
           failures = CASE \
             WHEN (window_until > ?4 AND failures >= ?3) OR COALESCE(locked_until, 0) > ?4 THEN failures \
             WHEN window_until <= ?4 THEN 1 \
             ELSE failures + 1 END, \
           locked_until = CASE \
             WHEN (window_until > ?4 AND failures >= ?3) OR COALESCE(locked_until, 0) > ?4 THEN locked_until \
             WHEN (CASE WHEN window_until <= ?4 THEN 1 ELSE failures + 1 END) >= ?3 THEN ?5 \
             ELSE NULL END, \
           window_until = CASE \
             WHEN (window_until > ?4 AND failures >= ?3) OR COALESCE(locked_until, 0) > ?4 THEN window_until \
             ELSE ?5 END \
         RETURNING failures, window_until, granted",
        params![
            tenant.as_str(),
            login.as_str(),
            i64::from(threshold),
            now.0,
            until.0
        ],
        |r| Ok((get(r, 0)?, get(r, 1)?, get(r, 2)?)),
    )?
    .ok_or_else(|| StoreError::Backend("the login counter upsert returned no row".into()))?;
    let failures = u32::try_from(failures).map_err(|_| rows::corrupt("login failures"))?;
    let attempt = if granted {
        LoginAttempt::Granted {
            failures,
            locked_until: (failures >= threshold).then_some(until),
        }
    } else {
        LoginAttempt::Locked {
            until: Timestamp(window_until),
        }
    };
    exec(
        c,
        "DELETE FROM login_attempt WHERE rowid IN \
         (SELECT rowid FROM login_attempt WHERE window_until <= ?1 LIMIT ?2)",
        params![now.0, PURGE_PER_CALL],
    )?;
    // One row whether or not the person exists (LEFT JOIN from a one-row table), so an unknown
    // login reads and decodes a row like a known one.
    let account = one(
        c,
        "SELECT p.id, p.enabled, p.password_hash, p.must_change_password \
         FROM (SELECT 1) LEFT JOIN person p ON p.tenant = ?1 AND p.login = ?2",
        params![tenant.as_str(), login.as_str()],
        account,
    )?
    .flatten();
    Ok(LoginStart { attempt, account })
}

fn account(r: &rusqlite::Row<'_>) -> Result<Option<LoginAccount>, StoreError> {
    let id: Option<String> = get(r, 0)?;
    let enabled: Option<bool> = get(r, 1)?;
    let password_hash: Option<String> = get(r, 2)?;
    let must_change: Option<bool> = get(r, 3)?;
    let Some(id) = id else {
        return Ok(None);
    };
    Ok(Some(LoginAccount {
        person: PersonId::parse(&id).map_err(|_| rows::corrupt("person id"))?,
        enabled: enabled.unwrap_or(false),
        password_hash,
        must_change_password: must_change.unwrap_or(false),
    }))
}

pub(crate) fn record_login_success(
    c: &Connection,
    tenant: &TenantId,
    login: &Login,
    person: &PersonId,
    rehash: Option<&str>,
) -> Result<(), StoreError> {
    // A rehash keeps password_changed_at: the password itself did not change, so tokens stay valid.
    found(exec(
        c,
        "UPDATE person SET password_hash = COALESCE(?3, password_hash) WHERE tenant = ?1 AND id = ?2",
        params![tenant.as_str(), person.as_str(), rehash],
    )?)?;
    exec(
        c,
        "DELETE FROM login_attempt WHERE tenant = ?1 AND login = ?2",
        [tenant.as_str(), login.as_str()],
    )?;
    Ok(())
}

/// Forgets the counter of `person`'s login (nothing when there is no such person).
pub(crate) fn clear_counter(
    c: &Connection,
    tenant: &TenantId,
    person: &PersonId,
) -> Result<(), StoreError> {
    exec(
        c,
        "DELETE FROM login_attempt WHERE tenant = ?1 AND login = \
         (SELECT login FROM person WHERE tenant = ?1 AND id = ?2)",
        [tenant.as_str(), person.as_str()],
    )?;
    Ok(())
}

pub(crate) fn unlock(
    c: &Connection,
    tenant: &TenantId,
    person: &PersonId,
    audit: &NewAudit,
) -> Result<(), StoreError> {
    one(
        c,
        "SELECT 1 FROM person WHERE tenant = ?1 AND id = ?2",
        [tenant.as_str(), person.as_str()],
        |_| Ok(()),
    )?
    .ok_or(StoreError::NotFound)?;
    clear_counter(c, tenant, person)?;
    insert_audit(c, audit)
}
