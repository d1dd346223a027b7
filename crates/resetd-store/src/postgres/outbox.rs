//! The SQL behind the [`Outbox`](resetd_core::ports::Outbox) port on PostgreSQL: claims with
//! `FOR UPDATE SKIP LOCKED` (see the lock notes in [`super::recovery`]), delivery states, retries
//! and the sealing of bodies queued in clear. The other ports queue their email through
//! [`insert_message`], in the transaction of the change that sends it.

use resetd_core::model::{NewMessage, OutboxMessage, OutboxStatus, Timestamp};
use resetd_core::store::StoreError;
use resetd_core::types::TenantId;
use tokio_postgres::types::ToSql;
use tokio_postgres::GenericClient;

use super::pool::{Db, Pooled};
use super::rows::{self, get, map_all};
use crate::common::{found, limit, truncate_error};

pub(super) async fn insert_message<C: GenericClient + Sync>(
    db: &Db<'_, C>,
    m: &NewMessage,
) -> Result<(), StoreError> {
    db.exec(
        "INSERT INTO outbox (tenant, kind, recipient, subject, text, html, message_id, attempts, next_attempt_at, \
         status, created_at, deliver_by) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, 'pending', $8, $9)",
        &[
            &m.tenant.as_str(),
            &m.kind.as_str(),
            &m.recipient.as_str(),
            &m.subject,
            &m.text,
            &m.html,
            &m.message_id,
            &m.created_at.0,
            &m.deliver_by.0,
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn claim_outbox(
    c: &mut Pooled,
    now: Timestamp,
    lease_until: Timestamp,
    n: u32,
) -> Result<Vec<OutboxMessage>, StoreError> {
    // One statement: pick the due rows nobody else is claiming (SKIP LOCKED), lease them and count
    // the attempt. A row claimed and committed by another instance after this statement's snapshot
    // is re-checked after locking, is no longer due, and is dropped.
    let sql = format!(
        "WITH due AS (SELECT id AS due_id, next_attempt_at AS due_at FROM outbox \
         WHERE status = 'pending' AND next_attempt_at <= $1 \
         ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
         UPDATE outbox SET next_attempt_at = $2, attempts = attempts + 1 FROM due WHERE id = due.due_id \
         RETURNING {}, due.due_at",
        rows::OUTBOX_COLS
    );
    let rows = c
        .db()
        .all(&sql, &[&now.0, &lease_until.0, &limit(n)])
        .await?;
    let mut claimed = rows
        .iter()
        // due_at is the last column, after OUTBOX_COLS.
        .map(|r| Ok((get::<i64>(r, r.len() - 1)?, rows::outbox(r)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    // Due first, oldest first, as they were picked (RETURNING has no defined order).
    claimed.sort_by_key(|(due_at, m)| (*due_at, m.id));
    Ok(claimed.into_iter().map(|(_, m)| m).collect())
}

pub(crate) async fn mark_sent(c: &mut Pooled, id: i64, at: Timestamp) -> Result<(), StoreError> {
    found(
        c.db()
            .exec(
                // Erased once sent: the body held a live reset link (see crate::sealing).
                "UPDATE outbox SET status = 'sent', sent_at = $2, text = '', html = NULL WHERE id = $1",
                &[&id, &at.0],
            )
            .await?,
    )
}

/// Marks a message whose body cannot be opened dead with `why`, keeping the sealed body (it is
/// unreadable without its key, and restoring the key then retrying sends it).
pub(crate) async fn mark_unreadable(c: &mut Pooled, id: i64, why: &str) -> Result<(), StoreError> {
    let why = truncate_error(why);
    found(
        c.db()
            .exec(
                "UPDATE outbox SET status = 'dead', last_error = $2 WHERE id = $1",
                &[&id, &why],
            )
            .await?,
    )
}

pub(crate) async fn mark_failed(
    c: &mut Pooled,
    id: i64,
    error: &str,
    retry_at: Option<Timestamp>,
) -> Result<(), StoreError> {
    let error = truncate_error(error);
    let changed = match retry_at {
        Some(at) => {
            c.db()
                .exec(
                    "UPDATE outbox SET next_attempt_at = $2, last_error = $3 WHERE id = $1",
                    &[&id, &at.0, &error],
                )
                .await?
        }
        None => {
            c.db()
                .exec(
                    // Erased once dead: nobody will send it, and it held a live reset link.
                    "UPDATE outbox SET status = 'dead', last_error = $2, text = '', html = NULL \
                     WHERE id = $1",
                    &[&id, &error],
                )
                .await?
        }
    };
    found(changed)
}

pub(crate) async fn list_outbox(
    c: &mut Pooled,
    tenant: Option<&TenantId>,
    status: Option<OutboxStatus>,
    n: u32,
) -> Result<Vec<OutboxMessage>, StoreError> {
    let tenant = tenant.map(TenantId::as_str);
    let status = status.map(OutboxStatus::as_str);
    let n = limit(n);
    let mut sql = format!("SELECT {} FROM outbox WHERE TRUE", rows::OUTBOX_COLS);
    let mut args: Vec<&(dyn ToSql + Sync)> = Vec::new();
    if let Some(t) = &tenant {
        args.push(t);
        sql.push_str(&format!(" AND tenant = ${}", args.len()));
    }
    if let Some(s) = &status {
        args.push(s);
        sql.push_str(&format!(" AND status = ${}", args.len()));
    }
    args.push(&n);
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", args.len()));
    map_all(c.db().all(&sql, &args).await?, rows::outbox)
}

pub(crate) async fn retry_outbox(
    c: &mut Pooled,
    tenant: Option<&TenantId>,
    id: i64,
    at: Timestamp,
) -> Result<TenantId, StoreError> {
    // attempts restart at 0 (they count leases, for the record). A revived notice gets a fresh
    // retry window as long as its first; a reset link keeps its deadline, the link's expiry. A
    // body erased when the message died cannot be sent again (`Erased`).
    let t = tenant.map(TenantId::as_str);
    let revived = c
        .db()
        .opt(
            "UPDATE outbox SET status = 'pending', next_attempt_at = $2, attempts = 0, \
             deliver_by = CASE WHEN kind = 'reset_link' THEN deliver_by \
                 ELSE GREATEST(deliver_by, $2 + (deliver_by - created_at)) END \
             WHERE id = $1 AND status IN ('pending', 'dead') AND text <> '' \
             AND ($3::text IS NULL OR tenant = $3) RETURNING tenant",
            &[&id, &at.0, &t],
        )
        .await?;
    if let Some(row) = revived {
        return rows::tenant_id(&get::<String>(&row, 0)?);
    }
    let erased = c
        .db()
        .opt(
            "SELECT 1 FROM outbox WHERE id = $1 AND status = 'dead' AND text = '' \
             AND ($2::text IS NULL OR tenant = $2)",
            &[&id, &t],
        )
        .await?;
    Err(match erased {
        Some(_) => StoreError::Erased,
        None => StoreError::NotFound,
    })
}

/// Seals the bodies of pending messages queued in clear by a version before sealing; returns
/// how many. Each update is conditional on the body being unchanged, so a message sent meanwhile
/// by another instance is left alone.
pub(crate) async fn seal_plain_outbox(
    c: &mut Pooled,
    keys: &crate::sealing::OutboxKeys,
) -> Result<u64, StoreError> {
    let sql = format!(
        "SELECT {} FROM outbox WHERE status = 'pending' AND text <> '' \
         AND text NOT LIKE 'resetd-sealed:%'",
        rows::OUTBOX_COLS
    );
    let plain = map_all(c.db().all(&sql, &[]).await?, rows::outbox)?;
    let mut sealed = 0;
    for m in plain {
        let mut message = m.message.clone();
        keys.seal(&mut message)?;
        sealed += c
            .db()
            .exec(
                "UPDATE outbox SET text = $2, html = NULL WHERE id = $1 AND text = $3",
                &[&m.id, &message.text, &m.message.text],
            )
            .await?;
    }
    Ok(sealed)
}

pub(crate) async fn outbox_counts(c: &mut Pooled) -> Result<Vec<(OutboxStatus, u64)>, StoreError> {
    let rows = c
        .db()
        .all("SELECT status, COUNT(*) FROM outbox GROUP BY status", &[])
        .await?;
    let counted = map_all(rows, |r| {
        let n: i64 = get(r, 1)?;
        Ok((rows::status(r, 0)?, u64::try_from(n).unwrap_or(0)))
    })?;
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
