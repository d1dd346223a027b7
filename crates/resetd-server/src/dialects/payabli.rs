//! Payabli (dialects.md §5): `POST /api/User/authreset` with the organisation's API token in the
//! `requestToken` header and `{email, entry, entryType}` in the body; `{responseText, isSuccess}`
//! on success, whether or not the address has an account, and the `PayabliErrorBody` shape for
//! every error.
//!
//! Payabli completes resets in its hosted UI, whose contract is not public; here the emailed link
//! goes to a configured page (or resetd's own), which completes through the native API.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::{Extension, Router};
use resetd_core::model::{LinkTemplate, Lookup, Scope};
use resetd_core::secret::ApiKeySecret;
use resetd_core::service::{Actor, Service};
use resetd_core::types::{ClientName, Email, TenantId};
use resetd_core::CoreError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::kit::{self, BodyError, Dialect};
use crate::body::{RawBody, Unread};
use crate::ratelimit::{KeyLimiter, DEFAULT_KEY_BURST, DEFAULT_KEY_PER_MINUTE};
use crate::surface::{Effect, SurfaceError};
use crate::{AppState, ClientIp};

/// The surface's name in logs.
const PAYABLI: &str = "payabli";

/// The prefix of Payabli's user resource; unknown paths below it get a Payabli error.
pub const PREFIX: &str = "/api/User";

/// The client whose link template the emails use, when one is configured.
pub const CLIENT: &str = "payabli";

/// The Payabli dialect's settings (`[dialects.payabli]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PayabliConfig {
    /// Whether the route is mounted at all.
    pub enabled: bool,
    /// The tenant of requests that name no `entry`.
    pub tenant: String,
    /// The public ids of the API keys accepted as `requestToken` (each must also belong to the
    /// tenant the request resolves to). Empty: no key is accepted.
    pub request_tokens: Vec<String>,
    /// Where emailed links point (`{token}`, `{tenant}`), e.g. the reset page of the front end
    /// that calls this API; empty: resetd's own hosted page.
    pub link_template: String,
    /// Entry points (`entry` + `entryType`) and the tenants they stand for.
    pub entries: Vec<PayabliEntry>,
    /// Sustained reset requests per minute per `requestToken` key (0: off). Payabli's back end
    /// asks for all its users from one address, so it is limited per key, not per IP.
    pub key_per_minute: u32,
    /// Burst of reset requests per `requestToken` key.
    pub key_burst: u32,
}

/// One entry point: Payabli's `entry` (a paypoint or partner identifier) with its `entryType`
/// (0 partner, 2 paypoint), mapped to a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayabliEntry {
    /// The `entry` value.
    pub entry: String,
    /// The `entryType` value.
    pub entry_type: i64,
    /// The tenant it maps to.
    pub tenant: String,
}

impl Default for PayabliConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            tenant: "default".into(),
            request_tokens: vec![],
            link_template: String::new(),
            entries: vec![],
            key_per_minute: DEFAULT_KEY_PER_MINUTE,
            key_burst: DEFAULT_KEY_BURST,
        }
    }
}

/// The Payabli dialect.
pub struct Payabli;

/// The checked form of [`PayabliConfig`] the handler sees.
pub struct Mount {
    tenant: TenantId,
    request_tokens: Vec<String>,
    /// The client `payabli` and the link template it is registered with, when one is configured.
    client: Option<(ClientName, LinkTemplate)>,
    entries: Vec<Entry>,
    keys: KeyLimiter,
}

struct Entry {
    entry: String,
    entry_type: i64,
    tenant: TenantId,
}

impl Dialect for Payabli {
    type Config = PayabliConfig;
    type Mount = Mount;
    type Error = PayabliError;

