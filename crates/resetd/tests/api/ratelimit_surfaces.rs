//! Rate limits per surface and per key (issue 15 item 2): an authenticated server-to-server
//! caller (Payabli's `requestToken`, Crafter's access token, EmpowerID's application key) is
//! limited per API key, not by the one address its back end calls from; anonymous surfaces keep
//! per-IP limits, each surface in its own bucket; a caller whose credentials fail is still
//! limited per IP on that surface.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unimplemented
)]

use crate::helpers::config::{TestConfig, SHARE_PAGE, UNLEASH_UI};
use crate::helpers::Server;
use serde_json::{json, Value};

/// Per-IP bursts of 2 (requests, credentials), Payabli's per-key burst of 5; every request of
/// these tests comes from 127.0.0.1.
fn limited() -> TestConfig {
    TestConfig::new()
        .fast_argon()
        .recovery_limit(1, 2)
        .http("auth_per_minute", 1u32)
        .http("auth_burst", 2u32)
}

/// A server with Payabli, Unleash, Alfresco and Crafter on `default`, and two request tokens.
async fn server() -> (Server, String, String) {
    let s = Server::spawn(&TestConfig::fast());
    let (a_id, a) = s.api_key("payhub a").await;
    let (b_id, b) = s.api_key("payhub b").await;
    let s = s.restart(
        &limited()
            .alfresco(SHARE_PAGE)
            .unleash(UNLEASH_UI)
            .payabli(&[&a_id, &b_id])
            .dialect("payabli", "key_per_minute", 1u32)
            .dialect("payabli", "key_burst", 5u32)
            .dialect_on("crafter", "default"),
    );
    (s, a, b)
}

async fn payabli(s: &Server, token: &str, n: usize) -> reqwest::Response {
    s.payabli_authreset(token, &format!("nobody{n}@example.com"))
        .await
}

async fn retry_after(res: &reqwest::Response) -> i64 {
    res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_payabli_token_is_limited_by_its_key_not_its_address() {
    let (s, a, b) = server().await;
    // Five requests from one address: more than the per-IP burst of 2 allows.
    for n in 0..5 {
        let res = payabli(&s, &a, n).await;
        assert_eq!(res.status(), 200, "request {n}");
    }
    let res = payabli(&s, &a, 5).await;
    assert_eq!(res.status(), 429);
    assert!(retry_after(&res).await >= 1);
    assert_eq!(
        res.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({
            "isSuccess": false,
            "responseCode": 429,
            "responseText": "Too many requests",
            "responseData": {
                "explanation": "Too many password reset requests from this address.",
                "todoAction": "Retry after the number of seconds in the Retry-After header."
            }
        })
    );
    // The second key has its own bucket, from the same address.
    for n in 10..15 {
        assert_eq!(payabli(&s, &b, n).await.status(), 200, "request {n}");
    }
    assert_eq!(payabli(&s, &b, 15).await.status(), 429);

    // The refusals are counted by surface and limit, never by key.
    let metrics = s.mgmt_get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"resetd_rate_limited_total{surface="payabli",limit="key"} 2"#),
        "{metrics}"
    );
    assert!(!metrics.contains(&a[..12]) && !metrics.contains(&b[..12]));
}

#[tokio::test]
async fn a_flood_on_one_surface_does_not_limit_another() {
    let (s, a, _) = server().await;
    // The native anonymous request: its per-IP burst of 2, then 429.
    for _ in 0..2 {
        assert_eq!(s.request_reset("x").await.status(), 202);
    }
    assert_eq!(s.request_reset("x").await.status(), 429);
    // Unleash has its own bucket of 2, then its own 429.
    for _ in 0..2 {
        assert_eq!(
            s.unleash_password_email("x@example.com").await.status(),
            200
        );
    }
    let res = s.unleash_password_email("x@example.com").await;
    assert_eq!(res.status(), 429);
    assert!(retry_after(&res).await >= 1);
    // Alfresco too.
    for _ in 0..2 {
        assert_eq!(s.alfresco_request_reset("x", "share").await.status(), 202);
    }
    assert_eq!(s.alfresco_request_reset("x", "share").await.status(), 429);
    // Payabli's key is not touched by any of it.
    assert_eq!(payabli(&s, &a, 0).await.status(), 200);

    let metrics = s.mgmt_get("/metrics").await.text().await.unwrap();
    for surface in ["native", "unleash", "alfresco"] {
        assert!(
            metrics.contains(&format!(
                r#"resetd_rate_limited_total{{surface="{surface}",limit="recovery"}} 1"#
            )),
            "{surface}: {metrics}"
        );
    }
}

