//! The SQL behind the [`Outbox`](resetd_core::ports::Outbox) port on SQLite: claims, delivery
//! states, retries and the sealing of bodies queued in clear. The other ports queue their email
//! through [`insert_message`], in the same savepoint as the change that sends it.
//!
//! Write operations run on the writer thread inside the batch transaction and their own
//! savepoint (see [`super`]), so an `Err` returned from here undoes everything the operation did
//! and nothing else.

use resetd_core::model::{NewMessage, OutboxMessage, OutboxStatus, Timestamp};
use resetd_core::ports::StoreError;
use resetd_core::types::TenantId;
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection};

use super::rows::{self, all, exec, get, one};
use crate::common::{found, limit, truncate_error};

pub(super) fn insert_message(c: &Connection, m: &NewMessage) -> Result<(), StoreError> {
    exec(
        c,
        "INSERT INTO outbox (tenant, kind, recipient, subject, text, html, message_id, attempts, next_attempt_at, \
         status, created_at, deliver_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8, 'pending', ?8, ?9)",
        params![
            m.tenant.as_str(),
            m.kind.as_str(),
            m.recipient.as_str(),
            m.subject,
            m.text,
            m.html,
            m.message_id,
            m.created_at.0,
            m.deliver_by.0
        ],
    )?;
    Ok(())
}

pub(crate) fn claim_outbox(
    c: &Connection,
    now: Timestamp,
    lease_until: Timestamp,
    n: u32,
) -> Result<Vec<OutboxMessage>, StoreError> {
    let ids: Vec<i64> = all(
        c,
        "SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= ?1 \
         ORDER BY next_attempt_at, id LIMIT ?2",
        params![now.0, limit(n)],
        |r| get(r, 0),
    )?;
    let sql = format!(
        "UPDATE outbox SET next_attempt_at = ?2, attempts = attempts + 1 WHERE id = ?1 RETURNING {}",
        rows::OUTBOX_COLS
    );
    let mut claimed = Vec::with_capacity(ids.len());
    for id in ids {
        claimed.extend(one(c, &sql, params![id, lease_until.0], rows::outbox)?);
    }
    Ok(claimed)
}

pub(crate) fn mark_sent(c: &Connection, id: i64, at: Timestamp) -> Result<(), StoreError> {
    found(exec(
        c,
        // Erased once sent: the body held a live reset link (see crate::sealing).
        "UPDATE outbox SET status = 'sent', sent_at = ?2, text = '', html = NULL WHERE id = ?1",
        params![id, at.0],
    )?)
}

/// Marks a message whose body cannot be opened dead with `why`, keeping the sealed body (it is
/// unreadable without its key, and restoring the key then retrying sends it).
pub(crate) fn mark_unreadable(c: &Connection, id: i64, why: &str) -> Result<(), StoreError> {
    found(exec(
        c,
        "UPDATE outbox SET status = 'dead', last_error = ?2 WHERE id = ?1",
        params![id, truncate_error(why)],
    )?)
}

pub(crate) fn mark_failed(
    c: &Connection,
    id: i64,
    error: &str,
    retry_at: Option<Timestamp>,
) -> Result<(), StoreError> {
    let error = truncate_error(error);
    let changed = match retry_at {
        Some(at) => exec(
            c,
            "UPDATE outbox SET next_attempt_at = ?2, last_error = ?3 WHERE id = ?1",
            params![id, at.0, error],
        )?,
        None => exec(
            c,
            // Erased once dead: nobody will send it, and it held a live reset link.
            "UPDATE outbox SET status = 'dead', last_error = ?2, text = '', html = NULL WHERE id = ?1",
            params![id, error],
        )?,
    };
    found(changed)
}

