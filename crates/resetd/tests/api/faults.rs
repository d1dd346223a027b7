//! Faults, against the real binary: a server killed with SIGKILL under load, an SMTP server that
//! takes 10 s per command, and a full disk under SQLite. After each, every 202 and 204 the
//! client saw is still true (the email is sent, the new password works) and nothing is half
//! written. (SMTP down, rejecting and a SIGKILL with mail in the outbox are in `smtp.rs`; a
//! PostgreSQL instance killed mid-outbox is in `scaleout.rs`.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unimplemented
)]

use crate::helpers;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::helpers::config::TestConfig;
use crate::helpers::Server;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const OLD: &str = "violet tangerine orbit 7";

fn new_password(i: usize) -> String {
    format!("quiet harbour lantern {i:03}")
}

/// Waits (up to 40 s: a reset request or an email claimed by the killed process is reserved
/// for its lease, 10 s and `lease_secs` here) for a reset-link email to `to`.
async fn wait_reset_mail(s: &Server, to: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        if let Some((_, body)) = s
            .mails()
            .into_iter()
            .find(|(name, body)| name.contains("reset_link") && body.contains(&format!("To: {to}")))
        {
            return body;
        }
        assert!(Instant::now() < deadline, "no reset email to {to}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn every_202_and_204_answered_before_a_sigkill_under_load_holds_after_restart() {
    const EACH: usize = 40;
    let config = TestConfig::fast().lease_secs(4);
    let s = Server::spawn(&config);
    let admin = s.key.clone();
    // Group A asks for resets during the load; group B completes resets with tokens got before.
    for i in 0..EACH {
        s.add_person(&format!("a{i}"), &format!("a{i}@example.com"), Some(OLD))
            .await;
        s.add_person(&format!("b{i}"), &format!("b{i}@example.com"), Some(OLD))
            .await;
    }
    let mut tokens = Vec::new();
    for i in 0..EACH {
        tokens.push(
            s.reset_token(&format!("b{i}"), &format!("b{i}@example.com"), 1)
                .await,
        );
    }

    // The load: every request at once, on fresh connections; the server is killed while they
    // are being answered.
    let answered = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        for group in ["a", "b"] {
            let http = reqwest::Client::new();
            let base = s.base.clone();
            let token = token.clone();
            let answered = answered.clone();
            tasks.push(tokio::spawn(async move {
                let res = if group == "a" {
                    http.post(format!("{base}/v1/default/recovery"))
                        .json(&json!({"login": format!("a{i}")}))
                        .send()
                        .await
                } else {
                    http.post(format!("{base}/v1/default/recovery/{token}"))
                        .json(&json!({"password": new_password(i)}))
                        .send()
                        .await
                };
                let status = res.ok().map(|r| r.status().as_u16());
                if status.is_some() {
                    answered.fetch_add(1, Ordering::SeqCst);
                }
                (group, i, status)
            }));
        }
    }
    // Kill once a part of the load has been answered, so some requests are cut off mid-way.
    let deadline = Instant::now() + Duration::from_secs(20);
    while answered.load(Ordering::SeqCst) < EACH / 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let dir = s.stop();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let seen: Vec<_> = results.iter().filter(|r| r.2.is_some()).collect();
    println!(
        "{} of {} requests answered before the SIGKILL",
        seen.len(),
        results.len()
    );
    assert!(!seen.is_empty());
    for (group, i, status) in &results {
        if let Some(st) = status {
            let want = if *group == "a" { 202 } else { 204 };
            assert_eq!(*st, want, "{group}{i}");
        }
    }

    let mut s = Server::spawn_in(dir, &config);
    s.key = admin;
    for (group, i, status) in &results {
        let login = format!("{group}{i}");
        if *group == "a" {
            if status.is_some() {
                // The 202 promised an email: it comes, with a working link.
                let mail = wait_reset_mail(&s, &format!("{login}@example.com")).await;
                let token = helpers::token_from_mail(&mail);
                let res = s.token_info(&token).await;
                assert_eq!(res.status(), 200, "{login}");
            }
        } else {
            let new = s.auth_status(&login, &new_password(*i)).await;
            let old = s.auth_status(&login, OLD).await;
            if status.is_some() {
                assert_eq!((new, old), (200, 401), "{login}: the 204 did not hold");
            } else {
                // Cut off: the change happened entirely or not at all.
                assert!(
                    (new, old) == (200, 401) || (new, old) == (401, 200),
                    "{login}: new {new}, old {old}"
                );
            }
        }
    }
    assert!(
        !s.log().contains("panicked"),
        "a panic after restart: {}",
        s.log()
    );
}

