//! Unleash (dialects.md §3): `/auth/reset/password-email`, `/auth/reset/validate`,
//! `/auth/reset/password` and `/auth/reset/validate-password`, with Unleash's error names and
//! messages, which its UI matches on.
//!
//! Unlike Unleash, an unknown email address answers 200 like a known one (Unleash says 404), and
//! there is no per-user 429: both would tell who has an account. The per-user limit still holds
//! silently (the tenant's cool-down).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Extension, Router};
use resetd_core::model::{LinkTemplate, Lookup, Person};
use resetd_core::policy::{owasp, PolicyMode, Violation};
use resetd_core::secret::ResetSecret;
use resetd_core::service::{Actor, CompleteOptions, Service};
use resetd_core::types::{ClientName, Email, Password, TenantId, PASSWORD_MAX_CHARS};
use resetd_core::CoreError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::kit::{self, js_stringify, uuid_v4, BodyError, Dialect};
use crate::body::{RawBody, Unread};
use crate::surface::{Effect, Limit, SurfaceError};
use crate::{AppState, ClientIp};

/// The surface's name in logs.
const UNLEASH: &str = "unleash";

/// The client whose link template points at the Unleash UI's reset page.
pub const CLIENT: &str = "unleash";

/// Which password rules the Unleash routes apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnleashRules {
    /// The tenant's policy (NIST: length, common and personal checks; the default).
    #[default]
    Tenant,
    /// Unleash's own OWASP rules, whose messages its UI ticks off one by one.
    Unleash,
}

/// The Unleash dialect's settings (`[dialects.unleash]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UnleashConfig {
    /// Whether the routes are mounted at all.
    pub enabled: bool,
    /// The tenant whose people the routes serve.
    pub tenant: String,
    /// Unleash's `baseUriPath`: the routes live at `{base_path}/auth/reset/…` (empty or `/x`).
    pub base_path: String,
    /// Unleash's `server.unleashUrl`, where its UI runs; links are
    /// `{unleash_url}/reset-password?token=<token>`.
    pub unleash_url: String,
    /// Which password rules apply on these routes.
    pub password_rules: UnleashRules,
}

impl Default for UnleashConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            tenant: "default".into(),
            base_path: String::new(),
            unleash_url: String::new(),
            password_rules: UnleashRules::Tenant,
        }
    }
}

/// The Unleash dialect.
pub struct Unleash;

/// The checked form of [`UnleashConfig`] the handlers see.
pub struct Mount {
    tenant: TenantId,
    base_path: String,
    /// The client `unleash` and its link to the Unleash UI's reset page.
    client: ClientName,
    link: LinkTemplate,
    rules: UnleashRules,
}

impl Mount {
    fn mode(&self) -> Option<PolicyMode> {
        match self.rules {
            UnleashRules::Tenant => None,
            UnleashRules::Unleash => Some(PolicyMode::Owasp),
        }
    }
}

impl Dialect for Unleash {
    type Config = UnleashConfig;
    type Mount = Mount;
    type Error = UnleashError;

