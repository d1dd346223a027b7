//! The management listener's routes: `/metrics`, `/readyz` and `/healthz`, for the operator's
//! scraper, probes and balancer health checks. They are never on the public router: the mail
//! and outbox counters rise only when a reset was asked for a known account, so a public
//! `/metrics` told anyone which accounts exist (issue 13). The binary serves this router on its
//! own address (`[management]`, loopback by default).
//!
//! `/readyz` and `/metrics` read two facts no use case owns, the database's pulse and the
//! outbox's global counts, straight from the [`Ports`] the composition root hands in; the
//! service has no door to its store.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use resetd_core::ports::{Outbox, Schema};

use crate::problem::Problem;
use crate::AppState;

/// The storage ports the management routes read.
#[derive(Clone)]
pub struct Ports {
    /// `/readyz` pings the database through it.
    pub schema: Arc<dyn Schema>,
    /// `/metrics` counts the outbox's messages by status through it.
    pub outbox: Arc<dyn Outbox>,
}

/// The management routes' state: the public router's (its counters) and the ports.
#[derive(Clone)]
struct Management {
    app: AppState,
    ports: Ports,
}

/// How long `/readyz` waits for the database, and `/metrics` for the outbox counts, before
/// answering without them: a probe must answer, and a hung database is "not ready".
const DATABASE_WAIT: Duration = Duration::from_secs(5);

/// The management routes. They share the public router's state (the same counters), but not
/// its middleware: scrapes and probes are not counted in the request metrics or logged per
/// request, so they neither drown the log nor move the figures they read.
pub fn router(state: AppState, ports: Ports) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .fallback(|| async { Problem::not_found() })
        .method_not_allowed_fallback(|| async { Problem::method_not_allowed() })
        .with_state(Management { app: state, ports })
}

async fn ready(State(m): State<Management>) -> Response {
    let unavailable = || (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response();
    match tokio::time::timeout(DATABASE_WAIT, m.ports.schema.ping()).await {
        Ok(Ok(())) => "ready".into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready");
            unavailable()
        }
        Err(_) => {
            tracing::warn!("not ready: the database did not answer within 5 s");
            unavailable()
        }
    }
}

async fn metrics(State(m): State<Management>) -> Response {
    let s = &m.app;
    let mut extra = (s.extra_metrics)();
    let backlog = s.service.reset_backlog();
    extra.push_str(&format!(
        "# HELP resetd_reset_queue_depth Accepted reset requests waiting to be resolved (this process's estimate of the shared queue).\n# TYPE resetd_reset_queue_depth gauge\nresetd_reset_queue_depth {}\n\
         # HELP resetd_reset_queue_cap The cap on waiting reset requests.\n# TYPE resetd_reset_queue_cap gauge\nresetd_reset_queue_cap {}\n\
         # HELP resetd_reset_queue_refused_total Reset requests answered 503 because the queue was full.\n# TYPE resetd_reset_queue_refused_total counter\nresetd_reset_queue_refused_total {}\n",
        backlog.depth(),
        backlog.cap(),
        backlog.refused()
    ));
    // Read from the database, so every instance reports the same global queue; left out when
    // the database does not answer (the rest of the figures are this process's own).
    if let Ok(Ok(counts)) =
        tokio::time::timeout(DATABASE_WAIT, m.ports.outbox.outbox_counts()).await
    {
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
