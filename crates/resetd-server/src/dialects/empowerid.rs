//! EmpowerID's help-desk password reset (`POST /api/services/v1/PasswordPolicy/ResetPassword`,
//! dialects.md section 4), mapped onto the core's administrative set-password use case. There is
//! no token flow: an authorised caller sets a person's password, optionally unlocking the account
//! and forcing a change at the next login.
//!
//! Both credentials EmpowerID requires are checked, and both are resetd API keys of the mounted
//! tenant: `X-EmpowerID-API-Key` names the calling application (restricted to the key ids in
//! `app_key_ids` when that list is set) and `Authorization: Bearer` the person acting, who is
//! recorded as the actor. Every answer, success or failure, is `{Success, Message, Exception}`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::{Extension, Router};
use resetd_core::model::{Lookup, Scope};
use resetd_core::secret::ApiKeySecret;
use resetd_core::service::Actor;
use resetd_core::types::{Password, TenantId};
use resetd_core::CoreError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::kit::{self, Dialect};
use crate::body::{RawBody, Unread};
use crate::ratelimit::{KeyLimiter, DEFAULT_KEY_BURST, DEFAULT_KEY_PER_MINUTE};
use crate::surface::{Effect, SurfaceError};
use crate::{AppState, ClientIp};

/// The surface's name in logs.
const EMPOWERID: &str = "empowerid";

/// The header carrying the registered application's API key.
pub const API_KEY_HEADER: &str = "x-empowerid-api-key";

/// The documented path and the older one with the same body.
const PATHS: [&str; 2] = ["PasswordPolicy/ResetPassword", "password/reset"];

/// Where EmpowerID's web API lives.
const PREFIX: &str = "/api/services/v1";

/// Settings of the EmpowerID dialect (`[dialects.empowerid]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmpowerIdConfig {
    /// Serve the dialect.
    pub enabled: bool,
    /// The resetd tenant whose people the PersonIDs (person numbers) name.
    pub tenant: String,
    /// Public ids of the API keys accepted in `X-EmpowerID-API-Key`; empty accepts any live
    /// admin key of the tenant.
    pub app_key_ids: Vec<String>,
    /// Sustained resets per minute per application key (`X-EmpowerID-API-Key`; 0: off). The
    /// caller is EmpowerID's server acting for every help-desk operator, so it is limited per
    /// key, not per IP.
    pub key_per_minute: u32,
    /// Burst of resets per application key.
    pub key_burst: u32,
}

impl Default for EmpowerIdConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            tenant: "default".into(),
            app_key_ids: Vec::new(),
            key_per_minute: DEFAULT_KEY_PER_MINUTE,
            key_burst: DEFAULT_KEY_BURST,
        }
    }
}

/// The EmpowerID dialect.
pub struct EmpowerId;

/// The checked form of [`EmpowerIdConfig`] the handlers see.
pub struct Mount {
    tenant: TenantId,
    /// Lower case, as key ids are printed.
    app_key_ids: Vec<String>,
    keys: KeyLimiter,
}

impl Dialect for EmpowerId {
    type Config = EmpowerIdConfig;
    type Mount = Mount;
    type Error = EmpowerIdError;

    /// IIS matches paths in any case, and EmpowerID's docs say so.
    const CASELESS_PREFIX: Option<&'static str> = Some(PREFIX);

    fn mount(c: &EmpowerIdConfig) -> Result<Option<Mount>, String> {
        let tenant =
            TenantId::parse(&c.tenant).map_err(|e| format!("dialects.empowerid.tenant: {e}"))?;
        for id in &c.app_key_ids {
            if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!(
                    "dialects.empowerid.app_key_ids: {id:?} is not an API key id (16 hex digits, as `resetd apikey create` prints)"
                ));
            }
        }
        Ok(c.enabled.then(|| Mount {
            tenant,
            app_key_ids: c.app_key_ids.iter().map(|i| i.to_ascii_lowercase()).collect(),
            keys: KeyLimiter::new(c.key_per_minute, c.key_burst),
        }))
    }

    /// The routes under `/api/services/v1`.
    fn routes(_: &Mount) -> Router<AppState> {
        let mut r = Router::new();
        for path in PATHS {
            r = r.route(
                &format!("{PREFIX}/{path}"),
                post(reset_password).fallback(method_not_allowed),
            );
        }
        r.route(&format!("{PREFIX}/{{*rest}}"), any(other_route))
    }
}

