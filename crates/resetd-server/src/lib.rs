//! resetd's HTTP surfaces: the native API under /v1, health and metrics, and the background
//! worker that resolves reset requests. Each surface maps core errors to its own wire shape once.

pub mod dialects;
pub mod hasher;
pub mod metrics;
pub mod native;
pub mod problem;
pub mod ratelimit;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use resetd_core::Service;
use tokio::sync::{watch, Notify};
use tower_http::timeout::TimeoutLayer;

use crate::metrics::Metrics;
use crate::problem::Problem;
use crate::ratelimit::RateLimiter;

/// HTTP-level settings.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Largest accepted request body in bytes.
    pub body_limit: usize,
    /// A request taking longer is answered 503.
    pub request_timeout: Duration,
    /// Per-IP sustained rate of reset requests (0: off).
    pub recovery_per_minute: u32,
    /// Per-IP burst of reset requests.
    pub recovery_burst: u32,
    /// Per-IP sustained rate of authentications and reset completions (0: off).
    pub auth_per_minute: u32,
    /// Per-IP burst of authentications.
    pub auth_burst: u32,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            body_limit: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            recovery_per_minute: 30,
            recovery_burst: 10,
            auth_per_minute: 120,
            auth_burst: 20,
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
    /// Per-IP limit on reset requests.
    pub recovery_limiter: RateLimiter,
    /// Per-IP limit on authentication and reset completion.
    pub auth_limiter: RateLimiter,
    /// Wakes the reset-request worker.
    pub reset_notify: Arc<Notify>,
    /// Wakes the outbox worker.
    pub mail_notify: Arc<Notify>,
    /// Extra metric lines.
    pub extra_metrics: ExtraMetrics,
    /// HTTP settings.
    pub http: HttpConfig,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Builds the state.
    pub fn new(
        service: Arc<Service>,
        http: HttpConfig,
        mail_notify: Arc<Notify>,
        extra_metrics: ExtraMetrics,
    ) -> Self {
        Self(Arc::new(Inner {
            service,
            metrics: Metrics::default(),
            recovery_limiter: RateLimiter::new(http.recovery_per_minute, http.recovery_burst),
            auth_limiter: RateLimiter::new(http.auth_per_minute, http.auth_burst),
            reset_notify: Arc::new(Notify::new()),
            mail_notify,
            extra_metrics,
            http,
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

/// The whole HTTP application: the native API, the enabled vendor dialects, health and metrics.
pub fn router(state: AppState, dialects: &dialects::DialectsConfig) -> Router {
    let timeout = state.http.request_timeout;
    let body_limit = state.http.body_limit;
    Router::new()
        .merge(native::routes())
        .merge(dialects::routes(dialects))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .fallback(|| async { Problem::not_found() })
        .method_not_allowed_fallback(|| async { Problem::method_not_allowed() })
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

async fn ready(State(s): State<AppState>) -> Response {
    match s.service.store().ping().await {
        Ok(()) => "ready".into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}

async fn metrics(State(s): State<AppState>) -> Response {
    let mut extra = (s.extra_metrics)();
    if let Ok(counts) = s.service.store().outbox_counts().await {
        extra.push_str("# HELP resetd_outbox_messages Messages in the outbox by status.\n# TYPE resetd_outbox_messages gauge\n");
        for (status, n) in counts {
            extra.push_str(&format!(
                "resetd_outbox_messages{{status=\"{}\"}} {n}\n",
                status.as_str()
            ));
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(&extra),
    )
        .into_response()
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
    let mut res = next.run(req).await;
    let took = started.elapsed();
    let status = res.status().as_u16();
    s.metrics.observe(&route, &method, status, took);
    if status == 503 {
        s.metrics.hash_overloaded.fetch_add(
            u64::from(res.headers().contains_key(header::RETRY_AFTER)),
            std::sync::atomic::Ordering::Relaxed,
        );
    }
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