    fn mount(c: &UnleashConfig) -> Result<Option<Mount>, String> {
        let tenant =
            TenantId::parse(&c.tenant).map_err(|e| format!("dialects.unleash.tenant: {e}"))?;
        let b = &c.base_path;
        let base_ok = b.is_empty()
            || (b.starts_with('/')
                && !b.ends_with('/')
                && b.len() <= 200
                && b.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"/-_.~".contains(&c))
                && !b.contains("//"));
        if !base_ok {
            return Err(format!(
                "dialects.unleash.base_path: {b:?} must be empty or like /unleash (no trailing '/')"
            ));
        }
        // The URL is required once the dialect is on, and checked whenever it is given.
        let link = if c.enabled || !c.unleash_url.is_empty() {
            Some(
                link_template(&c.unleash_url)
                    .map_err(|e| format!("dialects.unleash.unleash_url: {e}"))?,
            )
        } else {
            None
        };
        let Some(link) = link.filter(|_| c.enabled) else {
            return Ok(None);
        };
        Ok(Some(Mount {
            tenant,
            base_path: c.base_path.clone(),
            client: ClientName::parse(CLIENT).map_err(|e| e.to_string())?,
            link,
            rules: c.password_rules,
        }))
    }

    /// Registers the client `unleash` in the tenant, pointing at the Unleash UI.
    async fn provision(m: &Mount, service: &Service) -> Result<(), String> {
        let tenant = &m.tenant;
        service
            .tenant(tenant)
            .await
            .map_err(|e| format!("dialects.unleash.tenant {tenant}: {e}"))?;
        if service
            .client(tenant, &m.client)
            .await
            .is_ok_and(|c| c.link_template == m.link)
        {
            return Ok(());
        }
        service
            .register_client(
                tenant,
                m.client.clone(),
                m.link.clone(),
                vec![],
                &Actor::System,
            )
            .await
            .map(|_| ())
            .map_err(|e| format!("registering the Unleash client: {e}"))
    }

    fn routes(m: &Mount) -> Router<AppState> {
        let base = format!("{}/auth/reset", m.base_path);
        // Express answers a wrong method like an unknown path: 404.
        Router::new()
            .route(
                &format!("{base}/password-email"),
                post(send_reset_email).fallback(not_found),
            )
            .route(
                &format!("{base}/validate"),
                get(validate_token).fallback(not_found),
            )
            .route(
                &format!("{base}/password"),
                post(change_password).fallback(not_found),
            )
            .route(
                &format!("{base}/validate-password"),
                post(validate_password).fallback(not_found),
            )
            .route(&format!("{base}/{{*rest}}"), any(not_found))
    }
}

/// Unleash's reset link, `token` unencoded as Unleash sends it (ours is URL-safe).
fn link_template(unleash_url: &str) -> Result<LinkTemplate, String> {
    let base = unleash_url.trim_end_matches('/');
    if base.is_empty() {
        return Err("is required: the URL of the Unleash UI".into());
    }
    if base.contains(['{', '}', '?', '#']) {
        return Err("must be a base URL without '{', '}', '?' or '#'".into());
    }
    LinkTemplate::parse(&format!("{base}/reset-password?token={{token}}")).map_err(|e| e.reason)
}

// ---- errors ----------------------------------------------------------------------------------

/// One entry of an error's `details`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Detail {
    /// Where in the body (schema errors only).
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    /// Every failed password rule (password errors only).
    #[serde(skip_serializing_if = "Option::is_none")]
    validation_errors: Option<Vec<String>>,
    /// What is wrong.
    message: String,
}

/// An Unleash error: `{"name","message","details"}`, with an `id` first when a middleware threw
/// it (content type, schema), as Unleash does.
#[derive(Debug)]
pub struct UnleashError {
    status: StatusCode,
    with_id: bool,
    name: &'static str,
    message: String,
    details: Vec<Detail>,
    retry_after: Option<i64>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    name: &'a str,
    message: &'a str,
    details: &'a [Detail],
}

const BAD_DATA: &str = "Request validation failed: your request body or params contain invalid data. Refer to the `details` list for more information.";

