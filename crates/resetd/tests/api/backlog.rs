//! The bound on accepted reset requests that wait to be resolved (`http.reset_queue_cap`): past
//! it every request-reset surface answers 503 + `Retry-After` in its own shape, the same for
//! known and unknown accounts, nothing is stored for the refused requests, the metrics show it,
//! and the surfaces accept again once the queue drains.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::helpers::config::TestConfig;
use crate::helpers::page::forgot_csrf;
use crate::helpers::surfaces::{check_shape, world_with, Shape, PEOPLE};
use crate::helpers::Server;

const CAP: u64 = 3;

/// Status, headers (but the per-response `date` and `x-request-id`) and body of an answer.
type Answer = (u16, Vec<(String, String)>, String);

struct Surfaces<'a> {
    s: &'a Server,
    http: reqwest::Client,
    csrf: String,
    payabli_token: String,
}

impl Surfaces<'_> {
    const ALL: [(&'static str, Shape); 5] = [
        ("native", Shape::Problem),
        ("page", Shape::Html),
        ("alfresco", Shape::Alfresco),
        ("unleash", Shape::Unleash),
        ("payabli", Shape::Payabli),
    ];

    /// One "forgot password" request for `name` (email `<name>@example.com`) on `surface`.
    async fn ask(&self, surface: &str, name: &str) -> Answer {
        let s = self.s;
        let email = format!("{name}@example.com");
        let req = match surface {
            "native" => self
                .http
                .post(s.url("/v1/default/recovery"))
                .json(&json!({ "login": name })),
            "page" => self
                .http
                .post(s.url("/forgot/default"))
                .header("cookie", format!("resetd_csrf={}", self.csrf))
                .header("origin", &s.base)
                .header("sec-fetch-site", "same-origin")
                .form(&[("login", name), ("csrf", &self.csrf)]),
            "alfresco" => self
                .http
                .post(s.url(&format!("{PEOPLE}/{name}/request-password-reset")))
                .json(&json!({"client": "share"})),
            "unleash" => self
                .http
                .post(s.url("/auth/reset/password-email"))
                .json(&json!({ "email": email })),
            "payabli" => self
                .http
                .post(s.url("/api/User/authreset"))
                .header("requestToken", &self.payabli_token)
                .json(&json!({ "email": email })),
            other => panic!("no surface {other}"),
        };
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let mut headers: Vec<(String, String)> = res
            .headers()
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "date" | "x-request-id"))
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").to_owned()))
            .collect();
        headers.sort();
        (status, headers, res.text().await.unwrap())
    }
}

/// The answer without what Alfresco makes unique per response (its error number's counter and
/// `logId`); every other surface must match byte for byte.
fn comparable(mut a: Answer) -> Answer {
    if let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&a.2) {
        if let Some(e) = v.get_mut("error").and_then(|e| e.as_object_mut()) {
            if e.contains_key("logId") {
                e.insert("logId".into(), json!(""));
                let summary = e["briefSummary"].as_str().unwrap_or("");
                let text = summary.trim_start_matches(|c: char| c.is_ascii_digit());
                e.insert("briefSummary".into(), json!(text));
                a.2 = v.to_string();
            }
        }
    }
    a
}

fn header<'a>(a: &'a Answer, name: &str) -> Option<&'a str> {
    a.1.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A metric's value from `/metrics`.
async fn metric(s: &Server, name: &str) -> u64 {
    let text = s.mgmt_get("/metrics").await.text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .trim()
        .parse()
        .unwrap()
}

/// Waits until the server's estimate of the queue is `want`.
async fn depth_becomes(s: &Server, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let depth = metric(s, "resetd_reset_queue_depth").await;
        if depth == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the queue depth stayed {depth}, not {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn waiting_rows(s: &Server) -> i64 {
    let db = rusqlite::Connection::open(s.dir.path().join("resetd.db")).unwrap();
    db.query_row("SELECT count(*) FROM reset_request", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn a_full_reset_queue_answers_503_on_every_surface_alike_for_known_and_unknown_accounts() {
    let w = world_with(TestConfig::fast().http("reset_queue_cap", CAP)).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let csrf = forgot_csrf(&http, &w.s).await;
    let surfaces = Surfaces {
        s: &w.s,
        http,
        csrf,
        payabli_token: w.app_key.clone(),
    };
    assert_eq!(metric(&w.s, "resetd_reset_queue_cap").await, CAP);

    // Below the cap every surface accepts.
    for (surface, _) in Surfaces::ALL {
        let a = surfaces.ask(surface, "nobody").await;
        assert!(matches!(a.0, 200 | 202 | 303), "{surface}: {a:?}");
        depth_becomes(&w.s, 0).await;
    }

    // Fill the queue as other instances would: requests held under a lease that does not end.
    {
        let db = rusqlite::Connection::open(w.s.dir.path().join("resetd.db")).unwrap();
        db.busy_timeout(Duration::from_secs(10)).unwrap();
        for i in 0..CAP {
            db.execute(
                "INSERT INTO reset_request (tenant, lookup, created_at, claimed_until) \
                 VALUES ('default', ?1, ?2, ?3)",
                rusqlite::params![
                    json!({"by": "login", "value": format!("held{i}")}).to_string(),
                    now_ms(),
                    i64::MAX / 2
                ],
            )
            .unwrap();
        }
    }
    depth_becomes(&w.s, CAP).await;

    let mut refused = 0;
    for (surface, shape) in Surfaces::ALL {
        let known = surfaces.ask(surface, "bodies").await;
        let unknown = surfaces.ask(surface, "nobody").await;
        refused += 2;
        assert_eq!(known.0, 503, "{surface}: {known:?}");
        assert_eq!(header(&known, "retry-after"), Some("1"), "{surface}");
        check_shape(shape, 503, header(&known, "content-type"), &known.2)
            .unwrap_or_else(|e| panic!("{surface}: {e}: {}", known.2));
        // The same answer: a full queue tells nothing about the account.
        assert_eq!(comparable(known), comparable(unknown), "{surface}");
    }
    assert_eq!(
        waiting_rows(&w.s),
        CAP as i64,
        "a refused request is not stored"
    );
    assert_eq!(
        metric(&w.s, "resetd_reset_queue_refused_total").await,
        refused
    );
    // A shed hash is counted at the hashing pool, not guessed from a 503.
    assert_eq!(metric(&w.s, "resetd_hash_overloaded_total").await, 0);
    assert!(w.s.mails().is_empty(), "a refused request sends nothing");

    // The queue drains (the held requests are gone): every surface accepts again.
    {
        let db = rusqlite::Connection::open(w.s.dir.path().join("resetd.db")).unwrap();
        db.busy_timeout(Duration::from_secs(10)).unwrap();
        db.execute("DELETE FROM reset_request", []).unwrap();
    }
    depth_becomes(&w.s, 0).await;
    for (surface, _) in Surfaces::ALL {
        let a = surfaces.ask(surface, "bodies").await;
        assert!(matches!(a.0, 200 | 202 | 303), "{surface}: {a:?}");
    }
    let got = w.s.wait_mails("reset_link", "bodies@example.com", 1).await;
    assert!(!got.is_empty());
}
