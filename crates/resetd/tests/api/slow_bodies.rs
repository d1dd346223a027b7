//! Slow bodies on every surface at once, against the real binary (issue 13, item 8): a client
//! that declares 100 bytes and sends 10, and one that trickles a chunked body, on the native API,
//! the people import, the page and each dialect. Each must get a 408 in its surface's own shape
//! about 10 s after its head, with the connection closed and nothing stored, while everyone else
//! is served; and a request past the request timeout gets a 503 with `Retry-After` in its
//! surface's shape, not a bare 503.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unimplemented
)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::helpers::config::TestConfig;
use crate::helpers::surfaces::{
    check_shape, forbidden_in, world_with, Shape, World, CRAFTER, PEOPLE, SECRET,
};
use serde_json::{json, Value};

/// How a slow client sends its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slow {
    /// Declares `Content-Length: 100`, sends 10 bytes, then nothing.
    Short,
    /// Sends a chunked body one byte every 300 ms, never ending it.
    Trickle,
}

/// What a slow client got back.
#[derive(Debug)]
struct SlowAnswer {
    status: u16,
    /// From the end of the head to the first byte of the answer.
    took: Duration,
    headers: Vec<(String, String)>,
    body: String,
    /// The server closed the connection after its answer.
    closed: bool,
}

impl SlowAnswer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A request to a surface's endpoint whose body is `body` (never sent in full).
#[derive(Clone)]
struct SlowCase {
    shape: Shape,
    path: String,
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
    body: String,
    /// Also sent as a trickle (the people import has an idle limit, not a deadline: a
    /// trickle is a slow import, not a stalled one).
    trickle: bool,
}

