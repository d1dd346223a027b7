//! Per-IP limits and IPv6 (issue 13 item 9): one holder of an IPv6 /64 (the smallest prefix an
//! ISP or a cloud hands out) must not get a fresh limit for every address in it.
//!
//! The host's loopback has only `::1`, so the black-box test of the /64
//! (`addresses_of_one_ipv6_64_share_one_limit_on_the_real_binary`) runs the real binary in a
//! private network namespace (`unshare -n`) where addresses of two /64s are made local, and sends
//! from each of them (tests/fixtures/ipv6_netns.py). The in-process test drives the real router
//! with made-up peer addresses (also IPv4-mapped ones, which a namespace test would not add
//! anything to); the last runs the real binary on `[::1]` of the host.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unimplemented
)]

use crate::helpers;
use crate::helpers::config::TestConfig;

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    let s = helpers::Server::start_listening(
        TestConfig::new().fast_argon().recovery_limit(1, 3).toml(),
        "[::1]:0",
    );
    assert!(s.base.starts_with("http://[::1]:"), "{}", s.base);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let res = s.request_reset("nobody").await;
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses, [202, 202, 202, 429, 429]);
}

/// Why the namespace test cannot run here: a failure on CI (`CI=true`), a visible skip elsewhere.
fn namespace_unavailable(why: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "the IPv6 /64 test needs a private network namespace on CI (CI=true): {why}"
    );
    eprintln!(
        "SKIPPED (IPv6 /64 black-box test): {why}. It needs root, `unshare` (util-linux), `ip` \
         (iproute2) and python3; with CI=true this is a failure."
    );
}

/// Runs tests/fixtures/ipv6_netns.py under `unshare -n` with the real binary and `config`, and
/// returns the JSON it prints; `None` when the namespace is unavailable (see
/// [`namespace_unavailable`]). The helper is killed by its PID past a deadline (the server it
/// started dies with it: PR_SET_PDEATHSIG), so nothing can hang.
fn run_in_private_netns(dir: &Path, config: &str) -> Option<serde_json::Value> {
    let cfg = dir.join("resetd.toml");
    std::fs::write(&cfg, config).unwrap();
    let helper = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ipv6_netns.py");
    let spawned = Command::new("unshare")
        .arg("-n")
        .arg("python3")
        .arg(&helper)
        .arg(helpers::BIN)
        .arg(dir)
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            namespace_unavailable(&format!("cannot run `unshare`: {e}"));
            return None;
        }
    };
    // Drained on threads so a chatty child cannot block on a full pipe while we poll it.
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the namespace helper (pid {}) ran past 90 s and was killed; stderr: {}",
                child.id(),
                err.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    let server_log = || std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
    let parsed: Option<serde_json::Value> =
        out.lines().rev().find_map(|l| serde_json::from_str(l).ok());
    match parsed {
        Some(v) if v.get("setup_error").is_some() => {
            namespace_unavailable(&format!("namespace setup failed: {}", v["setup_error"]));
            None
        }
        // `unshare` itself failed (no privilege for a namespace, or python3 missing).
        None if !status.success() && err.trim_start().starts_with("unshare:") => {
            namespace_unavailable(err.trim());
            None
        }
        Some(v) if status.success() => Some(v),
        _ => panic!(
            "the namespace helper failed ({status}):\nstdout: {out}\nstderr: {err}\nserver log: {}",
            server_log()
        ),
    }
}

#[test]
fn addresses_of_one_ipv6_64_share_one_limit_on_the_real_binary() {
    let dir = tempfile::tempdir().unwrap();
    // 6 a minute: one token back every 10 s, far longer than the few ms the requests take.
    let config = TestConfig::new().fast_argon().recovery_limit(6, 3);
    let Some(result) = run_in_private_netns(dir.path(), config.toml()) else {
        return;
    };
    assert!(
        result["server"]
            .as_str()
            .unwrap()
            .starts_with("http://[fd00:5e7:ffff::1]:"),
        "{result}"
    );
    let requests = result["requests"].as_array().unwrap();
    // Each request really left from its own address (the server saw seven distinct peers).
    for r in requests {
        assert_eq!(r["bound"], r["source"], "{r}");
    }
    let summary: Vec<(&str, u64)> = requests
        .iter()
        .map(|r| (r["source"].as_str().unwrap(), r["status"].as_u64().unwrap()))
        .collect();
    // Five addresses of fd00:5e7:1::/64: the burst of 3, then 429s; the neighbouring /64
    // fd00:5e7:1:1::/64 has its own bucket; a seventh address of the first /64 is still refused.
    assert_eq!(
        summary,
        [
            ("fd00:5e7:1::a", 202),
            ("fd00:5e7:1:0:1234:5678:9abc:def0", 202),
            ("fd00:5e7:1:0:ffff:ffff:ffff:fffe", 202),
            ("fd00:5e7:1:0:8000::1", 429),
            ("fd00:5e7:1::5", 429),
            ("fd00:5e7:1:1::1", 202),
            ("fd00:5e7:1:0:4242::42", 429),
        ],
        "every address of one /64 must draw from one bucket: {result}"
    );
    for r in requests.iter().filter(|r| r["status"] == 429) {
        let secs: u64 = r["retry_after"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("429 without a numeric Retry-After: {r}"));
        assert!((1..=10).contains(&secs), "{r}");
        assert_eq!(r["content_type"], "application/problem+json", "{r}");
    }
}
