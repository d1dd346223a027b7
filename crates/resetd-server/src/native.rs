//! The native API under /v1: JSON in, JSON or problem+json out. Handlers parse raw input into
//! domain types, call one use case and shape the answer.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use axum::Router;
use resetd_core::model::{AuditEvent, Client, LinkTemplate, Lookup, Person, Scope, Timestamp};
use resetd_core::secret::{ApiKeySecret, ResetSecret};
use resetd_core::service::{Actor, NewPersonInput, PersonPatch};
use resetd_core::types::{
    ClientName, DisplayName, Email, InvalidInput, Locale, Login, Password, PersonId, TenantId,
};
use resetd_core::CoreError;
use serde::Deserialize;
use serde_json::{json, Value};

mod breached;
pub(crate) mod import;
mod keys;

pub use keys::key_json as api_key_json;
mod outbox;
mod people_admin;

pub use self::outbox::message_json;

use crate::problem::{Body, Path, Problem, Query};
use crate::surface::{Effect, Limit};
use crate::{AppState, ClientIp};

/// The surface's name in logs, metrics and its own per-IP buckets.
pub(crate) const NATIVE: &str = "native";

type ApiResult = Result<Response, Problem>;

/// The /v1 routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/{tenant}/recovery", post(request_reset))
        .route(
            "/v1/{tenant}/recovery/{token}",
            get(inspect_token).post(complete_reset),
        )
        .route("/v1/{tenant}/password/check", post(check_password))
        .route("/v1/{tenant}/authenticate", post(authenticate))
        .route(
            "/v1/{tenant}",
            get(people_admin::show_tenant).delete(people_admin::remove_tenant),
        )
        .route(
            "/v1/{tenant}/people",
            post(create_person).get(people_admin::find_or_list),
        )
        .route(
            "/v1/{tenant}/people/{id}",
            get(get_person)
                .patch(update_person)
                .delete(people_admin::erase_person),
        )
        .route("/v1/{tenant}/people/{id}/disable", post(disable_person))
        .route("/v1/{tenant}/people/{id}/enable", post(enable_person))
        .route("/v1/{tenant}/people/{id}/password", post(set_password))
        .route("/v1/{tenant}/people/{id}/unlock", post(unlock))
        .route("/v1/{tenant}/api-keys", post(keys::create).get(keys::list))
        .route("/v1/{tenant}/api-keys/{id}", get(keys::show))
        .route("/v1/{tenant}/api-keys/{id}/revoke", post(keys::revoke))
        .route("/v1/{tenant}/api-keys/{id}/rotate", post(keys::rotate))
        .route(
            "/v1/{tenant}/clients",
            post(register_client).get(list_clients),
        )
        .route(
            "/v1/{tenant}/clients/{name}",
            get(people_admin::show_client).delete(people_admin::remove_client),
        )
        .route("/v1/{tenant}/audit", get(audit))
        .route("/v1/{tenant}/outbox", get(outbox::list))
        .route("/v1/{tenant}/outbox/{id}/retry", post(outbox::retry))
        .route("/v1/{tenant}/breached/range/{prefix}", get(breached::range))
}

/// The native API's answer to a request that ran past the request timeout.
pub fn timeout_answer() -> crate::body::TimeoutAnswer {
    std::sync::Arc::new(|_| Problem::request_timeout().into_response())
}

/// The one answer to every accepted reset request, whatever became of the account.
pub const RECOVERY_ACCEPTED: &str = r#"{"status":"accepted","message":"If an account matches, a message with a reset link is on its way."}"#;

fn tenant(raw: &str) -> Result<TenantId, Problem> {
    TenantId::parse(raw).map_err(|_| Problem::from(CoreError::UnknownTenant))
}

fn opt<T>(
    v: Option<String>,
    parse: impl Fn(&str) -> Result<T, InvalidInput>,
) -> Result<Option<T>, Problem> {
    v.map(|s| parse(&s)).transpose().map_err(Problem::from)
}

/// Checks the bearer API key for an admin call in `tenant`.
async fn admin(s: &AppState, tenant: &TenantId, headers: &HeaderMap) -> Result<Actor, Problem> {
    caller(s, tenant, headers, Scope::Admin).await
}