/// Sends `c` slowly to `addr` and reads the answer (up to 25 s).
fn slow_request(addr: &str, c: &SlowCase, mode: Slow) -> SlowAnswer {
    let mut conn = TcpStream::connect(addr).unwrap();
    let framing = match mode {
        Slow::Short => "Content-Length: 100".to_owned(),
        Slow::Trickle => "Transfer-Encoding: chunked".to_owned(),
    };
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nContent-Type: {}\r\n{framing}\r\n",
        c.path, c.content_type
    );
    for (k, v) in &c.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    // Padding first, so that the real body never arrives whole.
    let padded = if c.content_type.contains("json") {
        format!("{}{}", " ".repeat(1000), c.body)
    } else {
        format!("pad={}&{}", "x".repeat(1000), c.body)
    };
    conn.write_all(head.as_bytes()).unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    let mut first: Option<Duration> = None;
    let mut buf = [0u8; 8192];
    let mut closed = false;
    match mode {
        Slow::Short => conn.write_all(&padded.as_bytes()[..10]).unwrap(),
        Slow::Trickle => {
            conn.set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            for b in padded.bytes() {
                let _ = conn.write_all(format!("1\r\n{}\r\n", b as char).as_bytes());
                match conn.read(&mut buf) {
                    Ok(0) => {
                        closed = true;
                        break;
                    }
                    Ok(n) => {
                        first.get_or_insert(started.elapsed());
                        got.extend_from_slice(&buf[..n]);
                        break;
                    }
                    Err(_) if started.elapsed() > Duration::from_secs(25) => break,
                    Err(_) => {}
                }
            }
        }
    }
    conn.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    while !closed && started.elapsed() < Duration::from_secs(25) {
        match conn.read(&mut buf) {
            Ok(0) => closed = true,
            Ok(n) => {
                first.get_or_insert(started.elapsed());
                got.extend_from_slice(&buf[..n]);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => closed = true,
        }
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        .collect();
    SlowAnswer {
        status,
        took: first.unwrap_or(started.elapsed()),
        headers,
        body: body.to_owned(),
        closed,
    }
}

/// A request per surface whose body, were it ever whole, would ask for a reset, a new person or a
/// new password for `slowpoke`.
fn slow_cases(w: &World, slowpoke_oid: &str, slowpoke_number: i64) -> Vec<SlowCase> {
    let json = "application/json";
    let form = "application/x-www-form-urlencoded";
    let c =
        |shape, path: &str, content_type, headers: Vec<(&'static str, String)>, body: String| {
            SlowCase {
                shape,
                path: path.to_owned(),
                content_type,
                headers,
                body,
                trickle: true,
            }
        };
    vec![
        c(
            Shape::Problem,
            "/v1/default/recovery",
            json,
            vec![],
            r#"{"login":"slowpoke"}"#.into(),
        ),
        c(
            Shape::Problem,
            "/v1/default/people",
            json,
            vec![("Authorization", format!("Bearer {}", w.s.key))],
            r#"{"login":"slowmade","email":"slowmade@example.com"}"#.into(),
        ),
        c(
            Shape::Html,
            "/forgot/default",
            form,
            vec![],
            "login=slowpoke&csrf=x".into(),
        ),
        c(
            Shape::Alfresco,
            &format!("{PEOPLE}/slowpoke/request-password-reset"),
            json,
            vec![],
            r#"{"client":"share"}"#.into(),
        ),
        c(
            Shape::Unleash,
            "/auth/reset/password-email",
            json,
            vec![],
            r#"{"email":"slowpoke@example.com"}"#.into(),
        ),
        c(
            Shape::Payabli,
            "/api/User/authreset",
            json,
            vec![("requestToken", w.app_key.clone())],
            r#"{"email":"slowpoke@example.com"}"#.into(),
        ),
        c(
            Shape::Crafter,
            &format!("{CRAFTER}/{slowpoke_oid}/reset_password"),
            form,
            vec![],
            format!(
                "accessTokenId={}&resetPasswordUrl=https://portal.example.com/account/reset",
                w.app_key
            ),
        ),
        c(
            Shape::EmpowerId,
            "/api/services/v1/PasswordPolicy/ResetPassword",
            json,
            vec![
                ("X-EmpowerID-API-Key", w.app_key.clone()),
                ("Authorization", format!("Bearer {}", w.app_key)),
            ],
            format!(r#"{{"PersonID":{slowpoke_number},"Password":"{SECRET}"}}"#),
        ),
        SlowCase {
            trickle: false,
            ..c(
                Shape::Problem,
                "/v1/default/people/import",
                "application/x-ndjson",
                vec![("Authorization", format!("Bearer {}", w.s.key))],
                "{\"login\":\"slowmade\",\"email\":\"slowmade@example.com\"}\n".into(),
            )
        },
    ]
}

const SLOWPOKE_PASSWORD: &str = "amber willow canyon 64";

/// Adds `slowpoke` and a client for Crafter's URL; returns (Crafter profile id, person number).
async fn slowpoke(w: &World) -> (String, i64) {
    let id =
        w.s.add_person("slowpoke", "slowpoke@example.com", Some(SLOWPOKE_PASSWORD))
            .await;
    w.s.add_portal_client().await;
    let p = w.s.person_json(&id).await;
    (id[..24].to_owned(), p["number"].as_i64().unwrap())
}

/// Runs every case in every mode at once, each on its own thread.
fn run_slow(w: &World, cases: Vec<SlowCase>, modes: &[Slow]) -> Vec<(SlowCase, Slow, SlowAnswer)> {
    let addr = w.s.base.trim_start_matches("http://").to_owned();
    let mut threads = Vec::new();
    for c in cases {
        for &mode in modes {
            if mode == Slow::Trickle && !c.trickle {
                continue;
            }
            let (addr, c) = (addr.clone(), c.clone());
            threads.push(std::thread::spawn(move || {
                let a = slow_request(&addr, &c, mode);
                (c, mode, a)
            }));
        }
    }
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

/// Nothing any slow body asked for happened, and the service still works.
async fn nothing_stored(w: &World) {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mails: Vec<String> =
        w.s.mails()
            .into_iter()
            .filter(|(_, m)| m.contains("slowpoke@example.com"))
            .map(|(n, _)| n)
            .collect();
    assert!(mails.is_empty(), "mail for slowpoke: {mails:?}");
    let found = w.s.find_people("slowmade").await;
    assert_eq!(found["items"], json!([]), "a person was created");
    let res = w.s.authenticate("slowpoke", SLOWPOKE_PASSWORD).await;
    assert_eq!(res.status(), 200, "slowpoke's password changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_or_short_bodies_get_408_in_each_surfaces_shape_within_12_s_and_nothing_else_waits() {
    let started = Instant::now();
    let w = world_with(TestConfig::fast()).await;
    let (oid, number) = slowpoke(&w).await;
    let cases = slow_cases(&w, &oid, number);
    let n = cases.len();
    let slow = {
        let w = &w;
        async move { tokio::task::block_in_place(|| run_slow(w, cases, &[Slow::Short, Slow::Trickle])) }
    };
    // Meanwhile, everyone else is served at once.
    let others = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        for _ in 0..10 {
            let t = Instant::now();
            assert_eq!(w.s.get("/healthz").await.status(), 200);
            let res = w.s.request_reset("nobody").await;
            assert_eq!(res.status(), 202);
            let page = w.s.get("/forgot/default").await;
            assert_eq!(page.status(), 200);
            assert!(
                t.elapsed() < Duration::from_secs(2),
                "took {:?}",
                t.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let (answers, ()) = tokio::join!(slow, others);
    assert_eq!(answers.len(), 2 * n - 1);
    let mut wrong = Vec::new();
    for (c, mode, a) in &answers {
        println!(
            "{:?} {mode:?} {}: {} after {:?}",
            c.shape, c.path, a.status, a.took
        );
        let mut why = Vec::new();
        if a.status != 408 {
            why.push(format!("status {}", a.status));
        }
        if !(Duration::from_millis(9_500)..=Duration::from_secs(12)).contains(&a.took) {
            why.push(format!("answered after {:?}", a.took));
        }
        if let Err(e) = check_shape(c.shape, 408, a.header("content-type"), &a.body) {
            why.push(e);
        }
        if a.not_body_timeout(c.shape) {
            why.push("not the body-timeout problem".into());
        }
        if !a.closed {
            why.push("the connection was left open".into());
        }
        let words = forbidden_in(&a.body);
        if !words.is_empty() {
            why.push(format!("says {words:?}"));
        }
        if !why.is_empty() {
            wrong.push(format!(
                "{:?} {mode:?} {}: {}\n    {}",
                c.shape,
                c.path,
                why.join("; "),
                a.body
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    nothing_stored(&w).await;
    println!("slow bodies: {:?} in all", started.elapsed());
}

impl SlowAnswer {
    /// For the native API: whether the problem is anything but `body-timeout`.
    fn not_body_timeout(&self, shape: Shape) -> bool {
        shape == Shape::Problem
            && serde_json::from_str::<Value>(&self.body)
                .map(|v| v["type"] != "urn:resetd:problem:body-timeout")
                .unwrap_or(true)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_the_request_timeout_gets_503_with_retry_after_in_each_surfaces_shape() {
    let w = world_with(TestConfig::fast().request_timeout_secs(2)).await;
    let (oid, number) = slowpoke(&w).await;
    let mut cases = slow_cases(&w, &oid, number);
    // The people import may stream for minutes: it is not under the request timeout.
    cases.retain(|c| !c.path.ends_with("/import"));
    let answers = tokio::task::block_in_place(|| run_slow(&w, cases, &[Slow::Short]));
    let mut wrong = Vec::new();
    for (c, _, a) in &answers {
        println!("{:?} {}: {} after {:?}", c.shape, c.path, a.status, a.took);
        let mut why = Vec::new();
        if a.status != 503 {
            why.push(format!("status {}", a.status));
        }
        if !(Duration::from_millis(1_500)..=Duration::from_secs(4)).contains(&a.took) {
            why.push(format!("answered after {:?}", a.took));
        }
        // Every surface asks for the same retry after a timeout.
        if a.header("retry-after") != Some("5") {
            why.push(format!("Retry-After {:?}, not 5", a.header("retry-after")));
        }
        if let Err(e) = check_shape(c.shape, 503, a.header("content-type"), &a.body) {
            why.push(e);
        }
        if !why.is_empty() {
            wrong.push(format!(
                "{:?} {}: {}\n    {}",
                c.shape,
                c.path,
                why.join("; "),
                a.body
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    nothing_stored(&w).await;
}
