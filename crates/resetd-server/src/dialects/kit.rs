//! What every vendor dialect is made of, written once. A dialect is a [`Dialect`]: its settings
//! section, checked once at start-up into the `Mount` its handlers see (so a bad section stops the
//! server instead of mounting nothing), its tenants' provisioning, its routes, and its error
//! envelope. The kit mounts it: the mount as an `Extension`, the request limits, and the vendor's
//! "busy, retry" answer when a request runs past the request timeout.
//!
//! The handlers share the readers here (a JSON body checked in the vendors' order, query and form
//! parameters as a servlet reads them), the answer writer, and [`crate::surface`] for the limits,
//! the wake-ups, the counters and the outcomes that are the same everywhere.
//!
//! A new dialect: a file in this folder implementing [`Dialect`], one line in the registry in
//! `mod.rs`, its black-box tests and its section in `docs/dialects.md`.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use resetd_core::secret::random_bytes;
use resetd_core::service::Service;
use serde::Serialize;
use serde_json::Value;

use crate::body::{syntax_reason, Limits, RawBody, TimeoutAnswer, Unread};
use crate::surface::SurfaceError;
use crate::AppState;

/// One vendor's password-reset API over the core.
pub trait Dialect: 'static {
    /// The section as written in the configuration (`[dialects.<name>]`); its `Default` is the
    /// documented defaults.
    type Config;
    /// The checked form of the section, which the handlers find as `Extension<Arc<Mount>>`.
    type Mount: Send + Sync + 'static;
    /// Every answer but a success, in the vendor's envelope.
    type Error: IntoResponse + From<SurfaceError> + 'static;

    /// A path prefix (lower case, no trailing slash) the vendor's server matches in any letter
    /// case, as IIS does, while axum's routes are case-sensitive: the router lower-cases it in
    /// every request before routing ([`Dialects::caseless_prefixes`]). What follows it is the
    /// dialect's to match.
    const CASELESS_PREFIX: Option<&'static str> = None;

    /// Checks the section, whether it is on or off (the error names the offending key), and
    /// returns its mount when it is on.
    fn mount(config: &Self::Config) -> Result<Option<Self::Mount>, String>;

    /// Prepares the mounted tenants at start-up (checks that they exist, registers the clients
    /// the vendor's links point to). Nothing by default.
    fn provision(
        mount: &Self::Mount,
        service: &Service,
    ) -> impl Future<Output = Result<(), String>> + Send {
        let _ = (mount, service);
        async { Ok(()) }
    }

    /// The routes, with the vendor's own answers to an unknown path and a wrong method.
    fn routes(mount: &Self::Mount) -> Router<AppState>;
}

/// A dialect that is on, checked and ready to serve.
trait Mounted: Send + Sync {
    fn provision<'a>(
        &'a self,
        service: &'a Service,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

    fn routes(&self, limits: Limits) -> Router<AppState>;

    fn caseless_prefix(&self) -> Option<&'static str>;
}

struct On<D: Dialect>(Arc<D::Mount>);

impl<D: Dialect> Mounted for On<D> {
    fn provision<'a>(
        &'a self,
        service: &'a Service,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(D::provision(&self.0, service))
    }

    fn routes(&self, limits: Limits) -> Router<AppState> {
        let busy: TimeoutAnswer =
            Arc::new(|_| D::Error::from(SurfaceError::timeout()).into_response());
        limits.guard(D::routes(&self.0).layer(Extension(self.0.clone())), busy)
    }

    fn caseless_prefix(&self) -> Option<&'static str> {
        D::CASELESS_PREFIX
    }
}

/// The dialects a configuration switches on, checked, in the registry's order.
#[derive(Default)]
pub struct Dialects(Vec<Box<dyn Mounted>>);

impl Dialects {
    /// Checks `D`'s section (`None`: not configured) and keeps the dialect when it is on.
    pub(super) fn add<D: Dialect>(&mut self, config: Option<&D::Config>) -> Result<(), String> {
        if let Some(mount) = config.map(D::mount).transpose()?.flatten() {
            self.0.push(Box::new(On::<D>(Arc::new(mount))));
        }
        Ok(())
    }

    /// Provisions every dialect that is on, in order; the first failure stops the start.
    pub async fn provision(&self, service: &Service) -> Result<(), String> {
        for d in &self.0 {
            d.provision(service).await?;
        }
        Ok(())
    }

    /// The routes of every dialect that is on, each under `limits`.
    pub fn routes(&self, limits: Limits) -> Router<AppState> {
        self.0
            .iter()
            .fold(Router::new(), |r, d| r.merge(d.routes(limits)))
    }

    /// The [`Dialect::CASELESS_PREFIX`]es of the dialects that are on.
    pub fn caseless_prefixes(&self) -> Vec<&'static str> {
        self.0.iter().filter_map(|d| d.caseless_prefix()).collect()
    }
}

