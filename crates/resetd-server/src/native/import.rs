//! `POST /v1/{tenant}/people/import`: the body (CSV or JSON Lines) is read as a stream, line by
//! line with a bounded line length, and fed to the core's [`Importer`] in batches, so a file of a
//! million rows never sits in memory. The route has its own body limit and no request timeout
//! (see `crate::router`).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use futures_util::StreamExt as _;
use resetd_core::import::{Format, Importer, MAX_LINE};
use resetd_core::types::InvalidInput;
use serde::Deserialize;
use serde_json::json;

use super::{admin, tenant, ApiResult};
use crate::problem::{Path, Problem, Query};
use crate::AppState;

/// The most body an import accepts (1 GiB).
pub const IMPORT_BODY_LIMIT: usize = 1 << 30;
/// How many rejected lines the answer lists (all are counted).
const LISTED: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImportQuery {
    format: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

/// Streams the import and answers its summary with the rejected lines.
/// 408 for an import whose body stopped arriving, closing the connection (the rest of the body
/// is not waited for).
fn stalled() -> axum::response::Response {
    let mut res = Problem::new(
        StatusCode::REQUEST_TIMEOUT,
        "body-timeout",
        "Request Timeout",
        format!(
            "No part of the import arrived for {} seconds. Send it again: rows of it already \
             imported (in batches of {}) are updated, not added twice.",
            crate::body::BODY_READ_TIMEOUT.as_secs(),
            resetd_core::import::BATCH
        ),
    )
    .into_response();
    res.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    res
}

pub(crate) async fn people(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(t): Path<String>,
    Query(q): Query<ImportQuery>,
    body: axum::body::Body,
) -> ApiResult {
    let t = tenant(&t)?;
    let actor = admin(&s, &t, &headers).await?;
    let format = Format::parse(q.format.as_deref().unwrap_or("jsonl"))
        .ok_or_else(|| InvalidInput::new("format", "must be csv or jsonl"))?;
    let mut importer = Importer::new(&s.service, t, actor, format, q.dry_run);
    let mut listed = Vec::new();
    let mut stream = body.into_data_stream();
    let (mut buf, mut too_long, mut line, mut total) = (Vec::new(), false, 0u64, 0usize);
    loop {
        // An import may stream for minutes, so it has no deadline for the whole body, but a
        // client that stops sending for BODY_READ_TIMEOUT is cut off like any stalled body.
        let next = tokio::time::timeout(crate::body::BODY_READ_TIMEOUT, stream.next()).await;
        let chunk = match next {
            Err(_) => return Ok(stalled()),
            Ok(None) => None,
            Ok(Some(Ok(c))) => Some(c),
            Ok(Some(Err(_))) => {
                return Err(Problem::new(
                    StatusCode::BAD_REQUEST,
                    "bad-body",
                    "Bad Request",
                    "The request body could not be read.",
                ))
            }
        };
        let done = chunk.is_none();
        let chunk = chunk.unwrap_or_default();
        total += chunk.len();
        if total > IMPORT_BODY_LIMIT {
            return Err(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                "Payload Too Large",
                "An import body may be at most 1 GiB; split the file.",
            ));
        }
        let mut rest = &chunk[..];
        loop {
            let (part, end) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..i], true),
                None if done && (!buf.is_empty() || too_long || !rest.is_empty()) => (rest, true),
                None => (rest, false),
            };
            if buf.len() + part.len() > MAX_LINE {
                too_long = true;
                buf.clear();
            } else if !too_long {
                buf.extend_from_slice(part);
            }
            if !end {
                break;
            }
            line += 1;
            if too_long {
                importer.reject(line, format!("line longer than {MAX_LINE} bytes"));
            } else {
                match std::str::from_utf8(&buf) {
                    Ok(text) => importer.line(line, text).await?,
                    Err(_) => importer.reject(line, "not UTF-8"),
                }
            }
            for r in importer.take_rejections() {
                if listed.len() < LISTED {
                    listed.push(r);
                }
            }
            buf.clear();
            too_long = false;
            rest = &rest[(part.len() + 1).min(rest.len())..];
            if rest.is_empty() {
                break;
            }
        }
        if done {
            break;
        }
    }
    let summary = importer.finish().await?;
    let truncated = summary.rejected > listed.len() as u64;
    Ok(Json(json!({
        "imported": summary.imported,
        "updated": summary.updated,
        "rejected": summary.rejected,
        "dry_run": summary.dry_run,
        "rejections": listed,
        "rejections_truncated": truncated,
    }))
    .into_response())
}
