//! The management listener (issue 13, item 2): `/metrics` and `/readyz` live on their own address,
//! never on the public one, where the mail and outbox counters told anyone which reset requests
//! named a real account.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unimplemented
)]

use std::time::{Duration, Instant};

use crate::helpers::config::TestConfig;
use crate::helpers::Server;
use serde_json::{json, Value};

/// Everything the public listener shows an anonymous caller about the service itself, each as
/// path, status, headers (but `date` and `x-request-id`, which differ on every answer) and body.
async fn public_view(s: &Server) -> Vec<String> {
    let mut out = Vec::new();
    for path in [
        "/metrics",
        "/readyz",
        "/healthz",
        "/openapi.json",
        "/metrics/",
        "/v1/default/metrics",
        "/v1/default/outbox",
        "/v1/default/audit",
    ] {
        let res = s.get(path).await;
        let status = res.status().as_u16();
        let mut headers: Vec<String> = res
            .headers()
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "date" | "x-request-id"))
            .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("?")))
            .collect();
        headers.sort();
        let body = res.text().await.unwrap();
        out.push(format!(
            "GET {path} -> {status}\n{}\n\n{body}",
            headers.join("\n")
        ));
    }
    out
}

/// The value of the sample `name` (a full name with labels) in a Prometheus exposition.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn the_metrics_oracle_finds_nothing_on_the_public_port_and_the_management_port_serves_it() {
    let s = Server::spawn(&TestConfig::fast());
    // The public port has no metrics or readiness: the native 404, like any unknown path.
    for path in ["/metrics", "/readyz"] {
        let res = s.get(path).await;
        assert_eq!(res.status(), 404, "{path} is served on the public port");
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["type"], "urn:resetd:problem:not-found", "{path}");
    }
    assert_eq!(s.get("/healthz").await.text().await.unwrap(), "ok");
    let spec: Value = s.get("/openapi.json").await.json().await.unwrap();
    for path in ["/metrics", "/readyz"] {
        assert!(
            spec["paths"][path].is_null(),
            "the public API document still offers {path}"
        );
    }

    assert!(
        !s.mgmt.is_empty(),
        "the server announced no management listener"
    );

    // The oracle of the issue: guess, then read everything the public port offers. Known
    // accounts are distinct people (no cool-down), interleaved with unknown logins.
    let known: Vec<String> = (0..5).map(|i| format!("known{i}")).collect();
    for k in &known {
        s.add_person(k, &format!("{k}@example.com"), None).await;
    }
    let before = public_view(&s).await;
    let mut sent = 0.0;
    for (i, k) in known.iter().enumerate() {
        for (login, is_known) in [(k.clone(), true), (format!("nobody{i}"), false)] {
            let res = s.request_reset(&login).await;
            assert_eq!(res.status(), 202);
            // Wait until the management port shows the email sent (known) or give the worker
            // the same time to (wrongly) send one (unknown).
            if is_known {
                sent += 1.0;
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let m = s.mgmt_get("/metrics").await.text().await.unwrap();
                if sample(&m, "resetd_mail_sent_total") >= sent || Instant::now() > deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if !is_known {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            let after = public_view(&s).await;
            for (b, a) in before.iter().zip(&after) {
                assert_eq!(
                    b,
                    a,
                    "the public port changed after a guess for a {} account",
                    if is_known { "known" } else { "unknown" }
                );
            }
        }
    }

    // The management port serves what the oracle was after: one email per known account.
    let m = s.mgmt_get("/metrics").await;
    assert_eq!(m.status(), 200);
    assert_eq!(m.headers()["content-type"], "text/plain; version=0.0.4");
    let m = m.text().await.unwrap();
    assert_eq!(sample(&m, "resetd_mail_sent_total"), 5.0, "{m}");
    assert_eq!(
        sample(&m, "resetd_outbox_messages{status=\"sent\"}"),
        5.0,
        "{m}"
    );
    assert_eq!(sample(&m, "resetd_resets_requested_total"), 10.0, "{m}");
    assert_eq!(s.mgmt_get("/readyz").await.text().await.unwrap(), "ready");
    assert_eq!(s.mgmt_get("/healthz").await.text().await.unwrap(), "ok");
    // And nothing else: the public API is not reachable through it.
    for path in ["/v1/default/recovery", "/openapi.json", "/forgot/default"] {
        let res = s.mgmt_get(path).await;
        assert_eq!(res.status(), 404, "{path} on the management port");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
    }
    let res = s
        .http
        .post(s.mgmt_url("/v1/default/recovery"))
        .json(&json!({"login": "known0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(
        s.wait_mails("reset_link", "known0@example.com", 1)
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn the_management_listener_can_be_turned_off_and_the_public_port_still_has_no_metrics() {
    let s = Server::spawn(&TestConfig::fast().management_disabled());
    assert!(s.mgmt.is_empty(), "management announced: {}", s.mgmt);
    assert!(!s.log().contains("management listening"), "{}", s.log());
    assert_eq!(s.get("/metrics").await.status(), 404);
    assert_eq!(s.get("/readyz").await.status(), 404);
    assert_eq!(s.get("/healthz").await.status(), 200);
}
