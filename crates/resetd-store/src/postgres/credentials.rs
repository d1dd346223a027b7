//! The SQL behind the [`Credentials`](resetd_core::ports::Credentials) port on PostgreSQL:
//! password changes (which consume their token, locking the person first: see the lock order in
//! [`super::recovery`]), the history, and the login counter.
//!
//! The login counter is one row per tenant and login in `login_attempt`, whether or not anyone
//! has that login (see
//! [`Credentials::begin_login`](resetd_core::ports::Credentials::begin_login)).
//!
//! Reserving is one `INSERT … ON CONFLICT DO UPDATE` statement: at READ COMMITTED, concurrent
//! upserts of one login (from any instance) queue on its row lock and each then reads the row
//! as the one before it left it, so the count is exact across instances and at most `threshold`
//! attempts are ever granted per window.

use resetd_core::model::{NewAudit, Timestamp};
use resetd_core::ports::{LoginAccount, LoginAttempt, LoginStart, PasswordChange, StoreError};
use resetd_core::types::{Login, PersonId, TenantId};

use super::audit::insert_audit;
use super::outbox::insert_message;
use super::pool::Pooled;
use super::recovery::revoke_live_tokens;
use super::rows::{self, get, map_all};
use crate::common::{found, limit};

pub(crate) async fn change_password(c: &mut Pooled, ch: &PasswordChange) -> Result<(), StoreError> {
    let (tenant, person) = (ch.tenant.as_str(), ch.person.as_str());
    let tx = c.begin().await?;
    let result = async {
        let db = tx.db();
        // The person first (the lock order shared with issuing), then the token.
        let old = db
            .opt(
                "SELECT password_hash FROM person WHERE tenant = $1 AND id = $2 FOR NO KEY UPDATE",
                &[&tenant, &person],
            )
            .await?;
        if let Some(hash) = &ch.token {
            // The single-use guarantee: only one caller can flip used_at from NULL (the others
            // wait for the person lock and then find it set). The token must also belong to this
            // person and still be unexpired at the moment of the change.
            // With a claim (an external write came first), the claim decides: it was taken on
            // a live token and no one else can hold it. Without one, the token must be live and
            // unclaimed.
            let consumed = match &ch.claim {
                Some(claim) => {
                    db.exec(
                        "UPDATE reset_token SET used_at = $1 WHERE hash = $2 AND tenant = $3 AND person = $4 \
                         AND used_at IS NULL AND claim_id = $5",
                        &[&ch.at.0, &&hash.0[..], &tenant, &person, &claim.as_str()],
                    )
                    .await?
                }
                None => {
                    db.exec(
                        "UPDATE reset_token SET used_at = $1 WHERE hash = $2 AND tenant = $3 AND person = $4 \
                         AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $1 AND claim_id IS NULL",
                        &[&ch.at.0, &&hash.0[..], &tenant, &person],
                    )
                    .await?
                }
            };
            if consumed != 1 {
                return Err(StoreError::TokenGone);
            }
        }
        let old: Option<String> = match old {
            Some(row) => get(&row, 0)?,
            None => return Err(StoreError::NotFound),
        };
        if ch.keep_history > 0 {
            if let Some(old) = old {
                db.exec(
                    "INSERT INTO password_history (tenant, person, hash, at) VALUES ($1, $2, $3, $4)",
                    &[&tenant, &person, &old, &ch.at.0],
                )
                .await?;
            }
            db.exec(
                "DELETE FROM password_history WHERE tenant = $1 AND person = $2 AND id NOT IN \
                 (SELECT id FROM password_history WHERE tenant = $1 AND person = $2 ORDER BY id DESC LIMIT $3)",
                &[&tenant, &person, &i64::from(ch.keep_history)],
            )
            .await?;
        }
        db.exec(
            "UPDATE person SET password_hash = $3, password_changed_at = $4, must_change_password = $5, \
             updated_at = $4 WHERE tenant = $1 AND id = $2",
            &[&tenant, &person, &ch.new_hash, &ch.at.0, &ch.must_change_password],
        )
        .await?;
        if ch.unlock {
            db.exec(CLEAR_COUNTER, &[&tenant, &person])
                .await?;
        }
        // The consumed token has used_at set, so this voids every other live token.
        revoke_live_tokens(&db, &ch.tenant, &ch.person, ch.at).await?;
        if let Some(m) = &ch.message {
            insert_message(&db, m).await?;
        }
        insert_audit(&db, &ch.audit).await
    }
    .await;
    tx.finish(result).await
}

pub(crate) async fn password_history(
    c: &mut Pooled,
    tenant: &TenantId,
    person: &PersonId,
    n: u32,
) -> Result<Vec<String>, StoreError> {
    let rows = c
        .db()
        .all(
            "SELECT hash FROM password_history WHERE tenant = $1 AND person = $2 ORDER BY id DESC LIMIT $3",
            &[&tenant.as_str(), &person.as_str(), &limit(n)],
        )
        .await?;
    map_all(rows, |r| get(r, 0))
}
/// Counters whose window ended that one call removes (as for SQLite).
const PURGE_PER_CALL: i64 = 2;