/// A minimal SMTP server in the test: while `slow` is set it waits 10 s before every reply (the
/// greeting included); otherwise it accepts every message at once and counts it.
async fn smtp_server(
    slow: Arc<AtomicBool>,
    delivered: Arc<AtomicUsize>,
    cut_off: Arc<AtomicUsize>,
) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let (slow, delivered, cut_off) = (slow.clone(), delivered.clone(), cut_off.clone());
            tokio::spawn(async move {
                let slow = slow.load(Ordering::SeqCst);
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                let pause = || async {
                    if slow {
                        tokio::time::sleep(Duration::from_secs(10)).await;
                    }
                };
                pause().await;
                if w.write_all(b"220 slow.test ESMTP\r\n").await.is_err() {
                    cut_off.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                let mut in_data = false;
                loop {
                    let line = match lines.next_line().await {
                        Ok(Some(l)) => l,
                        _ => {
                            if slow {
                                cut_off.fetch_add(1, Ordering::SeqCst);
                            }
                            return;
                        }
                    };
                    if in_data {
                        if line == "." {
                            in_data = false;
                            pause().await;
                            delivered.fetch_add(1, Ordering::SeqCst);
                            let _ = w.write_all(b"250 2.0.0 queued\r\n").await;
                        }
                        continue;
                    }
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-slow.test\r\n250 8BITMIME\r\n",
                        "DATA" => {
                            in_data = true;
                            b"354 go ahead\r\n"
                        }
                        "QUIT" => b"221 bye\r\n",
                        _ => b"250 OK\r\n",
                    };
                    pause().await;
                    if w.write_all(reply).await.is_err() {
                        if slow {
                            cut_off.fetch_add(1, Ordering::SeqCst);
                        }
                        return;
                    }
                    if verb == "QUIT" {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn a_smtp_server_taking_10_s_per_command_is_cut_off_retried_and_http_stays_responsive() {
    let slow = Arc::new(AtomicBool::new(true));
    let delivered = Arc::new(AtomicUsize::new(0));
    let cut_off = Arc::new(AtomicUsize::new(0));
    let port = smtp_server(slow.clone(), delivered.clone(), cut_off.clone()).await;
    let s = Server::spawn(
        &TestConfig::fast()
            .smtp(port, "Acme <accounts@acme.example>")
            .smtp_set("tls", "none")
            .smtp_set("timeout_secs", 2u64)
            .worker("base_backoff_ms", 200u64)
            .worker("max_backoff_ms", 1000u64)
            .lease_secs(10),
    );
    s.add_person("slow", "slow@example.com", Some(OLD)).await;
    let res = s.request_reset("slow").await;
    assert_eq!(res.status(), 202);
    // While the mail worker is stuck on the slow server, HTTP answers as usual.
    let deadline = Instant::now() + Duration::from_secs(20);
    while cut_off.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the worker never gave up on the slow server"
        );
        let t = Instant::now();
        assert_eq!(s.get("/healthz").await.status(), 200);
        assert_eq!(s.request_reset("nobody").await.status(), 202);
        assert_eq!(s.auth_status("slow", OLD).await, 200);
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "HTTP took {:?} while SMTP was slow",
            t.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(delivered.load(Ordering::SeqCst), 0);
    // The server recovers: the same message goes out on a later attempt, exactly once.
    slow.store(false, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(30);
    while delivered.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the message was never retried: {}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(delivered.load(Ordering::SeqCst), 1);
    let metrics = s.mgmt_get("/metrics").await.text().await.unwrap();
    let retried = metrics
        .lines()
        .find(|l| l.starts_with("resetd_mail_failed_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(retried >= 1.0, "{metrics}");
}

/// A 4 MiB tmpfs mounted for one test, unmounted when dropped. `None` when this process may not
/// mount (not root, or no CAP_SYS_ADMIN in a container).
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    fn mount() -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallDisk(dir))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.0.path())
            .status();
    }
}

/// Writes a file into `dir` until the file system is full; returns its path.
fn fill(dir: &std::path::Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 4096];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
    path
}

#[tokio::test]
async fn a_full_disk_gives_clear_errors_loses_no_acknowledged_write_and_heals_when_space_returns() {
    let Some(disk) = SmallDisk::mount() else {
        eprintln!(
            "SKIPPED: cannot mount a tmpfs here (needs root); the full-disk test did not run"
        );
        return;
    };
    let data = tempfile::tempdir_in(disk.0.path()).unwrap();
    let s = Server::spawn_in(data, &TestConfig::fast());
    s.add_person("full", "full@example.com", Some(OLD)).await;
    let filler = fill(disk.0.path());

    // While the disk is full: writes fail with a clear 5xx problem, or succeed; nothing hangs.
    let mut created = Vec::new();
    let mut statuses = Vec::new();
    for i in 0..30 {
        let res = s
            .create_person(
                json!({"login": format!("f{i}"), "email": format!("f{i}@example.com"), "attributes": {"pad": "x".repeat(2000)}}),
            )
            .await;
        let status = res.status().as_u16();
        let ct = res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let retry = retry_after(&res);
        let body = res.text().await.unwrap();
        if status == 201 {
            created.push(i);
        } else {
            assert_eq!(status, 503, "f{i}: {body}");
            assert_eq!(ct.as_deref(), Some("application/problem+json"), "{body}");
            assert!(body.contains("urn:resetd:problem:unavailable"), "{body}");
            assert!(retry.is_some_and(|s| s >= 1), "f{i}: no Retry-After");
        }
        statuses.push(status);
        let res = s.request_reset("full").await;
        statuses.push(res.status().as_u16());
        match res.status().as_u16() {
            202 => {}
            503 => assert!(retry_after(&res).is_some(), "a 503 without Retry-After"),
            other => panic!("request reset answered {other}"),
        }
    }
    println!("answers while the disk was full: {statuses:?}");
    println!(
        "the server's log: {}",
        s.log()
            .lines()
            .filter(|l| l.contains("WARN"))
            .take(3)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        statuses.contains(&503),
        "the disk never filled up: {statuses:?}"
    );
    assert_eq!(s.get("/healthz").await.status(), 200);

    // Space returns: the server works again without a restart, and what it acknowledged is there.
    std::fs::remove_file(filler).unwrap();
    for i in 0..30 {
        let list = s.find_people(&format!("f{i}")).await;
        let found = !list["items"].as_array().unwrap().is_empty();
        assert_eq!(found, created.contains(&i), "f{i}: {list}");
    }
    assert_eq!(s.auth_status("full", OLD).await, 200);
    s.add_person("after", "after@example.com", None).await;
    let res = s.request_reset("after").await;
    assert_eq!(res.status(), 202);
    s.wait_mails("reset_link", "after@example.com", 1).await;
    assert!(!s.log().contains("panicked"), "{}", s.log());
}

/// The Retry-After header in seconds, if any.
fn retry_after(res: &reqwest::Response) -> Option<u64> {
    res.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Holds SQLite's write lock on `db` from another process (Python's sqlite3) for `secs`
/// seconds; returns once the lock is taken.
fn hold_write_lock(db: &std::path::Path, secs: u64) -> std::process::Child {
    let mut child = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3, sys, time\n\
             c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
             c.execute('BEGIN IMMEDIATE')\n\
             print('locked', flush=True)\n\
             time.sleep(float(sys.argv[2]))\n\
             c.execute('ROLLBACK')\n",
        )
        .arg(db)
        .arg(secs.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "locked");
    child
}

