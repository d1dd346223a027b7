//! How every surface reads a request: the whole body must arrive within a deadline (a client that
//! declares 100 bytes and sends 10, or trickles a chunked body, is answered 408 instead of holding
//! a connection and a task), the whole request must be answered within the request timeout (in
//! the surface's own shape, with `Retry-After`), and serde's error messages are reworded in the
//! client's terms (the field and what is wrong with it; never a Rust type, a serde phrase or a
//! position in serde's words).
//!
//! Each surface keeps its own error shape: [`Limits::guard`] takes the surface's timeout answer,
//! and every surface reads a body through [`ContentType`] and [`Unread`] (or [`RawBody`], both at
//! once), so that "is this JSON" and "was that the deadline" are decided in one place.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// A request's whole body must arrive within this time of its head, like the head itself
/// (`HEADER_READ_TIMEOUT` in the binary's `http.rs`). Reset bodies are a few hundred bytes, so
/// this is generous for any real client; the 30 s request timeout is for slow work, not slow
/// clients. The people import streams for minutes and is not under it.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The error a body gives once its deadline has passed.
#[derive(Debug, Clone, Copy)]
pub struct BodyTimedOut;

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive in time")
    }
}

impl std::error::Error for BodyTimedOut {}

/// Whether a failed body read (any extractor's rejection) was the body deadline: its chain of
/// sources holds a [`BodyTimedOut`].
pub fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if e.is::<BodyTimedOut>() {
            return true;
        }
        cur = e.source();
    }
    false
}

/// A body that fails with [`BodyTimedOut`] once `deadline` passes before its end.
struct DeadlineBody {
    inner: Body,
    deadline: Instant,
    /// Made on the first read that has to wait, so bodies read at once cost no timer.
    sleep: Option<Pin<Box<Sleep>>>,
    fired: Arc<AtomicBool>,
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|r| r.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.fired.store(true, Ordering::Relaxed);
                Poll::Ready(Some(Err(Box::new(BodyTimedOut))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// What a surface answers when a request runs past the request timeout: its own "busy, retry"
/// error with `Retry-After`. It gets the request's headers (the page picks its language).
pub type TimeoutAnswer = Arc<dyn Fn(&HeaderMap) -> Response + Send + Sync>;

/// Marks an answer made because the request timeout passed (its 503 + Retry-After is not a
/// saturated hashing pool, for the metrics).
#[derive(Debug, Clone, Copy)]
pub struct RequestTimedOut;

/// The two time limits of a request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The whole body within this time of the head.
    pub body: Duration,
    /// The whole answer within this time.
    pub request: Duration,
}

impl Limits {
    /// Puts `router` (one surface) under the limits, answering a timed-out request with
    /// `on_timeout`.
    pub fn guard<S: Clone + Send + Sync + 'static>(
        self,
        router: Router<S>,
        on_timeout: TimeoutAnswer,
    ) -> Router<S> {
        router.layer(axum::middleware::from_fn(
            move |req: Request, next: Next| {
                let on_timeout = on_timeout.clone();
                async move { self.run(req, next, &on_timeout).await }
            },
        ))
    }

    async fn run(self, req: Request, next: Next, on_timeout: &TimeoutAnswer) -> Response {
        let fired = Arc::new(AtomicBool::new(false));
        // Only what a timeout answer may need (the page's language), not the whole head.
        let mut kept = HeaderMap::new();
        if let Some(v) = req.headers().get(header::ACCEPT_LANGUAGE) {
            kept.insert(header::ACCEPT_LANGUAGE, v.clone());
        }
        let (parts, body) = req.into_parts();
        let body = Body::new(DeadlineBody {
            inner: body,
            deadline: Instant::now() + self.body,
            sleep: None,
            fired: fired.clone(),
        });
        let req = Request::from_parts(parts, body);
        let mut res = match tokio::time::timeout(self.request, next.run(req)).await {
            Ok(res) => res,
            Err(_) => {
                tracing::warn!(
                    timeout_secs = self.request.as_secs(),
                    "a request took longer than the request timeout"
                );
                let mut res = on_timeout(&kept);
                res.extensions_mut().insert(RequestTimedOut);
                res
            }
        };
        if fired.load(Ordering::Relaxed) {
            tracing::info!(
                timeout_secs = self.body.as_secs(),
                status = res.status().as_u16(),
                "a request body did not arrive in time"
            );
            // The rest of the body may still be on its way: do not wait for it to reuse the
            // connection.
            res.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        res
    }

    /// The last resort for routes outside every surface (health, metrics, the fallback): a
    /// problem+json 503 with `Retry-After` instead of a bare 503. A second later than the
    /// surfaces' own limit, so that theirs answers first.
    pub fn backstop<S: Clone + Send + Sync + 'static>(self, router: Router<S>) -> Router<S> {
        let limit = self.request + Duration::from_secs(1);
        router.layer(axum::middleware::from_fn(
            move |req: Request, next: Next| async move {
                match tokio::time::timeout(limit, next.run(req)).await {
                    Ok(res) => res,
                    Err(_) => {
                        let mut res = axum::response::IntoResponse::into_response(
                            crate::problem::Problem::request_timeout(),
                        );
                        res.extensions_mut().insert(RequestTimedOut);
                        res
                    }
                }
            },
        ))
    }
}

// ---- reading a body ----------------------------------------------------------------------------

/// A request's `Content-Type`, read once for every surface's checks (each surface decides what
/// it accepts and how it words a refusal).
#[derive(Debug, Clone, Default)]
pub struct ContentType(Option<HeaderValue>);

impl ContentType {
    /// The header of `headers`.
    pub fn of(headers: &HeaderMap) -> Self {
        Self(headers.get(header::CONTENT_TYPE).cloned())
    }

