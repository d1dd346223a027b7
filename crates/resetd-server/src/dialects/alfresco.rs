//! Alfresco Content Services, public REST API v1 (dialects.md §1): `request-password-reset` and
//! `reset-password` under `/alfresco/api/{network}/public/alfresco/versions/1/people/{personId}/`,
//! answering 202 with an empty body, and Alfresco's error envelope for everything else.
//!
//! Unlike Alfresco, the client is checked before anything that depends on the account, so an
//! unregistered client gets the same 404 for every person (Alfresco's enumeration leak, §1.6).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::{Extension, Router};
use resetd_core::model::{LinkTemplate, Lookup, Timestamp};
use resetd_core::secret::ResetSecret;
use resetd_core::service::{Actor, CompleteOptions, Service};
use resetd_core::types::{ClientName, Login, Password, TenantId};
use resetd_core::CoreError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::kit::{self, uuid_v4, BodyError, Dialect};
use crate::body::{RawBody, Unread};
use crate::surface::{Effect, Limit, SurfaceError};
use crate::{AppState, ClientIp};

/// The surface's name in logs.
const ALFRESCO: &str = "alfresco";

/// The prefix of every Alfresco route; unknown paths below it get Alfresco's 404.
pub const PREFIX: &str = "/alfresco/api";

/// Where Alfresco's client registry puts its clients among the tenant's registered clients.
pub const CLIENT_PREFIX: &str = "alfresco.";

/// The Alfresco dialect's settings (`[dialects.alfresco]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlfrescoConfig {
    /// Whether the routes are mounted at all.
    pub enabled: bool,
    /// The tenant whose people the API addresses.
    pub tenant: String,
    /// The network id in the path (`-default-` on a single-tenant Alfresco).
    pub network: String,
    /// The registered client apps by name, as in `repo.client-app.<name>.*`.
    pub clients: BTreeMap<String, AlfrescoClient>,
    /// Alfresco's `user.name.caseSensitive`: `false` (Alfresco's default) finds the person id in
    /// any letter case, on request and completion; `true` only as written.
    pub case_sensitive_user_names: bool,
}

/// One registered client app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlfrescoClient {
    /// The page the emailed link opens (`repo.client-app.<name>.resetPasswordPageUrl`); the link
    /// is `<url>?key=<token>&id=activiti$<number>`.
    pub reset_password_page_url: String,
}

impl Default for AlfrescoConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            tenant: "default".into(),
            network: "-default-".into(),
            clients: BTreeMap::new(),
            case_sensitive_user_names: false,
        }
    }
}

/// The Alfresco dialect.
pub struct Alfresco;

/// The checked form of [`AlfrescoConfig`] the handlers see.
pub struct Mount {
    tenant: TenantId,
    network: String,
    /// The client apps by their Alfresco name.
    apps: BTreeMap<String, App>,
    case_sensitive: bool,
}

/// A client app: the tenant's client `alfresco.<name>` and the link it is registered with.
struct App {
    client: ClientName,
    link: LinkTemplate,
}

impl Dialect for Alfresco {
    type Config = AlfrescoConfig;
    type Mount = Mount;
    type Error = AlfrescoError;

    fn mount(c: &AlfrescoConfig) -> Result<Option<Mount>, String> {
        let tenant =
            TenantId::parse(&c.tenant).map_err(|e| format!("dialects.alfresco.tenant: {e}"))?;
        let network_ok = !c.network.is_empty()
            && c.network.len() <= 128
            && c.network
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b));
        if !network_ok {
            return Err(format!(
                "dialects.alfresco.network: {:?} must be 1 to 128 of A-Z, a-z, 0-9, '-', '_', '.', '@'",
                c.network
            ));
        }
        let mut apps = BTreeMap::new();
        for (name, app) in &c.clients {
            let client = client_name(name)
                .ok_or_else(|| format!("dialects.alfresco.clients.{name}: the name must be 1 to 55 of A-Z, a-z, 0-9, '.', '_', '-'"))?;
            let link = link_template(&app.reset_password_page_url).map_err(|e| {
                format!("dialects.alfresco.clients.{name}.reset_password_page_url: {e}")
            })?;
            apps.insert(name.clone(), App { client, link });
        }
        Ok(c.enabled.then(|| Mount {
            tenant,
            network: c.network.clone(),
            apps,
            case_sensitive: c.case_sensitive_user_names,
        }))
    }

    /// Registers the client apps as the tenant's clients `alfresco.<name>`, replacing changed ones.
    async fn provision(m: &Mount, service: &Service) -> Result<(), String> {
        let tenant = &m.tenant;
        service
            .tenant(tenant)
            .await
            .map_err(|e| format!("dialects.alfresco.tenant {tenant}: {e}"))?;
        for app in m.apps.values() {
            let current = service.client(tenant, &app.client).await.ok();
            if current.is_some_and(|c| c.link_template == app.link) {
                continue;
            }
            service
                .register_client(
                    tenant,
                    app.client.clone(),
                    app.link.clone(),
                    vec![],
                    &Actor::System,
                )
                .await
                .map_err(|e| format!("registering Alfresco client: {e}"))?;
        }
        Ok(())
    }

    fn routes(m: &Mount) -> Router<AppState> {
        let people = format!(
            "{PREFIX}/{}/public/alfresco/versions/1/people/{{person}}",
            m.network
        );
        Router::new()
            .route(
                &format!("{people}/request-password-reset"),
                post(request_password_reset).fallback(method_not_allowed),
            )
            .route(
                &format!("{people}/reset-password"),
                post(reset_password).fallback(method_not_allowed),
            )
            .route(&format!("{PREFIX}/{{*rest}}"), any(not_found))
    }
}

