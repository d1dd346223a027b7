//! Crafter Profile's password-reset API (`/crafter-profile/api/1/profile/...`, dialects.md
//! section 2), mapped onto the core: a trusted application names a profile by its 24-hex id and
//! has a reset link emailed, built from its own `resetPasswordUrl` (which must match an allowed
//! prefix of a registered client), then completes the reset with the emailed token.
//!
//! Parameters come from the query string or an `application/x-www-form-urlencoded` body, as
//! Spring's `request.getParameter` reads them. Every error, including malformed bodies, wrong
//! content types and unknown routes under the prefix, is Crafter's `{"errorCode","message"}`.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, MethodRouter};
use axum::{Extension, Router};
use resetd_core::model::{Lookup, Person, ResetPageUrl, Scope, Timestamp};
use resetd_core::secret::{ApiKeySecret, ResetSecret};
use resetd_core::service::Actor;
use resetd_core::types::{ClientName, ObjectId, Password, TenantId};
use resetd_core::CoreError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::kit::{self, Dialect, ParamsError};
use crate::body::Unread;
use crate::ratelimit::{KeyLimiter, DEFAULT_KEY_BURST, DEFAULT_KEY_PER_MINUTE};
use crate::surface::{Effect, SurfaceError};
use crate::{AppState, ClientIp};

/// The surface's name in logs.
const CRAFTER: &str = "crafter";

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
    /// Sustained calls per minute per access token (0: off). The caller is the application's
    /// back end acting for all its users, so it is limited per key, not per IP.
    pub key_per_minute: u32,
    /// Burst of calls per access token.
    pub key_burst: u32,
}

impl Default for CrafterConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            tenant: "default".into(),
            client: None,
            base_path: "/crafter-profile".into(),
            key_per_minute: DEFAULT_KEY_PER_MINUTE,
            key_burst: DEFAULT_KEY_BURST,
        }
    }
}

/// The Crafter Profile dialect.
pub struct Crafter;

/// The checked form of [`CrafterConfig`] the handlers see.
pub struct Mount {
    tenant: TenantId,
    client: Option<ClientName>,
    base_path: String,
    keys: KeyLimiter,
}

impl Dialect for Crafter {
    type Config = CrafterConfig;
    type Mount = Mount;
    type Error = CrafterError;

    fn mount(c: &CrafterConfig) -> Result<Option<Mount>, String> {
        let tenant =
            TenantId::parse(&c.tenant).map_err(|e| format!("dialects.crafter.tenant: {e}"))?;
        let client = c
            .client
            .as_deref()
            .map(ClientName::parse)
            .transpose()
            .map_err(|e| format!("dialects.crafter.client: {e}"))?;
        let b = &c.base_path;
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
        Ok(c.enabled.then(|| Mount {
            tenant,
            client,
            base_path: c.base_path.clone(),
            keys: KeyLimiter::new(c.key_per_minute, c.key_burst),
        }))
    }

    /// The routes under the configured base path.
    fn routes(m: &Mount) -> Router<AppState> {
        let api = format!("{}/api/1", m.base_path);
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
    }
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

// ---- errors ----------------------------------------------------------------------------------

/// Crafter's error body `{"errorCode","message"}` with its status.
#[derive(Debug, Clone)]
pub struct CrafterError {
    status: StatusCode,
    code: &'static str,
    message: Message,
    retry_after: Option<i64>,
}

/// An error's message: text, or the cool-down's, which counts the seconds left on the service's
/// clock when the answer is written.
#[derive(Debug, Clone)]
enum Message {
    Text(String),
    CoolingDown { profile: String, until: Timestamp },
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
            message: Message::Text(message.into()),
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
            CoreError::CoolingDown { until } => Self {
                status: S::TOO_MANY_REQUESTS,
                code: "OTHER",
                message: Message::CoolingDown {
                    profile: profile.to_owned(),
                    until,
                },
                retry_after: None,
            },
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
            CoreError::Overloaded => SurfaceError::overloaded().into(),
            CoreError::Unavailable(cause) => SurfaceError::database(&cause).into(),
            CoreError::BadCredentials | CoreError::Locked { .. } => {
                Self::new(S::UNAUTHORIZED, "BAD_CREDENTIALS", "Invalid credentials")
            }
            CoreError::Internal(msg) => SurfaceError::internal(CRAFTER, &msg).into(),
            // Sending a link names no client (only allowed prefixes) and changes no record
            // with a unique key; only the admin APIs raise MessageErased and the key states.
            e @ (CoreError::Conflict(_)
            | CoreError::UnknownClient
            | CoreError::MessageErased
            | CoreError::KeyRevoked
            | CoreError::KeyExpired) => {
                SurfaceError::internal(CRAFTER, &e).into()
            }
        }
    }
}

