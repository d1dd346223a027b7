//! Crafter Profile's password-reset API (`/crafter-profile/api/1/profile/...`, dialects.md
//! section 2), mapped onto the core: a trusted application names a profile by its 24-hex id and
//! has a reset link emailed, built from its own `resetPasswordUrl` (which must match an allowed
//! prefix of a registered client), then completes the reset with the emailed token.
//!
//! Parameters come from the query string or an `application/x-www-form-urlencoded` body, as
//! Spring's `request.getParameter` reads them. Every error, including malformed bodies, wrong
//! content types and unknown routes under the prefix, is Crafter's `{"errorCode","message"}`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, MethodRouter};
use axum::{Extension, Router};
use resetd_core::model::{Lookup, Person, ResetPageUrl, Scope};
use resetd_core::secret::{ApiKeySecret, ResetSecret};
use resetd_core::service::Actor;
use resetd_core::types::{ClientName, ObjectId, Password, TenantId};
use resetd_core::CoreError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::wire::json_answer;
use super::kit::Dialect;
use crate::surface::SurfaceError;
use crate::{AppState, ClientIp};

/// The query parameter that carries the token in emailed links (Crafter's `tokenId`).
pub const TOKEN_PARAM: &str = "tokenId";

/// Settings of the Crafter Profile dialect (`[dialects.crafter]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrafterConfig {
    /// Serve the dialect.
    pub enabled: bool,
    /// The resetd tenant whose people are the profiles; access tokens are its API keys.
    pub tenant: String,
    /// Only this registered client's allowed prefixes may match `resetPasswordUrl`; unset means
    /// any client of the tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// Where the API is mounted: Crafter's context path (`/crafter-profile`), or empty for the root.
    pub base_path: String,
}

impl Default for CrafterConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            tenant: "default".into(),
            client: None,
            base_path: "/crafter-profile".into(),
        }
    }
}

/// The checked form of [`CrafterConfig`] the handlers see.
#[derive(Debug, Clone)]
struct Mount {
    tenant: TenantId,
    client: Option<ClientName>,
}

impl CrafterConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), String> {
        self.mount()?;
        let b = &self.base_path;
        let ok = b.is_empty()
            || (b.starts_with('/')
                && !b.ends_with('/')
                && b.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"/-._~".contains(&c)));
        if !ok {
            return Err(format!(
                "dialects.crafter.base_path: {b:?} must be empty or start with '/', not end with '/', and use only A-Z a-z 0-9 / - . _ ~"
            ));
        }
        Ok(())
    }

    fn mount(&self) -> Result<Mount, String> {
        let tenant =
            TenantId::parse(&self.tenant).map_err(|e| format!("dialects.crafter.tenant: {e}"))?;
        let client = self
            .client
            .as_deref()
            .map(ClientName::parse)
            .transpose()
            .map_err(|e| format!("dialects.crafter.client: {e}"))?;
        Ok(Mount { tenant, client })
    }
}

/// The dialect's routes under the configured base path.
pub fn routes(config: &CrafterConfig) -> Router<AppState> {
    let mount = match config.validate().and_then(|()| config.mount()) {
        Ok(m) => Arc::new(m),
        Err(e) => {
            tracing::error!(error = %e, "the Crafter Profile dialect is not mounted");
            return Router::new();
        }
    };
    let api = format!("{}/api/1", config.base_path);
    let profile = format!("{api}/profile");
    let mut r = Router::new();
    // Spring's suffix pattern matching also maps `<path>.json`.
    for suffix in ["", ".json"] {
        r = r
            .route(
                &format!("{profile}/{{id}}/reset_password{suffix}"),
                only(post(reset_password)),
            )
            .route(
                &format!("{profile}/change_password{suffix}"),
                only(post(change_password)),
            )
            .route(
                &format!("{profile}/verification_token/{{id}}/delete{suffix}"),
                only(post(delete_token)),
            );
    }
    r.route(
        &format!("{profile}/verification_token/{{id}}"),
        only(get(get_token)),
    )
    .route(&format!("{api}/{{*rest}}"), any(unknown_route))
    .layer(Extension(mount))
}

