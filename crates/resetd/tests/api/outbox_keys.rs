//! The outbox key file (docs/configuration.md, `mail.outbox_key_file`): created with mode 0600
//! at first start, reused after a restart so pending mail is still delivered; a missing,
//! unreadable, malformed or wrong key file stops the start with a clear error instead of losing
//! mail; `resetd outbox abandon` is the way out when a key is lost for good; and a message that
//! an instance cannot open is marked dead with the reason, never sent, never a panic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unimplemented
)]

use crate::helpers;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::config::TestConfig;
use crate::helpers::smtp::{self, free_port, SmtpServer};
use crate::helpers::{token_from_mail, Server, BIN};
use serde_json::Value;

/// SMTP on `port`, quick retries.
fn config(port: u16) -> TestConfig {
    TestConfig::fast()
        .smtp(port, "Acme <accounts@acme.example>")
        .smtp_set("tls", "none")
        .smtp_set("timeout_secs", 5u64)
        .quick_retries(20)
}

/// A server whose SMTP server is down, with one reset email pending (tried at least once).
async fn one_pending(port: u16) -> Server {
    let s = Server::spawn(&config(port));
    s.add_person("kim", "kim@example.com", None).await;
    let res = s.request_reset("kim").await;
    assert_eq!(res.status(), 202);
    s.wait_outbox(20, "a pending, tried email", |items| {
        items.len() == 1
            && items[0]["status"] == "pending"
            && items[0]["attempts"].as_u64() >= Some(1)
    })
    .await;
    s
}