/// Checks the bearer API key for a read of the audit log or the outbox in `tenant`: a `read` key
/// or an admin key.
async fn reader(s: &AppState, tenant: &TenantId, headers: &HeaderMap) -> Result<Actor, Problem> {
    caller(s, tenant, headers, Scope::Read).await
}

async fn caller(
    s: &AppState,
    tenant: &TenantId,
    headers: &HeaderMap,
    need: Scope,
) -> Result<Actor, Problem> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|k| ApiKeySecret::parse(k.trim()).ok())
        .ok_or(CoreError::Unauthenticated)?;
    let key = s.service.authorize(tenant, &presented, need).await?;
    Ok(Actor::ApiKey(key.id))
}

fn ts(t: Option<Timestamp>) -> Value {
    t.map(|t| Value::String(t.rfc3339())).unwrap_or(Value::Null)
}

/// A person as the API (and `resetd person list --json`) shows them: never the password hash.
pub fn person_json(p: &Person, now: Timestamp) -> Value {
    json!({
        "id": p.id,
        "number": p.number,
        "login": p.login,
        "email": p.email,
        "display_name": p.display_name,
        "locale": p.locale,
        "enabled": p.enabled,
        "verified": p.verified,
        "roles": p.roles,
        "attributes": p.attributes,
        "has_password": p.password_hash.is_some(),
        "must_change_password": p.must_change_password,
        "locked": p.locked_until.is_some_and(|u| u > now),
        "locked_until": ts(p.locked_until.filter(|u| *u > now)),
        "failed_logins": p.failed_logins,
        "password_changed_at": ts(p.password_changed_at),
        "created_at": p.created_at.rfc3339(),
        "updated_at": p.updated_at.rfc3339(),
    })
}

/// A client as the API (and `resetd client list --json`) shows it.
pub fn client_json(c: &Client) -> Value {
    json!({"name": c.name, "link_template": c.link_template, "allowed_prefixes": c.allowed_prefixes, "created_at": c.created_at.rfc3339()})
}

// ---- anonymous recovery ----------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecoveryRequest {
    login: Option<String>,
    email: Option<String>,
    client: Option<String>,
    locale: Option<String>,
}

async fn request_reset(
    State(s): State<AppState>,
    ip: ClientIp,
    Path(t): Path<String>,
    Body(req): Body<RecoveryRequest>,
) -> ApiResult {
    let t = tenant(&t)?;
    s.admit(NATIVE, Limit::Recovery, ip)?;
    let lookup = match (req.login, req.email) {
        (Some(l), None) => Lookup::login(&Login::parse(&l)?),
        (None, Some(e)) => Lookup::email(&Email::parse(&e)?),
        _ => return Err(InvalidInput::new("login", "give exactly one of login or email").into()),
    };
    let client = opt(req.client, ClientName::parse)?;
    let locale = opt(req.locale, Locale::parse)?;
    s.run(
        Effect::ResetRequested,
        s.service
            .request_reset(&t, lookup, client, locale, ip.text()),
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        RECOVERY_ACCEPTED,
    )
        .into_response())
}

fn secret(raw: &str) -> Result<ResetSecret, Problem> {
    // A malformed token can never have been issued: the same 410 as an unknown one.
    ResetSecret::parse(raw).map_err(|_| Problem::from(CoreError::TokenGone))
}

