//! Payabli (dialects.md §5): `POST /api/User/authreset` with the organisation's API token in the
//! `requestToken` header and `{email, entry, entryType}` in the body; `{responseText, isSuccess}`
//! on success, whether or not the address has an account, and the `PayabliErrorBody` shape for
//! every error.
//!
//! Payabli completes resets in its hosted UI, whose contract is not public; here the emailed link
//! goes to a configured page (or resetd's own), which completes through the native API.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::{Extension, Router};
use resetd_core::model::{LinkTemplate, Lookup};
use resetd_core::secret::ApiKeySecret;
use resetd_core::service::{Actor, Service};
use resetd_core::types::{ClientName, Email, TenantId};
use resetd_core::CoreError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::wire::{json_answer, json_body, BodyError};
use super::kit::Dialect;
use crate::surface::SurfaceError;
use crate::{AppState, ClientIp};

/// The prefix of Payabli's user resource; unknown paths below it get a Payabli error.
pub const PREFIX: &str = "/api/User";

/// The client whose link template the emails use, when one is configured.
const CLIENT: &str = "payabli";

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
        }
    }
}

impl PayabliConfig {
    /// Checks the settings; the error names the offending key.
    pub fn validate(&self) -> Result<(), String> {
        TenantId::parse(&self.tenant).map_err(|e| format!("dialects.payabli.tenant: {e}"))?;
        if self.enabled && self.request_tokens.is_empty() {
            return Err("dialects.payabli.request_tokens: list the ids of the API keys that act as requestToken (`resetd apikey create` prints them)".into());
        }
        if !self.link_template.is_empty() {
            LinkTemplate::parse(&self.link_template)
                .map_err(|e| format!("dialects.payabli.link_template: {}", e.reason))?;
        }
        for (i, e) in self.entries.iter().enumerate() {
            TenantId::parse(&e.tenant)
                .map_err(|err| format!("dialects.payabli.entries[{i}].tenant: {err}"))?;
            if e.entry.is_empty() || e.entry.len() > 256 {
                return Err(format!(
                    "dialects.payabli.entries[{i}].entry: must be 1 to 256 characters"
                ));
            }
            if self.entries[..i]
                .iter()
                .any(|o| o.entry == e.entry && o.entry_type == e.entry_type)
            {
                return Err(format!(
                    "dialects.payabli.entries[{i}]: entry {:?} with entry_type {} is listed twice",
                    e.entry, e.entry_type
                ));
            }
        }
        Ok(())
    }

    fn tenants(&self) -> Vec<&str> {
        let mut t: Vec<&str> = std::iter::once(self.tenant.as_str())
            .chain(self.entries.iter().map(|e| e.tenant.as_str()))
            .collect();
        t.sort_unstable();
        t.dedup();
        t
    }

    /// Checks that every tenant exists and registers the client `payabli` in each when a link
    /// template is configured.
    pub async fn provision(&self, service: &Service) -> Result<(), String> {
        for name in self.tenants() {
            let tenant = TenantId::parse(name).map_err(|e| e.to_string())?;
            service
                .tenant(&tenant)
                .await
                .map_err(|e| format!("dialects.payabli: tenant {tenant}: {e}"))?;
            if self.link_template.is_empty() {
                continue;
            }
            let template = LinkTemplate::parse(&self.link_template).map_err(|e| e.reason)?;
            let client = ClientName::parse(CLIENT).map_err(|e| e.to_string())?;
            if service
                .client(&tenant, &client)
                .await
                .is_ok_and(|c| c.link_template == template)
            {
                continue;
            }
            service
                .register_client(&tenant, client, template, vec![], &Actor::System)
                .await
                .map_err(|e| format!("registering the Payabli client: {e}"))?;
        }
        Ok(())
    }

    /// The tenant an entry point stands for; no entry means the default tenant.
    fn tenant_for(&self, entry: Option<(&str, i64)>) -> Option<&str> {
        match entry {
            None => Some(&self.tenant),
            Some((entry, kind)) => self
                .entries
                .iter()
                .find(|e| e.entry == entry && e.entry_type == kind)
                .map(|e| e.tenant.as_str()),
        }
    }
}

/// The Payabli route for `config`.
pub fn routes(config: &PayabliConfig) -> Router<AppState> {
    Router::new()
        .route(
            &format!("{PREFIX}/authreset"),
            post(auth_reset).fallback(method_not_allowed),
        )
        .route(&format!("{PREFIX}/{{*rest}}"), any(not_found))
        .layer(Extension(Arc::new(config.clone())))
}

/// The Payabli dialect.
pub struct Payabli;

impl Dialect for Payabli {
    type Config = PayabliConfig;
    type Mount = PayabliConfig;
    type Error = PayabliError;

    fn mount(config: &PayabliConfig) -> Result<Option<PayabliConfig>, String> {
        config.validate()?;
        Ok(config.enabled.then(|| config.clone()))
    }