async fn method_not_allowed(method: Method) -> EmpowerIdError {
    EmpowerIdError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("The requested resource does not support http method '{method}'."),
        "MethodNotAllowed",
    )
}

/// ASP.NET routes ignore case, so `/api/services/v1/passwordpolicy/resetpassword` is the same
/// endpoint; anything else under the prefix is EmpowerID's 404.
async fn other_route(
    state: State<AppState>,
    mount: Extension<Arc<Mount>>,
    ip: ClientIp,
    method: Method,
    rest: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: RawBody,
) -> Response {
    let rest = rest.map(|Path(r)| r).unwrap_or_default();
    if !PATHS.iter().any(|p| p.eq_ignore_ascii_case(&rest)) {
        return EmpowerIdError::new(
            StatusCode::NOT_FOUND,
            "No HTTP resource was found that matches the request URI.",
            "NotFound",
        )
        .into_response();
    }
    if method != Method::POST {
        return method_not_allowed(method).await.into_response();
    }
    reset_password(state, mount, ip, headers, body).await
}

impl From<SurfaceError> for EmpowerIdError {
    fn from(e: SurfaceError) -> Self {
        use StatusCode as S;
        match e {
            // An application key past its rate, or an address past its rate of failed keys.
            SurfaceError::Limited { retry_after } => {
                let mut err = Self::new(
                    S::TOO_MANY_REQUESTS,
                    "Too many requests; try again later.",
                    "TooManyRequests",
                );
                err.retry_after = Some(retry_after);
                err
            }
            SurfaceError::Unavailable(why) => {
                let mut err = Self::new(
                    S::SERVICE_UNAVAILABLE,
                    "The server is busy; retry shortly.",
                    "Overloaded",
                );
                err.retry_after = Some(why.retry_after());
                err
            }
            SurfaceError::Internal => Self::new(
                S::INTERNAL_SERVER_ERROR,
                "An error has occurred.",
                "InternalError",
            ),
        }
    }
}

// ---- the envelope ------------------------------------------------------------------------------

/// EmpowerID's answer `{Success, Message, Exception}`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Envelope<'a> {
    success: bool,
    message: &'a str,
    exception: Option<&'a str>,
}

fn envelope(status: StatusCode, body: &Envelope<'_>, retry_after: Option<i64>) -> Response {
    kit::answer(status, "application/json; charset=utf-8", body, retry_after)
}

/// A failure: its status, a message for people and a stable name in `Exception`.
#[derive(Debug)]
pub struct EmpowerIdError {
    status: StatusCode,
    message: String,
    exception: &'static str,
    retry_after: Option<i64>,
}

impl EmpowerIdError {
    fn new(status: StatusCode, message: impl Into<String>, exception: &'static str) -> Self {
        Self {
            status,
            message: message.into(),
            exception,
            retry_after: None,
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message, "InvalidRequest")
    }

    fn unauthorized() -> Self {
        Self::core(CoreError::Unauthenticated, None)
    }