impl From<SurfaceError> for CrafterError {
    fn from(e: SurfaceError) -> Self {
        use StatusCode as S;
        match e {
            // An access token past its rate, or an address past its rate of failed tokens.
            SurfaceError::Limited { retry_after } => {
                let mut err = Self::new(
                    S::TOO_MANY_REQUESTS,
                    "OTHER",
                    "Too many requests; try again later",
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

impl IntoResponse for CrafterError {
    fn into_response(self) -> Response {
        match &self.message {
            Message::Text(text) => {
                let body = ErrorBody {
                    error_code: self.code,
                    message: text,
                };
                json(self.status, &body, self.retry_after)
            }
            Message::CoolingDown { profile, until } => {
                let (profile, until) = (profile.clone(), *until);
                crate::surface::clocked(self.status, move |now| {
                    let secs = now.secs_until(until).max(1);
                    let message = format!(
                        "A reset password email was sent to profile \"{profile}\" recently; try again in {secs} seconds"
                    );
                    let body = ErrorBody {
                        error_code: self.code,
                        message: &message,
                    };
                    json(self.status, &body, Some(secs))
                })
            }
        }
    }
}

impl From<ParamsError> for CrafterError {
    fn from(e: ParamsError) -> Self {
        match e {
            ParamsError::Unread(Unread::TimedOut) => CrafterError::new(
                StatusCode::REQUEST_TIMEOUT,
                "OTHER",
                format!(
                    "The request body did not arrive within {} seconds",
                    crate::body::BODY_READ_TIMEOUT.as_secs()
                ),
            ),
            ParamsError::Unread(Unread::TooLarge) => CrafterError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "OTHER",
                "The request body is larger than the server accepts",
            ),
            ParamsError::Unread(Unread::Broken) => CrafterError::new(
                StatusCode::BAD_REQUEST,
                "OTHER",
                "The request body could not be read",
            ),
            ParamsError::ContentType(essence) => {
                let shown = essence.unwrap_or_else(|| "none".into());
                CrafterError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "OTHER",
                    format!(
                        "Content type '{}' not supported; send parameters as application/x-www-form-urlencoded or in the query string",
                        shown.chars().take(100).collect::<String>()
                    ),
                )
            }
        }
    }
}

/// Crafter's JSON answers, errors and successes alike.
fn json<T: Serialize>(status: StatusCode, body: &T, retry_after: Option<i64>) -> Response {
    kit::answer(status, "application/json", body, retry_after)
}

// ---- parameters ------------------------------------------------------------------------------

/// Request parameters: the query string first, then a form body (Spring's order).
type Params = kit::Params<CrafterError>;

fn required<'a>(p: &'a Params, name: &str) -> Result<&'a str, CrafterError> {
    p.first(name).ok_or_else(|| CrafterError::missing_param(name))
}

/// The attributes to return: `attributeToReturn` (what the code and the Java client use) and
/// `attributesToReturn` (what the docs say), repeated or comma-separated as Spring binds a
/// `String[]`. `None` means all.
fn attributes_to_return(p: &Params) -> Option<Vec<String>> {
    let names: Vec<String> = p
        .all(&["attributeToReturn", "attributesToReturn"])
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .collect();
    (!names.is_empty()).then_some(names)
}

/// Checks `accessTokenId` (a live API key of the mounted tenant with the `crafter` or admin
/// scope; a revoked, expired or rotated-out one answers as an unknown one) and takes a
/// token from its bucket. Credentials that fail are counted per address instead (an unknown key
/// has no bucket).
async fn authorize(
    s: &AppState,
    mount: &Mount,
    ip: ClientIp,
    p: &Params,
) -> Result<Actor, CrafterError> {
    let refuse = |e: CrafterError| s.refuse(CRAFTER, ip, e);
    let raw = p
        .first("accessTokenId")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            refuse(CrafterError::new(
                StatusCode::FORBIDDEN,
                "ACCESS_DENIED",
                "Access token ID param missing from request",
            ))
        })?;
    let secret = ApiKeySecret::parse(raw)
        .map_err(|_| refuse(CrafterError::core(CoreError::Unauthenticated, None)))?;
    let key = match s
        .service
        .authorize(&mount.tenant, &secret, Scope::Crafter)
        .await
    {
        Ok(key) => key,
        Err(e @ (CoreError::Unauthenticated | CoreError::Forbidden)) => {
            return Err(refuse(CrafterError::core(e, None)))
        }
        Err(e) => return Err(CrafterError::core(e, None)),
    };
    s.admit_key(CRAFTER, &mount.keys, &key.id)?;
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
    json(StatusCode::OK, &body, None)
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
    let actor = authorize(&s, &mount, ip, &params).await?;
    let url = required(&params, "resetPasswordUrl")?;
    let id = segment(id);
    let oid = ObjectId::parse(&id).map_err(|_| {
        CrafterError::new(
            StatusCode::BAD_REQUEST,
            "OTHER",
            "Error occurred while trying to get profile: the ID is not a 24-digit hexadecimal ObjectId",
        )
    })?;
    let page = ResetPageUrl::parse(url).map_err(|e| CrafterError::core(e.into(), None))?;
    let (ip, who) = (ip.text(), Lookup::object_id(&oid));
    let send = s.service.send_reset_link(
        &mount.tenant,
        &who,
        &page,
        TOKEN_PARAM,
        mount.client.as_ref(),
        &actor,
        ip.as_deref(),
    );
    let person = s
        .run(Effect::LinkSent, send)
        .await
        .map_err(|e| CrafterError::core(e, Some(oid.as_str())))?;
    Ok(profile(&person, attributes_to_return(&params).as_deref()))
}