impl Mount {
    /// The person a person id names, as Alfresco's `user.name.caseSensitive` says.
    fn person(&self, id: &Login) -> Lookup {
        if self.case_sensitive {
            Lookup::login(id)
        } else {
            Lookup::login_any_case(id)
        }
    }
}

/// The tenant's client name for an Alfresco client app.
fn client_name(app: &str) -> Option<ClientName> {
    if app.is_empty() {
        return None;
    }
    ClientName::parse(&format!("{CLIENT_PREFIX}{app}")).ok()
}

/// Alfresco's link: the page URL without trailing `/`, then `key` and `id` (the `$` unencoded).
fn link_template(page_url: &str) -> Result<LinkTemplate, String> {
    let base = page_url.trim_end_matches('/');
    if base.contains('{') || base.contains('}') || base.contains('#') {
        return Err("must not contain '{', '}' or '#'".into());
    }
    let sep = if base.contains('?') { '&' } else { '?' };
    LinkTemplate::parse(&format!(
        "{base}{sep}key={{token}}&id=activiti${{token_number}}"
    ))
    .map_err(|e| e.reason)
}

// ---- the error envelope ----------------------------------------------------------------------

const STACK_TRACE: &str =
    "For security reasons the stack trace is no longer displayed, but the property is kept for previous versions";
const DESCRIPTION_URL: &str = "https://api-explorer.alfresco.com";
const API_DEFAULT: &str = "framework.exception.ApiDefault";

/// An Alfresco error: `{"error":{errorKey,statusCode,briefSummary,stackTrace,descriptionURL,logId}}`.
#[derive(Debug, Clone)]
pub struct AlfrescoError {
    status: StatusCode,
    key: String,
    message: String,
    retry_after: Option<i64>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    error_key: &'a str,
    status_code: u16,
    brief_summary: String,
    stack_trace: &'a str,
    #[serde(rename = "descriptionURL")]
    description_url: &'a str,
    log_id: String,
}

impl AlfrescoError {
    /// An error whose `errorKey` is `key` and whose summary reads `message`.
    pub fn new(status: StatusCode, key: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            key: key.into(),
            message: message.into(),
            retry_after: None,
        }
    }

    /// An `InvalidArgumentException` thrown with a literal message: the message is also the key.
    fn invalid_argument(message: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message, message)
    }

    /// `Field '<name>' is null, but is required.`
    fn null_field(name: &str) -> Self {
        Self::invalid_argument(&format!("Field '{name}' is null, but is required."))
    }

    fn client_not_found(name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            API_DEFAULT,
            format!("Client was not found [{name}]"),
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

/// Alfresco's error-log number: month, day (by the service's clock), and a four-digit counter
/// (`05230001`).
fn error_number(now: Timestamp) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) % 10_000 + 1;
    let (month, day) = time::OffsetDateTime::from_unix_timestamp(now.0 / 1000)
        .map(|t| (u8::from(t.month()), t.day()))
        .unwrap_or((1, 1));
    format!("{month:02}{day:02}{:04}", n % 10_000)
}

/// Every error carries the day in its number, so it is written once the service's clock is read.
impl IntoResponse for AlfrescoError {
    fn into_response(self) -> Response {
        crate::surface::clocked(self.status, move |now| self.write(now))
    }
}