    async fn provision(mount: &PayabliConfig, service: &Service) -> Result<(), String> {
        mount.provision(service).await
    }

    fn routes(mount: &PayabliConfig) -> Router<AppState> {
        routes(mount)
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
        let text = serde_json::to_string(&body).unwrap_or_default();
        json_answer(self.status, JSON, text, self.retry_after)
    }
}

const JSON: &str = "application/json; charset=utf-8";

impl From<CoreError> for PayabliError {
    fn from(e: CoreError) -> Self {
        use StatusCode as S;
        match e {
            CoreError::Invalid(i) => Self::bad_request(i.to_string()),
            CoreError::Unauthenticated | CoreError::Forbidden => Self::unauthorized(),
            e @ (CoreError::Overloaded | CoreError::Unavailable(_)) => {
                crate::problem::log_transient(&e);
                let mut out = Self::new(
                    S::SERVICE_UNAVAILABLE,
                    "Service unavailable",
                    "The server is busy.",
                    "Retry shortly.",
                );
                out.retry_after = e.retry_after();
                out
            }
            other => {
                tracing::error!(error = %other, "internal error (payabli dialect)");
                Self::new(
                    S::INTERNAL_SERVER_ERROR,
                    "Internal API Error",
                    "Something went wrong on our side; it has been logged.",
                    "Retry later; contact support if it persists.",
                )
            }
        }
    }
}

impl From<BodyError> for PayabliError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::ContentType(_) => {
                Self::bad_request("The body must be sent as Content-Type: application/json.")
            }
            BodyError::TooLarge => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Bad request/ invalid data",
                "The request body is larger than the server accepts.",
                "Send a smaller body.",
            ),
            BodyError::Malformed(why) => {
                Self::bad_request(format!("The body is not valid JSON: {why}."))
            }
            BodyError::TimedOut => Self::new(
                StatusCode::REQUEST_TIMEOUT,
                "Request timeout",
                format!(
                    "The request body did not arrive within {} seconds.",
                    crate::body::BODY_READ_TIMEOUT.as_secs()
                ),
                "Send the whole body at once.",
            ),
            BodyError::Unreadable => Self::bad_request("The body could not be read."),
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
        Some(v) => Some(v.as_i64().ok_or_else(|| {
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

async fn auth_reset(
    State(s): State<AppState>,
    Extension(cfg): Extension<Arc<PayabliConfig>>,
    ip: ClientIp,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PayabliError> {
    // A body that never arrived is answered as such, before the credentials are looked at.
    if let Err(r) = &body {
        if crate::body::timed_out(r) {
            return Err(BodyError::TimedOut.into());
        }
    }
    let secret = request_token(&headers)?;
    let key = s.service.identify_api_key(&secret).await?;
    if !cfg.request_tokens.contains(&key.id) {
        return Err(PayabliError::unauthorized());
    }
    let body = json_body(&headers, body)?;
    let req = parse_body(&body)?;
    let tenant = cfg
        .tenant_for(req.entry.as_ref().map(|(e, t)| (e.as_str(), *t)))
        .ok_or_else(|| {
            PayabliError::bad_request("entry with this entryType is not a known entry point.")
        })?;
    let tenant = TenantId::parse(tenant).map_err(CoreError::from)?;
    // A key acts only for its own tenant.
    if key.tenant != tenant {
        return Err(PayabliError::unauthorized());
    }
    if let Some(addr) = ip.0 {
        s.recovery_limiter.check(addr).map_err(|retry| {
            let mut e = PayabliError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests",
                "Too many password reset requests from this address.",
                "Retry after the number of seconds in the Retry-After header.",
            );
            e.retry_after = Some(retry.max(1));
            e
        })?;
    }
    let client = if cfg.link_template.is_empty() {
        None
    } else {
        Some(ClientName::parse(CLIENT).map_err(CoreError::from)?)
    };
    s.service
        .request_reset(&tenant, Lookup::email(&req.email), client, None, ip.text())
        .await?;
    s.reset_notify.notify_one();
    s.metrics.resets_requested.fetch_add(1, Ordering::Relaxed);
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static(JSON))],
        SUCCESS,
    )
        .into_response())
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
            json!({"email": "a@example.com", "entry": "pp1", "entryType": "2"}),
            json!({"email": "a@example.com", "entry": 7, "entryType": 2}),
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
        assert!(c.validate().is_ok());
        assert_eq!(c.tenant_for(None), Some("default"));
        assert_eq!(c.tenant_for(Some(("pp1", 2))), Some("acme"));
        assert_eq!(c.tenant_for(Some(("pp1", 0))), None);
        assert_eq!(c.tenants(), ["acme", "default"]);
        let none = PayabliConfig {
            enabled: true,
            ..Default::default()
        };
        assert!(none.validate().unwrap_err().contains("request_tokens"));
    }
}