    /// The header as sent (bytes that are not UTF-8 replaced), for messages that repeat it;
    /// `None` when absent.
    pub fn sent(&self) -> Option<String> {
        self.0
            .as_ref()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    /// The media type without its parameters, trimmed and in lower case; `None` when absent.
    pub fn essence(&self) -> Option<String> {
        self.sent().map(|s| essence_of(&s))
    }

    /// Whether it names JSON by the `type-is` rule: `application/json`, parameters allowed,
    /// letter case ignored (`text/json` is not). A header that is not visible ASCII names nothing.
    pub fn is_json(&self) -> bool {
        self.visible_essence()
            .is_some_and(|e| e == "application/json")
    }

    /// [`Self::is_json`], or a structured syntax suffix (`application/merge-patch+json`).
    pub fn is_json_family(&self) -> bool {
        self.visible_essence().is_some_and(|e| {
            e == "application/json" || (e.starts_with("application/") && e.ends_with("+json"))
        })
    }

    fn visible_essence(&self) -> Option<String> {
        self.0.as_ref()?.to_str().ok().map(essence_of)
    }
}

fn essence_of(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Why a body could not be received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unread {
    /// Larger than `http.body_limit`.
    TooLarge,
    /// Not received within the body deadline.
    TimedOut,
    /// The connection broke, or the body was not valid for its framing.
    Broken,
}

impl Unread {
    /// What a failed read (the `Bytes` extractor's rejection) was.
    pub fn of(r: &BytesRejection) -> Self {
        if timed_out(r) {
            Unread::TimedOut
        } else if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Unread::TooLarge
        } else {
            Unread::Broken
        }
    }
}

/// A body read whole, with its `Content-Type`, before the handler looks at either: each vendor
/// checks the caller, the type, the size and the syntax in its own order.
#[derive(Debug)]
pub struct RawBody {
    /// The request's `Content-Type`.
    pub content_type: ContentType,
    /// The body, or why it could not be received.
    pub bytes: Result<Bytes, Unread>,
}

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = std::convert::Infallible;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = ContentType::of(req.headers());
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|r| Unread::of(&r));
        Ok(RawBody {
            content_type,
            bytes,
        })
    }
}

impl RawBody {
    /// Whether the body did not arrive within the body deadline (some vendors answer that before
    /// they look at the caller's credentials).
    pub fn timed_out(&self) -> bool {
        self.bytes == Err(Unread::TimedOut)
    }
}

// ---- serde's messages in the client's terms ---------------------------------------------------