    fn mount(c: &PayabliConfig) -> Result<Option<Mount>, String> {
        let tenant =
            TenantId::parse(&c.tenant).map_err(|e| format!("dialects.payabli.tenant: {e}"))?;
        if c.enabled && c.request_tokens.is_empty() {
            return Err("dialects.payabli.request_tokens: list the ids of the API keys that act as requestToken (`resetd apikey create` prints them)".into());
        }
        let client = if c.link_template.is_empty() {
            None
        } else {
            let template = LinkTemplate::parse(&c.link_template)
                .map_err(|e| format!("dialects.payabli.link_template: {}", e.reason))?;
            Some((ClientName::parse(CLIENT).map_err(|e| e.to_string())?, template))
        };
        let mut entries: Vec<Entry> = Vec::with_capacity(c.entries.len());
        for (i, e) in c.entries.iter().enumerate() {
            let tenant = TenantId::parse(&e.tenant)
                .map_err(|err| format!("dialects.payabli.entries[{i}].tenant: {err}"))?;
            if e.entry.is_empty() || e.entry.len() > 256 {
                return Err(format!(
                    "dialects.payabli.entries[{i}].entry: must be 1 to 256 characters"
                ));
            }
            if entries
                .iter()
                .any(|o| o.entry == e.entry && o.entry_type == e.entry_type)
            {
                return Err(format!(
                    "dialects.payabli.entries[{i}]: entry {:?} with entry_type {} is listed twice",
                    e.entry, e.entry_type
                ));
            }
            entries.push(Entry {
                entry: e.entry.clone(),
                entry_type: e.entry_type,
                tenant,
            });
        }
        Ok(c.enabled.then(|| Mount {
            tenant,
            request_tokens: c.request_tokens.clone(),
            client,
            entries,
            keys: KeyLimiter::new(c.key_per_minute, c.key_burst),
        }))
    }

    /// Checks that every tenant exists and registers the client `payabli` in each when a link
    /// template is configured.
    async fn provision(m: &Mount, service: &Service) -> Result<(), String> {
        for tenant in m.tenants() {
            service
                .tenant(tenant)
                .await
                .map_err(|e| format!("dialects.payabli: tenant {tenant}: {e}"))?;
            let Some((client, template)) = &m.client else {
                continue;
            };
            if service
                .client(tenant, client)
                .await
                .is_ok_and(|c| c.link_template == *template)
            {
                continue;
            }
            service
                .register_client(
                    tenant,
                    client.clone(),
                    template.clone(),
                    vec![],
                    &Actor::System,
                )
                .await
                .map_err(|e| format!("registering the Payabli client: {e}"))?;
        }
        Ok(())
    }

    fn routes(_: &Mount) -> Router<AppState> {
        Router::new()
            .route(
                &format!("{PREFIX}/authreset"),
                post(auth_reset).fallback(method_not_allowed),
            )
            .route(&format!("{PREFIX}/{{*rest}}"), any(not_found))
    }
}

impl Mount {
    /// Every tenant the entry points name, and the default one, each once.
    fn tenants(&self) -> Vec<&TenantId> {
        let mut t: Vec<&TenantId> = std::iter::once(&self.tenant)
            .chain(self.entries.iter().map(|e| &e.tenant))
            .collect();
        t.sort_unstable();
        t.dedup();
        t
    }

    /// The tenant an entry point stands for; no entry means the default tenant.
    fn tenant_for(&self, entry: Option<(&str, i64)>) -> Option<&TenantId> {
        match entry {
            None => Some(&self.tenant),
            Some((entry, kind)) => self
                .entries
                .iter()
                .find(|e| e.entry == entry && e.entry_type == kind)
                .map(|e| &e.tenant),
        }
    }
}

// ---- errors ----------------------------------------------------------------------------------

/// A Payabli error: `{"isSuccess":false,"responseCode","responseText","responseData":{…}}`.
/// `responseCode` repeats the HTTP status (Payabli's own code table is not public).
#[derive(Debug)]
pub struct PayabliError {
    status: StatusCode,
    text: &'static str,
    explanation: String,
    todo: &'static str,
    retry_after: Option<i64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody<'a> {
    is_success: bool,
    response_code: u16,
    response_text: &'a str,
    response_data: ResponseData<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseData<'a> {
    explanation: &'a str,
    todo_action: &'a str,
}

impl PayabliError {
    fn new(
        status: StatusCode,
        text: &'static str,
        explanation: impl Into<String>,
        todo: &'static str,
    ) -> Self {
        Self {
            status,
            text,
            explanation: explanation.into(),
            todo,
            retry_after: None,
        }
    }