/// A method router whose other methods get Crafter's 405.
fn only(r: MethodRouter<AppState>) -> MethodRouter<AppState> {
    r.fallback(|method: Method| async move {
        CrafterError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "OTHER",
            format!("Request method '{method}' is not supported"),
        )
    })
}

async fn unknown_route() -> CrafterError {
    CrafterError::new(
        StatusCode::NOT_FOUND,
        "OTHER",
        "No endpoint matches this method and path",
    )
}

/// The Crafter Profile dialect.
pub struct Crafter;

impl Dialect for Crafter {
    type Config = CrafterConfig;
    type Mount = CrafterConfig;
    type Error = CrafterError;

    fn mount(config: &CrafterConfig) -> Result<Option<CrafterConfig>, String> {
        config.validate()?;
        Ok(config.enabled.then(|| config.clone()))
    }

    fn routes(mount: &CrafterConfig) -> Router<AppState> {
        routes(mount)
    }
}

impl From<SurfaceError> for CrafterError {
    fn from(e: SurfaceError) -> Self {
        use StatusCode as S;
        match e {
            SurfaceError::Limited { retry_after } => {
                let mut err = Self::new(
                    S::TOO_MANY_REQUESTS,
                    "OTHER",
                    "Too many requests from this address; try again later",
                );
                err.retry_after = Some(retry_after);
                err
            }
            SurfaceError::Unavailable(why) => {
                let mut err = Self::new(
                    S::SERVICE_UNAVAILABLE,
                    "OTHER",
                    "The server is busy; retry shortly",
                );
                err.retry_after = Some(why.retry_after());
                err
            }
            SurfaceError::Internal => {
                Self::new(S::INTERNAL_SERVER_ERROR, "OTHER", "Internal server error")
            }
        }
    }
}

// ---- errors ----------------------------------------------------------------------------------

/// Crafter's error body `{"errorCode","message"}` with its status.
#[derive(Debug)]
pub struct CrafterError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<i64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody<'a> {
    error_code: &'a str,
    message: &'a str,
}

impl CrafterError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    fn missing_param(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "OTHER",
            format!(
                "Required request parameter '{name}' for method parameter type String is not present"
            ),
        )
    }

    /// The one mapping of core errors to Crafter's codes. `profile` is the profile id the
    /// request named, for messages that show it (it is not a secret; tokens and keys never are
    /// echoed).
    fn core(e: CoreError, profile: Option<&str>) -> Self {
        use StatusCode as S;
        let profile = profile.unwrap_or("");
        match e {
            CoreError::Invalid(i) if i.field == "resetPasswordUrl" => Self::new(
                S::FORBIDDEN,
                "ACCESS_DENIED",
                format!("The resetPasswordUrl is not allowed: it {}", i.reason),
            ),
            CoreError::Invalid(i) => {
                let field = if i.field == "password" {
                    "newPassword"
                } else {
                    i.field
                };
                Self::new(
                    S::BAD_REQUEST,
                    "OTHER",
                    format!("Invalid parameter '{field}': it {}", i.reason),
                )
            }
            CoreError::UnknownTenant => Self::new(
                S::BAD_REQUEST,
                "NO_SUCH_TENANT",
                "The tenant this API is mounted on does not exist",
            ),
            CoreError::NotFound(_) => Self::new(
                S::NOT_FOUND,
                "NO_SUCH_PROFILE",
                format!("No profile with ID \"{profile}\" found"),
            ),
            CoreError::LinkNotAllowed => Self::new(
                S::FORBIDDEN,
                "ACCESS_DENIED",
                "The resetPasswordUrl matches no reset page URL allowed for this tenant",
            ),
            CoreError::Disabled => Self::new(
                S::FORBIDDEN,
                "DISABLED_PROFILE",
                format!("Profile \"{profile}\" is disabled"),
            ),
            CoreError::CoolingDown { until } => {
                use resetd_core::model::{Clock, SystemClock};
                let secs = SystemClock.now().secs_until(until).max(1);
                let mut err = Self::new(
                    S::TOO_MANY_REQUESTS,
                    "OTHER",
                    format!(
                        "A reset password email was sent to profile \"{profile}\" recently; try again in {secs} seconds"
                    ),
                );
                err.retry_after = Some(secs);
                err
            }
            // The token is never echoed: it may be a live secret with a typo.
            CoreError::TokenGone => Self::new(
                S::NOT_FOUND,
                "NO_SUCH_VERIFICATION_TOKEN",
                "No verification token found for ID \"…\"",
            ),
            CoreError::Policy(v) => {
                let reasons: Vec<&str> = v.violations.iter().map(|v| v.message.as_str()).collect();
                Self::new(
                    S::BAD_REQUEST,
                    "OTHER",
                    format!(
                        "The new password does not meet the password policy: {}",
                        reasons.join(" ")
                    ),
                )
            }
            CoreError::Unauthenticated => Self::new(
                S::FORBIDDEN,
                "ACCESS_DENIED",
                "No access token found for ID \"…\"",
            ),
            CoreError::Forbidden => Self::new(
                S::FORBIDDEN,
                "ACTION_DENIED",
                "The access token may not manage the profiles of this tenant",
            ),
            e @ (CoreError::Overloaded | CoreError::Unavailable(_)) => {
                crate::problem::log_transient(&e);
                let mut err = Self::new(
                    S::SERVICE_UNAVAILABLE,
                    "OTHER",
                    "The server is busy; retry shortly",
                );
                err.retry_after = e.retry_after();
                err
            }
            CoreError::BadCredentials | CoreError::Locked { .. } => {
                Self::new(S::UNAUTHORIZED, "BAD_CREDENTIALS", "Invalid credentials")
            }
            CoreError::Conflict(_)
            | CoreError::UnknownClient
            | CoreError::MessageErased
            | CoreError::Internal(_) => {
                tracing::error!(error = %e, "Crafter Profile dialect: internal error");
                Self::new(S::INTERNAL_SERVER_ERROR, "OTHER", "Internal server error")
            }
        }
    }
}