    /// The one mapping of core errors to EmpowerID answers. `person` is the PersonID the request
    /// named, for the not-found message.
    fn core(e: CoreError, person: Option<i64>) -> Self {
        use StatusCode as S;
        match e {
            CoreError::Invalid(i) => {
                let field = if i.field == "password" {
                    "Password"
                } else {
                    i.field
                };
                Self::invalid(format!("{field} {}.", i.reason))
            }
            CoreError::NotFound(_) => Self::new(
                S::NOT_FOUND,
                format!(
                    "No person with PersonID {} was found.",
                    person.unwrap_or_default()
                ),
                "PersonNotFound",
            ),
            CoreError::Policy(v) => {
                let reasons: Vec<&str> = v.violations.iter().map(|v| v.message.as_str()).collect();
                Self::new(
                    S::BAD_REQUEST,
                    format!(
                        "The password does not meet the password policy: {}",
                        reasons.join(" ")
                    ),
                    "PasswordPolicyViolation",
                )
            }
            CoreError::Unauthenticated => Self::new(
                S::UNAUTHORIZED,
                "Authorization has been denied for this request.",
                "Unauthorized",
            ),
            CoreError::Forbidden => Self::new(
                S::FORBIDDEN,
                "The caller may not reset passwords in this tenant.",
                "Forbidden",
            ),
            CoreError::Overloaded => SurfaceError::overloaded().into(),
            CoreError::Unavailable(cause) => SurfaceError::database(&cause).into(),
            CoreError::Internal(msg) => SurfaceError::internal(EMPOWERID, &msg).into(),
            // An administrator's set raises none of these (the tenant is the mounted one, the
            // person is found by number first): arriving here is a bug.
            e @ (CoreError::UnknownTenant
            | CoreError::Conflict(_)
            | CoreError::UnknownClient
            | CoreError::LinkNotAllowed
            | CoreError::MessageErased
            | CoreError::KeyRevoked
            | CoreError::KeyExpired
            | CoreError::Disabled
            | CoreError::CoolingDown { .. }
            | CoreError::TokenGone
            | CoreError::BadCredentials
            | CoreError::Locked { .. }) => SurfaceError::internal(EMPOWERID, &e).into(),
        }
    }
}

impl IntoResponse for EmpowerIdError {
    fn into_response(self) -> Response {
        let mut res = envelope(
            self.status,
            &Envelope {
                success: false,
                message: &self.message,
                exception: Some(self.exception),
            },
            self.retry_after,
        );
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

// ---- the request -------------------------------------------------------------------------------

/// The request body as EmpowerID's (Newtonsoft-style) binding reads it: property names in any
/// case, `PersonID` as a number or a numeric string, the flags as booleans or `"true"`/`"false"`
/// and optional (false), unknown properties ignored.
#[derive(Debug, PartialEq)]
struct ResetBody {
    person_id: i64,
    password: String,
    unlock_accounts: bool,
    must_change: bool,
}

/// 408 when the body did not arrive within the body deadline; the body is read (and so waited
/// for) before the caller is authenticated, and checked only after.
fn arrived(body: &RawBody) -> Result<(), EmpowerIdError> {
    if body.timed_out() {
        return Err(EmpowerIdError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "The request body did not arrive within {} seconds.",
                crate::body::BODY_READ_TIMEOUT.as_secs()
            ),
            "RequestTimeout",
        ));
    }
    Ok(())
}

impl ResetBody {
    fn parse(body: RawBody) -> Result<ResetBody, EmpowerIdError> {
        arrived(&body)?;
        let bytes = match body.bytes {
            Ok(b) => b,
            Err(Unread::TooLarge) => {
                return Err(EmpowerIdError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "The request body is larger than the server accepts.",
                    "PayloadTooLarge",
                ))
            }
            Err(Unread::TimedOut | Unread::Broken) => {
                return Err(EmpowerIdError::invalid(
                    "The request body could not be read.",
                ))
            }
        };
        // Web API's JSON formatter reads both JSON media types.
        let essence = body.content_type.essence();
        let is_json = essence
            .as_deref()
            .is_some_and(|e| e == "application/json" || e == "text/json");
        if !is_json {
            let shown: String = essence
                .unwrap_or_else(|| "application/octet-stream".into())
                .chars()
                .take(100)
                .collect();
            return Err(EmpowerIdError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "The request entity's media type '{shown}' is not supported for this resource."
                ),
                "UnsupportedMediaType",
            ));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(EmpowerIdError::invalid("The request body is required."));
        }
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
            EmpowerIdError::invalid(format!(
                "The request body is not valid JSON (line {}, column {}).",
                e.line(),
                e.column()
            ))
        })?;
        let Value::Object(map) = value else {
            return Err(EmpowerIdError::invalid(
                "The request body must be a JSON object.",
            ));
        };
        let mut fields: HashMap<String, Value> = HashMap::new();
        for (k, v) in map {
            let key = k.to_ascii_lowercase();
            if fields.contains_key(&key) {
                return Err(EmpowerIdError::invalid(format!(
                    "The property {} is given more than once.",
                    k.chars().take(64).collect::<String>()
                )));
            }
            fields.insert(key, v);
        }
        let person_id = match fields.remove("personid") {
            None | Some(Value::Null) => {
                return Err(EmpowerIdError::invalid("PersonID is required."))
            }
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                s.parse::<i64>().ok()
            }
            Some(_) => None,
        }
        .filter(|n| *n > 0)
        .ok_or_else(|| EmpowerIdError::invalid("PersonID must be a positive integer."))?;
        let password = match fields.remove("password") {
            None | Some(Value::Null) => {
                return Err(EmpowerIdError::invalid("Password is required."))
            }
            Some(Value::String(s)) => s,
            Some(_) => return Err(EmpowerIdError::invalid("Password must be a string.")),
        };
        let flag = |v: Option<Value>, name: &str| match v {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(b),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
            Some(_) => Err(EmpowerIdError::invalid(format!(
                "{name} must be true or false."
            ))),
        };
        let unlock_accounts = flag(fields.remove("unlockaccounts"), "UnlockAccounts")?;
        let must_change = flag(
            fields.remove("mustchangepasswordonnextlogin"),
            "MustChangePasswordOnNextLogin",
        )?;
        Ok(ResetBody {
            person_id,
            password,
            unlock_accounts,
            must_change,
        })
    }
}