    /// 400 "Bad request/ invalid data" with what is wrong.
    fn bad_request(explanation: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "Bad request/ invalid data",
            explanation,
            "Correct the request and send it again.",
        )
    }

    /// 401 "Unauthorized request.".
    fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized request.",
            "The requestToken header is missing, or it is not an API token allowed to request password resets for this entry point.",
            "Send a valid API token in the requestToken header.",
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for PayabliError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            is_success: false,
            response_code: self.status.as_u16(),
            response_text: self.text,
            response_data: ResponseData {
                explanation: &self.explanation,
                todo_action: self.todo,
            },
        };
        kit::answer(self.status, JSON, &body, self.retry_after)
    }
}

const JSON: &str = "application/json; charset=utf-8";

impl From<CoreError> for PayabliError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Invalid(i) => Self::bad_request(i.to_string()),
            CoreError::Unauthenticated | CoreError::Forbidden => Self::unauthorized(),
            CoreError::Overloaded => SurfaceError::overloaded().into(),
            CoreError::Unavailable(cause) => SurfaceError::database(&cause).into(),
            CoreError::Internal(msg) => SurfaceError::internal(PAYABLI, &msg).into(),
            // The handler only identifies a key and records a request: the tenants and the
            // client were provisioned at start, and the rest belong to other use cases.
            e @ (CoreError::UnknownTenant
            | CoreError::NotFound(_)
            | CoreError::Conflict(_)
            | CoreError::UnknownClient
            | CoreError::LinkNotAllowed
            | CoreError::MessageErased
            | CoreError::KeyRevoked
            | CoreError::KeyExpired
            | CoreError::Disabled
            | CoreError::CoolingDown { .. }
            | CoreError::TokenGone
            | CoreError::Policy(_)
            | CoreError::BadCredentials
            | CoreError::Locked { .. }) => SurfaceError::internal(PAYABLI, &e).into(),
        }
    }
}

impl From<SurfaceError> for PayabliError {
    fn from(e: SurfaceError) -> Self {
        use StatusCode as S;
        match e {
            SurfaceError::Limited { retry_after } => {
                let mut e = Self::new(
                    S::TOO_MANY_REQUESTS,
                    "Too many requests",
                    "Too many password reset requests from this address.",
                    "Retry after the number of seconds in the Retry-After header.",
                );
                e.retry_after = Some(retry_after);
                e
            }
            SurfaceError::Unavailable(why) => {
                let mut out = Self::new(
                    S::SERVICE_UNAVAILABLE,
                    "Service unavailable",
                    "The server is busy.",
                    "Retry shortly.",
                );
                out.retry_after = Some(why.retry_after());
                out
            }
            SurfaceError::Internal => Self::new(
                S::INTERNAL_SERVER_ERROR,
                "Internal API Error",
                "Something went wrong on our side; it has been logged.",
                "Retry later; contact support if it persists.",
            ),
        }
    }
}

impl From<BodyError> for PayabliError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::ContentType(_) => {
                Self::bad_request("The body must be sent as Content-Type: application/json.")
            }
            BodyError::Unread(Unread::TooLarge) => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Bad request/ invalid data",
                "The request body is larger than the server accepts.",
                "Send a smaller body.",
            ),
            BodyError::Malformed(why) => {
                Self::bad_request(format!("The body is not valid JSON: {why}."))
            }
            BodyError::Unread(Unread::TimedOut) => Self::new(
                StatusCode::REQUEST_TIMEOUT,
                "Request timeout",
                format!(
                    "The request body did not arrive within {} seconds.",
                    crate::body::BODY_READ_TIMEOUT.as_secs()
                ),
                "Send the whole body at once.",
            ),
            BodyError::Unread(Unread::Broken) => Self::bad_request("The body could not be read."),
        }
    }
}

async fn not_found() -> PayabliError {
    PayabliError::new(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such resource.",
        "Check the path: password resets are requested with POST /api/User/authreset.",
    )
}

async fn method_not_allowed() -> PayabliError {
    PayabliError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed",
        "This resource only accepts POST.",
        "Send the request with POST.",
    )
}

// ---- the handler -----------------------------------------------------------------------------

/// The one success answer, for known and unknown addresses alike.
const SUCCESS: &str = r#"{"responseText":"Success","isSuccess":true}"#;

