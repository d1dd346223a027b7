//! API keys under /v1/{tenant}/api-keys: create (the secret shown once), list and show (never a
//! secret: the store has only hashes), revoke, rotate. Admin keys only. See `docs/api-keys.md`.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use resetd_core::api_key::{ApiKey, ApiKeyId, NewApiKey, Overlap, Scope};
use resetd_core::model::Timestamp;
use resetd_core::secret::ApiKeySecret;
use resetd_core::types::InvalidInput;
use resetd_core::CoreError;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{admin, tenant, ts, ApiResult};
use crate::problem::{Body, Path, Problem, Query};
use crate::{AppState, ClientIp};

/// A key as the API (and `resetd apikey list --json`) shows it: what it is and where it stands,
/// never a secret.
pub fn key_json(k: &ApiKey, now: Timestamp) -> Value {
    json!({
        "id": k.id,
        "tenant": k.tenant,
        "name": k.name,
        "scopes": k.scopes,
        "state": k.state(now).as_str(),
        "created_at": k.created_at.rfc3339(),
        "last_used_at": ts(k.last_used_at),
        "expires_at": ts(k.expires_at),
        "revoked_at": ts(k.revoked_at),
        "previous_secret_valid_until": ts(k.previous_until.filter(|u| *u > now)),
    })
}

/// An answer that carries a secret: never cached.
fn with_secret(status: StatusCode, k: &ApiKey, secret: &ApiKeySecret, now: Timestamp) -> Response {
    let mut body = key_json(k, now);
    body["key"] = Value::String(secret.expose().to_owned());
    (status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

/// An id as the path gives it: one that cannot be a key's names no key (404, like an unknown one).
fn key_id(raw: &str) -> Result<ApiKeyId, Problem> {
    ApiKeyId::parse(raw).map_err(|_| Problem::from(CoreError::NotFound("API key")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewKeyBody {
    name: String,
    #[serde(default = "admin_scope")]
    scopes: Vec<String>,
    expires_at: Option<String>,
}

fn admin_scope() -> Vec<String> {
    vec![Scope::Admin.as_str().to_owned()]
}

/// `POST /v1/{tenant}/api-keys`: 201 with the secret, shown this once.
pub(crate) async fn create(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(t): Path<String>,
    Body(req): Body<NewKeyBody>,
) -> ApiResult {
    let t = tenant(&t)?;
    let actor = admin(&s, &t, &headers).await?;
    if req.scopes.is_empty() {
        return Err(InvalidInput::new("scopes", "give at least one scope").into());
    }
    let scopes = req
        .scopes
        .iter()
        .map(|v| Scope::parse(v))
        .collect::<Result<Vec<_>, _>>()?;
    let expires_at = req
        .expires_at
        .as_deref()
        .map(|e| Timestamp::parse_rfc3339("expires_at", e))
        .transpose()?;
    let new = NewApiKey {
        name: req.name,
        scopes,
        expires_at,
    };
    let (key, secret) = s.service.create_key(&t, new, &actor).await?;
    Ok(with_secret(
        StatusCode::CREATED,
        &key,
        &secret,
        s.service.now(),
    ))
}

/// `GET /v1/{tenant}/api-keys`: every key of the tenant, oldest first, revoked and expired ones
/// included (with their state).
pub(crate) async fn list(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(t): Path<String>,
) -> ApiResult {
    let t = tenant(&t)?;
    admin(&s, &t, &headers).await?;
    let now = s.service.now();
    let items: Vec<Value> = s
        .service
        .api_keys(Some(&t))
        .await?
        .iter()
        .map(|k| key_json(k, now))
        .collect();
    Ok(Json(json!({ "items": items })).into_response())
}

/// `GET /v1/{tenant}/api-keys/{id}`.
pub(crate) async fn show(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((t, id)): Path<(String, String)>,
) -> ApiResult {
    let t = tenant(&t)?;
    admin(&s, &t, &headers).await?;
    let key = s.service.api_key(Some(&t), &key_id(&id)?).await?;
    Ok(Json(key_json(&key, s.service.now())).into_response())
}

/// `POST /v1/{tenant}/api-keys/{id}/revoke`: 200 with the revoked key; 409 api-key-revoked the
/// second time.
pub(crate) async fn revoke(
    State(s): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    Path((t, id)): Path<(String, String)>,
) -> ApiResult {
    let t = tenant(&t)?;
    let actor = admin(&s, &t, &headers).await?;
    let key = s
        .service
        .revoke_api_key(Some(&t), &key_id(&id)?, &actor, ip.text().as_deref())
        .await?;
    Ok(Json(key_json(&key, s.service.now())).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RotateQuery {
    overlap_secs: Option<i64>,
}

/// `POST /v1/{tenant}/api-keys/{id}/rotate?overlap_secs=`: 200 with the new secret, shown this
/// once; the old one works until `previous_secret_valid_until`.
pub(crate) async fn rotate(
    State(s): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    Path((t, id)): Path<(String, String)>,
    Query(q): Query<RotateQuery>,
) -> ApiResult {
    let t = tenant(&t)?;
    let actor = admin(&s, &t, &headers).await?;
    let id = key_id(&id)?;
    let overlap = q
        .overlap_secs
        .map(Overlap::from_secs)
        .transpose()?
        .unwrap_or_default();
    let (key, secret) = s
        .service
        .rotate_api_key(Some(&t), &id, overlap, &actor, ip.text().as_deref())
        .await?;
    Ok(with_secret(StatusCode::OK, &key, &secret, s.service.now()))
}