/// Checks both credentials (live keys of the mounted tenant with the `empowerid` or admin scope;
/// a revoked, expired or rotated-out one answers as an unknown one), takes a token from the
/// application key's bucket, and returns the acting key as the actor. Credentials that fail are
/// counted per address instead (an unknown key has no bucket).
async fn authorize(
    s: &AppState,
    mount: &Mount,
    ip: ClientIp,
    headers: &HeaderMap,
) -> Result<Actor, EmpowerIdError> {
    let refuse = |e: EmpowerIdError| s.refuse(EMPOWERID, ip, e);
    let checked = |r: Result<resetd_core::model::ApiKey, CoreError>| match r {
        Ok(key) => Ok(key),
        Err(e @ (CoreError::Unauthenticated | CoreError::Forbidden)) => {
            Err(refuse(EmpowerIdError::core(e, None)))
        }
        Err(e) => Err(EmpowerIdError::core(e, None)),
    };
    let app = headers
        .get(API_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| ApiKeySecret::parse(v.trim()).ok())
        .ok_or_else(|| refuse(EmpowerIdError::unauthorized()))?;
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .and_then(|(_, k)| ApiKeySecret::parse(k.trim()).ok())
        .ok_or_else(|| refuse(EmpowerIdError::unauthorized()))?;
    let app_key = checked(
        s.service
            .authorize(&mount.tenant, &app, Scope::Empowerid)
            .await,
    )?;
    if !mount.app_key_ids.is_empty() && !mount.app_key_ids.contains(&app_key.id) {
        return Err(refuse(EmpowerIdError::unauthorized()));
    }
    let caller = checked(
        s.service
            .authorize(&mount.tenant, &bearer, Scope::Empowerid)
            .await,
    )?;
    s.admit_key(EMPOWERID, &mount.keys, &app_key.id)?;
    Ok(Actor::ApiKey(caller.id))
}

async fn reset_password(
    State(s): State<AppState>,
    Extension(mount): Extension<Arc<Mount>>,
    ip: ClientIp,
    headers: HeaderMap,
    body: RawBody,
) -> Response {
    match set_password(&s, &mount, ip, &headers, body).await {
        Ok(login) => {
            let message = format!("EmpowerID\\{login} Password reset successfully");
            envelope(
                StatusCode::OK,
                &Envelope {
                    success: true,
                    message: &message,
                    exception: None,
                },
                None,
            )
        }
        Err(e) => e.into_response(),
    }
}

