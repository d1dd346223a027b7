//! The HTTP/1.1 accept loop: the axum router served by hyper with a time limit on reading a
//! request's head (a slowloris client trickling header bytes is cut off), the peer address for
//! the per-IP limits, and graceful shutdown. `axum::serve` has no such limit.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower_service::Service;

/// A client must send a request's whole head (request line and headers) within this time, or
/// its connection is closed. Heads are small, so this is generous for any real client. The body
/// then has as long again (`resetd_server::body::BODY_READ_TIMEOUT`, applied by the router so
/// that each surface answers 408 in its own shape).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// After the shutdown signal, open connections get this long to finish their requests.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown` completes, then drains open connections.
pub async fn serve(listener: TcpListener, router: Router, shutdown: impl Future<Output = ()>) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer): (_, SocketAddr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: pause and go on, as axum::serve does.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // The peer address goes into each request's extensions. (Layering the router per
        // connection instead rebuilt the whole route tree for every connection: about 30 KiB
        // each, 1,000 idle connections measured 62.7 MiB against 32.5 MiB at rest.)
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            router.clone().call(req)
        });
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "a connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
}
