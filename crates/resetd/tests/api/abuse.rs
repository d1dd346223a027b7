//! Abuse, against the real binary: a slowloris client trickling its headers, a 100 MB body, and
//! Host-header injection on every anonymous request-reset endpoint. (Unregistered Crafter URLs
//! are in `dialect_crafter.rs`, rate limits in `security.rs` and the dialect tests.)
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
use crate::helpers::page::forgot_csrf;
use crate::helpers::vendors::PEOPLE;
use crate::helpers::Server;

fn connect(s: &Server) -> TcpStream {
    let addr = s.base.trim_start_matches("http://").to_owned();
    let c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    c
}

/// Whether the server has closed the connection (or answered and closed it).
fn closed(c: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    match c.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[test]
fn a_slowloris_client_is_cut_off() {
    let s = Server::spawn(&TestConfig::fast());
    let mut c = connect(&s);
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    // One header byte a second, never ending the headers.
    let started = Instant::now();
    let limit = Duration::from_secs(45);
    loop {
        if c.write_all(b"X").is_err() || closed(&mut c) {
            break;
        }
        assert!(
            started.elapsed() < limit,
            "the server still holds a connection whose headers never end after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(900));
    }
    println!("slowloris connection closed after {:?}", started.elapsed());
    // Everyone else is still served.
    let mut ok = connect(&s);
    ok.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    ok.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut answer = String::new();
    let _ = ok.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// Sends a request with a declared (or chunked) 100 MB body as fast as the server reads it;
/// returns the answer's status line and how many body bytes were written before it came.
fn big_body(s: &Server, chunked: bool) -> (String, usize) {
    const TOTAL: usize = 100 * 1024 * 1024;
    let mut c = connect(s);
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_owned()
    } else {
        format!("Content-Length: {TOTAL}")
    };
    c.write_all(
        format!("POST /v1/default/recovery HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{framing}\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    c.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let chunk = vec![b'a'; 64 * 1024];
    let mut sent = 0;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while sent < TOTAL {
        let wrote = if chunked {
            c.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .and_then(|_| c.write_all(&chunk))
                .and_then(|_| c.write_all(b"\r\n"))
        } else {
            c.write_all(&chunk)
        };
        if wrote.is_err() {
            break;
        }
        sent += chunk.len();
        // Has the answer come?
        if let Ok(n) = c.read(&mut buf) {
            answer.extend_from_slice(&buf[..n]);
            if n == 0 || answer.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    }
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    while !answer.windows(2).any(|w| w == b"\r\n") {
        match c.read(&mut buf) {
            Ok(n) if n > 0 => answer.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&answer);
    (text.lines().next().unwrap_or("").to_owned(), sent)
}

#[test]
fn a_100_mb_body_is_refused_with_413_without_being_read() {
    let s = Server::spawn(&TestConfig::fast());
    for chunked in [false, true] {
        let (status, sent) = big_body(&s, chunked);
        println!("chunked {chunked}: {status:?} after {sent} bytes");
        assert!(
            status.starts_with("HTTP/1.1 413"),
            "chunked {chunked}: {status:?}"
        );
        // The server stopped reading long before the end: at most what the socket buffers hold.
        assert!(
            sent < 32 * 1024 * 1024,
            "chunked {chunked}: {sent} bytes were taken"
        );
    }
    let rss_kib = std::fs::read_to_string(format!("/proc/{}/status", s.pid()))
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(kib) = rss_kib {
        println!("server peak RSS {kib} KiB");
        assert!(kib < 100 * 1024, "the server's memory grew to {kib} KiB");
    }
}

/// Host-header injection on every anonymous request-reset endpoint: the emailed links come from
/// configuration only, whatever `Host`, `X-Forwarded-Host` and `Forwarded` say.
#[tokio::test]
async fn no_host_header_changes_an_emailed_link_on_any_request_endpoint() {
    use serde_json::json;
    let base = TestConfig::fast();
    let first = Server::spawn(&base);
    let (key_id, key) = first.api_key("payhub").await;
    for who in ["nat", "pag", "alf", "unl", "pay"] {
        first
            .add_person(who, &format!("{who}@example.com"), None)
            .await;
    }
    let s = first.restart(&base.anonymous_dialects(&key_id));
    let evil = |req: reqwest::RequestBuilder| {
        req.header("Host", "evil.example")
            .header("X-Forwarded-Host", "evil.example")
            .header("X-Forwarded-Proto", "https")
            .header("Forwarded", "host=evil.example;proto=https")
    };
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let csrf = forgot_csrf(&http, &s).await;
    // Raw requests: each carries the forged headers.
    let answers = [
        evil(s.http.post(s.url("/v1/default/recovery")))
            .json(&json!({"login": "nat"}))
            .send()
            .await
            .unwrap()
            .status(),
        evil(http.post(s.url("/forgot/default")))
            .header("cookie", format!("resetd_csrf={csrf}"))
            .form(&[("login", "pag"), ("csrf", &csrf)])
            .send()
            .await
            .unwrap()
            .status(),
        evil(
            s.http
                .post(s.url(&format!("{PEOPLE}/alf/request-password-reset"))),
        )
        .json(&json!({"client": "share"}))
        .send()
        .await
        .unwrap()
        .status(),
        evil(s.http.post(s.url("/auth/reset/password-email")))
            .json(&json!({"email": "unl@example.com"}))
            .send()
            .await
            .unwrap()
            .status(),
        evil(s.http.post(s.url("/api/User/authreset")))
            .header("requestToken", &key)
            .json(&json!({"email": "pay@example.com"}))
            .send()
            .await
            .unwrap()
            .status(),
    ];
    let answers: Vec<u16> = answers.iter().map(|s| s.as_u16()).collect();
    // The page refuses a cross-origin POST only when Origin is sent; none is sent here.
    assert_eq!(answers, [202, 303, 202, 200, 200]);
    for who in ["nat", "pag", "alf", "unl", "pay"] {
        let mail = &s
            .wait_mails("reset_link", &format!("{who}@example.com"), 1)
            .await[0];
        let flat = mail.replace("=\r\n", "").replace("=\n", "");
        assert!(!flat.contains("evil.example"), "{who}: {mail}");
        assert!(flat.contains("token=") || flat.contains("key="), "{who}");
    }
}