impl IntoResponse for CrafterError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error_code: self.code,
            message: &self.message,
        };
        json_response(self.status, &body, self.retry_after)
    }
}

fn json_response<T: Serialize>(status: StatusCode, body: &T, retry_after: Option<i64>) -> Response {
    match serde_json::to_string(body) {
        Ok(text) => json_answer(status, "application/json", text, retry_after),
        Err(e) => CrafterError::core(CoreError::Internal(e.to_string()), None).into_response(),
    }
}

// ---- parameters ------------------------------------------------------------------------------

/// Request parameters: the query string first, then a form body (Spring's order).
struct Params(Vec<(String, String)>);

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = CrafterError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let mut pairs: Vec<(String, String)> = req
            .uri()
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let body = Bytes::from_request(req, state).await.map_err(|r| {
            if crate::body::timed_out(&r) {
                CrafterError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "OTHER",
                    format!(
                        "The request body did not arrive within {} seconds",
                        crate::body::BODY_READ_TIMEOUT.as_secs()
                    ),
                )
            } else if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                CrafterError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "OTHER",
                    "The request body is larger than the server accepts",
                )
            } else {
                CrafterError::new(
                    StatusCode::BAD_REQUEST,
                    "OTHER",
                    "The request body could not be read",
                )
            }
        })?;
        if !body.is_empty() {
            let essence = content_type
                .as_deref()
                .and_then(|c| c.split(';').next())
                .map(|c| c.trim().to_ascii_lowercase());
            if essence.as_deref() != Some("application/x-www-form-urlencoded") {
                let shown = essence.unwrap_or_else(|| "none".into());
                return Err(CrafterError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "OTHER",
                    format!(
                        "Content type '{}' not supported; send parameters as application/x-www-form-urlencoded or in the query string",
                        shown.chars().take(100).collect::<String>()
                    ),
                ));
            }
            pairs.extend(form_urlencoded::parse(&body).into_owned());
        }
        Ok(Params(pairs))
    }
}