impl AlfrescoError {
    fn write(&self, now: Timestamp) -> Response {
        let body = Envelope {
            error: Body {
                error_key: &self.key,
                status_code: self.status.as_u16(),
                brief_summary: format!("{} {}", error_number(now), self.message),
                stack_trace: STACK_TRACE,
                description_url: DESCRIPTION_URL,
                log_id: uuid_v4(),
            },
        };
        kit::answer(
            self.status,
            "application/json;charset=UTF-8",
            &body,
            self.retry_after,
        )
    }
}

impl From<CoreError> for AlfrescoError {
    fn from(e: CoreError) -> Self {
        use StatusCode as S;
        match e {
            CoreError::Invalid(i) => Self::invalid_argument(&i.to_string()),
            CoreError::UnknownTenant | CoreError::NotFound(_) => Self::new(
                S::NOT_FOUND,
                "framework.exception.EntityNotFound",
                "The entity was not found",
            ),
            CoreError::Conflict(what) => Self::new(
                S::CONFLICT,
                "framework.exception.ConstraintViolated",
                format!("A constraint was violated: {what}"),
            ),
            CoreError::UnknownClient => {
                Self::new(S::NOT_FOUND, API_DEFAULT, "Client was not found")
            }
            // Alfresco answers a dead id/key with 202 and does nothing; handlers do so before here.
            CoreError::TokenGone => {
                Self::new(S::NOT_FOUND, API_DEFAULT, "The reset request was not found")
            }
            CoreError::Policy(v) => Self::new(
                S::BAD_REQUEST,
                API_DEFAULT,
                format!("Invalid password value: {}", join_messages(&v.violations)),
            ),
            CoreError::BadCredentials | CoreError::Unauthenticated | CoreError::Locked { .. } => {
                Self::new(
                    S::UNAUTHORIZED,
                    "framework.exception.NotAuthenticated",
                    "Authentication failed",
                )
            }
            // Only trusted-caller flows (Crafter's) raise these; this dialect never calls them.
            CoreError::Forbidden
            | CoreError::LinkNotAllowed
            | CoreError::Disabled
            | CoreError::CoolingDown { .. } => Self::new(
                S::FORBIDDEN,
                "framework.exception.PermissionDenied",
                "Permission was denied",
            ),
            CoreError::Overloaded => SurfaceError::overloaded().into(),
            CoreError::Unavailable(cause) => SurfaceError::database(&cause).into(),
            CoreError::Internal(msg) => SurfaceError::internal(ALFRESCO, &msg).into(),
            // Only the admin APIs raise these (the outbox, API keys); here they would be a bug.
            e @ (CoreError::MessageErased | CoreError::KeyRevoked | CoreError::KeyExpired) => {
                SurfaceError::internal(ALFRESCO, &e).into()
            }
        }
    }
}

impl From<SurfaceError> for AlfrescoError {
    fn from(e: SurfaceError) -> Self {
        use StatusCode as S;
        match e {
            SurfaceError::Limited { retry_after } => rate_limited(retry_after),
            SurfaceError::Unavailable(why) => {
                let mut out = Self::new(
                    S::SERVICE_UNAVAILABLE,
                    API_DEFAULT,
                    "The server is busy; retry shortly",
                );
                out.retry_after = Some(why.retry_after());
                out
            }
            SurfaceError::Internal => Self::new(
                S::INTERNAL_SERVER_ERROR,
                API_DEFAULT,
                "Unknown error calling the Rest API",
            ),
        }
    }
}

impl From<BodyError> for AlfrescoError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::ContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                API_DEFAULT,
                "Unsupported Content-Type: send the body as application/json",
            ),
            BodyError::Unread(Unread::TooLarge) => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "framework.exception.RequestEntityTooLarge",
                "The request body is larger than the server accepts",
            ),
            BodyError::Malformed(why) => Self::invalid_argument(&format!(
                "Could not read content from HTTP request body: {why}"
            )),
            BodyError::Unread(Unread::TimedOut) => Self::new(
                StatusCode::REQUEST_TIMEOUT,
                API_DEFAULT,
                format!(
                    "The request body did not arrive within {} seconds",
                    crate::body::BODY_READ_TIMEOUT.as_secs()
                ),
            ),
            BodyError::Unread(Unread::Broken) => {
                Self::invalid_argument("Could not read content from HTTP request body")
            }
        }
    }
}

