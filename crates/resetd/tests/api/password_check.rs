//! The anonymous password policy check (issue 13, item 7): zxcvbn costs milliseconds of CPU per
//! call, so `POST /v1/{t}/password/check` (and Unleash's `validate-password`, the same check) is
//! limited per IP and runs on the bounded hashing pool, never on the async runtime.
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

/// A 108-character keyboard walk: among the costliest inputs for zxcvbn (about 50 ms each on
/// the development machine, measured; the check looks at the first 100 characters).
fn costly() -> String {
    "qwertyuiopasdfghjklzxcvbnm1234567890".repeat(3)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Asserts a refusal that asks to come back: `status`, Retry-After, the native problem `slug`.
async fn assert_retry_problem(res: reqwest::Response, status: u16, slug: &str) {
    assert_eq!(res.status(), status);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["type"], format!("urn:resetd:problem:{slug}"), "{body}");
    assert_eq!(body["status"], status);
}

#[tokio::test]
async fn password_checks_are_limited_per_ip_with_429_and_retry_after_on_native_and_unleash() {
    let s = Server::spawn(
        &TestConfig::new()
            .fast_argon()
            .password_check_limit(6, 3)
            .unleash(UNLEASH_UI),
    );
    let check = || s.check_password(json!({"password": "violet tangerine orbit 7"}));
    for _ in 0..3 {
        assert_eq!(check().await.status(), 200);
    }
    assert_retry_problem(check().await, 429, "rate-limited").await;
    // Unleash's validate-password is the same anonymous check with the same limit, in Unleash's
    // own bucket (issue 15: a flood on one surface does not throttle another); its 429 is
    // Unleash's own (as for its password-email).
    let validate = || {
        s.http
            .post(s.url("/auth/reset/validate-password"))
            .json(&json!({"password": "Violet-Tangerine-Orbit-7"}))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(validate().await.unwrap().status(), 200);
    }
    let res = validate().await.unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["name"], "RateLimitError", "{body}");
    // The other limits are separate: a reset request still goes through.
    assert_eq!(s.request_reset("x").await.status(), 202);
}

/// Sends `n` checks at once (every fourth through Unleash's `validate-password`) and returns
/// each answer as (through Unleash, status, has Retry-After, content type, body).
async fn burst(s: &Server, n: usize) -> Vec<(bool, u16, bool, Option<String>, String)> {
    // A hang fails the request instead of the test waiting forever.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..n {
        let unleash = i % 4 == 0;
        let req = if unleash {
            // Unleash's own rules want every character class.
            client
                .post(s.url("/auth/reset/validate-password"))
                .json(&json!({"password": format!("{}-Aa1!", costly())}))
        } else {
            client
                .post(s.url("/v1/default/password/check"))
                .json(&json!({"password": costly()}))
        };
        tasks.push(tokio::spawn(async move {
            let res = req.send().await.expect("an answer, not a hang");
            let status = res.status().as_u16();
            let retry = res.headers().get("retry-after").is_some();
            let ct = res
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned());
            (unleash, status, retry, ct, res.text().await.unwrap())
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// The Unleash UI of these tests.
const UNLEASH_UI: &str = "https://u.example.com/";

#[tokio::test]
async fn password_checks_past_the_pool_are_shed_with_503_and_retry_after_in_each_surfaces_shape() {
    // One thread checking and two waiting: 64 checks at once overflow it.
    let s = Server::spawn(&TestConfig::fast().hashing(Some(1), 2).unleash(UNLEASH_UI));
    let answers = burst(&s, 64).await;
    let (mut ok, mut shed) = (0, 0);
    for (unleash, status, retry, ct, text) in &answers {
        match status {
            200 => ok += 1,
            503 => {
                shed += 1;
                assert!(retry, "a 503 without Retry-After: {text}");
                let v: Value = serde_json::from_str(text).unwrap();
                if *unleash {
                    assert_eq!(ct.as_deref(), Some("application/json; charset=utf-8"));
                    assert_eq!(v["name"], "InternalError", "{text}");
                } else {
                    assert_eq!(ct.as_deref(), Some("application/problem+json"));
                    assert_eq!(v["type"], "urn:resetd:problem:overloaded", "{text}");
                }
            }
            other => panic!("unexpected {other}: {text}"),
        }
    }
    println!("64 checks at once: {ok} checked, {shed} shed with 503");
    assert!(ok > 0 && shed > 0, "checked {ok}, shed {shed}");
    // The pool drains and the server checks again.
    let res = s.check_password(json!({"password": costly()})).await;
    assert_eq!(res.status(), 200);
    assert!(!s.log().contains("ERROR"), "{}", s.log());
}

#[tokio::test]
async fn password_checks_from_8_clients_leave_healthz_fast() {
    // The default pool (one thread per CPU, 64 waiting), as in the measurement.
    let s = Server::spawn(&TestConfig::fast());
    let url = s.url("/v1/default/password/check");
    let body = json!({"password": costly()});
    // What one check costs, unloaded.
    let mut alone = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let res = s.http.post(&url).json(&body).send().await.unwrap();
        assert_eq!(res.status(), 200);
        alone.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let check_ms = median(alone);

    // 8 clients sending checks back to back for 3 s.
    let until = Instant::now() + Duration::from_secs(3);
    let mut flood = Vec::new();
    for _ in 0..8 {
        let (client, url, body) = (reqwest::Client::new(), url.clone(), body.clone());
        flood.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            while Instant::now() < until {
                let res = client.post(&url).json(&body).send().await.unwrap();
                statuses.push(res.status().as_u16());
            }
            statuses
        }));
    }
    // Meanwhile, liveness every 20 ms on a connection of its own, once the flood is under way.
    let client = reqwest::Client::new();
    let mut healthz = Vec::new();
    tokio::time::sleep(Duration::from_millis(300)).await;
    while Instant::now() < until {
        let t = Instant::now();
        let res = client.get(s.url("/healthz")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        healthz.push(t.elapsed().as_secs_f64() * 1e3);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut statuses = Vec::new();
    for f in flood {
        statuses.extend(f.await.unwrap());
    }
    let healthz_ms = median(healthz.clone());
    println!(
        "one check alone: median {check_ms:.1} ms; 8 clients: {} checks in 3 s; /healthz meanwhile: \
         median {healthz_ms:.2} ms of {} (max {:.1} ms)",
        statuses.len(),
        healthz.len(),
        healthz.iter().copied().fold(0.0, f64::max)
    );
    // 8 clients stay within the pool's queue: all are answered.
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert!(healthz.len() >= 10, "{} probes", healthz.len());
    // On the async runtime (b66e53b), /healthz waited behind the checks: median 347 ms (max
    // 561 ms, only 8 probes in 3 s) with one check costing 35 ms alone. On the pool it does not
    // (medians 0.5-1.3 ms, measured). A generous bound: a quarter of what one check costs.
    assert!(
        healthz_ms < check_ms / 4.0,
        "/healthz took a median {healthz_ms:.2} ms during the flood; one check costs {check_ms:.1} ms"
    );
}