/// Why a JSON text could not be parsed, in plain words with its position:
/// `the JSON ends too early (line 1, column 10)`.
pub fn syntax_reason(e: &serde_json::Error) -> String {
    let (message, _) = split_position(&e.to_string());
    let what = match message.as_str() {
        m if m.starts_with("EOF while parsing") => "the JSON ends too early",
        "expected value" => "a value is missing or is not JSON",
        "expected ident" => "a word is not true, false or null",
        "expected `:`" => "a colon is missing after a key",
        "expected `,` or `]`" => "a comma or a closing bracket is missing",
        "expected `,` or `}`" => "a comma or a closing brace is missing",
        "expected `\"`" => "a key is not a quoted string",
        "key must be a string" => "a key is not a quoted string",
        "invalid escape"
        | "unexpected end of hex escape"
        | "lone leading surrogate in hex escape" => "a string has an invalid escape",
        "invalid number" => "a number is malformed",
        "number out of range" => "a number is too large",
        "invalid unicode code point" => "a string is not valid UTF-8",
        m if m.starts_with("control character") => "a string holds a raw control character",
        "trailing comma" => "there is a comma before a closing bracket or brace",
        "trailing characters" => "there is more after the JSON value",
        "recursion limit exceeded" => "the JSON is nested too deeply",
        _ => "it is not valid JSON",
    };
    if e.line() == 0 {
        what.to_owned()
    } else {
        format!("{what} (line {}, column {})", e.line(), e.column())
    }
}

/// Splits serde_json's ` at line L column C` off a message.
fn split_position(msg: &str) -> (String, Option<&str>) {
    match msg.rfind(" at line ") {
        Some(i)
            if msg[i + 9..]
                .split(" column ")
                .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) =>
        {
            (msg[..i].to_owned(), Some(&msg[i + 1..]))
        }
        _ => (msg.to_owned(), None),
    }
}

/// One thing wrong with a JSON body's data: which field (`""` for the body itself) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// The field as the client wrote it (`login`, `roles[2]`), or `""` for the whole body.
    pub field: String,
    /// What is wrong, in words: `must be a string, not a number`.
    pub reason: String,
}

/// A field name fit to repeat: short and made of name characters (anything else may be input
/// that should not be echoed, such as a password pasted into the wrong place).
fn shown_name(name: &str) -> Option<&str> {
    (!name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.[]".contains(&b)))
    .then_some(name)
}

/// The first back-ticked word of a serde message (`missing field `login``).
fn ticked(msg: &str) -> Option<&str> {
    let start = msg.find('`')? + 1;
    let len = msg[start..].find('`')?;
    Some(&msg[start..start + len])
}

/// Every back-ticked word after `from` (the names serde lists after "expected one of").
fn ticked_list(msg: &str) -> Vec<&str> {
    msg.split('`').skip(1).step_by(2).collect()
}

/// A serde "expected" phrase in JSON's words.
fn json_kind(expected: &str) -> &'static str {
    let e = expected.trim();
    let word = e.split_whitespace().next().unwrap_or("");
    match word {
        "a" | "an" => match e.split_whitespace().nth(1).unwrap_or("") {
            "string" | "char" => "a string",
            "boolean" => "true or false",
            "sequence" | "tuple" => "an array",
            "map" => "an object",
            _ => "a value of another kind",
        },
        "struct" | "map" => "an object",
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" | "i8" | "i16" | "i32" | "i64" | "i128"
        | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "bool" => "true or false",
        "unit" => "null",
        "variant" | "enum" => "one of the allowed values",
        _ if e.starts_with("string") => "a string",
        _ => "a value of another kind",
    }
}

/// A serde "unexpected" phrase (`integer `5``, `string "…"`, `null`) as the kind of JSON value
/// it was, without the value.
fn sent_kind(unexpected: &str) -> &'static str {
    match unexpected.split_whitespace().next().unwrap_or("") {
        "null" | "unit" | "Option" => "null",
        "boolean" => "true or false",
        "integer" | "floating" => "a number",
        "string" | "character" | "char" => "a string",
        "sequence" => "an array",
        "map" => "an object",
        _ => "another kind of value",
    }
}