fn join_messages(v: &[resetd_core::policy::Violation]) -> String {
    v.iter()
        .map(|v| v.message.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

fn rate_limited(retry_after: i64) -> AlfrescoError {
    let mut e = AlfrescoError::new(
        StatusCode::TOO_MANY_REQUESTS,
        API_DEFAULT,
        "Too many requests from this address; try again later",
    );
    e.retry_after = Some(retry_after.max(1));
    e
}

async fn method_not_allowed() -> AlfrescoError {
    AlfrescoError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "framework.exception.UnsupportedResourceOperation",
        "The operation is unsupported",
    )
}

async fn not_found(uri: Uri) -> AlfrescoError {
    let path: String = uri.path().chars().take(256).collect();
    AlfrescoError::new(
        StatusCode::NOT_FOUND,
        "framework.exception.NotFound",
        format!("{path} was not found"),
    )
}

// ---- handlers --------------------------------------------------------------------------------

type AlfrescoResult = Result<Response, AlfrescoError>;

/// 202 with an empty body: Alfresco's one success answer.
fn accepted() -> Response {
    StatusCode::ACCEPTED.into_response()
}

fn person_path(p: Result<Path<String>, PathRejection>) -> Result<String, AlfrescoError> {
    p.map(|Path(person)| person)
        .map_err(|_| AlfrescoError::invalid_argument("Could not read the person id from the path"))
}

/// A body field as Jackson binds it to a `String`: absent, `null` and `""` are null; numbers
/// and booleans become their text; objects and arrays cannot be read.
fn string_field(body: &Value, name: &str) -> Result<Option<String>, AlfrescoError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(Some(v.to_string())),
        Some(_) => Err(AlfrescoError::invalid_argument(&format!(
            "Could not read content from HTTP request body: '{name}' must be a string"
        ))),
    }
}

fn object_body(body: RawBody) -> Result<Value, AlfrescoError> {
    let v = kit::json(body)?;
    if !v.is_object() {
        return Err(AlfrescoError::invalid_argument(
            "Could not read content from HTTP request body: expected a JSON object",
        ));
    }
    Ok(v)
}

async fn request_password_reset(
    State(s): State<AppState>,
    Extension(m): Extension<Arc<Mount>>,
    ip: ClientIp,
    person: Result<Path<String>, PathRejection>,
    body: RawBody,
) -> AlfrescoResult {
    let person = person_path(person)?;
    s.admit(ALFRESCO, Limit::Recovery, ip)?;
    let body = object_body(body)?;
    let app = string_field(&body, "client")?.ok_or_else(|| AlfrescoError::null_field("client"))?;
    // The client is checked first, for every person alike: no account is revealed by it.
    let client = m
        .apps
        .get(&app)
        .map(|a| a.client.clone())
        .ok_or_else(|| AlfrescoError::client_not_found(&app))?;
    // A person id that cannot be a login names nobody: the same 202 as for an unknown person.
    let Ok(login) = Login::parse(&person) else {
        return Ok(accepted());
    };
    let request =
        s.service
            .request_reset(&m.tenant, m.person(&login), Some(client), None, ip.text());
    match s.run(Effect::ResetRequested, request).await {
        Ok(()) => Ok(accepted()),
        Err(CoreError::UnknownClient) => Err(AlfrescoError::client_not_found(&app)),
        Err(e) => Err(e.into()),
    }
}

