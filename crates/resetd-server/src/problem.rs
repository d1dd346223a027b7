//! The native API's error shape, RFC 9457 `application/problem+json`, and the JSON body extractor
//! that turns every malformed body into one, in the API's words (see [`crate::body`]): no serde
//! message reaches a client, so none can echo input either.

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use resetd_core::model::Timestamp;
use resetd_core::types::InvalidInput;
use resetd_core::CoreError;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::body::{ContentType, Unread};
use crate::surface::{SurfaceError, Unavailable};

/// A problem+json error response.
#[derive(Debug, Clone)]
pub struct Problem {
    status: StatusCode,
    slug: &'static str,
    title: &'static str,
    detail: String,
    extra: Option<Box<(&'static str, Value)>>,
    retry: Retry,
    bearer_challenge: bool,
}

/// When a client may try again.
#[derive(Debug, Clone, Copy)]
enum Retry {
    Never,
    /// After this many seconds.
    After(i64),
    /// At this moment: Retry-After is counted from the service's clock when the answer is
    /// written ([`crate::surface::clocked`]).
    At(Timestamp),
}

impl Problem {
    /// A problem with `status`, a stable `slug` (the end of its type URI), a title and detail.
    pub fn new(
        status: StatusCode,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            slug,
            title,
            detail: detail.into(),
            extra: None,
            retry: Retry::Never,
            bearer_challenge: false,
        }
    }

    /// Adds one extension member.
    pub fn with(mut self, key: &'static str, value: Value) -> Self {
        self.extra = Some(Box::new((key, value)));
        self
    }

    /// Adds a Retry-After header.
    pub fn retry_after(mut self, secs: i64) -> Self {
        self.retry = Retry::After(secs.max(1));
        self
    }

    /// Adds a Retry-After header that counts the seconds until `until`.
    fn retry_at(mut self, until: Timestamp) -> Self {
        self.retry = Retry::At(until);
        self
    }

    /// 404 for a path that does not exist.
    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not Found",
            "There is nothing at this path.",
        )
    }

    /// 405.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method Not Allowed",
            "This path does not accept this method.",
        )
    }

    /// 429 with Retry-After.
    pub fn rate_limited(retry_after: i64) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too Many Requests",
            "Too many requests from this address; try again later.",
        )
        .retry_after(retry_after)
    }

    /// 422 for one invalid field.
    pub fn invalid(e: &InvalidInput) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-input",
            "Invalid Input",
            e.to_string(),
        )
        .with("errors", json!([{"field": e.field, "reason": e.reason}]))
    }

    /// 408: the body did not arrive within the body deadline.
    pub fn body_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "body-timeout",
            "Request Timeout",
            format!(
                "The request body did not arrive within {} seconds.",
                crate::body::BODY_READ_TIMEOUT.as_secs()
            ),
        )
    }

    /// 503 + Retry-After: the request was not answered within the request timeout.
    pub fn request_timeout() -> Self {
        SurfaceError::timeout().into()
    }

    /// 400 for a body that is not JSON.
    fn malformed(detail: String) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "malformed-json",
            "Malformed JSON",
            detail,
        )
    }

    /// 422 for a JSON body whose data does not fit: the field and what is wrong with it.
    fn invalid_body(p: &crate::body::FieldProblem) -> Self {
        let detail = if p.field.is_empty() {
            capitalized(&p.reason)
        } else {
            format!("Field '{}' {}.", p.field, p.reason)
        };
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-body",
            "Invalid Body",
            detail,
        )
        .with("errors", json!([{"field": p.field, "reason": p.reason}]))
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

/// `reason` as a sentence.
fn capitalized(reason: &str) -> String {
    let mut c = reason.chars();
    match c.next() {
        Some(f) => format!("{}{}.", f.to_uppercase(), c.as_str()),
        None => String::new(),
    }
}

impl From<InvalidInput> for Problem {
    fn from(e: InvalidInput) -> Self {
        Problem::invalid(&e)
    }
}

