//! The SQL behind the [`Credentials`](resetd_core::ports::Credentials) port on SQLite: password
//! changes (which consume their token), the history, and the login counter.
//!
//! The login counter is one row per tenant and login in `login_attempt`, whether or not anyone
//! has that login (see
//! [`Credentials::begin_login`](resetd_core::ports::Credentials::begin_login)).
//! Writes run on the writer thread inside its batch transaction, so each statement here is
//! atomic with respect to every other writer of this process, and `BEGIN IMMEDIATE` serialises
//! it with other processes (the CLI). Each runs in its own savepoint, so an `Err` returned from
//! here undoes everything the operation did and nothing else.

use resetd_core::model::{NewAudit, Timestamp};
use resetd_core::ports::{LoginAccount, LoginAttempt, LoginStart, PasswordChange, StoreError};
use resetd_core::types::{Login, PersonId, TenantId};
use rusqlite::{params, Connection};

use super::audit::insert_audit;
use super::outbox::insert_message;
use super::recovery::revoke_live_tokens;
use super::rows::{self, all, exec, get, one};
use crate::common::{found, limit};

pub(crate) fn change_password(c: &Connection, ch: &PasswordChange) -> Result<(), StoreError> {
    let (tenant, person) = (ch.tenant.as_str(), ch.person.as_str());
    if let Some(hash) = &ch.token {
        // The single-use guarantee: only one caller can flip used_at from NULL. The token must
        // also belong to this person and still be unexpired at the moment of the change.
        // With a claim (an external write came first), the claim decides: it was taken on a
        // live token and no one else can hold it. Without one, the token must be live and
        // unclaimed.
        let consumed = match &ch.claim {
            Some(claim) => exec(
                c,
                "UPDATE reset_token SET used_at = ?1 WHERE hash = ?2 AND tenant = ?3 AND person = ?4 \
                 AND used_at IS NULL AND claim_id = ?5",
                params![ch.at.0, &hash.0[..], tenant, person, claim.as_str()],
            )?,
            None => exec(
                c,
                "UPDATE reset_token SET used_at = ?1 WHERE hash = ?2 AND tenant = ?3 AND person = ?4 \
                 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > ?1 AND claim_id IS NULL",
                params![ch.at.0, &hash.0[..], tenant, person],
            )?,
        };
        if consumed != 1 {
            return Err(StoreError::TokenGone);
        }
    }
    let old: Option<String> = one(
        c,
        "SELECT password_hash FROM person WHERE tenant = ?1 AND id = ?2",
        [tenant, person],
        |r| get(r, 0),
    )?
    .ok_or(StoreError::NotFound)?;
    if ch.keep_history > 0 {
        if let Some(old) = old {
            exec(
                c,
                "INSERT INTO password_history (tenant, person, hash, at) VALUES (?1, ?2, ?3, ?4)",
                params![tenant, person, old, ch.at.0],
            )?;
        }
        exec(
            c,
            "DELETE FROM password_history WHERE tenant = ?1 AND person = ?2 AND id NOT IN \
             (SELECT id FROM password_history WHERE tenant = ?1 AND person = ?2 ORDER BY id DESC LIMIT ?3)",
            params![tenant, person, i64::from(ch.keep_history)],
        )?;
    }
    exec(
        c,
        "UPDATE person SET password_hash = ?3, password_changed_at = ?4, must_change_password = ?5, \
         updated_at = ?4 WHERE tenant = ?1 AND id = ?2",
        params![tenant, person, ch.new_hash, ch.at.0, ch.must_change_password],
    )?;
    if ch.unlock {
        clear_counter(c, &ch.tenant, &ch.person)?;
    }
    // The consumed token has used_at set, so this voids every other live token.
    revoke_live_tokens(c, &ch.tenant, &ch.person, ch.at)?;
    if let Some(m) = &ch.message {
        insert_message(c, m)?;
    }
    insert_audit(c, &ch.audit)
}

pub(crate) fn password_history(
    c: &Connection,
    tenant: &TenantId,
    person: &PersonId,
    n: u32,
) -> Result<Vec<String>, StoreError> {
    all(
        c,
        "SELECT hash FROM password_history WHERE tenant = ?1 AND person = ?2 ORDER BY id DESC LIMIT ?3",
        params![tenant.as_str(), person.as_str(), limit(n)],
        |r| get(r, 0),
    )
}
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
    compromised: Option<&NewAudit>,
) -> Result<(), StoreError> {
    // A rehash keeps password_changed_at: the password itself did not change, so tokens stay valid.
    found(exec(
        c,
        "UPDATE person SET password_hash = COALESCE(?3, password_hash), \
         must_change_password = must_change_password OR ?4 WHERE tenant = ?1 AND id = ?2",
        params![
            tenant.as_str(),
            person.as_str(),
            rehash,
            compromised.is_some()
        ],
    )?)?;
    if let Some(audit) = compromised {
        insert_audit(c, audit)?;
    }
    exec(
        c,
        "DELETE FROM login_attempt WHERE tenant = ?1 AND login = ?2",
        [tenant.as_str(), login.as_str()],
    )?;
    Ok(())
}

pub(crate) fn forgive_login_attempt(
    c: &Connection,
    tenant: &TenantId,
    login: &Login,
    threshold: u32,
) -> Result<(), StoreError> {
    exec(
        c,
        "UPDATE login_attempt SET failures = failures - 1, \
         locked_until = CASE WHEN failures - 1 >= ?3 THEN locked_until END \
         WHERE tenant = ?1 AND login = ?2 AND failures > 0",
        params![tenant.as_str(), login.as_str(), i64::from(threshold)],
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
