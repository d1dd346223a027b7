//! Per-IP limits and IPv6 (issue 13 item 9): one holder of an IPv6 /64 (the smallest prefix an
//! ISP or a cloud hands out) must not get a fresh limit for every address in it.
//!
//! Loopback has only `::1` here (no other address of any /64 can be a source), so a black-box
//! test cannot send from two addresses of one /64. The first test therefore drives the real router
//! and handlers in-process, with the peer address a connection would carry; the second runs the
//! real binary on `[::1]` to show an IPv6 client is limited over a real socket.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use resetd_core::hash::{Argon2id, HashParams};
use resetd_core::model::{SystemClock, TenantSettings};
use resetd_core::store::Store;
use resetd_core::types::TenantId;
use resetd_core::{Service, ServiceConfig};
use resetd_server::hasher::PooledHasher;
use resetd_server::{AppState, HttpConfig};
use tower_service::Service as _;

/// The real router over a real SQLite store, with the default per-IP limits (burst 10).
async fn app(dir: &std::path::Path) -> axum::Router {
    let store: Arc<dyn Store> =
        Arc::new(resetd_store::SqliteStore::open(&dir.join("resetd.db")).unwrap());
    store.migrate().await.unwrap();
    let argon = Argon2id::new(HashParams {
        m_cost: 1024,
        t_cost: 1,
        p_cost: 1,
    })
    .unwrap();
    let renderer = resetd_mail::TemplateRenderer::new(None, None, "resetd".into()).unwrap();
    let service = Arc::new(Service::new(
        store,
        Arc::new(PooledHasher::new(argon, 1, 8)),
        Arc::new(renderer),
        Arc::new(SystemClock),
        ServiceConfig {
            public_url: "http://127.0.0.1:1".into(),
            message_id_domain: "resetd.localhost".into(),
            notice_retry_secs: resetd_core::service::DEFAULT_NOTICE_RETRY_SECS,
        },
    ));
    service
        .create_tenant(TenantId::parse("acme").unwrap(), TenantSettings::default())
        .await
        .unwrap();
    let state = AppState::new(
        service,
        HttpConfig::default(),
        Arc::new(tokio::sync::Notify::new()),
        Arc::new(String::new),
    );
    resetd_server::router(state, &Default::default())
}

/// The status of a reset request that arrived over a connection from `peer`.
async fn recovery_from(router: &axum::Router, peer: &str) -> u16 {
    let ip: IpAddr = peer.parse().unwrap();
    let mut req = axum::http::Request::post("/v1/acme/recovery")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"login":"nobody"}"#))
        .unwrap();
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::new(ip, 40000)));
    router.clone().call(req).await.unwrap().status().as_u16()
}

#[tokio::test]
async fn every_address_of_one_ipv6_64_shares_one_limit() {
    let dir = tempfile::tempdir().unwrap();
    let router = app(dir.path()).await;
    let burst = HttpConfig::default().recovery_burst as usize;

    // A different address of 2001:db8:1:2::/64 for every request: the burst, then 429s.
    let mut statuses = Vec::new();
    for i in 0..burst + 5 {
        let peer = format!(
            "2001:db8:1:2:{:x}:{:x}:{:x}:{:x}",
            i * 7,
            i,
            i * 13 + 1,
            i + 3
        );
        statuses.push(recovery_from(&router, &peer).await);
    }
    assert!(statuses[..burst].iter().all(|s| *s == 202), "{statuses:?}");
    assert!(
        statuses[burst..].iter().all(|s| *s == 429),
        "addresses of one /64 must share the limit: {statuses:?}"
    );
    // The next /64 has its own limit; so has an IPv4 client.
    assert_eq!(recovery_from(&router, "2001:db8:1:3::1").await, 202);
    assert_eq!(recovery_from(&router, "192.0.2.7").await, 202);

    // An IPv4 client reaching a dual-stack listener as ::ffff:a.b.c.d is that IPv4 client.
    for _ in 0..burst - 1 {
        assert_eq!(recovery_from(&router, "192.0.2.7").await, 202);
    }
    assert_eq!(recovery_from(&router, "::ffff:192.0.2.7").await, 429);
    assert_eq!(recovery_from(&router, "::ffff:192.0.2.8").await, 202);
}

#[tokio::test]
async fn an_ipv6_client_of_the_real_binary_is_limited() {
    let s = common::Server::start_listening(
        &format!(
            "{}[http]\nrecovery_per_minute = 1\nrecovery_burst = 3\n",
            common::FAST_ARGON
        ),
        "[::1]:0",
    );
    assert!(s.base.starts_with("http://[::1]:"), "{}", s.base);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let res = s
            .post(
                "/v1/default/recovery",
                serde_json::json!({"login": "nobody"}),
            )
            .await;
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses, [202, 202, 202, 429, 429]);
}