async fn inspect_token(
    State(s): State<AppState>,
    Path((t, token)): Path<(String, String)>,
) -> ApiResult {
    let t = tenant(&t)?;
    let info = s.service.inspect_token(&t, &secret(&token)?).await?;
    Ok(Json(json!({
        "valid": true,
        "expires_at": info.expires_at.rfc3339(),
        "login": info.login,
        "min_password_length": info.min_password_length,
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPasswordBody {
    password: String,
}

async fn complete_reset(
    State(s): State<AppState>,
    ip: ClientIp,
    Path((t, token)): Path<(String, String)>,
    Body(req): Body<NewPasswordBody>,
) -> ApiResult {
    let t = tenant(&t)?;
    s.admit(NATIVE, Limit::Auth, ip)?;
    let secret = secret(&token)?;
    let password = Password::parse(&req.password)?;
    s.run(
        Effect::ResetCompleted,
        s.service
            .complete_reset(&t, &secret, &password, ip.text().as_deref()),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckBody {
    password: String,
    login: Option<String>,
}

async fn check_password(
    State(s): State<AppState>,
    ip: ClientIp,
    Path(t): Path<String>,
    Body(req): Body<CheckBody>,
) -> ApiResult {
    // Anonymous and milliseconds of CPU each: limited per IP before anything else, and the check
    // itself runs on the bounded hashing pool (503 + Retry-After when it is full).
    s.admit(NATIVE, Limit::PasswordCheck, ip)?;
    let t = tenant(&t)?;
    let password = Password::parse(&req.password)?;
    let login = opt(req.login, Login::parse)?;
    let v = s
        .service
        .check_password(&t, &password, login.as_ref())
        .await?;
    Ok(
        Json(json!({"ok": v.is_ok(), "score": v.score, "violations": v.violations}))
            .into_response(),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    login: String,
    password: String,
}

async fn authenticate(
    State(s): State<AppState>,
    ip: ClientIp,
    Path(t): Path<String>,
    Body(req): Body<LoginBody>,
) -> ApiResult {
    let t = tenant(&t)?;
    s.admit(NATIVE, Limit::Auth, ip)?;
    // A login or password that cannot exist is a bad pair like any other.
    let (Ok(login), Ok(password)) = (Login::parse(&req.login), Password::parse(&req.password))
    else {
        let wrong: Result<(), CoreError> = Err(CoreError::BadCredentials);
        s.settle(Effect::Login, &wrong);
        return Err(CoreError::BadCredentials.into());
    };
    let a = s
        .run(
            Effect::Login,
            s.service
                .authenticate(&t, &login, &password, ip.text().as_deref()),
        )
        .await?;
    Ok(
        Json(json!({"person_id": a.person.id, "must_change_password": a.must_change_password}))
            .into_response(),
    )
}

// ---- admin: people ---------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPersonBody {
    login: String,
    email: String,
    display_name: Option<String>,
    locale: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    verified: bool,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default = "empty_object")]
    attributes: Value,
    password: Option<String>,
}

fn yes() -> bool {
    true
}

fn empty_object() -> Value {
    json!({})
}

async fn create_person(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(t): Path<String>,
    Body(req): Body<NewPersonBody>,
) -> ApiResult {
    let t = tenant(&t)?;
    let actor = admin(&s, &t, &headers).await?;
    let input = NewPersonInput {
        login: Login::parse(&req.login)?,
        email: Email::parse(&req.email)?,
        display_name: opt(req.display_name, DisplayName::parse)?,
        locale: opt(req.locale, Locale::parse)?,
        enabled: req.enabled,
        verified: req.verified,
        roles: req.roles,
        attributes: req.attributes,
        password: opt(req.password, Password::parse)?,
    };
    let p = s.service.create_person(&t, input, &actor).await?;
    let location = format!("/v1/{t}/people/{}", p.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(person_json(&p, s.service.now())),
    )
        .into_response())
}

fn person_id(raw: &str) -> Result<PersonId, Problem> {
    PersonId::parse(raw).map_err(|_| Problem::from(CoreError::NotFound("person")))
}

async fn get_person(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((t, id)): Path<(String, String)>,
) -> ApiResult {
    let t = tenant(&t)?;
    admin(&s, &t, &headers).await?;
    let p = s.service.get_person(&t, &person_id(&id)?).await?;
    Ok(Json(person_json(&p, s.service.now())).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    email: Option<String>,
    display_name: Option<String>,
    #[serde(default, with = "double_option")]
    locale: Option<Option<String>>,
    enabled: Option<bool>,
    verified: Option<bool>,
    roles: Option<Vec<String>>,
    attributes: Option<Value>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

async fn update_person(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((t, id)): Path<(String, String)>,
    Body(req): Body<PatchBody>,
) -> ApiResult {
    let t = tenant(&t)?;
    let actor = admin(&s, &t, &headers).await?;
    let patch = PersonPatch {
        email: opt(req.email, Email::parse)?,
        display_name: opt(req.display_name, DisplayName::parse)?,
        locale: match req.locale {
            Some(l) => Some(opt(l, Locale::parse)?),
            None => None,
        },
        enabled: req.enabled,
        verified: req.verified,
        roles: req.roles,
        attributes: req.attributes,
    };
    let p = s
        .service
        .update_person(&t, &person_id(&id)?, patch, &actor)
        .await?;
    Ok(Json(person_json(&p, s.service.now())).into_response())
}

async fn set_enabled(
    s: AppState,
    headers: HeaderMap,
    t: String,
    id: String,
    enabled: bool,
) -> ApiResult {
    let t = tenant(&t)?;
    let actor = admin(&s, &t, &headers).await?;
    let patch = PersonPatch {
        enabled: Some(enabled),
        ..Default::default()
    };
    let p = s
        .service
        .update_person(&t, &person_id(&id)?, patch, &actor)
        .await?;
    Ok(Json(person_json(&p, s.service.now())).into_response())
}

async fn disable_person(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((t, id)): Path<(String, String)>,
) -> ApiResult {
    set_enabled(s, headers, t, id, false).await
}

async fn enable_person(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((t, id)): Path<(String, String)>,
) -> ApiResult {
    set_enabled(s, headers, t, id, true).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetPasswordBody {
    password: String,
    #[serde(default)]
    unlock: bool,
    #[serde(default)]
    must_change_password: bool,
}

async fn set_password(
    State(s): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    Path((t, id)): Path<(String, String)>,
    Body(req): Body<SetPasswordBody>,
) -> ApiResult {
    let t = tenant(&t)?;
    let actor = admin(&s, &t, &headers).await?;
    let id = person_id(&id)?;
    let password = Password::parse(&req.password)?;
    s.run(
        Effect::MailQueued,
        s.service.admin_set_password(
            &t,
            &id,
            &password,
            req.unlock,
            req.must_change_password,
            &actor,
            ip.text().as_deref(),
        ),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn unlock(
    State(s): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    Path((t, id)): Path<(String, String)>,
) -> ApiResult {
    let t = tenant(&t)?;
    let actor = admin(&s, &t, &headers).await?;
    s.service
        .unlock(&t, &person_id(&id)?, &actor, ip.text().as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- admin: keys, clients, audit -------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewClientBody {
    name: String,
    link_template: String,
    #[serde(default)]
    allowed_prefixes: Vec<String>,
}

async fn register_client(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(t): Path<String>,
    Body(req): Body<NewClientBody>,
) -> ApiResult {
    let t = tenant(&t)?;
    let actor = admin(&s, &t, &headers).await?;
    if req.allowed_prefixes.len() > 32 {
        return Err(InvalidInput::new("allowed_prefixes", "at most 32").into());
    }
    let c = s
        .service
        .register_client(
            &t,
            ClientName::parse(&req.name)?,
            LinkTemplate::parse(&req.link_template)?,
            req.allowed_prefixes,
            &actor,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(client_json(&c))).into_response())
}

async fn list_clients(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(t): Path<String>,
) -> ApiResult {
    let t = tenant(&t)?;
    admin(&s, &t, &headers).await?;
    let items: Vec<Value> = s
        .service
        .list_clients(&t)
        .await?
        .iter()
        .map(client_json)
        .collect();
    Ok(Json(json!({ "items": items })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    before: Option<i64>,
    limit: Option<u32>,
}

async fn audit(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(t): Path<String>,
    Query(q): Query<AuditQuery>,
) -> ApiResult {
    let t = tenant(&t)?;
    reader(&s, &t, &headers).await?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let events = s.service.audit_log(&t, q.before, limit).await?;
    let next = if events.len() as u32 == limit {
        events.last().map(|e| e.id)
    } else {
        None
    };
    let items: Vec<Value> = events.iter().map(audit_json).collect();
    Ok(Json(json!({ "items": items, "next_before": next })).into_response())
}

/// An audit event as the API (and `resetd audit --json`) shows it.
pub fn audit_json(e: &AuditEvent) -> Value {
    json!({"id": e.id, "kind": e.kind, "person": e.person, "actor": e.actor, "ip": e.ip, "at": e.at.rfc3339(), "detail": e.detail})
}
