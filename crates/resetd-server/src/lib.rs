//! resetd's HTTP surfaces: the native API under /v1, the hosted page and the dialects (the public
//! router), health, readiness and metrics (the management router, served on its own listener),
//! and the background worker that resolves reset requests. Each surface maps core errors to its
//! own wire shape once, exhaustively.
//!
//! Reading order: [`surface`] (what every surface does around its use case: the per-IP limit,
//! the wake-ups, the counters, and the outcomes that are the same everywhere), [`body`] (how a
//! request's body is read, within its deadline), then one surface: [`native`] with [`problem`],
//! [`page`], or a dialect in [`dialects`] (start with [`dialects::kit`]).
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unimplemented
    )
)]

pub mod body;
pub mod dialects;
pub mod hasher;
pub mod management;
pub mod metrics;
pub mod native;
pub mod page;
pub mod problem;
pub mod ratelimit;
mod retention;
pub mod surface;

pub use retention::run_retention_worker;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use resetd_core::Service;
use tokio::sync::{watch, Notify};
use tracing::Instrument;

use crate::metrics::Metrics;
use crate::problem::Problem;
use crate::ratelimit::SurfaceLimiter;

/// HTTP-level settings.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Largest accepted request body in bytes.
    pub body_limit: usize,
    /// A request taking longer is answered 503 + Retry-After in its surface's shape.
    pub request_timeout: Duration,
    /// A body not received within this time of its head is answered 408 in its surface's shape
    /// ([`body::BODY_READ_TIMEOUT`]; not a setting, a field so that tests can shorten it).
    pub body_read_timeout: Duration,
    /// Per-IP sustained rate of reset requests (0: off), on each surface separately.
    pub recovery_per_minute: u32,
    /// Per-IP burst of reset requests.
    pub recovery_burst: u32,
    /// Per-IP sustained rate of authentications and reset completions (0: off).
    pub auth_per_minute: u32,
    /// Per-IP burst of authentications.
    pub auth_burst: u32,
    /// Per-IP sustained rate of anonymous password policy checks (0: off).
    pub password_check_per_minute: u32,
    /// Per-IP burst of password policy checks.
    pub password_check_burst: u32,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            body_limit: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            body_read_timeout: body::BODY_READ_TIMEOUT,
            recovery_per_minute: 30,
            recovery_burst: 10,
            auth_per_minute: 120,
            auth_burst: 20,
            // A strength meter checks as the person types (debounced): a burst covers one
            // password, the rate a few per minute; each check costs milliseconds of CPU.
            password_check_per_minute: 60,
            password_check_burst: 20,
        }
    }
}

/// Produces extra metric lines (outbox and mail figures) for /metrics.
pub type ExtraMetrics = Arc<dyn Fn() -> String + Send + Sync>;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// The parts of [`AppState`].
pub struct Inner {
    /// The use cases.
    pub service: Arc<Service>,
    /// Metrics.
    pub metrics: Metrics,
    /// Per-surface per-IP limit on reset requests.
    pub recovery_limiter: SurfaceLimiter,
    /// Per-surface per-IP limit on authentication, reset completion and failed credentials.
    pub auth_limiter: SurfaceLimiter,
    /// Per-surface per-IP limit on anonymous password policy checks.
    pub check_limiter: SurfaceLimiter,
    /// Wakes the reset-request worker.
    pub reset_notify: Arc<Notify>,
    /// Wakes the outbox worker.
    pub mail_notify: Arc<Notify>,
    /// Extra metric lines.
    pub extra_metrics: ExtraMetrics,
    /// HTTP settings.
    pub http: HttpConfig,
    /// The hosted page's templates, strings and assets.
    pub pages: Arc<page::Pages>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Builds the state with the built-in hosted pages.
    pub fn new(
        service: Arc<Service>,
        http: HttpConfig,
        mail_notify: Arc<Notify>,
        extra_metrics: ExtraMetrics,
    ) -> Self {
        Self::with_pages(
            service,
            http,
            mail_notify,
            extra_metrics,
            page::Pages::builtin(),
        )
    }

    /// Builds the state with hosted pages loaded from the operator's overrides.
    pub fn with_pages(
        service: Arc<Service>,
        http: HttpConfig,
        mail_notify: Arc<Notify>,
        extra_metrics: ExtraMetrics,
        pages: page::Pages,
    ) -> Self {
        Self(Arc::new(Inner {
            service,
            metrics: Metrics::default(),
            recovery_limiter: SurfaceLimiter::new(http.recovery_per_minute, http.recovery_burst),
            auth_limiter: SurfaceLimiter::new(http.auth_per_minute, http.auth_burst),
            check_limiter: SurfaceLimiter::new(
                http.password_check_per_minute,
                http.password_check_burst,
            ),
            reset_notify: Arc::new(Notify::new()),
            mail_notify,
            extra_metrics,
            http,
            pages: Arc::new(pages),
        }))
    }
}