#[tokio::test]
async fn failed_credentials_are_limited_per_ip_on_their_surface() {
    let (s, a, _) = server().await;
    let bad = "rsd_0000000000000000000000000000000000000000000";
    // Payabli: two refusals (the per-IP burst of failed credentials), then 429.
    for _ in 0..2 {
        assert_eq!(payabli(&s, bad, 0).await.status(), 401);
    }
    let res = payabli(&s, bad, 0).await;
    assert_eq!(res.status(), 429);
    assert!(retry_after(&res).await >= 1);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["responseText"], "Too many requests");
    // A missing token counts the same.
    let res = s
        .http
        .post(s.url("/api/User/authreset"))
        .json(&json!({"email": "x@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    // A valid key from that address is limited by its own bucket, not by the failures.
    assert_eq!(payabli(&s, &a, 1).await.status(), 200);

    // Crafter's failures draw from Crafter's bucket: its own two refusals, then its own 429.
    for _ in 0..2 {
        let res = s.crafter_reset_password("x", bad, "https://x/").await;
        assert_eq!(res.status(), 403);
    }
    let res = s.crafter_reset_password("x", bad, "https://x/").await;
    assert_eq!(res.status(), 429);
    assert!(retry_after(&res).await >= 1);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["errorCode"], "OTHER");
    assert_eq!(body["message"], "Too many requests; try again later");

    let metrics = s.mgmt_get("/metrics").await.text().await.unwrap();
    for surface in ["payabli", "crafter"] {
        assert!(
            metrics.contains(&format!(
                r#"resetd_rate_limited_total{{surface="{surface}",limit="auth"}}"#
            )),
            "{surface}: {metrics}"
        );
    }
}

#[tokio::test]
async fn empowerid_is_limited_per_application_key() {
    let s = Server::spawn(&TestConfig::fast());
    let (_, app) = s.api_key("empowerid app").await;
    s.add_person("jdoe", "jdoe@example.com", Some("violet tangerine orbit 7"))
        .await;
    let number = s.find_people("jdoe").await["items"][0]["number"]
        .as_i64()
        .unwrap();
    let s = s.restart(
        &limited()
            .dialect_on("empowerid", "default")
            .dialect("empowerid", "key_per_minute", 1u32)
            .dialect("empowerid", "key_burst", 3u32),
    );
    let body = json!({"PersonID": number, "Password": "quiet harbour lantern 42"});
    for n in 0..3 {
        let res = s.empowerid_reset_password(&app, &s.key, body.clone()).await;
        assert_eq!(res.status(), 200, "request {n}");
    }
    let res = s.empowerid_reset_password(&app, &s.key, body.clone()).await;
    assert_eq!(res.status(), 429);
    assert!(retry_after(&res).await >= 1);
    assert_eq!(
        res.text().await.unwrap(),
        r#"{"Success":false,"Message":"Too many requests; try again later.","Exception":"TooManyRequests"}"#
    );
    // Another application key has its own bucket.
    let res = s
        .empowerid_reset_password(&s.key, &s.key, body.clone())
        .await;
    assert_eq!(res.status(), 200);
    // Bad keys are limited per address: two refusals, then 429.
    for _ in 0..2 {
        let res = s
            .empowerid_reset_password("rsd_bad", &s.key, body.clone())
            .await;
        assert_eq!(res.status(), 401);
    }
    let res = s
        .empowerid_reset_password("rsd_bad", &s.key, body.clone())
        .await;
    assert_eq!(res.status(), 429);
}
