//! What the dialects share on the wire: reading a JSON body with the caller's Content-Type, size
//! and syntax problems told apart (each dialect words them in its own envelope), and random UUIDs
//! for the error ids some vendors put in every error.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use resetd_core::secret::random_bytes;
use serde_json::Value;

use crate::body::syntax_reason;

/// Why a JSON body could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// The Content-Type is not `application/json`; holds the header as sent (`None` when absent).
    ContentType(Option<String>),
    /// The body is larger than the server accepts.
    TooLarge,
    /// The body is not JSON; the text says why in plain words with the position, without
    /// repeating the input or serde's wording.
    Malformed(String),
    /// The body did not arrive within the body deadline.
    TimedOut,
    /// The body could not be received.
    Unreadable,
}

/// Whether a Content-Type header names `application/json`, parameters allowed, letter case ignored
/// (the `type-is` rule: `application/json; charset=utf-8` is JSON, `text/json` is not).
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// The Content-Type header as sent, for messages that repeat it.
pub fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// Reads a JSON body: Content-Type first, then size, then syntax.
pub fn json_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Value, BodyError> {
    if !is_json(headers) {
        return Err(BodyError::ContentType(content_type(headers)));
    }
    let bytes = match body {
        Ok(b) => b,
        Err(r) if crate::body::timed_out(&r) => return Err(BodyError::TimedOut),
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(BodyError::TooLarge),
        Err(_) => return Err(BodyError::Unreadable),
    };
    serde_json::from_slice(&bytes).map_err(|e| BodyError::Malformed(syntax_reason(&e)))
}

/// A random (version 4) UUID in its usual text form.
pub fn uuid_v4() -> String {
    let mut b = random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = resetd_core::secret::hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// A dialect's JSON answer: `text` with the dialect's own `Content-Type`, and `Retry-After`
/// (seconds) when given.
pub fn json_answer(
    status: StatusCode,
    content_type: &'static str,
    text: String,
    retry_after: Option<i64>,
) -> Response {
    let mut res = (status, text).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(s) = retry_after {
        h.insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    res
}

/// A JSON value as JavaScript's `JSON.stringify` would print it in an error message (compact).
pub fn js_stringify(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_type(t: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(t).unwrap());
        h
    }

    #[test]
    fn json_content_types_follow_type_is() {
        assert!(is_json(&with_type("application/json")));
        assert!(is_json(&with_type("Application/JSON; charset=UTF-8")));
        assert!(!is_json(&with_type("text/plain")));
        assert!(!is_json(&with_type("application/jsonx")));
        assert!(!is_json(&with_type("application/merge-patch+json")));
        assert!(!is_json(&HeaderMap::new()));
    }

    #[test]
    fn bodies_are_checked_in_order() {
        assert_eq!(
            json_body(&with_type("text/plain"), Ok(Bytes::from_static(b"{}"))),
            Err(BodyError::ContentType(Some("text/plain".into())))
        );
        assert_eq!(
            json_body(&HeaderMap::new(), Ok(Bytes::from_static(b"{}"))),
            Err(BodyError::ContentType(None))
        );
        assert!(matches!(
            json_body(&with_type("application/json"), Ok(Bytes::from_static(b"{\"password\": \"hunter2"))),
            Err(BodyError::Malformed(m)) if !m.contains("hunter2")
        ));
        assert_eq!(
            json_body(
                &with_type("application/json"),
                Ok(Bytes::from_static(b"{\"a\":1}"))
            ),
            Ok(serde_json::json!({"a": 1}))
        );
    }

    #[test]
    fn uuids_look_like_uuids() {
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!("89ab".contains(&u[19..20]));
        assert_ne!(u, uuid_v4());
    }
}