/// `path` with the first of `prefixes` it starts with, in any letter case and followed by the
/// end or a `/`, spelt as in `prefixes`; `None` when none applies or it is spelt so already.
pub fn caseless_path(path: &str, prefixes: &[&'static str]) -> Option<String> {
    prefixes.iter().find_map(|prefix| {
        let head = path.as_bytes().get(..prefix.len())?;
        let rest = path.get(prefix.len()..)?;
        let under = rest.is_empty() || rest.starts_with('/');
        (under && head.eq_ignore_ascii_case(prefix.as_bytes()) && head != prefix.as_bytes())
            .then(|| format!("{prefix}{rest}"))
    })
}

// ---- answers ----------------------------------------------------------------------------------

/// A dialect's JSON answer: `body` with the vendor's `Content-Type`, and `Retry-After` (seconds)
/// when given.
pub fn answer<T: Serialize + ?Sized>(
    status: StatusCode,
    content_type: &'static str,
    body: &T,
    retry_after: Option<i64>,
) -> Response {
    match serde_json::to_string(body) {
        Ok(text) => text_answer(status, content_type, text, retry_after),
        // The vendors' bodies are structs of strings, numbers and JSON values: this is a bug.
        Err(e) => {
            tracing::error!(error = %e, "a dialect's answer could not be written");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// [`answer`] for a body that is already text.
pub fn text_answer(
    status: StatusCode,
    content_type: &'static str,
    text: impl Into<String>,
    retry_after: Option<i64>,
) -> Response {
    let mut res = (status, text.into()).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(s) = retry_after {
        h.insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    res
}

/// A random (version 4) UUID in its usual text form, for the error ids some vendors put in every
/// error.
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

/// A JSON value as JavaScript's `JSON.stringify` would print it in an error message (compact).
pub fn js_stringify(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

// ---- reading requests -------------------------------------------------------------------------

/// Why a JSON body could not be read; each dialect words it in its envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// The Content-Type is not `application/json`; holds the header as sent (`None` when absent).
    ContentType(Option<String>),
    /// The body could not be received.
    Unread(Unread),
    /// The body is not JSON; the text says why in plain words with the position, without
    /// repeating the input or serde's wording.
    Malformed(String),
}

/// Reads a JSON body as the JSON-only vendors check it: the Content-Type first, then the body's
/// arrival and size, then its syntax.
pub fn json(body: RawBody) -> Result<Value, BodyError> {
    if !body.content_type.is_json() {
        return Err(BodyError::ContentType(body.content_type.sent()));
    }
    let bytes = body.bytes.map_err(BodyError::Unread)?;
    serde_json::from_slice(&bytes).map_err(|e| BodyError::Malformed(syntax_reason(&e)))
}

/// Request parameters as a servlet's `getParameter` reads them: the query string's first, then
/// an `application/x-www-form-urlencoded` body's. A body that cannot be read is refused with the
/// dialect's error `E`, made from a [`ParamsError`].
#[derive(Debug)]
pub struct Params<E>(Vec<(String, String)>, PhantomData<fn() -> E>);

/// Why a request's parameters could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamsError {
    /// The body could not be received.
    Unread(Unread),
    /// A body was sent that is not a form: its media type, lower-cased (`None`: no
    /// Content-Type).
    ContentType(Option<String>),
}

impl<S: Send + Sync, E: From<ParamsError> + IntoResponse> FromRequest<S> for Params<E> {
    type Rejection = E;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let mut pairs: Vec<(String, String)> = req
            .uri()
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let RawBody {
            content_type,
            bytes,
        } = match RawBody::from_request(req, state).await {
            Ok(b) => b,
            Err(never) => match never {},
        };
        let body: Bytes = bytes.map_err(|u| E::from(ParamsError::Unread(u)))?;
        if !body.is_empty() {
            let essence = content_type.essence();
            if essence.as_deref() != Some("application/x-www-form-urlencoded") {
                return Err(E::from(ParamsError::ContentType(essence)));
            }
            pairs.extend(form_urlencoded::parse(&body).into_owned());
        }
        Ok(pairs.into())
    }
}

impl<E> From<Vec<(String, String)>> for Params<E> {
    fn from(pairs: Vec<(String, String)>) -> Self {
        Params(pairs, PhantomData)
    }
}

impl<E> Params<E> {
    /// The first value of `name`.
    pub fn first(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of any of `names`, in order.
    pub fn all<'a>(&'a self, names: &'a [&str]) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(|(k, _)| names.contains(&k.as_str()))
            .map(|(_, v)| v.as_str())
    }
}

/// For each dialect's tests: `answer` turns an unavailable database into that dialect's
/// response, which must be a 503 with `Retry-After: 5` that does not repeat the internal cause.
#[cfg(test)]
pub(crate) async fn assert_unavailable_answer(
    answer: impl FnOnce(resetd_core::CoreError) -> Response,
) {
    let res = answer(resetd_core::CoreError::Unavailable(
        "database is locked".into(),
    ));
    let res = crate::surface::written(res, resetd_core::model::Timestamp(0));
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()[header::RETRY_AFTER], "5");
    let body = axum::body::to_bytes(res.into_body(), 1 << 16)
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&body).contains("locked"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    use crate::body::ContentType;

    fn with_type(t: &str) -> RawBody {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(t).unwrap());
        RawBody {
            content_type: ContentType::of(&h),
            bytes: Ok(Bytes::from_static(b"{}")),
        }
    }

    #[test]
    fn json_content_types_follow_type_is() {
        for (t, json) in [
            ("application/json", true),
            ("Application/JSON; charset=UTF-8", true),
            ("text/plain", false),
            ("application/jsonx", false),
            ("application/merge-patch+json", false),
        ] {
            assert_eq!(with_type(t).content_type.is_json(), json, "{t}");
        }
        assert!(!ContentType::of(&HeaderMap::new()).is_json());
        assert!(with_type("application/merge-patch+json")
            .content_type
            .is_json_family());
    }

    #[test]
    fn bodies_are_checked_in_order() {
        assert_eq!(
            json(with_type("text/plain")),
            Err(BodyError::ContentType(Some("text/plain".into())))
        );
        let none = RawBody {
            content_type: ContentType::default(),
            bytes: Err(Unread::TimedOut),
        };
        assert_eq!(json(none), Err(BodyError::ContentType(None)));
        let late = RawBody {
            bytes: Err(Unread::TimedOut),
            ..with_type("application/json")
        };
        assert_eq!(json(late), Err(BodyError::Unread(Unread::TimedOut)));
        let secret = RawBody {
            bytes: Ok(Bytes::from_static(b"{\"password\": \"hunter2")),
            ..with_type("application/json")
        };
        assert!(matches!(json(secret), Err(BodyError::Malformed(m)) if !m.contains("hunter2")));
        let ok = RawBody {
            bytes: Ok(Bytes::from_static(b"{\"a\":1}")),
            ..with_type("application/json")
        };
        assert_eq!(json(ok), Ok(serde_json::json!({"a": 1})));
    }

    /// A dialect error for the tests: the status says which refusal it was.
    #[derive(Debug, PartialEq)]
    struct Refused(ParamsError);

    impl From<ParamsError> for Refused {
        fn from(e: ParamsError) -> Self {
            Refused(e)
        }
    }

    impl IntoResponse for Refused {
        fn into_response(self) -> Response {
            StatusCode::BAD_REQUEST.into_response()
        }
    }

    type P = Params<Refused>;

    #[tokio::test]
    async fn parameters_come_from_the_query_then_a_form_body() {
        let req = Request::post("/x?a=1&b=2")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(axum::body::Body::from("a=3&c=4"))
            .unwrap();
        let p = P::from_request(req, &()).await.unwrap();
        assert_eq!(p.first("a"), Some("1"));
        assert_eq!(p.first("c"), Some("4"));
        assert_eq!(p.all(&["a"]).collect::<Vec<_>>(), ["1", "3"]);
        let req = Request::post("/x")
            .header(header::CONTENT_TYPE, "Text/Plain; charset=x")
            .body(axum::body::Body::from("a=3"))
            .unwrap();
        assert_eq!(
            P::from_request(req, &()).await.unwrap_err(),
            Refused(ParamsError::ContentType(Some("text/plain".into())))
        );
        let empty = Request::post("/x?a=1")
            .header(header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(
            P::from_request(empty, &()).await.unwrap().first("a"),
            Some("1")
        );
    }

    #[test]
    fn caseless_prefixes_are_respelt_only_as_a_whole_segment() {
        let p = ["/api/services/v1"];
        let fix = |path: &str| caseless_path(path, &p);
        assert_eq!(
            fix("/API/Services/V1/PasswordPolicy/ResetPassword").as_deref(),
            Some("/api/services/v1/PasswordPolicy/ResetPassword")
        );
        assert_eq!(fix("/Api/services/v1").as_deref(), Some("/api/services/v1"));
        assert_eq!(
            fix("/API/SERVICES/V1/%FF").as_deref(),
            Some("/api/services/v1/%FF")
        );
        assert_eq!(fix("/api/services/v1/x"), None);
        assert_eq!(fix("/API/Services/V12/x"), None);
        assert_eq!(fix("/API/Services"), None);
        assert_eq!(fix("/v1/acme/recovery"), None);
        assert_eq!(fix("/API/Services/V\u{e9}/x"), None);
        assert_eq!(caseless_path("/API/Services/V1/x", &[]), None);
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