/// The `requestToken` header as an API key, or 401.
fn request_token(headers: &HeaderMap) -> Result<ApiKeySecret, PayabliError> {
    headers
        .get("requesttoken")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| ApiKeySecret::parse(v.trim()).ok())
        .ok_or_else(PayabliError::unauthorized)
}

/// What a request asks for, read from Payabli's body (all fields optional and nullable there;
/// unknown fields are ignored, as Payabli's .NET binder does).
struct AuthReset {
    email: Email,
    entry: Option<(String, i64)>,
}

fn parse_body(body: &Value) -> Result<AuthReset, PayabliError> {
    let Value::Object(map) = body else {
        return Err(PayabliError::bad_request("The body must be a JSON object."));
    };
    let email = match map.get("email") {
        None | Some(Value::Null) => return Err(PayabliError::bad_request("email is required.")),
        Some(Value::String(s)) if s.chars().count() <= 320 => Email::parse(s)
            .map_err(|_| PayabliError::bad_request("email must be a valid email address."))?,
        Some(_) => {
            return Err(PayabliError::bad_request(
                "email must be a valid email address of at most 320 characters.",
            ))
        }
    };
    let entry = match map.get("entry") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::String(_)) => None,
        Some(_) => return Err(PayabliError::bad_request("entry must be a string.")),
    };
    let entry_type = match map.get("entryType") {
        None | Some(Value::Null) => None,
        Some(v) => Some(entry_type(v).ok_or_else(|| {
            PayabliError::bad_request("entryType must be an integer (0 partner, 2 paypoint).")
        })?),
    };
    let entry = match (entry, entry_type) {
        (Some(e), Some(t)) => Some((e, t)),
        (Some(_), None) => {
            return Err(PayabliError::bad_request(
                "entryType is required when entry is given.",
            ))
        }
        // Without an entry, entryType says nothing.
        (None, _) => None,
    };
    Ok(AuthReset { email, entry })
}

/// `entryType` as Payabli's ASP.NET Core binder reads it: System.Text.Json with the web defaults
/// (`NumberHandling.AllowReadingFromString`) takes a JSON integer or a string that is nothing but
/// an optional sign and ASCII digits ("2", "+2", "02"); whitespace, decimals, hex, words and ""
/// are refused like any wrong type. The string is read into the same range as a number, so both
/// spellings of one value reach the same entry point.
fn entry_type(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => {
            let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        }
        _ => v.as_i64(),
    }
}