impl From<CoreError> for Problem {
    fn from(e: CoreError) -> Self {
        use StatusCode as S;
        match e {
            CoreError::Invalid(i) => Problem::invalid(&i),
            CoreError::UnknownTenant => Problem::new(
                S::NOT_FOUND,
                "unknown-tenant",
                "Unknown Tenant",
                "No tenant has this name.",
            ),
            CoreError::NotFound(what) => Problem::new(
                S::NOT_FOUND,
                "not-found",
                "Not Found",
                format!("No {what} has this id."),
            ),
            CoreError::Conflict(what) => Problem::new(
                S::CONFLICT,
                "conflict",
                "Conflict",
                format!("The {what} is already taken."),
            ),
            CoreError::UnknownClient => Problem::new(
                S::UNPROCESSABLE_ENTITY,
                "unknown-client",
                "Unknown Client",
                "No client with this name is registered for the tenant.",
            ),
            CoreError::LinkNotAllowed => Problem::new(
                S::UNPROCESSABLE_ENTITY,
                "link-not-allowed",
                "Reset Page Not Allowed",
                "The reset page URL matches no allowed prefix of a registered client.",
            ),
            CoreError::MessageErased => Problem::new(
                S::CONFLICT,
                "message-erased",
                "Message Erased",
                "This message was given up and its body erased, as it held a reset link; it cannot \
                 be sent again. Ask for a new reset email instead.",
            ),
            CoreError::Disabled => Problem::new(
                S::CONFLICT,
                "disabled",
                "Person Disabled",
                "The person is disabled.",
            ),
            CoreError::CoolingDown { until } => Problem::new(
                S::TOO_MANY_REQUESTS,
                "cooling-down",
                "Too Many Requests",
                "A reset email was sent to this person recently; try again later.",
            )
            .retry_at(until),
            CoreError::TokenGone => Problem::new(
                S::GONE,
                "token-gone",
                "Link No Longer Valid",
                "This reset link is unknown, expired or already used. Request a new one.",
            ),
            CoreError::Policy(v) => Problem::new(
                S::UNPROCESSABLE_ENTITY,
                "password-policy",
                "Password Rejected",
                "The password does not meet the policy.",
            )
            .with("violations", json!(v.violations)),
            CoreError::BadCredentials => Problem::new(
                S::UNAUTHORIZED,
                "bad-credentials",
                "Unauthorized",
                "The login or password is wrong.",
            ),
            CoreError::Locked { until } => Problem::new(
                S::LOCKED,
                "locked",
                "Account Locked",
                "Too many failed logins; the account is locked for a while.",
            )
            .retry_at(until),
            CoreError::Unauthenticated => {
                let mut p = Problem::new(
                    S::UNAUTHORIZED,
                    "unauthenticated",
                    "Unauthorized",
                    "A valid API key is required: Authorization: Bearer <key>.",
                );
                p.bearer_challenge = true;
                p
            }
            CoreError::Forbidden => Problem::new(
                S::FORBIDDEN,
                "forbidden",
                "Forbidden",
                "This API key may not do this in this tenant.",
            ),
            CoreError::KeyRevoked => Problem::new(
                S::CONFLICT,
                "api-key-revoked",
                "API Key Revoked",
                "This API key is revoked already; a revoked key cannot be revoked or rotated.",
            ),
            CoreError::KeyExpired => Problem::new(
                S::CONFLICT,
                "api-key-expired",
                "API Key Expired",
                "This API key has expired; create a new key instead of rotating it.",
            ),
            CoreError::Overloaded => SurfaceError::overloaded().into(),
            CoreError::Unavailable(cause) => SurfaceError::database(&cause).into(),
            CoreError::Internal(msg) => SurfaceError::internal(crate::native::NATIVE, &msg).into(),
        }
    }
}