async fn change_password(
    State(s): State<AppState>,
    Extension(mount): Extension<Arc<Mount>>,
    ip: ClientIp,
    params: Params,
) -> CrafterResult {
    authorize(&s, &mount, ip, &params).await?;
    let raw_token = required(&params, "resetTokenId")?;
    let raw_password = required(&params, "newPassword")?;
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
    let ip = ip.text();
    let complete = s
        .service
        .complete_reset(&mount.tenant, &secret, &password, ip.as_deref());
    let person = s
        .run(Effect::ResetCompleted, complete)
        .await
        .map_err(|e| CrafterError::core(e, None))?;
    Ok(profile(&person, attributes_to_return(&params).as_deref()))
}

async fn get_token(
    State(s): State<AppState>,
    Extension(mount): Extension<Arc<Mount>>,
    ip: ClientIp,
    id: Result<Path<String>, PathRejection>,
    params: Params,
) -> CrafterResult {
    authorize(&s, &mount, ip, &params).await?;
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
    Ok(json(StatusCode::OK, &body, None))
}

async fn delete_token(
    State(s): State<AppState>,
    Extension(mount): Extension<Arc<Mount>>,
    ip: ClientIp,
    id: Result<Path<String>, PathRejection>,
    params: Params,
) -> CrafterResult {
    let actor = authorize(&s, &mount, ip, &params).await?;
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
        let m = Crafter::mount(&ok).unwrap().unwrap();
        assert_eq!(
            (m.tenant.as_str(), m.base_path.as_str()),
            ("default", "/crafter-profile")
        );
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
            assert!(Crafter::mount(&bad).is_err(), "{bad:?}");
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
        let p = Params::from(vec![
            ("attributeToReturn".into(), "a".into()),
            ("attributesToReturn".into(), "b, c".into()),
            ("attributeToReturn".into(), "".into()),
        ]);
        assert_eq!(
            attributes_to_return(&p),
            Some(vec!["a".into(), "b".into(), "c".into()])
        );
        assert_eq!(attributes_to_return(&Params::from(vec![])), None);
    }

    #[tokio::test]
    async fn a_cool_down_counts_its_seconds_on_the_service_clock() {
        let until = Timestamp(100_000);
        let res = CrafterError::core(CoreError::CoolingDown { until }, Some("abc")).into_response();
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        let res = crate::surface::written(res, Timestamp(58_500));
        assert_eq!(res.headers()[axum::http::header::RETRY_AFTER], "42");
        let body = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v["message"],
            "A reset password email was sent to profile \"abc\" recently; try again in 42 seconds"
        );
    }
}