impl UnleashError {
    /// A handler error: details repeat the message.
    fn plain(status: StatusCode, name: &'static str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            status,
            with_id: false,
            name,
            details: vec![Detail {
                path: None,
                validation_errors: None,
                message: message.clone(),
            }],
            message,
            retry_after: None,
        }
    }

    /// A schema violation (`BadDataError` from the validation middleware).
    fn bad_data(path: &str, message: String) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            with_id: true,
            name: "BadDataError",
            message: BAD_DATA.into(),
            details: vec![Detail {
                path: Some(path.into()),
                validation_errors: None,
                message,
            }],
            retry_after: None,
        }
    }

    /// `BadDataError` without a schema path (unreadable bodies).
    fn bad_body(status: StatusCode, message: &str) -> Self {
        let mut e = Self::plain(
            status,
            "BadDataError",
            format!("Request validation failed: your request body or params contain invalid data: {message}"),
        );
        e.details[0].message = message.into();
        e.with_id = true;
        e
    }

    /// `OwaspValidationError` listing every failed rule.
    fn weak_password(messages: Vec<String>) -> Self {
        let first = messages.first().cloned().unwrap_or_default();
        Self {
            status: StatusCode::BAD_REQUEST,
            with_id: false,
            name: "OwaspValidationError",
            message: first.clone(),
            details: vec![Detail {
                path: None,
                validation_errors: Some(messages),
                message: first,
            }],
            retry_after: None,
        }
    }

    fn empty_password() -> Self {
        let message = "Password cannot be empty or undefined".to_string();
        Self {
            status: StatusCode::BAD_REQUEST,
            with_id: false,
            name: "PasswordUndefinedError",
            message: message.clone(),
            details: vec![Detail {
                path: None,
                validation_errors: Some(vec![]),
                message,
            }],
            retry_after: None,
        }
    }

    fn invalid_token() -> Self {
        Self::plain(
            StatusCode::UNAUTHORIZED,
            "InvalidTokenError",
            "Token was not valid",
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for UnleashError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            id: self.with_id.then(uuid_v4),
            name: self.name,
            message: &self.message,
            details: &self.details,
        };
        kit::answer(self.status, JSON, &body, self.retry_after)
    }
}

const JSON: &str = "application/json; charset=utf-8";

fn violations(v: &[Violation]) -> Vec<String> {
    v.iter().map(|v| v.message.clone()).collect()
}

impl From<CoreError> for UnleashError {
    fn from(e: CoreError) -> Self {
        use StatusCode as S;
        match e {
            CoreError::TokenGone => Self::invalid_token(),
            CoreError::Policy(v) if v.violations.iter().any(|v| v.code == "reused") => Self::plain(
                S::BAD_REQUEST,
                "PasswordPreviouslyUsedError",
                "You've previously used this password. Please use a new password.",
            ),
            CoreError::Policy(v) => Self::weak_password(violations(&v.violations)),
            CoreError::Invalid(i) => Self::bad_body(S::BAD_REQUEST, &i.to_string()),
            CoreError::UnknownTenant | CoreError::NotFound(_) | CoreError::UnknownClient => {
                tracing::error!(error = %e, "the Unleash dialect's tenant or client is missing");
                Self::plain(
                    S::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "The server is not set up for this request; it has been logged.",
                )
            }
            CoreError::Conflict(_) => {
                Self::plain(S::CONFLICT, "NameExistsError", "There is a conflict.")
            }
            CoreError::BadCredentials | CoreError::Unauthenticated | CoreError::Locked { .. } => {
                Self::plain(
                    S::UNAUTHORIZED,
                    "AuthenticationRequired",
                    "You must log in to use Unleash.",
                )
            }
            // Only trusted-caller flows (Crafter's) raise these; this dialect never calls them.
            CoreError::Forbidden
            | CoreError::LinkNotAllowed
            | CoreError::Disabled
            | CoreError::CoolingDown { .. } => {
                Self::plain(S::FORBIDDEN, "NoAccessError", "You do not have access.")
            }
            CoreError::Overloaded => SurfaceError::overloaded().into(),
            CoreError::Unavailable(cause) => SurfaceError::database(&cause).into(),
            CoreError::Internal(msg) => SurfaceError::internal(UNLEASH, &msg).into(),
            // Only the admin APIs raise these (the outbox, API keys); here they would be a bug.
            e @ (CoreError::MessageErased | CoreError::KeyRevoked | CoreError::KeyExpired) => {
                SurfaceError::internal(UNLEASH, &e).into()
            }
        }
    }
}

impl From<SurfaceError> for UnleashError {
    fn from(e: SurfaceError) -> Self {
        use StatusCode as S;
        match e {
            SurfaceError::Limited { retry_after } => rate_limited(retry_after),
            SurfaceError::Unavailable(why) => {
                let mut out = Self::plain(
                    S::SERVICE_UNAVAILABLE,
                    "InternalError",
                    "The server is busy; retry shortly.",
                );
                out.retry_after = Some(why.retry_after());
                out
            }
            SurfaceError::Internal => Self::plain(
                S::INTERNAL_SERVER_ERROR,
                "UnknownError",
                "An unexpected error occurred; it has been logged.",
            ),
        }
    }
}

