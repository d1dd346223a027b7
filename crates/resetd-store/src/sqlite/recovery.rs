//! The SQL behind the [`Recovery`](resetd_core::ports::Recovery) port on SQLite: reset requests
//! and the tokens they issue.
//!
//! Write operations run on the writer thread inside the batch transaction and their own
//! savepoint (see [`super`]), so an `Err` returned from here undoes everything the operation did
//! and nothing else.

use resetd_core::model::{NewAudit, NewResetRequest, ResetRequest, ResetToken, Timestamp};
use resetd_core::ports::{ClaimId, IssueToken, Resolution, Resolved, StoreError};
use resetd_core::secret::SecretHash;
use resetd_core::types::{ClientName, PersonId, TenantId};
use rusqlite::{params, Connection};

use super::audit::insert_audit;
use super::outbox::insert_message;
use super::rows::{self, all, exec, get, one};
use crate::common::{limit, to_json};

/// Voids the person's live tokens (not used, not revoked) as of `at`.
pub(super) fn revoke_live_tokens(
    c: &Connection,
    tenant: &TenantId,
    person: &PersonId,
    at: Timestamp,
) -> Result<(), StoreError> {
    exec(
        c,
        "UPDATE reset_token SET revoked_at = ?3 \
         WHERE tenant = ?1 AND person = ?2 AND used_at IS NULL AND revoked_at IS NULL",
        params![tenant.as_str(), person.as_str(), at.0],
    )?;
    Ok(())
}

// ---- reset requests and tokens ----------------------------------------------------------------

pub(crate) fn insert_reset_request(c: &Connection, r: &NewResetRequest) -> Result<i64, StoreError> {
    exec(
        c,
        "INSERT INTO reset_request (tenant, lookup, client, locale, ip, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            r.tenant.as_str(),
            to_json(&r.lookup)?,
            r.client.as_ref().map(ClientName::as_str),
            r.locale.as_ref().map(|l| l.as_str()),
            r.ip,
            r.created_at.0
        ],
    )?;
    Ok(c.last_insert_rowid())
}

pub(crate) fn count_reset_requests(c: &Connection) -> Result<u64, StoreError> {
    let n: i64 = one(c, "SELECT count(*) FROM reset_request", [], |r| get(r, 0))?.unwrap_or(0);
    Ok(n.max(0) as u64)
}

pub(crate) fn claim_reset_requests(
    c: &Connection,
    now: Timestamp,
    lease_until: Timestamp,
    n: u32,
) -> Result<Vec<ResetRequest>, StoreError> {
    // The writer holds the database's write lock, so the select and the update cannot interleave
    // with another claim, in this process or another.
    let sql = format!(
        "UPDATE reset_request SET claimed_until = ?2 WHERE id IN (SELECT id FROM reset_request \
         WHERE claimed_until IS NULL OR claimed_until <= ?1 ORDER BY id LIMIT ?3) RETURNING {}",
        rows::REQUEST_COLS
    );
    let mut claimed = all(
        c,
        &sql,
        params![now.0, lease_until.0, limit(n)],
        rows::reset_request,
    )?;
    claimed.sort_by_key(|r| r.id); // RETURNING has no defined order
    Ok(claimed)
}

pub(crate) fn resolve_reset_request(
    c: &Connection,
    id: i64,
    resolution: &Resolution,
) -> Result<Resolved, StoreError> {
    if exec(c, "DELETE FROM reset_request WHERE id = ?1", [id])? == 0 {
        return Ok(Resolved::Discarded); // resolved elsewhere: change nothing
    }
    let issue = match resolution {
        Resolution::Discard(audit) => {
            insert_audit(c, audit)?;
            return Ok(Resolved::Discarded);
        }
        Resolution::Issue(issue) => issue,
    };
    issue_token(c, issue)
}

