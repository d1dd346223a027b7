//! The outbox under /v1/{tenant}/outbox: what was queued for delivery, and a way to send a dead
//! message again. Listing takes a `read` or admin key, retrying an admin key. Message bodies are never shown: they hold reset links.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use resetd_core::model::{OutboxMessage, OutboxStatus};
use resetd_core::types::InvalidInput;
use resetd_core::CoreError;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{admin, reader, tenant, ts, ApiResult};
use crate::problem::{Path, Problem, Query};
use crate::surface::Effect;
use crate::{AppState, ClientIp};

/// A message as the API (and `resetd outbox list --json`) shows it: delivery facts, never the
/// subject or body.
pub fn message_json(m: &OutboxMessage) -> Value {
    json!({
        "id": m.id,
        "kind": m.message.kind.as_str(),
        "recipient": m.message.recipient,
        "status": m.status.as_str(),
        "attempts": m.attempts,
        "next_attempt_at": ts((m.status == OutboxStatus::Pending).then_some(m.next_attempt_at)),
        "last_error": m.last_error,
        "message_id": m.message.message_id,
        "created_at": m.message.created_at.rfc3339(),
        "deliver_by": m.message.deliver_by.rfc3339(),
        "sent_at": ts(m.sent_at),
    })
}

/// `?status=` as the API accepts it.
pub(crate) fn status(raw: Option<&str>) -> Result<Option<OutboxStatus>, InvalidInput> {
    raw.map(|s| {
        OutboxStatus::parse(s)
            .ok_or_else(|| InvalidInput::new("status", "must be pending, sent or dead"))
    })
    .transpose()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OutboxQuery {
    status: Option<String>,
    limit: Option<u32>,
}

/// `GET /v1/{tenant}/outbox?status=&limit=`: newest first.
pub(crate) async fn list(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(t): Path<String>,
    Query(q): Query<OutboxQuery>,
) -> ApiResult {
    let t = tenant(&t)?;
    reader(&s, &t, &headers).await?;
    let status = status(q.status.as_deref())?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let items: Vec<Value> = s
        .service
        .outbox(Some(&t), status, limit)
        .await?
        .iter()
        .map(message_json)
        .collect();
    Ok(Json(json!({ "items": items })).into_response())
}

/// `POST /v1/{tenant}/outbox/{id}/retry`: a dead or waiting message is due again at once, with a
/// full set of attempts. 404 for a sent message or one of another tenant.
pub(crate) async fn retry(
    State(s): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    Path((t, id)): Path<(String, String)>,
) -> ApiResult {
    let t = tenant(&t)?;
    let actor = admin(&s, &t, &headers).await?;
    let id: i64 = id
        .parse()
        .map_err(|_| Problem::from(CoreError::NotFound("message")))?;
    s.run(
        Effect::MailQueued,
        s.service
            .retry_message(Some(&t), id, &actor, ip.text().as_deref()),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