/// Reserves an attempt and reads the account in one statement (one round trip, one snapshot),
/// then removes a few ended counters in a second one.
///
/// The upsert always writes the row (a refused attempt stores `granted = FALSE` and the row as it
/// was), so a locked login costs the same write as a granted one. Every right-hand side of the
/// `SET` reads the row as it was before this statement. The clean-up runs on its own, after the
/// upsert has committed: in one transaction with it, two logins cleaning up each other's ended
/// counters could deadlock.
pub(crate) async fn begin_login(
    c: &mut Pooled,
    tenant: &TenantId,
    login: &Login,
    threshold: u32,
    now: Timestamp,
    until: Timestamp,
) -> Result<LoginStart, StoreError> {
    let db = c.db();
    let row = db
        .one(
            "WITH attempt AS ( \
               INSERT INTO login_attempt AS a (tenant, login, failures, window_until, locked_until, granted) \
               VALUES ($1::text, $2::text, 1, $5::bigint, CASE WHEN $3::bigint <= 1 THEN $5::bigint END, TRUE) \
               ON CONFLICT (tenant, login) DO UPDATE SET \
                 granted = NOT ((a.window_until > $4::bigint AND a.failures >= $3::bigint) \
                   OR COALESCE(a.locked_until, 0) > $4::bigint), \
                 failures = CASE \
                   WHEN (a.window_until > $4::bigint AND a.failures >= $3::bigint) \
                     OR COALESCE(a.locked_until, 0) > $4::bigint THEN a.failures \
                   WHEN a.window_until <= $4::bigint THEN 1 \
                   ELSE a.failures + 1 END, \
                 locked_until = CASE \
                   WHEN (a.window_until > $4::bigint AND a.failures >= $3::bigint) \
                     OR COALESCE(a.locked_until, 0) > $4::bigint THEN a.locked_until \
                   WHEN (CASE WHEN a.window_until <= $4::bigint THEN 1 ELSE a.failures + 1 END) \
                     >= $3::bigint THEN $5::bigint \
                   ELSE NULL END, \
                 window_until = CASE \
                   WHEN (a.window_until > $4::bigint AND a.failures >= $3::bigint) \
                     OR COALESCE(a.locked_until, 0) > $4::bigint THEN a.window_until \
                   ELSE $5::bigint END \
               RETURNING a.failures, a.window_until, a.granted) \
             SELECT attempt.failures, attempt.window_until, attempt.granted, \
                    p.id, p.enabled, p.password_hash, p.must_change_password \
             FROM attempt LEFT JOIN person p ON p.tenant = $1::text AND p.login = $2::text",
            &[
                &tenant.as_str(),
                &login.as_str(),
                &i64::from(threshold),
                &now.0,
                &until.0,
            ],
        )
        .await?;
    let failures =
        u32::try_from(get::<i64>(&row, 0)?).map_err(|_| rows::corrupt("login failures"))?;
    let window_until: i64 = get(&row, 1)?;
    let granted: bool = get(&row, 2)?;
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
    let account = match get::<Option<&str>>(&row, 3)? {
        None => None,
        Some(id) => Some(LoginAccount {
            person: PersonId::parse(id).map_err(|_| rows::corrupt("person id"))?,
            enabled: get(&row, 4)?,
            password_hash: get(&row, 5)?,
            must_change_password: get(&row, 6)?,
        }),
    };
    // SKIP LOCKED: never wait for a counter someone else is using or removing.
    db.exec(
        "DELETE FROM login_attempt WHERE window_until <= $1 AND (tenant, login) IN \
         (SELECT tenant, login FROM login_attempt WHERE window_until <= $1 \
          LIMIT $2 FOR UPDATE SKIP LOCKED)",
        &[&now.0, &PURGE_PER_CALL],
    )
    .await?;
    Ok(LoginStart { attempt, account })
}

pub(crate) async fn record_login_success(
    c: &mut Pooled,
    tenant: &TenantId,
    login: &Login,
    person: &PersonId,
    rehash: Option<&str>,
    compromised: Option<&NewAudit>,
) -> Result<(), StoreError> {
    let tx = c.begin().await?;
    let result = async {
        let db = tx.db();
        // A rehash keeps password_changed_at: the password did not change, so tokens stay valid.
        found(
            db.exec(
                "UPDATE person SET password_hash = COALESCE($3, password_hash), \
                 must_change_password = must_change_password OR $4 \
                 WHERE tenant = $1 AND id = $2",
                &[
                    &tenant.as_str(),
                    &person.as_str(),
                    &rehash,
                    &compromised.is_some(),
                ],
            )
            .await?,
        )?;
        if let Some(audit) = compromised {
            insert_audit(&db, audit).await?;
        }
        db.exec(
            "DELETE FROM login_attempt WHERE tenant = $1 AND login = $2",
            &[&tenant.as_str(), &login.as_str()],
        )
        .await?;
        Ok(())
    }
    .await;
    tx.finish(result).await
}

pub(crate) async fn forgive_login_attempt(
    c: &mut Pooled,
    tenant: &TenantId,
    login: &Login,
    threshold: u32,
) -> Result<(), StoreError> {
    c.db()
        .exec(
            "UPDATE login_attempt SET failures = failures - 1, \
             locked_until = CASE WHEN failures - 1 >= $3 THEN locked_until END \
             WHERE tenant = $1 AND login = $2 AND failures > 0",
            &[&tenant.as_str(), &login.as_str(), &i64::from(threshold)],
        )
        .await?;
    Ok(())
}

/// The statement that forgets the counter of a person's login (by tenant and person id).
pub(crate) const CLEAR_COUNTER: &str = "DELETE FROM login_attempt WHERE tenant = $1 AND login = \
     (SELECT login FROM person WHERE tenant = $1 AND id = $2)";

pub(crate) async fn unlock(
    c: &mut Pooled,
    tenant: &TenantId,
    person: &PersonId,
    audit: &NewAudit,
) -> Result<(), StoreError> {
    let tx = c.begin().await?;
    let result = async {
        let db = tx.db();
        db.opt(
            "SELECT 1 FROM person WHERE tenant = $1 AND id = $2",
            &[&tenant.as_str(), &person.as_str()],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
        db.exec(CLEAR_COUNTER, &[&tenant.as_str(), &person.as_str()])
            .await?;
        insert_audit(&db, audit).await
    }
    .await;
    tx.finish(result).await
}
