//! The SQL behind the [`Recovery`](resetd_core::ports::Recovery) port on PostgreSQL: reset
//! requests and the tokens they issue.
//!
//! Transactions run at READ COMMITTED (each statement sees what was committed before it started).
//! Where SQLite relies on its single writer, PostgreSQL needs explicit row locks; they are always
//! taken in the same order — tenant, then person, then that person's tokens — so concurrent
//! operations wait for each other instead of deadlocking:
//! - creating a person locks the tenant row, so `MAX(number) + 1` cannot race;
//! - issuing a token and changing a password lock the person row first, so the cool-down check
//!   and the single use of a token hold across instances;
//! - claims (outbox, reset requests) use `FOR UPDATE SKIP LOCKED`, so concurrent claimers take
//!   disjoint rows without waiting for each other.

use resetd_core::model::{NewAudit, ResetRequest, ResetToken, Timestamp};
use resetd_core::ports::{ClaimId, IssueToken, Resolution, Resolved, StoreError};
use resetd_core::secret::SecretHash;
use resetd_core::types::{ClientName, PersonId, TenantId};
use tokio_postgres::GenericClient;

use super::audit::insert_audit;
use super::outbox::insert_message;
use super::pool::{Db, Pooled};
use super::rows::{self, get, map_all};
use crate::common::limit;

/// Voids the person's live tokens (not used, not revoked) as of `at`.
pub(super) async fn revoke_live_tokens<C: GenericClient + Sync>(
    db: &Db<'_, C>,
    tenant: &TenantId,
    person: &PersonId,
    at: Timestamp,
) -> Result<(), StoreError> {
    db.exec(
        "UPDATE reset_token SET revoked_at = $3 \
         WHERE tenant = $1 AND person = $2 AND used_at IS NULL AND revoked_at IS NULL",
        &[&tenant.as_str(), &person.as_str(), &at.0],
    )
    .await?;
    Ok(())
}

/// Locks the person's row until the end of the transaction; `false` when there is no such person.
async fn lock_person<C: GenericClient + Sync>(
    db: &Db<'_, C>,
    tenant: &TenantId,
    person: &PersonId,
) -> Result<bool, StoreError> {
    Ok(db
        .opt(
            "SELECT 1 FROM person WHERE tenant = $1 AND id = $2 FOR NO KEY UPDATE",
            &[&tenant.as_str(), &person.as_str()],
        )
        .await?
        .is_some())
}

// ---- reset requests and tokens ----------------------------------------------------------------

pub(crate) async fn count_reset_requests(c: &mut Pooled) -> Result<u64, StoreError> {
    let row = c
        .db()
        .one("SELECT count(*) FROM reset_request", &[])
        .await?;
    let n: i64 = get(&row, 0)?;
    Ok(n.max(0) as u64)
}

pub(crate) async fn claim_reset_requests(
    c: &mut Pooled,
    now: Timestamp,
    lease_until: Timestamp,
    n: u32,
) -> Result<Vec<ResetRequest>, StoreError> {
    // SKIP LOCKED: rows another instance is claiming right now are left to it; a row claimed and
    // committed meanwhile is re-checked against the WHERE clause after locking and dropped.
    let sql = format!(
        "WITH due AS (SELECT id AS due_id FROM reset_request \
         WHERE claimed_until IS NULL OR claimed_until <= $1 ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) \
         UPDATE reset_request SET claimed_until = $2 FROM due WHERE id = due.due_id RETURNING {}",
        rows::REQUEST_COLS
    );
    let mut claimed = map_all(
        c.db()
            .all(&sql, &[&now.0, &lease_until.0, &limit(n)])
            .await?,
        rows::reset_request,
    )?;
    claimed.sort_by_key(|r| r.id); // RETURNING has no defined order
    Ok(claimed)
}

pub(crate) async fn resolve_reset_request(
    c: &mut Pooled,
    id: i64,
    resolution: &Resolution,
) -> Result<Resolved, StoreError> {
    let tx = c.begin().await?;
    let result = async {
        let db = tx.db();
        // The delete is the exactly-once guard: of concurrent resolvers, only one deletes the row.
        if db
            .exec("DELETE FROM reset_request WHERE id = $1", &[&id])
            .await?
            == 0
        {
            return Ok(Resolved::Discarded); // resolved elsewhere: change nothing
        }
        let issue = match resolution {
            Resolution::Discard(audit) => {
                insert_audit(&db, audit).await?;
                return Ok(Resolved::Discarded);
            }
            Resolution::Issue(issue) => issue,
        };
        issue_in(&db, issue).await
    }
    .await;
    tx.finish(result).await
}

/// Discards many requests in one transaction, each as [`resolve_reset_request`] would.
pub(crate) async fn discard_reset_requests(
    c: &mut Pooled,
    discards: &[(i64, NewAudit)],
) -> Result<(), StoreError> {
    let tx = c.begin().await?;
    let result = async {
        let db = tx.db();
        for (id, audit) in discards {
            if db
                .exec("DELETE FROM reset_request WHERE id = $1", &[id])
                .await?
                == 1
            {
                insert_audit(&db, audit).await?;
            }
        }
        Ok(())
    }
    .await;
    tx.finish(result).await
}