impl From<BodyError> for UnleashError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::ContentType(given) => {
                let message = format!(
                    "We do not accept the content-type you provided ({}). Try using one of the content-types we do accept instead (application/json) and make sure the body is in the corresponding format.",
                    given.as_deref().filter(|g| !g.is_empty()).unwrap_or("you didn't provide one")
                );
                let mut e = Self::plain(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "ContentTypeError",
                    message,
                );
                e.with_id = true;
                e
            }
            BodyError::Unread(Unread::TooLarge) => Self::bad_body(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The request body is larger than the server accepts.",
            ),
            BodyError::Malformed(why) => Self::bad_body(
                StatusCode::BAD_REQUEST,
                &format!("The request body is not valid JSON ({why})."),
            ),
            BodyError::Unread(Unread::TimedOut) => Self::bad_body(
                StatusCode::REQUEST_TIMEOUT,
                &format!(
                    "The request body did not arrive within {} seconds.",
                    crate::body::BODY_READ_TIMEOUT.as_secs()
                ),
            ),
            BodyError::Unread(Unread::Broken) => Self::bad_body(
                StatusCode::BAD_REQUEST,
                "The request body could not be read.",
            ),
        }
    }
}

fn rate_limited(retry_after: i64) -> UnleashError {
    let mut e = UnleashError::plain(
        StatusCode::TOO_MANY_REQUESTS,
        "RateLimitError",
        "Too many requests, please try again later.",
    );
    e.retry_after = Some(retry_after.max(1));
    e
}

async fn not_found() -> UnleashError {
    UnleashError::plain(
        StatusCode::NOT_FOUND,
        "NotFoundError",
        "The requested resource was not found.",
    )
}

// ---- the schemas -----------------------------------------------------------------------------

/// Checks a body against an Unleash request schema (an object of required string properties,
/// `additionalProperties: false`) and reports the first violation as Ajv would: the root type,
/// then `required` in order, then extra properties, then each property's type. Values of
/// `secret` properties are not repeated in the message.
fn check_schema(body: &Value, required: &[&str], secret: &[&str]) -> Result<(), UnleashError> {
    let Value::Object(map) = body else {
        // Ajv would print the whole body; where the schema has a secret property, the body may
        // be that secret (a bare string, or the object wrapped in an array), so it is hidden.
        let sent = if secret.is_empty() {
            js_stringify(body)
        } else {
            "[hidden]".to_string()
        };
        return Err(UnleashError::bad_data(
            "",
            format!("The `` property must be object. You sent {sent}."),
        ));
    };
    if let Some(missing) = required.iter().find(|k| !map.contains_key(**k)) {
        return Err(UnleashError::bad_data(
            missing,
            format!(
                "The `{missing}` property is required. It was not present on the data you sent."
            ),
        ));
    }
    if let Some(extra) = map.keys().find(|k| !required.contains(&k.as_str())) {
        return Err(UnleashError::bad_data(
            extra,
            format!("The root object of the request body does not allow additional properties. Your request included the `{extra}` property."),
        ));
    }
    for key in required {
        let v = &map[*key];
        if !v.is_string() {
            let sent = if secret.contains(key) {
                "[hidden]".to_string()
            } else {
                js_stringify(v)
            };
            return Err(UnleashError::bad_data(
                &format!("/{key}"),
                format!("The `/{key}` property must be string. You sent {sent}."),
            ));
        }
    }
    Ok(())
}

fn string_of<'a>(body: &'a Value, key: &str) -> &'a str {
    body.get(key).and_then(Value::as_str).unwrap_or_default()
}

type UnleashResult = Result<Response, UnleashError>;

/// 200 with an empty body, as Express's `res.status(200).end()`.
fn ok_empty() -> Response {
    StatusCode::OK.into_response()
}