/// Authenticates, parses, sets the password; returns the person's login.
async fn set_password(
    s: &AppState,
    mount: &Mount,
    ip: ClientIp,
    headers: &HeaderMap,
    body: RawBody,
) -> Result<String, EmpowerIdError> {
    arrived(&body)?;
    let actor = authorize(s, mount, ip, headers).await?;
    let req = ResetBody::parse(body)?;
    let password =
        Password::parse(&req.password).map_err(|e| EmpowerIdError::core(e.into(), None))?;
    let number = Some(req.person_id);
    let person = s
        .service
        .find_person(&mount.tenant, &Lookup::Number(req.person_id))
        .await
        .map_err(|e| EmpowerIdError::core(e, number))?;
    let ip = ip.text();
    let set = s.service.admin_set_password(
        &mount.tenant,
        &person.id,
        &password,
        req.unlock_accounts,
        req.must_change,
        &actor,
        ip.as_deref(),
    );
    s.run(Effect::MailQueued, set)
        .await
        .map_err(|e| EmpowerIdError::core(e, number))?;
    Ok(person.login.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(content_type: &str, json: &str) -> RawBody {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap());
        RawBody {
            content_type: crate::body::ContentType::of(&h),
            bytes: Ok(axum::body::Bytes::from(json.to_owned())),
        }
    }

    fn body(json: &str) -> RawBody {
        typed("application/json; charset=utf-8", json)
    }

    #[tokio::test]
    async fn an_unavailable_database_is_a_503_with_retry_after_and_no_detail() {
        crate::dialects::kit::assert_unavailable_answer(|e| {
            axum::response::IntoResponse::into_response(EmpowerIdError::core(e, None))
        })
        .await;
    }

    #[test]
    fn bodies_bind_like_newtonsoft() {
        let want = ResetBody {
            person_id: 12,
            password: "pw".into(),
            unlock_accounts: true,
            must_change: false,
        };
        for json in [
            r#"{"PersonID":12,"Password":"pw","UnlockAccounts":true,"MustChangePasswordOnNextLogin":false}"#,
            r#"{"PersonID":"12","Password":"pw","UnlockAccounts":"true","MustChangePasswordOnNextLogin":"False"}"#,
            r#"{"personId":12,"password":"pw","unlockAccounts":true,"Extra":[1]}"#,
        ] {
            assert_eq!(ResetBody::parse(body(json)).unwrap(), want, "{json}");
        }
        for (json, msg) in [
            (r#"{"Password":"pw"}"#, "PersonID is required."),
            (
                r#"{"PersonID":"12a","Password":"pw"}"#,
                "PersonID must be a positive integer.",
            ),
            (
                r#"{"PersonID":-3,"Password":"pw"}"#,
                "PersonID must be a positive integer.",
            ),
            (
                r#"{"PersonID":1.5,"Password":"pw"}"#,
                "PersonID must be a positive integer.",
            ),
            (r#"{"PersonID":1}"#, "Password is required."),
            (
                r#"{"PersonID":1,"Password":7}"#,
                "Password must be a string.",
            ),
            (
                r#"{"PersonID":1,"Password":"x","UnlockAccounts":"yes"}"#,
                "UnlockAccounts must be true or false.",
            ),
            (
                r#"{"PersonID":1,"personid":2,"Password":"x"}"#,
                "The property personid is given more than once.",
            ),
            (r#"[1]"#, "The request body must be a JSON object."),
            ("", "The request body is required."),
        ] {
            let err = ResetBody::parse(body(json)).unwrap_err();
            assert_eq!(
                (err.status, err.message.as_str()),
                (StatusCode::BAD_REQUEST, msg),
                "{json}"
            );
        }
        assert_eq!(
            ResetBody::parse(typed("text/plain", "{}")).unwrap_err().status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        assert!(ResetBody::parse(typed("Text/JSON", r#"{"PersonID":1,"Password":"x"}"#)).is_ok());
    }

    #[test]
    fn config_is_checked() {
        assert!(EmpowerId::mount(&EmpowerIdConfig::default()).is_ok());
        let bad_key = EmpowerIdConfig {
            app_key_ids: vec!["rsd_secret".into()],
            ..Default::default()
        };
        assert!(EmpowerId::mount(&bad_key).is_err());
        let bad_tenant = EmpowerIdConfig {
            tenant: "".into(),
            ..Default::default()
        };
        assert!(EmpowerId::mount(&bad_tenant).is_err());
        let on = EmpowerIdConfig {
            enabled: true,
            app_key_ids: vec!["0123456789ABCDEF".into()],
            ..Default::default()
        };
        let m = EmpowerId::mount(&on).unwrap().unwrap();
        assert_eq!(m.app_key_ids, ["0123456789abcdef"]);
    }
}