impl Params {
    fn first(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn required(&self, name: &str) -> Result<&str, CrafterError> {
        self.first(name)
            .ok_or_else(|| CrafterError::missing_param(name))
    }

    /// The attributes to return: `attributeToReturn` (what the code and the Java client use)
    /// and `attributesToReturn` (what the docs say), repeated or comma-separated as Spring
    /// binds a `String[]`. `None` means all.
    fn attributes_to_return(&self) -> Option<Vec<String>> {
        let names: Vec<String> = self
            .0
            .iter()
            .filter(|(k, _)| k == "attributeToReturn" || k == "attributesToReturn")
            .flat_map(|(_, v)| v.split(','))
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect();
        (!names.is_empty()).then_some(names)
    }
}

/// Checks `accessTokenId` (an API key of the mounted tenant, with the admin scope).
async fn authorize(s: &AppState, mount: &Mount, p: &Params) -> Result<Actor, CrafterError> {
    let raw = p
        .first("accessTokenId")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            CrafterError::new(
                StatusCode::FORBIDDEN,
                "ACCESS_DENIED",
                "Access token ID param missing from request",
            )
        })?;
    let secret = ApiKeySecret::parse(raw)
        .map_err(|_| CrafterError::core(CoreError::Unauthenticated, None))?;
    let key = s
        .service
        .authorize(&mount.tenant, &secret, Scope::Admin)
        .await
        .map_err(|e| CrafterError::core(e, None))?;
    Ok(Actor::ApiKey(key.id))
}

// ---- bodies ----------------------------------------------------------------------------------

/// Crafter's Profile JSON, in its key order (dates are epoch milliseconds).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Profile<'a> {
    username: &'a str,
    email: &'a str,
    verified: bool,
    enabled: bool,
    created_on: i64,
    last_modified: i64,
    tenant: &'a str,
    roles: &'a [String],
    attributes: Value,
    id: ObjectId,
}