/// The password as the core takes it. Past the hard maximum, the answer is the length rule of
/// the rules in force.
fn password(m: &Mount, raw: &str) -> Result<Password, UnleashError> {
    if raw.is_empty() {
        return Err(UnleashError::empty_password());
    }
    Password::parse(raw).map_err(|_| {
        UnleashError::weak_password(vec![match m.rules {
            UnleashRules::Unleash => owasp::MAX_LENGTH.to_string(),
            UnleashRules::Tenant => format!("Use at most {PASSWORD_MAX_CHARS} characters."),
        }])
    })
}

/// The password rules in force, checked without any account, as Unleash does before the token.
async fn check_strength(s: &AppState, m: &Mount, password: &Password) -> Result<(), UnleashError> {
    let verdict = s
        .service
        .check_password_with(&m.tenant, password, None, m.mode())
        .await?;
    if verdict.is_ok() {
        Ok(())
    } else {
        Err(UnleashError::weak_password(violations(&verdict.violations)))
    }
}

// ---- handlers --------------------------------------------------------------------------------

async fn send_reset_email(
    State(s): State<AppState>,
    Extension(m): Extension<Arc<Mount>>,
    ip: ClientIp,
    body: RawBody,
) -> UnleashResult {
    s.admit(UNLEASH, Limit::Recovery, ip)?;
    let body = kit::json(body)?;
    check_schema(&body, &["email"], &[])?;
    let raw = string_of(&body, "email");
    let email = Email::parse(raw).map_err(|_| {
        UnleashError::bad_data(
            "/email",
            format!(
                "The `/email` property must match format \"email\". You sent {}.",
                js_stringify(&Value::String(raw.into()))
            ),
        )
    })?;
    let request = s.service.request_reset(
        &m.tenant,
        Lookup::email(&email),
        Some(m.client.clone()),
        None,
        ip.text(),
    );
    s.run(Effect::ResetRequested, request).await?;
    Ok(ok_empty())
}

/// Unleash's token user: who the token resets, in Unleash's terms.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TokenUser<'a> {
    token: &'a str,
    created_by: &'a str,
    email: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    name: &'a str,
    id: i64,
    role: Role,
}

/// An Unleash root role.
#[derive(Serialize)]
struct Role {
    id: u8,
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'static str,
}

/// The person's Unleash root role: the first of their roles named like one (any case), else
/// Viewer, the least privilege.
fn root_role(p: &Person) -> Role {
    const ROLES: [(u8, &str); 3] = [(1, "Admin"), (2, "Editor"), (3, "Viewer")];
    let (id, name) = p
        .roles
        .iter()
        .find_map(|r| ROLES.iter().find(|(_, n)| n.eq_ignore_ascii_case(r)))
        .copied()
        .unwrap_or(ROLES[2]);
    Role {
        id,
        kind: "root",
        name,
    }
}

