//! The native API's error shape, RFC 9457 `application/problem+json`, and the JSON body extractor
//! that turns every malformed body into one.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use resetd_core::types::InvalidInput;
use resetd_core::CoreError;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

/// A problem+json error response.
#[derive(Debug)]
pub struct Problem {
    status: StatusCode,
    slug: &'static str,
    title: &'static str,
    detail: String,
    extra: Option<Box<(&'static str, Value)>>,
    retry_after: Option<i64>,
    bearer_challenge: bool,
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
            retry_after: None,
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
        self.retry_after = Some(secs.max(1));
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

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
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
            CoreError::CoolingDown { until } => {
                use resetd_core::model::{Clock, SystemClock};
                Problem::new(
                    S::TOO_MANY_REQUESTS,
                    "cooling-down",
                    "Too Many Requests",
                    "A reset email was sent to this person recently; try again later.",
                )
                .retry_after(SystemClock.now().secs_until(until))
            }
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
            CoreError::Locked { until } => {
                use resetd_core::model::{Clock, SystemClock};
                Problem::new(
                    S::LOCKED,
                    "locked",
                    "Account Locked",
                    "Too many failed logins; the account is locked for a while.",
                )
                .retry_after(SystemClock.now().secs_until(until))
            }
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
            CoreError::Overloaded => Problem::new(
                S::SERVICE_UNAVAILABLE,
                "overloaded",
                "Service Unavailable",
                "The server is busy hashing passwords; retry shortly.",
            )
            .retry_after(resetd_core::error::RETRY_OVERLOADED_SECS),
            e @ CoreError::Unavailable(_) => {
                log_transient(&e);
                Problem::new(
                    S::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "Service Unavailable",
                    "The database is temporarily unavailable; retry shortly.",
                )
                .retry_after(resetd_core::error::RETRY_UNAVAILABLE_SECS)
            }
            CoreError::Internal(msg) => {
                tracing::error!(error = %msg, "internal error");
                Problem::new(
                    S::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Internal Server Error",
                    "Something went wrong on our side; it has been logged.",
                )
            }
        }
    }
}

/// Logs a transient failure that an API surface answers with 503 + Retry-After (an overload
/// is expected under a flood and is not logged; an unavailable database is).
pub(crate) fn log_transient(e: &CoreError) {
    if let CoreError::Unavailable(msg) = e {
        tracing::warn!(error = %msg, "database unavailable");
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
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
        if let Some(s) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.bearer_challenge {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

/// Removes quoted or back-ticked values from a serde message, so an error never echoes input
/// (which may be a password).
pub fn scrub(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut quote: Option<char> = None;
    for c in msg.chars() {
        match quote {
            Some(q) if c == q => {
                out.push('…');
                out.push(c);
                quote = None;
            }
            Some(_) => {}
            None if c == '`' || c == '"' => {
                out.push(c);
                quote = Some(c);
            }
            None => out.push(c),
        }
    }
    out
}

fn unsupported_media_type() -> Problem {
    Problem::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        "Unsupported Media Type",
        "Send the body as Content-Type: application/json.",
    )
}

/// Maps a JSON body rejection to a problem.
pub fn json_rejection(r: JsonRejection) -> Problem {
    use StatusCode as S;
    match r {
        JsonRejection::MissingJsonContentType(_) => Problem::new(
            S::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported Media Type",
            "Send the body as Content-Type: application/json.",
        ),
        JsonRejection::JsonSyntaxError(e) => Problem::new(
            S::BAD_REQUEST,
            "malformed-json",
            "Malformed JSON",
            scrub(&e.body_text()),
        ),
        JsonRejection::JsonDataError(e) => Problem::new(
            S::UNPROCESSABLE_ENTITY,
            "invalid-body",
            "Invalid Body",
            scrub(&e.body_text()),
        ),
        JsonRejection::BytesRejection(e) if e.status() == S::PAYLOAD_TOO_LARGE => Problem::new(
            S::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "Payload Too Large",
            "The request body is larger than the server accepts.",
        ),
        other => Problem::new(
            S::BAD_REQUEST,
            "bad-body",
            "Bad Request",
            scrub(&other.body_text()),
        ),
    }
}

/// A JSON body whose every rejection is a problem+json.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|m| {
                let m = m.trim().to_ascii_lowercase();
                m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
            })
            .unwrap_or(false);
        if !json_type {
            return Err(unsupported_media_type());
        }
        let bytes = match axum::body::Bytes::from_request(req, state).await {
            Ok(b) => b,
            Err(e) => return Err(json_rejection(JsonRejection::BytesRejection(e))),
        };
        // serde would also read a struct from a JSON array in field order; the API takes objects only.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-body",
                "Invalid Body",
                "The body must be a JSON object.",
            ));
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(v)) => Ok(Body(v)),
            Err(r) => Err(json_rejection(r)),
        }
    }
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
            Err(r) => Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid-path",
                "Invalid Path",
                scrub(&r.body_text()),
            )),
        }
    }
}

fn query_rejection(r: QueryRejection) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "invalid-query",
        "Invalid Query",
        scrub(&r.body_text()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_values() {
        assert_eq!(
            scrub("password: invalid type: string \"hunter2\", expected u32"),
            "password: invalid type: string \"…\", expected u32"
        );
        assert_eq!(
            scrub("invalid type: integer `12345678`, expected a string"),
            "invalid type: integer `…`, expected a string"
        );
    }

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