/// Issues a token at once (a trusted caller's synchronous reset), with the same rules.
pub(crate) async fn issue_token(
    c: &mut Pooled,
    issue: &IssueToken,
) -> Result<Resolved, StoreError> {
    let tx = c.begin().await?;
    let result = async { issue_in(&tx.db(), issue).await }.await;
    tx.finish(result).await
}

/// Voids a live token; whether one was voided.
pub(crate) async fn void_token(
    c: &mut Pooled,
    tenant: &TenantId,
    hash: &SecretHash,
    at: Timestamp,
    audit: &NewAudit,
) -> Result<bool, StoreError> {
    let tx = c.begin().await?;
    let result = async {
        let db = tx.db();
        let voided = db
            .exec(
                "UPDATE reset_token SET revoked_at = $3 \
                 WHERE hash = $1 AND tenant = $2 AND used_at IS NULL AND revoked_at IS NULL",
                &[&&hash.0[..], &tenant.as_str(), &at.0],
            )
            .await?;
        if voided == 0 {
            return Ok(false);
        }
        insert_audit(&db, audit).await?;
        Ok(true)
    }
    .await;
    tx.finish(result).await
}

/// Inside a transaction: unless the person is cooling down, supersedes their live tokens, stores
/// the token, queues its email and records the audit event.
async fn issue_in<C: GenericClient + Sync>(
    db: &Db<'_, C>,
    issue: &IssueToken,
) -> Result<Resolved, StoreError> {
    let t = &issue.token;
    // Serialise issuing per person: a concurrent resolution for the same person (another
    // request, maybe on another instance) waits here and then sees this one's token.
    if !lock_person(db, &t.tenant, &t.person).await? {
        return Err(StoreError::NotFound);
    }
    let cooling: bool = get(
            &db.one(
                "SELECT EXISTS (SELECT 1 FROM reset_token WHERE tenant = $1 AND person = $2 AND created_at > $3)",
                &[&t.tenant.as_str(), &t.person.as_str(), &issue.cooldown_since.0],
            )
            .await?,
            0,
        )?;
    if cooling {
        return Ok(Resolved::CoolingDown); // the request row stays deleted
    }
    revoke_live_tokens(db, &t.tenant, &t.person, t.created_at).await?;
    db.exec(
            "INSERT INTO reset_token (hash, tenant, person, client, created_at, expires_at, used_at, revoked_at, ip, \
             purpose) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                &&t.hash.0[..],
                &t.tenant.as_str(),
                &t.person.as_str(),
                &t.client.as_ref().map(ClientName::as_str),
                &t.created_at.0,
                &t.expires_at.0,
                &t.used_at.map(|x| x.0),
                &t.revoked_at.map(|x| x.0),
                &t.ip,
                &t.purpose.as_str(),
            ],
        )
        .await?;
    insert_message(db, &issue.message).await?;
    insert_audit(db, &issue.audit).await?;
    Ok(Resolved::Issued)
}

pub(crate) async fn find_token(
    c: &mut Pooled,
    hash: &SecretHash,
) -> Result<Option<ResetToken>, StoreError> {
    let sql = format!(
        "SELECT {} FROM reset_token WHERE hash = $1",
        rows::TOKEN_COLS
    );
    c.db()
        .opt(&sql, &[&&hash.0[..]])
        .await?
        .map(|r| rows::reset_token(&r))
        .transpose()
        .map(Option::flatten)
}

pub(crate) async fn claim_token(
    c: &mut Pooled,
    hash: &SecretHash,
    claim: &ClaimId,
    now: Timestamp,
    lease_until: Timestamp,
) -> Result<(), StoreError> {
    // The single-winner step: concurrent claims queue on the row lock and each re-checks
    // claim_id after the one before it, so only one flips it from NULL.
    let claimed = c
        .db()
        .exec(
            "UPDATE reset_token SET claim_id = $2, claimed_until = $4 WHERE hash = $1 \
             AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $3 AND claim_id IS NULL",
            &[&&hash.0[..], &claim.as_str(), &now.0, &lease_until.0],
        )
        .await?;
    if claimed == 1 {
        Ok(())
    } else {
        Err(StoreError::TokenGone)
    }
}

pub(crate) async fn release_token_claim(
    c: &mut Pooled,
    hash: &SecretHash,
    claim: &ClaimId,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let released = c
        .db()
        .exec(
            "UPDATE reset_token SET claim_id = NULL, claimed_until = NULL WHERE hash = $1 \
             AND claim_id = $2 AND used_at IS NULL AND claimed_until > $3",
            &[&&hash.0[..], &claim.as_str(), &now.0],
        )
        .await?;
    Ok(released == 1)
}