async fn validate_token(
    State(s): State<AppState>,
    Extension(m): Extension<Arc<Mount>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> UnleashResult {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let token = query.get("token").map(String::as_str).unwrap_or_default();
    let secret = ResetSecret::parse(token).map_err(|_| UnleashError::invalid_token())?;
    let info = s.service.inspect_token(&m.tenant, &secret).await?;
    let p = &info.person;
    let user = TokenUser {
        token,
        created_by: "unleash_system_user",
        email: p.email.as_str(),
        name: p.display_name.as_str(),
        id: p.number,
        role: root_role(p),
    };
    Ok(kit::answer(StatusCode::OK, JSON, &user, None))
}

async fn change_password(
    State(s): State<AppState>,
    Extension(m): Extension<Arc<Mount>>,
    ip: ClientIp,
    body: RawBody,
) -> UnleashResult {
    s.admit(UNLEASH, Limit::Auth, ip)?;
    let body = kit::json(body)?;
    check_schema(&body, &["token", "password"], &["token", "password"])?;
    // Unleash's order: the password's strength before the token.
    let password = password(&m, string_of(&body, "password"))?;
    check_strength(&s, &m, &password).await?;
    let secret =
        ResetSecret::parse(string_of(&body, "token")).map_err(|_| UnleashError::invalid_token())?;
    let options = CompleteOptions {
        holder: None,
        mode: m.mode(),
    };
    let ip = ip.text();
    let complete =
        s.service
            .complete_reset_with(&m.tenant, &secret, &password, &options, ip.as_deref());
    s.run(Effect::ResetCompleted, complete).await?;
    Ok(ok_empty())
}

async fn validate_password(
    State(s): State<AppState>,
    Extension(m): Extension<Arc<Mount>>,
    ip: ClientIp,
    body: RawBody,
) -> UnleashResult {
    // Anonymous like the native password/check, and limited the same way.
    s.admit(UNLEASH, Limit::PasswordCheck, ip)?;
    let body = kit::json(body)?;
    check_schema(&body, &["password"], &["password"])?;
    let password = password(&m, string_of(&body, "password"))?;
    check_strength(&s, &m, &password).await?;
    Ok(ok_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn an_unavailable_database_is_a_503_with_retry_after_and_no_detail() {
        crate::dialects::kit::assert_unavailable_answer(|e| {
            axum::response::IntoResponse::into_response(UnleashError::from(e))
        })
        .await;
    }

    fn body_of(e: UnleashError) -> Value {
        serde_json::to_value(ErrorBody {
            id: e.with_id.then(|| "ID".to_string()),
            name: e.name,
            message: &e.message,
            details: &e.details,
        })
        .unwrap()
    }

    #[test]
    fn schema_errors_read_like_ajv_through_unleash() {
        let e = check_schema(&json!({}), &["email"], &[]).unwrap_err();
        assert_eq!(
            body_of(e),
            json!({"id":"ID","name":"BadDataError","message":BAD_DATA,"details":[{"path":"email","message":"The `email` property is required. It was not present on the data you sent."}]})
        );
        let e = check_schema(&json!({"email":"a@b.c","foo":1}), &["email"], &[]).unwrap_err();
        assert_eq!(
            body_of(e)["details"][0]["message"],
            "The root object of the request body does not allow additional properties. Your request included the `foo` property."
        );
        let e = check_schema(
            &json!({"token":"t","password":12345678}),
            &["token", "password"],
            &["password"],
        )
        .unwrap_err();
        assert_eq!(
            body_of(e)["details"][0],
            json!({"path":"/password","message":"The `/password` property must be string. You sent [hidden]."})
        );
        let e = check_schema(&json!([1]), &["email"], &[]).unwrap_err();
        assert_eq!(
            body_of(e)["details"][0]["message"],
            "The `` property must be object. You sent [1]."
        );
        let e = check_schema(&json!(["hunter2"]), &["password"], &["password"]).unwrap_err();
        assert_eq!(
            body_of(e)["details"][0]["message"],
            "The `` property must be object. You sent [hidden]."
        );
    }

    #[test]
    fn content_type_errors_quote_the_header() {
        let e = UnleashError::from(BodyError::ContentType(Some("text/plain".into())));
        assert_eq!(e.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(body_of(e)["message"], "We do not accept the content-type you provided (text/plain). Try using one of the content-types we do accept instead (application/json) and make sure the body is in the corresponding format.");
        let e = UnleashError::from(BodyError::ContentType(None));
        assert!(body_of(e)["message"]
            .as_str()
            .unwrap()
            .contains("(you didn't provide one)"));
    }

    #[test]
    fn links_and_config() {
        assert_eq!(
            link_template("https://unleash.example.com/")
                .unwrap()
                .as_str(),
            "https://unleash.example.com/reset-password?token={token}"
        );
        assert!(link_template("").is_err());
        let mut c = UnleashConfig {
            unleash_url: "https://u.example.com".into(),
            ..Default::default()
        };
        assert!(matches!(Unleash::mount(&c), Ok(None)));
        c.base_path = "/unleash/".into();
        assert!(Unleash::mount(&c).is_err());
        c.base_path = "/unleash".into();
        c.enabled = true;
        let m = Unleash::mount(&c).unwrap().unwrap();
        assert_eq!(
            m.link.as_str(),
            "https://u.example.com/reset-password?token={token}"
        );
        c.unleash_url = String::new();
        assert!(Unleash::mount(&c).err().unwrap().contains("unleash_url"));
    }
}