/// Runs `resetd serve` in `dir` and expects it to refuse to start: returns its stderr.
fn refused_start(dir: &Path) -> String {
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(dir.join("resetd.toml"))
        .arg("--data-dir")
        .arg(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("resetd started (or hung) instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn key_id_in(text: &str) -> String {
    // The id is what the error names: 8 hex digits after "key ".
    text.split("key ")
        .filter_map(|rest| rest.get(..8))
        .find(|id| id.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(|| panic!("no key id in: {text}"))
        .to_owned()
}

fn a_new_key() -> String {
    // 64 hex digits that are not the server's key.
    "5e".repeat(32)
}

#[tokio::test]
async fn pending_mail_survives_a_restart_and_a_missing_or_wrong_key_file_stops_the_start() {
    if !smtp::available() {
        return;
    }
    let port = free_port();
    let s = one_pending(port).await;
    let admin = s.key.clone();
    let dir = s.stop();
    let key_file = dir.path().join("outbox.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "created readable by its owner only");
    }
    let original = std::fs::read_to_string(&key_file).unwrap();
    let db = std::fs::read(dir.path().join("resetd.db")).unwrap();
    let key_line = original.lines().find(|l| !l.starts_with('#')).unwrap();
    assert!(
        !db.windows(key_line.len()).any(|w| w == key_line.as_bytes()),
        "the key is not in the database"
    );

    // Missing: refused (a new key would make the pending email unsendable), and not created.
    std::fs::remove_file(&key_file).unwrap();
    let err = refused_start(dir.path());
    assert!(
        err.contains("does not exist") && err.contains("outbox.key"),
        "{err}"
    );
    let sealed_with = key_id_in(&err);
    assert!(!key_file.exists(), "no new key was made over pending mail");
    // Another key: refused, naming both.
    std::fs::write(&key_file, format!("{}\n", a_new_key())).unwrap();
    let err = refused_start(dir.path());
    assert!(
        err.contains("does not hold") && err.contains(&sealed_with),
        "{err}"
    );
    // Not a key file: refused, naming the line, never echoing it.
    std::fs::write(&key_file, "correct horse battery staple\n").unwrap();
    let err = refused_start(dir.path());
    assert!(
        err.contains("line 1 is not a key") && !err.contains("horse"),
        "{err}"
    );
    // Unreadable (a directory where the file should be).
    std::fs::remove_file(&key_file).unwrap();
    std::fs::create_dir(&key_file).unwrap();
    let err = refused_start(dir.path());
    assert!(err.contains("cannot read the outbox key file"), "{err}");
    std::fs::remove_dir(&key_file).unwrap();

    // The right file again, rotated (a new key first, the old one kept below it): the pending
    // email is opened with the old key and delivered once SMTP is back; its token works.
    std::fs::write(&key_file, format!("{}\n{original}", a_new_key())).unwrap();
    let mut s = Server::spawn_in(dir, &config(port));
    s.key = admin;
    let mta = SmtpServer::start_on(port, &Default::default());
    let mail = mta.wait_received(1, 20).await;
    let token = token_from_mail(&mail[0].raw);
    let res = s.complete_reset(&token, "lunar cobalt meadow 91").await;
    assert_eq!(res.status(), 204);
    s.wait_outbox(20, "2 sent emails", |items| {
        items.len() == 2 && items.iter().all(|m| m["status"] == "sent")
    })
    .await;
}

#[tokio::test]
async fn abandon_gives_up_mail_sealed_with_a_lost_key_and_serve_starts_again() {
    if !smtp::available() {
        return;
    }
    let port = free_port();
    let s = one_pending(port).await;
    let admin = s.key.clone();
    let dir = s.stop();
    let key_file = dir.path().join("outbox.key");
    std::fs::write(&key_file, format!("{}\n", a_new_key())).unwrap();
    refused_start(dir.path());

    let out = helpers::cli(
        dir.path(),
        Some(&dir.path().join("resetd.toml")),
        &["outbox", "abandon"],
        None,
    );
    assert!(out.contains("1 pending message(s)"), "{out}");
    let mut s = Server::spawn_in(dir, &config(port));
    s.key = admin;
    let items = s.outbox_items("?limit=100").await;
    assert_eq!(items[0]["status"], "dead");
    let reason = items[0]["last_error"].as_str().unwrap();
    assert!(
        reason.contains("abandoned") && reason.contains("lost"),
        "{reason}"
    );
    // Its body was erased: a retry is refused clearly.
    let res = s.retry_outbox(&items[0]["id"]).await;
    assert_eq!(res.status(), 409);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("cannot be sent again"),
        "{body}"
    );
    // New mail is sealed with the new key and goes out.
    s.add_person("lee", "lee@example.com", None).await;
    let res = s.request_reset("lee").await;
    assert_eq!(res.status(), 202);
    let mta = SmtpServer::start_on(port, &Default::default());
    let mail = mta.wait_received(1, 20).await;
    assert_eq!(mail[0].meta["rcpt_tos"][0], "lee@example.com");
}

#[tokio::test]
async fn a_message_this_instance_cannot_open_is_dead_with_the_reason_and_never_sent() {
    if !smtp::available() {
        return;
    }
    // Two processes on one SQLite file with different key files (a misconfigured pair): B
    // starts while the outbox is empty, then A queues mail that only A can open. Whichever
    // instance claims it, B must not send it: it marks it dead with a reason that names the key.
    let mta = SmtpServer::start(&Default::default());
    let a = Server::spawn(&config(free_port()));
    a.add_person("max", "max@example.com", None).await;
    let db = a.dir.path().join("resetd.db");
    let b_keys = tempfile::tempdir().unwrap();
    let b_key_file = b_keys.path().join("b.key");
    let b = Server::start_env(
        tempfile::tempdir().unwrap(),
        config(mta.port)
            .database_url(&format!("sqlite://{}", db.display()))
            .toml(),
        "info",
        &[("RESETD_OUTBOX_KEY_FILE", b_key_file.to_str().unwrap())],
    );
    assert!(b_key_file.exists(), "B made a key of its own");
    let res = a.request_reset("max").await;
    assert_eq!(res.status(), 202);
    let items = a
        .wait_outbox(20, "a dead email", |items| {
            items.len() == 1 && items[0]["status"] == "dead"
        })
        .await;
    let reason = items[0]["last_error"].as_str().unwrap();
    assert!(
        reason.contains("sealed with outbox key")
            && reason.contains("not in this instance's key file"),
        "{reason}"
    );
    assert!(mta.received().is_empty(), "nothing was sent");
    assert!(b.log().contains("cannot be opened"), "B logged why");
    // Its sealed body was kept (only its key is missing), so it may be retried: once the key
    // is restored where it is claimed, it goes out.
    let res = a.retry_outbox(&items[0]["id"]).await;
    assert_eq!(res.status(), 204);
}

#[tokio::test]
async fn mail_queued_in_clear_by_an_older_version_is_sealed_at_start_and_still_delivered() {
    if !smtp::available() {
        return;
    }
    let port = free_port();
    let s = Server::spawn(&config(port));
    let admin = s.key.clone();
    let dir = s.stop();
    // As a version before sealing left it: a pending reset email with its link in clear.
    let secret = "LegacyToken0LegacyToken0LegacyToken0Legacy";
    let link = format!("https://app.example.com/reset?token={secret}");
    let conn = rusqlite::Connection::open(dir.path().join("resetd.db")).unwrap();
    // Queued just now, with the deadline the upgrade gives such a row (its link's lifetime).
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    conn.execute(
        "INSERT INTO outbox (tenant, kind, recipient, subject, text, html, message_id, attempts, \
         next_attempt_at, status, created_at, deliver_by) VALUES ('default', 'reset_link', \
         'old@example.com', 'Reset your password', ?1, ?2, '<legacy-1@resetd.test>', 0, 0, \
         'pending', ?3, ?3 + 1800000)",
        rusqlite::params![
            format!("Open {link}"),
            format!("<a href=\"{link}\">Reset</a>"),
            now_ms
        ],
    )
    .unwrap();
    drop(conn);
    let mut s = Server::spawn_in(dir, &config(port));
    s.key = admin;
    assert!(
        s.log().contains("sealed pending email queued in clear"),
        "{}",
        s.log()
    );
    let path = s.dir.path().to_owned();
    let live = helpers::at_rest::sqlite_files(&path, "after the start");
    helpers::at_rest::checkpoint(&path);
    let snapshots = [live, helpers::at_rest::sqlite_files(&path, "checkpointed")];
    helpers::at_rest::assert_holds(&snapshots, "old@example.com");
    let found = helpers::at_rest::findings(
        &snapshots,
        &[("the legacy token".into(), secret.to_owned())],
    );
    assert!(found.is_empty(), "{found:?}");
    // Still delivered as it was written.
    let mta = SmtpServer::start_on(port, &Default::default());
    let mail = mta.wait_received(1, 20).await;
    assert_eq!(token_from_mail(&mail[0].raw), secret);
    s.wait_outbox(20, "the legacy email sent", |items| {
        items.len() == 1 && items[0]["status"] == "sent"
    })
    .await;
}