impl From<SurfaceError> for Problem {
    fn from(e: SurfaceError) -> Self {
        use StatusCode as S;
        match e {
            SurfaceError::Limited { retry_after } => Problem::rate_limited(retry_after),
            SurfaceError::Unavailable(why) => {
                let (slug, detail) = match why {
                    Unavailable::Overloaded => (
                        "overloaded",
                        "The server is busy hashing passwords; retry shortly.",
                    ),
                    Unavailable::Database => (
                        "unavailable",
                        "The database is temporarily unavailable; retry shortly.",
                    ),
                    Unavailable::Timeout => (
                        "timeout",
                        "The request took too long to answer; retry shortly.",
                    ),
                };
                Problem::new(S::SERVICE_UNAVAILABLE, slug, "Service Unavailable", detail)
                    .retry_after(why.retry_after())
            }
            SurfaceError::Internal => Problem::new(
                S::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal Server Error",
                "Something went wrong on our side; it has been logged.",
            ),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        match self.retry {
            Retry::At(until) => crate::surface::clocked(self.status, move |now| {
                self.clone()
                    .retry_after(now.secs_until(until))
                    .into_response()
            }),
            Retry::Never | Retry::After(_) => self.write(),
        }
    }
}

impl Problem {
    fn write(self) -> Response {
        let mut body = json!({
            "type": format!("urn:resetd:problem:{}", self.slug),
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if let Some(kv) = self.extra {
            let (k, v) = *kv;
            body[k] = v;
        }
        let mut res = (self.status, body.to_string()).into_response();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Retry::After(s) = self.retry {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.bearer_challenge {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

fn unsupported_media_type() -> Problem {
    Problem::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        "Unsupported Media Type",
        "Send the body as Content-Type: application/json.",
    )
}

/// Maps a failed body read (size, deadline, a broken connection) to a problem.
fn unread(why: Unread) -> Problem {
    match why {
        Unread::TimedOut => Problem::body_timeout(),
        Unread::TooLarge => Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "Payload Too Large",
            "The request body is larger than the server accepts.",
        ),
        Unread::Broken => Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-body",
            "Bad Request",
            "The request body could not be read.",
        ),
    }
}

/// A JSON body whose every rejection is a problem+json: the content type, the size, the
/// deadline, the syntax (400) and the data (422, naming the field), in the API's own words.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // The type first: a body of the wrong type is refused without waiting for it.
        if !ContentType::of(req.headers()).is_json_family() {
            return Err(unsupported_media_type());
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|r| unread(Unread::of(&r)))?;
        parse_json(&bytes).map(Body)
    }
}

/// Reads a JSON object into `T`.
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    use crate::body::{data_problem, leading_kind, syntax_reason, FieldProblem};
    use serde_json::error::Category;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Problem::malformed(
            "The body is empty; send a JSON object.".into(),
        ));
    }
    // serde would also read a struct from a JSON array in field order, and a bare `null` as
    // "no struct": the API takes objects only. Syntax is checked first, so that a truncated
    // array is malformed (400) rather than the wrong kind (422).
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            return Err(Problem::malformed(format!(
                "The body is not valid JSON: {}.",
                syntax_reason(&e)
            )));
        }
        return Err(Problem::invalid_body(&FieldProblem {
            field: String::new(),
            reason: format!(
                "the body must be a JSON object, not {}",
                leading_kind(bytes)
            ),
        }));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize::<_, T>(&mut de).map_err(|e| {
        match e.inner().classify() {
            Category::Data => {
                Problem::invalid_body(&data_problem(&e.path().to_string(), &e.inner().to_string()))
            }
            Category::Syntax | Category::Eof | Category::Io => Problem::malformed(format!(
                "The body is not valid JSON: {}.",
                syntax_reason(e.inner())
            )),
        }
    })?;
    de.end().map_err(|e| {
        Problem::malformed(format!(
            "The body is not valid JSON: {}.",
            syntax_reason(&e)
        ))
    })?;
    Ok(value)
}

/// A query string whose rejection is a problem+json.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(r) => Err(query_rejection(r)),
        }
    }
}

/// Path parameters whose rejection is a problem+json.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            // The native paths are text: only a segment that is not UTF-8 once percent-decoded
            // fails (axum's own message names Rust types).
            Err(_) => Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid-path",
                "Invalid Path",
                "A path segment is not valid UTF-8 once percent-decoded.",
            )),
        }
    }
}

/// A query string that does not fit, in the API's words: the parameter and what is wrong.
fn query_rejection(r: QueryRejection) -> Problem {
    // axum words it `Failed to deserialize query string: <path>: <serde's message>`.
    let text = r.body_text();
    let rest = text.split_once(": ").map(|x| x.1).unwrap_or("");
    let (path, msg) = rest.split_once(": ").unwrap_or((".", rest));
    let p = crate::body::data_problem(path, msg);
    let detail = if p.field.is_empty() {
        "The query string is invalid.".to_owned()
    } else {
        format!("Parameter '{}' {}.", p.field, p.reason)
    };
    Problem::new(
        StatusCode::BAD_REQUEST,
        "invalid-query",
        "Invalid Query",
        detail,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_errors_map_to_statuses() {
        assert_eq!(
            Problem::from(CoreError::TokenGone).status(),
            StatusCode::GONE
        );
        assert_eq!(
            Problem::from(CoreError::Overloaded).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        let unavailable = Problem::from(CoreError::Unavailable("database is locked".into()));
        assert_eq!(unavailable.status(), StatusCode::SERVICE_UNAVAILABLE);
        let res = unavailable.into_response();
        assert_eq!(res.headers()[header::RETRY_AFTER], "5");
        assert_eq!(
            Problem::from(CoreError::Internal("boom".into())).status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            Problem::from(CoreError::Locked {
                until: resetd_core::model::Timestamp(0)
            })
            .status(),
            StatusCode::LOCKED
        );
    }
}