/// Discards many requests, each as [`resolve_reset_request`] would, in the writer's transaction.
pub(crate) fn discard_reset_requests(
    c: &Connection,
    discards: &[(i64, NewAudit)],
) -> Result<(), StoreError> {
    for (id, audit) in discards {
        if exec(c, "DELETE FROM reset_request WHERE id = ?1", [id])? == 1 {
            insert_audit(c, audit)?;
        }
    }
    Ok(())
}

/// Issues a token unless the person is cooling down: supersedes their live tokens, stores the
/// token, queues its email and records the audit event.
pub(crate) fn issue_token(c: &Connection, issue: &IssueToken) -> Result<Resolved, StoreError> {
    let t = &issue.token;
    let cooling: bool = one(
        c,
        "SELECT EXISTS (SELECT 1 FROM reset_token WHERE tenant = ?1 AND person = ?2 AND created_at > ?3)",
        params![t.tenant.as_str(), t.person.as_str(), issue.cooldown_since.0],
        |r| get(r, 0),
    )?
    .unwrap_or(false);
    if cooling {
        return Ok(Resolved::CoolingDown);
    }
    revoke_live_tokens(c, &t.tenant, &t.person, t.created_at)?;
    exec(
        c,
        "INSERT INTO reset_token (hash, tenant, person, client, created_at, expires_at, used_at, revoked_at, ip, \
         purpose) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            &t.hash.0[..],
            t.tenant.as_str(),
            t.person.as_str(),
            t.client.as_ref().map(ClientName::as_str),
            t.created_at.0,
            t.expires_at.0,
            t.used_at.map(|x| x.0),
            t.revoked_at.map(|x| x.0),
            t.ip,
            t.purpose.as_str()
        ],
    )?;
    insert_message(c, &issue.message)?;
    insert_audit(c, &issue.audit)?;
    Ok(Resolved::Issued)
}

pub(crate) fn void_token(
    c: &Connection,
    tenant: &TenantId,
    hash: &SecretHash,
    at: Timestamp,
    audit: &NewAudit,
) -> Result<bool, StoreError> {
    let voided = exec(
        c,
        "UPDATE reset_token SET revoked_at = ?3 \
         WHERE hash = ?1 AND tenant = ?2 AND used_at IS NULL AND revoked_at IS NULL",
        params![&hash.0[..], tenant.as_str(), at.0],
    )?;
    if voided == 0 {
        return Ok(false);
    }
    insert_audit(c, audit)?;
    Ok(true)
}

pub(crate) fn find_token(
    c: &Connection,
    hash: &SecretHash,
) -> Result<Option<ResetToken>, StoreError> {
    let sql = format!(
        "SELECT {} FROM reset_token WHERE hash = ?1",
        rows::TOKEN_COLS
    );
    Ok(one(c, &sql, [&hash.0[..]], rows::reset_token)?.flatten())
}

pub(crate) fn claim_token(
    c: &Connection,
    hash: &SecretHash,
    claim: &ClaimId,
    now: Timestamp,
    lease_until: Timestamp,
) -> Result<(), StoreError> {
    // The single-winner step: only one caller flips claim_id from NULL on a live token.
    let claimed = exec(
        c,
        "UPDATE reset_token SET claim_id = ?2, claimed_until = ?4 WHERE hash = ?1 \
         AND used_at IS NULL AND revoked_at IS NULL AND expires_at > ?3 AND claim_id IS NULL",
        params![&hash.0[..], claim.as_str(), now.0, lease_until.0],
    )?;
    if claimed == 1 {
        Ok(())
    } else {
        Err(StoreError::TokenGone)
    }
}

pub(crate) fn release_token_claim(
    c: &Connection,
    hash: &SecretHash,
    claim: &ClaimId,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let released = exec(
        c,
        "UPDATE reset_token SET claim_id = NULL, claimed_until = NULL WHERE hash = ?1 \
         AND claim_id = ?2 AND used_at IS NULL AND claimed_until > ?3",
        params![&hash.0[..], claim.as_str(), now.0],
    )?;
    Ok(released == 1)
}