pub(crate) fn list_outbox(
    c: &Connection,
    tenant: Option<&TenantId>,
    status: Option<OutboxStatus>,
    n: u32,
) -> Result<Vec<OutboxMessage>, StoreError> {
    let mut sql = format!("SELECT {} FROM outbox WHERE 1 = 1", rows::OUTBOX_COLS);
    let mut args: Vec<Value> = Vec::new();
    if let Some(t) = tenant {
        args.push(Value::Text(t.as_str().to_owned()));
        sql.push_str(&format!(" AND tenant = ?{}", args.len()));
    }
    if let Some(s) = status {
        args.push(Value::Text(s.as_str().to_owned()));
        sql.push_str(&format!(" AND status = ?{}", args.len()));
    }
    args.push(Value::Integer(limit(n)));
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ?{}", args.len()));
    all(c, &sql, params_from_iter(args), rows::outbox)
}

pub(crate) fn retry_outbox(
    c: &Connection,
    tenant: Option<&TenantId>,
    id: i64,
    at: Timestamp,
) -> Result<TenantId, StoreError> {
    // attempts restart at 0 (they count leases, for the record). A revived notice gets a fresh
    // retry window as long as its first; a reset link keeps its deadline, the link's expiry. A
    // body erased when the message died cannot be sent again (`Erased`).
    let revived = one(
        c,
        "UPDATE outbox SET status = 'pending', next_attempt_at = ?2, attempts = 0, \
         deliver_by = CASE WHEN kind = 'reset_link' THEN deliver_by \
             ELSE MAX(deliver_by, ?2 + (deliver_by - created_at)) END \
         WHERE id = ?1 AND status IN ('pending', 'dead') AND text <> '' \
         AND (?3 IS NULL OR tenant = ?3) RETURNING tenant",
        params![id, at.0, tenant.map(TenantId::as_str)],
        |r| rows::tenant_id(get(r, 0)?),
    )?;
    if let Some(t) = revived {
        return Ok(t);
    }
    let erased = one(
        c,
        "SELECT 1 FROM outbox WHERE id = ?1 AND status = 'dead' AND text = '' \
         AND (?2 IS NULL OR tenant = ?2)",
        params![id, tenant.map(TenantId::as_str)],
        |_| Ok(()),
    )?;
    Err(match erased {
        Some(()) => StoreError::Erased,
        None => StoreError::NotFound,
    })
}

/// Seals the bodies of pending messages queued in clear by a version before sealing; returns
/// how many. Each update is conditional on the body being unchanged, so a message sent meanwhile
/// by another process is left alone.
pub(crate) fn seal_plain_outbox(
    c: &Connection,
    keys: &crate::sealing::OutboxKeys,
) -> Result<u64, StoreError> {
    let plain = all(
        c,
        &format!(
            "SELECT {} FROM outbox WHERE status = 'pending' AND text <> '' \
             AND text NOT LIKE 'resetd-sealed:%'",
            rows::OUTBOX_COLS
        ),
        [],
        rows::outbox,
    )?;
    let mut sealed = 0;
    for m in plain {
        let mut message = m.message.clone();
        keys.seal(&mut message)?;
        sealed += exec(
            c,
            "UPDATE outbox SET text = ?2, html = NULL WHERE id = ?1 AND text = ?3",
            params![m.id, message.text, m.message.text],
        )? as u64;
    }
    Ok(sealed)
}

pub(crate) fn outbox_counts(c: &Connection) -> Result<Vec<(OutboxStatus, u64)>, StoreError> {
    let counted = all(
        c,
        "SELECT status, COUNT(*) FROM outbox GROUP BY status",
        [],
        |r| {
            let n: i64 = get(r, 1)?;
            Ok((rows::status(r, 0)?, u64::try_from(n).unwrap_or(0)))
        },
    )?;
    // Every status is listed, with 0 where there is none, in a fixed order.
    Ok([
        OutboxStatus::Pending,
        OutboxStatus::Sent,
        OutboxStatus::Dead,
    ]
    .into_iter()
    .map(|s| {
        (
            s,
            counted.iter().find(|(k, _)| *k == s).map_or(0, |(_, n)| *n),
        )
    })
    .collect())
}