#[tokio::test]
async fn a_database_locked_by_another_process_delays_or_refuses_writes_cleanly() {
    let s = Server::spawn(&TestConfig::fast());
    s.add_person("lock", "lock@example.com", Some(OLD)).await;
    let db = s.dir.path().join("resetd.db");

    // A short lock (2 s, under the 5 s busy timeout): writes wait for it and succeed.
    let mut holder = hold_write_lock(&db, 2);
    let res = s
        .create_person(json!({"login": "waited", "email": "waited@example.com"}))
        .await;
    assert_eq!(res.status(), 201);
    holder.wait().unwrap();

    // A long lock (8 s): writes give up with a problem after the busy timeout; reads go on.
    let mut holder = hold_write_lock(&db, 8);
    let res = s
        .create_person(json!({"login": "refused", "email": "refused@example.com"}))
        .await;
    let status = res.status().as_u16();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(status, 503);
    assert_eq!(ct.as_deref(), Some("application/problem+json"));
    assert_eq!(
        retry_after(&res),
        Some(5),
        "a locked database asks for a retry in 5 s"
    );
    assert_eq!(s.get("/healthz").await.status(), 200);
    holder.wait().unwrap();

    // Afterwards: the refused write left nothing; the service works.
    let list = s.find_people("refused").await;
    assert_eq!(list["items"], json!([]));
    assert_eq!(s.auth_status("lock", OLD).await, 200);
    let res = s
        .create_person(json!({"login": "refused", "email": "refused@example.com"}))
        .await;
    assert_eq!(res.status(), 201);
}