/// The caller's address, when the server knows it.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

impl ClientIp {
    /// The address as text, for audit records.
    pub fn text(&self) -> Option<String> {
        self.0.map(|ip| ip.to_string())
    }
}

/// The public HTTP application, with the `dialects` a configuration switched on
/// ([`dialects::DialectsConfig::check`]). `/metrics` and `/readyz`
/// are not here but on [`management::router`]; `/healthz` is on both, as it says only "ok" (a
/// liveness answer for whatever can reach only the public port) and so reveals nothing.
pub fn router(state: AppState, dialects: &dialects::Dialects) -> Router {
    let limits = body::Limits {
        body: state.http.body_read_timeout,
        request: state.http.request_timeout,
    };
    let body_limit = state.http.body_limit;
    let top = Router::new()
        // Each surface answers a slow body (408) and a slow request (503) in its own shape.
        .merge(limits.guard(native::routes(), native::timeout_answer()))
        .merge(limits.guard(page::routes(), page::timeout_answer(state.clone())))
        .merge(dialects.routes(limits))
        .route("/healthz", get(|| async { "ok" }))
        .route("/openapi.json", get(openapi))
        .fallback(|| async { Problem::not_found() })
        .method_not_allowed_fallback(|| async { Problem::method_not_allowed() })
        .layer(axum::middleware::map_response_with_state(
            state.clone(),
            surface::stamp,
        ))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe));
    let app = limits
        .backstop(top)
        .layer(DefaultBodyLimit::max(body_limit))
        .merge(import_route(state.clone()))
        .with_state(state);
    caseless(app, dialects.caseless_prefixes())
}

/// `app` behind a router that respells the dialects' caseless prefixes before `app` routes
/// (a layer on `app` itself would run only after its routing had chosen a route).
fn caseless(app: Router, prefixes: Vec<&'static str>) -> Router {
    if prefixes.is_empty() {
        return app;
    }
    Router::new()
        .fallback_service(app)
        .layer(axum::middleware::map_request(move |mut req: Request| {
            let respelt = dialects::kit::caseless_path(req.uri().path(), &prefixes);
            async move {
                if let Some(path) = respelt {
                    let mut parts = req.uri().clone().into_parts();
                    let query = req
                        .uri()
                        .query()
                        .map(|q| format!("?{q}"))
                        .unwrap_or_default();
                    // The path only changed letter case, so it stays a valid path and query.
                    if let Ok(pq) = format!("{path}{query}").parse() {
                        parts.path_and_query = Some(pq);
                        if let Ok(uri) = axum::http::Uri::from_parts(parts) {
                            *req.uri_mut() = uri;
                        }
                    }
                }
                req
            }
        }))
}

/// The streaming people import, outside the global timeout and body limit: it may run for
/// minutes and read up to 1 GiB, line by line.
fn import_route(state: AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/v1/{tenant}/people/import",
            axum::routing::post(native::import::people),
        )
        .layer(axum::middleware::map_response_with_state(
            state.clone(),
            surface::stamp,
        ))
        .layer(axum::middleware::from_fn_with_state(state, observe))
        .layer(DefaultBodyLimit::max(native::import::IMPORT_BODY_LIMIT))
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("../openapi.json"),
    )
        .into_response()
}

/// Records metrics and a log line per request, by route template (paths may hold tokens), and
/// gives every response an `x-request-id`.
async fn observe(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_owned();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .map(str::to_owned)
        .unwrap_or_else(|| resetd_core::secret::hex(&resetd_core::secret::random_bytes::<8>()));
    // The trace of this request (DEBUG, so nothing is built unless traces are on); the route
    // template names it, never the path, which may hold a token.
    let span = tracing::debug_span!(
        "request",
        otel.name = tracing::field::Empty,
        otel.kind = "server",
        http.request.method = %method,
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
        request_id = %request_id,
    );
    if !span.is_disabled() {
        span.record("otel.name", format!("{method} {route}"));
    }
    let mut res = next.run(req).instrument(span.clone()).await;
    let took = started.elapsed();
    let status = res.status().as_u16();
    // As i64: the OpenTelemetry layer records unsigned integers as strings.
    span.record("http.response.status_code", i64::from(status));
    s.metrics.observe(&route, &method, status, took);
    tracing::info!(request_id = %request_id, method = %method, route = %route, status, micros = took.as_micros() as u64, "request");
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert("x-request-id", v);
    }
    res
}