/// Reads Alfresco's `id` (`activiti$<n>`) as its number.
fn workflow_number(id: &str) -> Option<u64> {
    let n = id.strip_prefix("activiti$")?;
    if n.is_empty() || n.len() > 20 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

async fn reset_password(
    State(s): State<AppState>,
    Extension(m): Extension<Arc<Mount>>,
    ip: ClientIp,
    person: Result<Path<String>, PathRejection>,
    body: RawBody,
) -> AlfrescoResult {
    let person = person_path(person)?;
    s.admit(ALFRESCO, Limit::Auth, ip)?;
    let body = object_body(body)?;
    let raw_password =
        string_field(&body, "password")?.ok_or_else(|| AlfrescoError::null_field("password"))?;
    let id = string_field(&body, "id")?.ok_or_else(|| AlfrescoError::null_field("id"))?;
    let key = string_field(&body, "key")?.ok_or_else(|| AlfrescoError::null_field("key"))?;
    // Like Alfresco, a key, id or person that does not fit answers 202 and changes nothing. The
    // id is the key's public number, so an id from another link does not fit either.
    let (Ok(secret), Ok(login)) = (ResetSecret::parse(&key), Login::parse(&person)) else {
        tracing::warn!("alfresco reset-password: unusable key or person id; nothing done");
        return Ok(accepted());
    };
    if workflow_number(&id) != Some(secret.public_number()) {
        tracing::warn!("alfresco reset-password: id does not belong to the key; nothing done");
        return Ok(accepted());
    }
    let password = Password::parse(&raw_password).map_err(|e| {
        AlfrescoError::new(
            StatusCode::BAD_REQUEST,
            API_DEFAULT,
            format!("Invalid password value: the password {}", e.reason),
        )
    })?;
    let options = CompleteOptions {
        holder: Some(m.person(&login)),
        mode: None,
    };
    let ip = ip.text();
    let complete =
        s.service
            .complete_reset_with(&m.tenant, &secret, &password, &options, ip.as_deref());
    match s.run(Effect::ResetCompleted, complete).await {
        Ok(_) => Ok(accepted()),
        Err(CoreError::TokenGone) => {
            tracing::warn!("alfresco reset-password: unknown, expired or used key; nothing done");
            Ok(accepted())
        }
        // Alfresco's own refusal, word for word: only white space reaches it, so echoing the
        // value shows nothing but its length.
        Err(CoreError::Policy(_)) if raw_password.trim().is_empty() => Err(AlfrescoError::new(
            StatusCode::BAD_REQUEST,
            API_DEFAULT,
            format!("Invalid password value [{raw_password}]"),
        )),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_follow_alfresco() {
        let t = link_template("https://share.example.com/share/page/reset-password/").unwrap();
        assert_eq!(
            t.as_str(),
            "https://share.example.com/share/page/reset-password?key={token}&id=activiti${token_number}"
        );
        let t = link_template("https://x.example.com/reset?app=share").unwrap();
        assert!(t.as_str().contains("?app=share&key={token}"));
        assert!(link_template("/relative").is_err());
        assert!(link_template("https://x.example.com/{token}").is_err());
    }

    #[tokio::test]
    async fn an_unavailable_database_is_a_503_with_retry_after_and_no_detail() {
        crate::dialects::kit::assert_unavailable_answer(|e| {
            axum::response::IntoResponse::into_response(AlfrescoError::from(e))
        })
        .await;
    }

    #[test]
    fn workflow_ids() {
        assert_eq!(workflow_number("activiti$10"), Some(10));
        assert_eq!(workflow_number("activiti$"), None);
        assert_eq!(workflow_number("jbpm$10"), None);
        assert_eq!(workflow_number("activiti$-1"), None);
        assert_eq!(workflow_number("activiti$99999999999999999999999"), None);
    }

    #[test]
    fn error_numbers_are_eight_digits_dated_by_the_given_clock() {
        // 2026-05-23T12:00:00Z
        let n = error_number(Timestamp(1_779_537_600_000));
        assert_eq!(n.len(), 8, "{n}");
        assert!(n.bytes().all(|b| b.is_ascii_digit()));
        assert!(n.starts_with("0523"), "{n}");
    }

    #[tokio::test]
    async fn errors_are_written_with_the_service_clock() {
        let res = AlfrescoError::null_field("client").into_response();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        let res = crate::surface::written(res, Timestamp(1_779_537_600_000));
        let body = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        let summary = v["error"]["briefSummary"].as_str().unwrap();
        assert!(
            summary.starts_with("0523") && summary.ends_with(" Field 'client' is null, but is required."),
            "{summary}"
        );
    }

    #[test]
    fn config_is_checked() {
        let mut c = AlfrescoConfig::default();
        assert!(matches!(Alfresco::mount(&c), Ok(None)));
        c.clients.insert(
            "share".into(),
            AlfrescoClient {
                reset_password_page_url: "ftp://x".into(),
            },
        );
        assert!(Alfresco::mount(&c)
            .err()
            .unwrap()
            .contains("clients.share"));
        c.clients.clear();
        c.network = "a/b".into();
        assert!(Alfresco::mount(&c).is_err());
        c.network = "-default-".into();
        c.enabled = true;
        c.clients.insert(
            "share".into(),
            AlfrescoClient {
                reset_password_page_url: "https://share.example.com/reset".into(),
            },
        );
        let m = Alfresco::mount(&c).unwrap().unwrap();
        assert_eq!(m.apps["share"].client.as_str(), "alfresco.share");
    }
}