async fn auth_reset(
    State(s): State<AppState>,
    Extension(m): Extension<Arc<Mount>>,
    ip: ClientIp,
    headers: HeaderMap,
    body: RawBody,
) -> Result<Response, PayabliError> {
    // A body that never arrived is answered as such, before the credentials are looked at.
    if body.timed_out() {
        return Err(BodyError::Unread(Unread::TimedOut).into());
    }
    // Credentials that fail are counted per address (the key is unknown, so it has no bucket).
    let refuse = |e: PayabliError| s.refuse(PAYABLI, ip, e);
    let secret = request_token(&headers).map_err(refuse)?;
    let key = match s.service.identify_api_key(&secret).await {
        Ok(key) => key,
        Err(e @ CoreError::Unauthenticated) => return Err(refuse(e.into())),
        Err(e) => return Err(e.into()),
    };
    if !m.request_tokens.contains(&key.id) {
        return Err(refuse(PayabliError::unauthorized()));
    }
    let req = parse_body(&kit::json(body)?)?;
    let tenant = m
        .tenant_for(req.entry.as_ref().map(|(e, t)| (e.as_str(), *t)))
        .ok_or_else(|| {
            PayabliError::bad_request("entry with this entryType is not a known entry point.")
        })?;
    // A key acts only for its own tenant, and only with the `payabli` (or admin) scope: a key
    // made for another surface is refused like an unknown one.
    if key.tenant != *tenant || !key.permits(Scope::Payabli) {
        return Err(refuse(PayabliError::unauthorized()));
    }
    s.admit_key(PAYABLI, &m.keys, &key.id)?;
    let client = m.client.as_ref().map(|(name, _)| name.clone());
    s.run(
        Effect::ResetRequested,
        s.service
            .request_reset(tenant, Lookup::email(&req.email), client, None, ip.text()),
    )
    .await?;
    Ok(kit::text_answer(StatusCode::OK, JSON, SUCCESS, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn an_unavailable_database_is_a_503_with_retry_after_and_no_detail() {
        crate::dialects::kit::assert_unavailable_answer(|e| {
            axum::response::IntoResponse::into_response(PayabliError::from(e))
        })
        .await;
    }

    #[test]
    fn bodies() {
        let r = parse_body(
            &json!({"email": "A@Example.com", "entry": "pp1", "entryType": 2, "extra": 1}),
        )
        .unwrap();
        assert_eq!(r.email.as_str(), "A@example.com");
        assert_eq!(r.entry, Some(("pp1".into(), 2)));
        assert!(
            parse_body(&json!({"email": "a@example.com", "entryType": 2}))
                .unwrap()
                .entry
                .is_none()
        );
        for bad in [
            json!({}),
            json!({"email": null}),
            json!({"email": "not an address"}),
            json!({"email": 5}),
            json!({"email": "a@example.com", "entry": "pp1"}),
            json!({"email": "a@example.com", "entry": 7, "entryType": 2}),
            json!({"email": "a@example.com", "entry": "pp1", "entryType": 2.0}),
            json!([]),
        ] {
            assert_eq!(
                parse_body(&bad).err().map(|e| e.status()),
                Some(StatusCode::BAD_REQUEST),
                "{bad}"
            );
        }
    }

    #[test]
    fn entry_type_reads_numeric_strings_as_the_binder_does() {
        for (v, want) in [
            (json!(2), Some(2)),
            (json!("2"), Some(2)),
            (json!("+2"), Some(2)),
            (json!("02"), Some(2)),
            (json!("-1"), Some(-1)),
            (json!("0"), Some(0)),
            (json!(2.0), None),
            (json!("2.0"), None),
            (json!("two"), None),
            (json!(""), None),
            (json!("+"), None),
            (json!("0x2"), None),
            (json!(" 2"), None),
            (json!("2 "), None),
            (json!("2e0"), None),
            (json!("\u{ff12}"), None),
            (json!("99999999999999999999"), None),
            (json!(true), None),
            (json!([2]), None),
        ] {
            assert_eq!(entry_type(&v), want, "{v}");
        }
        let r = parse_body(&json!({"email": "a@example.com", "entry": "pp1", "entryType": "2"}))
            .unwrap();
        assert_eq!(r.entry, Some(("pp1".into(), 2)));
        let e = parse_body(&json!({"email": "a@example.com", "entry": "pp1", "entryType": "2.0"}))
            .err()
            .unwrap();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert!(e.explanation.starts_with("entryType must be an integer"));
    }

    #[test]
    fn entries_map_to_tenants() {
        let c = PayabliConfig {
            enabled: true,
            request_tokens: vec!["k".into()],
            entries: vec![PayabliEntry {
                entry: "pp1".into(),
                entry_type: 2,
                tenant: "acme".into(),
            }],
            ..Default::default()
        };
        let m = Payabli::mount(&c).unwrap().unwrap();
        let name = |t: Option<&TenantId>| t.map(|t| t.as_str().to_owned());
        assert_eq!(name(m.tenant_for(None)).as_deref(), Some("default"));
        assert_eq!(name(m.tenant_for(Some(("pp1", 2)))).as_deref(), Some("acme"));
        assert_eq!(m.tenant_for(Some(("pp1", 0))), None);
        let tenants: Vec<&str> = m.tenants().into_iter().map(TenantId::as_str).collect();
        assert_eq!(tenants, ["acme", "default"]);
        let none = PayabliConfig {
            enabled: true,
            ..Default::default()
        };
        assert!(Payabli::mount(&none)
            .err()
            .unwrap()
            .contains("request_tokens"));
        let twice = PayabliConfig {
            entries: vec![c.entries[0].clone(), c.entries[0].clone()],
            ..c.clone()
        };
        assert!(Payabli::mount(&twice).err().unwrap().contains("twice"));
        // A section that is off is checked all the same, and mounts nothing.
        let off = PayabliConfig {
            enabled: false,
            ..c
        };
        assert!(Payabli::mount(&off).unwrap().is_none());
    }
}