/// Resolves recorded reset requests whenever woken (and once a second), then wakes the mailer.
pub async fn run_reset_worker(state: AppState, mut shutdown: watch::Receiver<bool>) {
    loop {
        loop {
            match state.service.process_reset_requests(256).await {
                Ok((done, errors)) => {
                    for e in errors {
                        tracing::error!(error = %e, "a reset request could not be resolved");
                    }
                    if done > 0 {
                        state.mail_notify.notify_one();
                    }
                    if done < 256 {
                        break;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "reading reset requests failed");
                    break;
                }
            }
        }
        tokio::select! {
            _ = state.reset_notify.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod openapi_tests {
    use serde_json::Value;

    /// Every `$ref` string anywhere under `v`.
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("$ref", Value::String(r)) => out.push(r),
                        _ => refs(v, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn openapi_document_covers_every_route_and_resolves() {
        let doc: Value =
            serde_json::from_str(include_str!("../openapi.json")).expect("openapi.json is JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["info"]["title"], "resetd");

        // The routes of native::routes() and router(), with their methods.
        let routes: &[(&str, &[&str])] = &[
            ("/v1/{tenant}", &["delete", "get"]),
            ("/v1/{tenant}/recovery", &["post"]),
            ("/v1/{tenant}/recovery/{token}", &["get", "post"]),
            ("/v1/{tenant}/password/check", &["post"]),
            ("/v1/{tenant}/authenticate", &["post"]),
            ("/v1/{tenant}/people", &["get", "post"]),
            ("/v1/{tenant}/people/import", &["post"]),
            ("/v1/{tenant}/people/{id}", &["delete", "get", "patch"]),
            ("/v1/{tenant}/people/{id}/disable", &["post"]),
            ("/v1/{tenant}/people/{id}/enable", &["post"]),
            ("/v1/{tenant}/people/{id}/password", &["post"]),
            ("/v1/{tenant}/people/{id}/unlock", &["post"]),
            ("/v1/{tenant}/api-keys", &["get", "post"]),
            ("/v1/{tenant}/api-keys/{id}", &["get"]),
            ("/v1/{tenant}/api-keys/{id}/revoke", &["post"]),
            ("/v1/{tenant}/api-keys/{id}/rotate", &["post"]),
            ("/v1/{tenant}/clients", &["get", "post"]),
            ("/v1/{tenant}/clients/{name}", &["delete", "get"]),
            ("/v1/{tenant}/audit", &["get"]),
            ("/v1/{tenant}/outbox", &["get"]),
            ("/v1/{tenant}/outbox/{id}/retry", &["post"]),
            ("/v1/{tenant}/breached/range/{prefix}", &["get"]),
            ("/healthz", &["get"]),
            ("/openapi.json", &["get"]),
        ];
        let paths = doc["paths"].as_object().expect("paths");
        assert_eq!(
            paths.len(),
            routes.len(),
            "paths: {:?}",
            paths.keys().collect::<Vec<_>>()
        );
        let mut ids = std::collections::HashSet::new();
        for (path, methods) in routes {
            let item = paths
                .get(*path)
                .and_then(Value::as_object)
                .unwrap_or_else(|| panic!("{path} is missing"));
            let mut documented: Vec<&str> = item
                .keys()
                .map(String::as_str)
                .filter(|k| *k != "parameters")
                .collect();
            documented.sort_unstable();
            assert_eq!(&documented, methods, "methods of {path}");
            for m in *methods {
                let op = &item[*m];
                let id = op["operationId"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{m} {path} has no operationId"));
                assert!(ids.insert(id), "operationId {id} is used twice");
                assert!(op["summary"].is_string(), "{m} {path} has no summary");
                assert!(
                    op["tags"].as_array().is_some_and(|t| t.len() == 1),
                    "{m} {path} has no tag"
                );
                assert!(
                    op["security"].is_array(),
                    "{m} {path} does not say its security"
                );
                assert!(
                    op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                    "{m} {path} has no responses"
                );
            }
        }

        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(!all.is_empty());
        for r in all {
            assert!(
                r.starts_with("#/components/"),
                "{r} is not a local component"
            );
            assert!(doc.pointer(&r[1..]).is_some(), "{r} does not resolve");
        }
    }
}