/// Rewords a serde data error at `path` (serde_path_to_error's rendering: `.` for the root,
/// `roles[2]`, `a.b`) as the field and what is wrong with it.
/// `message` is serde's (from serde_json, or serde_urlencoded for query strings).
pub fn data_problem(path: &str, message: &str) -> FieldProblem {
    let (msg, _) = split_position(message);
    let at = if path == "." { "" } else { path };
    let join = |name: &str| {
        let name = shown_name(name).unwrap_or("a field");
        if at.is_empty() || at.ends_with(name) {
            name.to_owned()
        } else {
            format!("{at}.{name}")
        }
    };
    let field_of_path = || shown_name(at).unwrap_or("a field").to_owned();
    if let Some(rest) = msg.strip_prefix("missing field ") {
        return FieldProblem {
            field: join(ticked(rest).unwrap_or("")),
            reason: "is required".into(),
        };
    }
    if let Some(rest) = msg.strip_prefix("duplicate field ") {
        return FieldProblem {
            field: join(ticked(rest).unwrap_or("")),
            reason: "is given more than once".into(),
        };
    }
    if let Some(rest) = msg.strip_prefix("unknown field ") {
        let name = ticked(rest).unwrap_or("");
        let allowed: Vec<&str> = ticked_list(rest).into_iter().skip(1).collect();
        let reason = if allowed.is_empty() {
            "is not accepted here".to_owned()
        } else {
            format!(
                "is not accepted here (the accepted names are {})",
                allowed.join(", ")
            )
        };
        let field = shown_name(name)
            .map(|n| {
                if at.ends_with(n) {
                    at.to_owned()
                } else {
                    join(n)
                }
            })
            .unwrap_or_else(|| "a field".into());
        return FieldProblem { field, reason };
    }
    if let Some(rest) = msg.strip_prefix("unknown variant ") {
        let allowed: Vec<&str> = ticked_list(rest).into_iter().skip(1).collect();
        return FieldProblem {
            field: field_of_path(),
            reason: if allowed.is_empty() {
                "has a value that is not allowed".into()
            } else {
                format!("must be one of {}", allowed.join(", "))
            },
        };
    }
    if let Some(rest) = msg.strip_prefix("invalid type: ") {
        let (sent, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
        let (sent, expected) = (sent_kind(sent), json_kind(expected));
        let reason = if at.is_empty() && expected == "an object" {
            format!("the body must be a JSON object, not {sent}")
        } else {
            format!("must be {expected}, not {sent}")
        };
        return FieldProblem {
            field: field_of_path_or_body(at),
            reason,
        };
    }
    if let Some(rest) = msg.strip_prefix("invalid value: ") {
        let expected = rest.split_once(", expected ").map(|x| x.1).unwrap_or("");
        return FieldProblem {
            field: field_of_path_or_body(at),
            reason: format!("must be {}", json_kind(expected)),
        };
    }
    // Query strings: the standard library's number and boolean parse errors.
    let reason = match msg.as_str() {
        "invalid digit found in string"
        | "cannot parse integer from empty string"
        | "number too large to fit in target type"
        | "number too small to fit in target type" => Some("must be a whole number in range"),
        "invalid float literal" => Some("must be a number"),
        "provided string was not `true` or `false`" => Some("must be true or false"),
        _ => None,
    };
    if let Some(reason) = reason {
        return FieldProblem {
            field: field_of_path_or_body(at),
            reason: reason.into(),
        };
    }
    if msg.starts_with("invalid length ") {
        return FieldProblem {
            field: field_of_path_or_body(at),
            reason: "has the wrong number of items".into(),
        };
    }
    FieldProblem {
        field: field_of_path_or_body(at),
        reason: "has a value that is not allowed".into(),
    }
}

fn field_of_path_or_body(at: &str) -> String {
    if at.is_empty() {
        String::new()
    } else {
        shown_name(at).unwrap_or("a field").to_owned()
    }
}

/// The kind of JSON value a body starts with (its first byte), for "must be an object, not …".
pub fn leading_kind(bytes: &[u8]) -> &'static str {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b'n') => "null",
        Some(b't' | b'f') => "true or false",
        Some(b'-' | b'0'..=b'9') => "a number",
        Some(b'{') => "an object",
        _ => "another kind of value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        login: String,
        flag: Option<bool>,
        roles: Option<Vec<String>>,
        limit: Option<u32>,
    }

    fn problem(text: &str) -> FieldProblem {
        let mut de = serde_json::Deserializer::from_str(text);
        let e = serde_path_to_error::deserialize::<_, Sample>(&mut de).unwrap_err();
        data_problem(&e.path().to_string(), &e.inner().to_string())
    }

    const FORBIDDEN: [&str; 9] = [
        "expected",
        "invalid type",
        "struct",
        "Sample",
        "u32",
        "Option",
        "variant",
        "at line",
        "`",
    ];

    #[test]
    fn data_errors_name_the_field_in_json_words() {
        let cases = [
            (r#"{"login": null}"#, "login", "must be a string, not null"),
            (r#"{"login": 5}"#, "login", "must be a string, not a number"),
            (
                r#"{"login": "a", "flag": "yes"}"#,
                "flag",
                "must be true or false, not a string",
            ),
            (
                r#"{"login": "a", "roles": [1]}"#,
                "roles[0]",
                "must be a string, not a number",
            ),
            (
                r#"{"login": "a", "roles": {}}"#,
                "roles",
                "must be an array, not an object",
            ),
            (
                r#"{"login": "a", "limit": -1}"#,
                "limit",
                "must be a whole number",
            ),
            (
                r#"{"login": "a", "limit": 1e30}"#,
                "limit",
                "must be a whole number, not a number",
            ),
            (r#"{}"#, "login", "is required"),
            (
                r#"{"login": "a", "login": "b"}"#,
                "login",
                "is given more than once",
            ),
            ("null", "", "the body must be a JSON object, not null"),
        ];
        for (text, field, reason) in cases {
            let p = problem(text);
            assert_eq!(
                (p.field.as_str(), p.reason.as_str()),
                (field, reason),
                "{text}"
            );
            for f in FORBIDDEN {
                assert!(
                    !p.reason.contains(f) && !p.field.contains(f),
                    "{text}: {p:?}"
                );
            }
        }
        let p = problem(r#"{"login": "a", "extra": 1}"#);
        assert_eq!(p.field, "extra");
        assert_eq!(
            p.reason,
            "is not accepted here (the accepted names are login, flag, roles, limit)"
        );
        // A key that looks like a pasted secret is not repeated.
        let p = problem(r#"{"login": "a", "hunter2 hunter2": 1}"#);
        assert_eq!(p.field, "a field");
    }

    #[test]
    fn syntax_errors_read_as_plain_words_with_a_position() {
        let e = serde_json::from_str::<serde_json::Value>("{\"login\": ").unwrap_err();
        assert_eq!(
            syntax_reason(&e),
            "the JSON ends too early (line 1, column 10)"
        );
        let e = serde_json::from_str::<serde_json::Value>("{\"a\": 1e999}").unwrap_err();
        assert!(syntax_reason(&e).starts_with("a number is too large"));
        let e = serde_json::from_slice::<serde_json::Value>(b"{\"a\": \"\xff\"}").unwrap_err();
        assert!(syntax_reason(&e).starts_with("a string is not valid UTF-8"));
        let e = serde_json::from_str::<serde_json::Value>("{} x").unwrap_err();
        assert!(syntax_reason(&e).starts_with("there is more after the JSON value"));
        for text in [
            "{",
            "[1,",
            "nul",
            "{\"a\" 1}",
            "{'a': 1}",
            "{\"a\":\"\\q\"}",
        ] {
            let e = serde_json::from_str::<serde_json::Value>(text).unwrap_err();
            let r = syntax_reason(&e);
            assert!(
                !r.contains("at line") && !r.contains("EOF") && !r.contains('`'),
                "{r}"
            );
        }
    }

    #[test]
    fn the_deadline_is_found_behind_any_rejection() {
        let e = axum::Error::new(BodyTimedOut);
        assert!(timed_out(&e));
        let io = std::io::Error::other("x");
        assert!(!timed_out(&io));
    }
}