fn profile(p: &Person, only: Option<&[String]>) -> Response {
    let attributes = match (only, &p.attributes) {
        (Some(names), Value::Object(all)) => Value::Object(
            all.iter()
                .filter(|(k, _)| names.iter().any(|n| n == *k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        (_, a) => a.clone(),
    };
    let body = Profile {
        username: p.login.as_str(),
        email: p.email.as_str(),
        verified: p.verified,
        enabled: p.enabled,
        created_on: p.created_at.0,
        last_modified: p.updated_at.0,
        tenant: p.tenant.as_str(),
        roles: &p.roles,
        attributes,
        id: ObjectId::of(&p.id),
    };
    json_response(StatusCode::OK, &body, None)
}

/// Crafter's VerificationToken JSON.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VerificationToken<'a> {
    id: &'a str,
    tenant: &'a str,
    profile_id: ObjectId,
    timestamp: i64,
}

// ---- handlers --------------------------------------------------------------------------------

type CrafterResult = Result<Response, CrafterError>;

/// A path segment as text; one that is not UTF-8 once decoded becomes empty, which no id or
/// token can be (so it is answered like any malformed value, never with axum's plain text).
fn segment(p: Result<Path<String>, PathRejection>) -> String {
    p.map(|Path(s)| s).unwrap_or_default()
}

/// A token id as presented; one that could never have been issued is an unknown one.
fn token(raw: &str) -> Result<ResetSecret, CrafterError> {
    ResetSecret::parse(raw).map_err(|_| CrafterError::core(CoreError::TokenGone, None))
}

async fn reset_password(
    State(s): State<AppState>,
    Extension(mount): Extension<Arc<Mount>>,
    ip: ClientIp,
    id: Result<Path<String>, PathRejection>,
    params: Params,
) -> CrafterResult {
    let actor = authorize(&s, &mount, &params).await?;
    let url = params.required("resetPasswordUrl")?;
    let id = segment(id);
    let oid = ObjectId::parse(&id).map_err(|_| {
        CrafterError::new(
            StatusCode::BAD_REQUEST,
            "OTHER",
            "Error occurred while trying to get profile: the ID is not a 24-digit hexadecimal ObjectId",
        )
    })?;
    let page = ResetPageUrl::parse(url).map_err(|e| CrafterError::core(e.into(), None))?;
    let person = s
        .service
        .send_reset_link(
            &mount.tenant,
            &Lookup::object_id(&oid),
            &page,
            TOKEN_PARAM,
            mount.client.as_ref(),
            &actor,
            ip.text().as_deref(),
        )
        .await
        .map_err(|e| CrafterError::core(e, Some(oid.as_str())))?;
    s.metrics.resets_requested.fetch_add(1, Ordering::Relaxed);
    s.mail_notify.notify_one();
    Ok(profile(&person, params.attributes_to_return().as_deref()))
}

async fn change_password(
    State(s): State<AppState>,
    Extension(mount): Extension<Arc<Mount>>,
    ip: ClientIp,
    params: Params,
) -> CrafterResult {
    authorize(&s, &mount, &params).await?;
    let raw_token = params.required("resetTokenId")?;
    let raw_password = params.required("newPassword")?;
    let secret = token(raw_token)?;
    let password = match Password::parse(raw_password) {
        Ok(p) => p,
        Err(e) => {
            // Crafter looks the token up first: an unknown token is 404 whatever the password.
            s.service
                .inspect_token(&mount.tenant, &secret)
                .await
                .map_err(|e| CrafterError::core(e, None))?;
            return Err(CrafterError::core(e.into(), None));
        }
    };
    let person = s
        .service
        .complete_reset(&mount.tenant, &secret, &password, ip.text().as_deref())
        .await
        .map_err(|e| CrafterError::core(e, None))?;
    s.metrics.resets_completed.fetch_add(1, Ordering::Relaxed);
    s.mail_notify.notify_one();
    Ok(profile(&person, params.attributes_to_return().as_deref()))
}

async fn get_token(
    State(s): State<AppState>,
    Extension(mount): Extension<Arc<Mount>>,
    id: Result<Path<String>, PathRejection>,
    params: Params,
) -> CrafterResult {
    authorize(&s, &mount, &params).await?;
    let id = segment(id);
    // Suffix pattern matching: tokens never contain '.', so `.json` is the suffix.
    let raw = id.strip_suffix(".json").unwrap_or(&id);
    let secret = token(raw)?;
    let info = s
        .service
        .inspect_token(&mount.tenant, &secret)
        .await
        .map_err(|e| CrafterError::core(e, None))?;
    let body = VerificationToken {
        id: secret.expose(),
        tenant: mount.tenant.as_str(),
        profile_id: ObjectId::of(&info.person.id),
        timestamp: info.issued_at.0,
    };
    Ok(json_response(StatusCode::OK, &body, None))
}

async fn delete_token(
    State(s): State<AppState>,
    Extension(mount): Extension<Arc<Mount>>,
    ip: ClientIp,
    id: Result<Path<String>, PathRejection>,
    params: Params,
) -> CrafterResult {
    let actor = authorize(&s, &mount, &params).await?;
    let id = segment(id);
    // Like Crafter, deleting a token that does not exist (or is already gone) succeeds.
    if let Ok(secret) = ResetSecret::parse(&id) {
        s.service
            .void_token(&mount.tenant, &secret, &actor, ip.text().as_deref())
            .await
            .map_err(|e| CrafterError::core(e, None))?;
    }
    Ok(StatusCode::OK.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_checked() {
        let ok = CrafterConfig {
            enabled: true,
            ..Default::default()
        };
        assert!(ok.validate().is_ok());
        for bad in [
            CrafterConfig {
                tenant: "Not A Tenant".into(),
                ..Default::default()
            },
            CrafterConfig {
                client: Some("bad name!".into()),
                ..Default::default()
            },
            CrafterConfig {
                base_path: "crafter".into(),
                ..Default::default()
            },
            CrafterConfig {
                base_path: "/crafter/".into(),
                ..Default::default()
            },
            CrafterConfig {
                base_path: "/{x}".into(),
                ..Default::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn an_unavailable_database_is_a_503_with_retry_after_and_no_detail() {
        crate::dialects::kit::assert_unavailable_answer(|e| {
            axum::response::IntoResponse::into_response(CrafterError::core(e, None))
        })
        .await;
    }

    #[test]
    fn both_attribute_parameter_spellings_are_read() {
        let p = Params(vec![
            ("attributeToReturn".into(), "a".into()),
            ("attributesToReturn".into(), "b, c".into()),
            ("attributeToReturn".into(), "".into()),
        ]);
        assert_eq!(
            p.attributes_to_return(),
            Some(vec!["a".into(), "b".into(), "c".into()])
        );
        assert_eq!(Params(vec![]).attributes_to_return(), None);
    }
}
