//! Email over real SMTP: the real `resetd` binary with `transport = "smtp"` against a real SMTP
//! server (aiosmtpd, driven by scripts/smtp-test-server.py) on loopback.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unimplemented
)]

use crate::helpers;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::helpers::config::TestConfig;
use crate::helpers::smtp::{self, free_port, Mime, Options, SmtpServer};
use crate::helpers::{cli, Server};
use serde_json::{json, Value};

const GOOD: &str = "violet tangerine orbit 7";
const SUPPORT: &str = "helpdesk@acme.example (+49 30 1234567)";
const SMTP_PASSWORD: &str = "smtp-pass-Xq7-never-logged";

/// resetd's configuration for a test: fast Argon2, no per-IP limits, SMTP on `port` (TLS as the
/// test sets it), quick retries.
fn config(port: u16) -> TestConfig {
    TestConfig::fast()
        .smtp(port, "Acme Accounts <accounts@acme.example>")
        .mail("support_contact", SUPPORT)
        .mail("product_name", "Acme")
        .smtp_set("timeout_secs", 5u64)
        .quick_retries(20)
}

/// [`config`] without TLS.
fn plain(port: u16) -> TestConfig {
    config(port).smtp_set("tls", "none")
}

/// Asks for a reset for `login`, expecting a 202.
async fn ask_reset(s: &Server, login: &str) {
    let res = s.request_reset(login).await;
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
}

/// The token of the first link starting with `prefix` in `text`.
fn token_after(text: &str, prefix: &str) -> String {
    let at = text
        .find(prefix)
        .unwrap_or_else(|| panic!("no link {prefix}… in {text}"));
    text[at + prefix.len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no metric {name}"))
        .parse()
        .unwrap()
}

/// Waits until the metric `name` reaches `value`, and returns the whole exposition.
async fn wait_metric(s: &Server, name: &str, value: f64) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = s.mgmt_get("/metrics").await.text().await.unwrap();
        if metric(&text, name) == value || Instant::now() > deadline {
            assert_eq!(metric(&text, name), value, "{name}");
            return text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn reset_email_arrives_over_smtp_with_both_parts_headers_and_a_working_link() {
    if !smtp::available() {
        return;
    }
    let mta = SmtpServer::start(&Options {
        auth: Some("mailer:smtp-pass-Xq7-never-logged"),
        ..Default::default()
    });
    let s = Server::spawn(
        &plain(mta.port)
            .smtp_set("username", "mailer")
            .smtp_set("password", SMTP_PASSWORD),
    );
    s.add_person("jane", "jane@example.com", Some(GOOD)).await;
    let reg = s
        .create_client(
            json!({"name": "portal", "link_template": "https://portal.acme.example/reset?token={token}"}),
        )
        .await;
    assert_eq!(reg.status(), 201);

    // A forged Host header must not leak into the link.
    let res = s
        .http
        .post(s.url("/v1/default/recovery"))
        .header("host", "evil.example")
        .json(&json!({"login": "jane", "client": "portal"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);

    let got = mta.wait_received(1, 15).await;
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.meta["mail_from"], "accounts@acme.example");
    assert_eq!(r.meta["rcpt_tos"], json!(["jane@example.com"]));
    assert_eq!(r.meta["auth_user"], "mailer", "AUTH was used");

    let m = Mime::parse(&r.raw);
    assert_eq!(
        m.header("from"),
        Some("\"Acme Accounts\" <accounts@acme.example>")
    );
    assert_eq!(m.header("to"), Some("jane@example.com"));
    assert_eq!(m.header("subject"), Some("Reset your Acme password"));
    assert!(m.header("date").is_some());
    assert_eq!(m.header("mime-version"), Some("1.0"));
    for h in ["from", "to", "subject", "message-id", "date"] {
        assert_eq!(m.count(h), 1, "exactly one {h} header");
    }
    let message_id = m.header("message-id").unwrap().to_owned();
    assert!(
        message_id.starts_with('<') && message_id.ends_with('>') && message_id.contains('@'),
        "{message_id}"
    );
    assert!(m
        .header("content-type")
        .unwrap()
        .starts_with("multipart/alternative"));
    let parts = m.parts();
    assert_eq!(parts.len(), 2, "a text and an HTML part");
    assert!(parts[0]
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    assert!(parts[1]
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let (text, html) = (parts[0].decoded(), parts[1].decoded());
    let prefix = "https://portal.acme.example/reset?token=";
    let token = token_after(&text, prefix);
    assert_eq!(token.len(), 43, "{text}");
    assert_eq!(
        token_after(&html, prefix),
        token,
        "the HTML part carries the same link"
    );
    assert!(!r.raw.contains("evil.example"));

    // The outbox shows the message as sent with the same Message-ID, and never its body.
    let items = s
        .wait_outbox(15, "the sent message", |items| {
            items.first().is_some_and(|m| m["status"] == "sent")
        })
        .await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["message_id"], message_id.as_str());
    assert_eq!(items[0]["kind"], "reset_link");
    assert_eq!(items[0]["attempts"], 1);
    assert!(items[0]["sent_at"].is_string());
    assert!(
        !items[0].to_string().contains(&token),
        "no reset link in the API"
    );

    // The link works: the token from the email completes the reset.
    let done = s.complete_reset(&token, "quiet harbour lantern 42").await;
    assert_eq!(done.status(), 204);

    // "Your password was changed" follows, over SMTP too, with the support contact line.
    let got = mta.wait_received(2, 15).await;
    let changed = Mime::parse(&got[1].raw);
    assert_eq!(
        changed.header("subject"),
        Some("Your Acme password was changed")
    );
    assert_ne!(changed.header("message-id"), Some(message_id.as_str()));
    let parts = changed.parts();
    assert_eq!(parts.len(), 2);
    for p in &parts {
        let body = p.decoded();
        assert!(body.contains("helpdesk@acme.example"), "{body}");
        assert!(!body.contains("token="), "no link in the changed notice");
    }

    // The server has the message a moment before resetd records it as sent.
    s.wait_outbox(15, "two sent messages", |items| {
        items.iter().filter(|m| m["status"] == "sent").count() == 2
    })
    .await;
    let metrics = wait_metric(&s, "resetd_mail_sent_total", 2.0).await;
    assert_eq!(
        metric(
            &metrics,
            "resetd_mail_send_duration_seconds_count{outcome=\"sent\"}"
        ),
        2.0
    );
    assert_eq!(
        metric(&metrics, "resetd_outbox_messages{status=\"sent\"}"),
        2.0
    );

    let log = s.stderr.lock().unwrap().clone();
    assert!(!log.contains(SMTP_PASSWORD), "the SMTP password was logged");
    assert!(
        !log.contains(&token),
        "a reset token was logged with the SMTP transport"
    );
    assert!(!metrics.contains(SMTP_PASSWORD));
    let printed = cli(
        s.dir.path(),
        Some(&s.dir.path().join("resetd.toml")),
        &["check-config"],
        None,
    );
    assert!(
        printed.contains("<redacted>") && !printed.contains(SMTP_PASSWORD),
        "{printed}"
    );
}

#[tokio::test]
async fn starttls_and_implicit_tls_are_verified_against_the_configured_ca() {
    if !smtp::available() {
        return;
    }
    let ca = smtp::tls_fixture("ca.pem");
    for (server_mode, resetd_mode) in [("starttls", "starttls"), ("implicit", "tls")] {
        let mta = SmtpServer::start(&Options {
            tls: Some(server_mode),
            auth: Some("mailer:tls-secret"),
            ..Default::default()
        });
        let s = Server::spawn(
            &config(mta.port)
                .smtp_set("tls", resetd_mode)
                .smtp_set("username", "mailer")
                .smtp_set("password", "tls-secret")
                .smtp_set("ca_file", ca.display().to_string()),
        );
        s.add_person("tom", "tom@example.com", None).await;
        ask_reset(&s, "tom").await;
        let got = mta.wait_received(1, 15).await;
        assert_eq!(
            got[0].meta["tls"], true,
            "{server_mode}: the session was encrypted"
        );
        assert_eq!(got[0].meta["auth_user"], "mailer");
        assert_eq!(Mime::parse(&got[0].raw).parts().len(), 2);
    }

    // Without the private CA the server's certificate is not trusted: nothing is sent, the
    // message waits with the reason, and it is never sent in clear text instead.
    for (server_mode, resetd_mode) in [("starttls", "starttls"), ("implicit", "tls")] {
        let mta = SmtpServer::start(&Options {
            tls: Some(server_mode),
            ..Default::default()
        });
        let s = Server::spawn(&config(mta.port).smtp_set("tls", resetd_mode));
        s.add_person("una", "una@example.com", None).await;
        ask_reset(&s, "una").await;
        let items = s
            .wait_outbox(15, "a failed TLS attempt", |items| {
                items.iter().any(|m| m["last_error"].is_string())
            })
            .await;
        let reason = items[0]["last_error"].as_str().unwrap();
        assert!(
            reason.to_lowercase().contains("certificate"),
            "{server_mode}: {reason}"
        );
        assert_eq!(items[0]["status"], "pending");
        assert!(mta.received().is_empty());
    }

    // STARTTLS is required: a server that does not offer it gets nothing, in clear text or not.
    let mta = SmtpServer::start(&Options::default());
    let s = Server::spawn(&config(mta.port).smtp_set("tls", "starttls"));
    s.add_person("vic", "vic@example.com", None).await;
    ask_reset(&s, "vic").await;
    let items = s
        .wait_outbox(15, "a failed STARTTLS attempt", |items| {
            items.iter().any(|m| m["last_error"].is_string())
        })
        .await;
    let reason = items[0]["last_error"].as_str().unwrap();
    assert!(reason.contains("STARTTLS"), "{reason}");
    assert_eq!(items[0]["status"], "pending");
    assert!(mta.received().is_empty());
}

#[tokio::test]
async fn smtp_down_for_a_while_then_back_delivers_every_message() {
    if !smtp::available() {
        return;
    }
    let port = free_port();
    // The server stays away for a few backoff rounds.
    let s = Server::spawn(
        &plain(port)
            .smtp_set("pool_size", 2u32)
            .worker("concurrency", 4u32),
    );
    let people: Vec<String> = (0..20).map(|i| format!("user{i:02}@example.com")).collect();
    for (i, email) in people.iter().enumerate() {
        s.add_person(&format!("user{i:02}"), email, None).await;
    }
    for i in 0..20 {
        ask_reset(&s, &format!("user{i:02}")).await;
    }

    // Nothing listens: every message is queued and has failed at least once, none is lost or dead.
    let items = s
        .wait_outbox(20, "20 messages each tried at least once", |items| {
            items.len() == 20
                && items
                    .iter()
                    .all(|m| m["attempts"].as_u64().unwrap() >= 1 && m["last_error"].is_string())
        })
        .await;
    for m in &items {
        assert_eq!(m["status"], "pending");
        let reason = m["last_error"].as_str().unwrap_or_default();
        assert!(reason.contains("cannot reach the SMTP server"), "{reason}");
    }
    // Keep it down a little longer: several retry rounds.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(s.outbox_items("?status=dead").await.is_empty());

    let mta = SmtpServer::start_on(port, &Options::default());
    let got = mta.wait_received(20, 30).await;
    let recipients: BTreeSet<String> = got
        .iter()
        .map(|r| r.meta["rcpt_tos"][0].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(recipients, people.iter().cloned().collect::<BTreeSet<_>>());
    let ids: BTreeSet<String> = got
        .iter()
        .map(|r| Mime::parse(&r.raw).header("message-id").unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 20, "20 distinct messages");
    // Pooled: at most pool_size connections carried the 20 messages.
    let connections: BTreeSet<String> = got.iter().map(|r| r.meta["peer"].to_string()).collect();
    assert!(
        (1..=2).contains(&connections.len()),
        "{} connections for 20 messages with pool_size = 2",
        connections.len()
    );
    let items = s
        .wait_outbox(15, "20 sent messages", |items| {
            items.iter().filter(|m| m["status"] == "sent").count() == 20
        })
        .await;
    let stored_ids: BTreeSet<String> = items
        .iter()
        .map(|m| m["message_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        stored_ids, ids,
        "every stored message arrived with its Message-ID"
    );
    let metrics = s.mgmt_get("/metrics").await.text().await.unwrap();
    assert!(metric(&metrics, "resetd_mail_failed_total") >= 20.0);
    assert_eq!(metric(&metrics, "resetd_mail_dead_total"), 0.0);
}

#[tokio::test]
async fn temporary_then_permanent_rejection_is_retried_then_dead_with_the_reason_and_its_body_erased(
) {
    if !smtp::available() {
        return;
    }
    // Two 4xx answers, then a 5xx; later messages are accepted.
    let mta = SmtpServer::start(&Options {
        data_replies: vec![
            "451 4.3.0 Mail server temporarily rejected message",
            "451 4.3.0 Mail server temporarily rejected message",
            "554 5.6.0 Message content rejected by policy",
        ],
        ..Default::default()
    });
    let s = Server::spawn(&plain(mta.port));
    s.add_person("rita", "rita@example.com", None).await;
    ask_reset(&s, "rita").await;

    let items = s
        .wait_outbox(20, "a dead message", |items| {
            items.first().is_some_and(|m| m["status"] == "dead")
        })
        .await;
    let dead = &items[0];
    assert_eq!(
        dead["attempts"], 3,
        "two retries after the 4xx answers, none after the 5xx"
    );
    let reason = dead["last_error"].as_str().unwrap();
    assert!(
        reason.contains("554") && reason.contains("Message content rejected by policy"),
        "{reason}"
    );
    assert!(dead["next_attempt_at"].is_null());
    let replies: Vec<String> = mta
        .transactions()
        .iter()
        .map(|t| t["reply"].as_str().unwrap()[..3].to_owned())
        .collect();
    assert_eq!(replies, ["451", "451", "554"]);
    assert!(mta.received().is_empty());

    // Visible in the CLI, the API's status filter and the metrics.
    let cfg = s.dir.path().join("resetd.toml");
    let listed = cli(
        s.dir.path(),
        Some(&cfg),
        &["outbox", "list", "--status", "dead"],
        None,
    );
    let id = dead["id"].as_i64().unwrap();
    let line = listed.lines().next().expect("one dead message listed");
    let cols: Vec<&str> = line.split('\t').collect();
    assert_eq!(cols[0], id.to_string());
    assert_eq!(
        &cols[1..6],
        ["default", "reset_link", "rita@example.com", "dead", "3"]
    );
    assert!(cols[9].contains("554"), "{line}");
    assert_eq!(s.outbox_items("?status=dead").await.len(), 1);
    assert!(s.outbox_items("?status=pending").await.is_empty());
    // The counter moves right after the store records the state.
    let metrics = wait_metric(&s, "resetd_mail_dead_total", 1.0).await;
    assert_eq!(metric(&metrics, "resetd_mail_failed_total"), 2.0);
    assert_eq!(
        metric(&metrics, "resetd_outbox_messages{status=\"dead\"}"),
        1.0
    );

    // A dead message's body was erased (it held a reset link): retrying it is refused clearly,
    // through the API and the CLI, and changes nothing. (Retrying a pending message, which still
    // has its sealed body, is shown in `at_rest.rs`.)
    let retry = s.retry_outbox(id).await;
    assert_eq!(retry.status(), 409);
    assert_eq!(retry.headers()["content-type"], "application/problem+json");
    let problem: serde_json::Value = retry.json().await.unwrap();
    assert_eq!(
        problem["type"]
            .as_str()
            .map(|t| t.ends_with("message-erased")),
        Some(true),
        "{problem}"
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("new reset email"),
        "{problem}"
    );
    let out = std::process::Command::new(helpers::BIN)
        .arg("--data-dir")
        .arg(s.dir.path())
        .arg("--config")
        .arg(&cfg)
        .args(["outbox", "retry", &id.to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("erased") && err.contains("cannot be sent again"),
        "{err}"
    );
    let items = s.outbox_items("").await;
    assert_eq!(
        (items[0]["status"].as_str(), items.len()),
        (Some("dead"), 1)
    );
    assert!(mta.received().is_empty());
    let audit = s.audit_items("").await;
    assert!(!audit.iter().any(|e| e["kind"] == "outbox_retried"));

    // A message delivered later is sent; it cannot be retried either.
    s.add_person("ruth", "ruth@example.com", None).await;
    ask_reset(&s, "ruth").await;
    mta.wait_received(1, 15).await;
    let items = s
        .wait_outbox(15, "the second message sent", |items| {
            items[0]["status"] == "sent"
        })
        .await;
    let id = items[0]["id"].as_i64().unwrap();

    // A sent message cannot be retried; unknown ids and other shapes are clear 404s.
    for id in [id.to_string(), "999999".into(), "abc".into()] {
        let res = s.retry_outbox(&id).await;
        assert_eq!(res.status(), 404, "/v1/default/outbox/{id}/retry");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
    }
    let bad = s.outbox("?status=lost").await;
    assert_eq!(bad.status(), 422);
    let anonymous = s.get("/v1/default/outbox").await;
    assert_eq!(anonymous.status(), 401);
}

// A server that always defers: retried until the link expires, then dead with that reason, in
// smtp_outage.rs::a_reset_email_whose_link_expired_is_dead_with_that_reason_and_never_sent.

#[tokio::test]
async fn malformed_recipients_are_refused_at_request_time_or_end_dead_without_stopping_the_worker()
{
    if !smtp::available() {
        return;
    }
    let mta = SmtpServer::start(&Options {
        reject_rcpt: Some("^bounce@"),
        ..Default::default()
    });
    let s = Server::spawn(&plain(mta.port));

    // Where the API can tell, the address is refused at once with a clear problem.
    for body in [
        json!({"login": "x", "email": "not-an-address"}),
        json!({"login": "x", "email": "two@@example.com"}),
        json!({"login": "x", "email": "a b@example.com"}),
    ] {
        let res = s.create_person(body.clone()).await;
        assert_eq!(res.status(), 422, "{body}");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let p: Value = res.json().await.unwrap();
        assert!(p.to_string().contains("email"), "{p}");
    }
    let res = s
        .request_reset_with(json!({"email": "no-at-sign.example.com"}))
        .await;
    assert_eq!(res.status(), 422);

    // An address only the SMTP server refuses (550 at RCPT): dead with the server's reason.
    s.add_person("bounce", "bounce@example.com", None).await;
    s.add_person("fine", "fine@example.com", None).await;
    ask_reset(&s, "bounce").await;
    let items = s
        .wait_outbox(20, "a dead message", |items| {
            items.iter().any(|m| m["status"] == "dead")
        })
        .await;
    let dead = items.iter().find(|m| m["status"] == "dead").unwrap();
    assert_eq!(dead["recipient"], "bounce@example.com");
    assert_eq!(dead["attempts"], 1, "a permanent refusal is not retried");
    let reason = dead["last_error"].as_str().unwrap();
    assert!(
        reason.contains("550") && reason.contains("mailbox unavailable"),
        "{reason}"
    );

    // An internationalised address the API accepts, but this server cannot take (no SMTPUTF8):
    // dead at once with the reason, not retried for hours.
    s.add_person("juergen", "jürgen@example.com", None).await;
    ask_reset(&s, "juergen").await;
    let items = s
        .wait_outbox(20, "a second dead message", |items| {
            items.iter().filter(|m| m["status"] == "dead").count() == 2
        })
        .await;
    let dead = items
        .iter()
        .find(|m| m["recipient"] == "jürgen@example.com")
        .unwrap();
    assert_eq!(dead["status"], "dead");
    let reason = dead["last_error"].as_str().unwrap();
    assert!(reason.contains("SMTPUTF8"), "{reason}");

    // The worker keeps running: the next message is delivered.
    ask_reset(&s, "fine").await;
    let got = mta.wait_received(1, 15).await;
    assert_eq!(got[0].meta["rcpt_tos"], json!(["fine@example.com"]));
    let log = s.stderr.lock().unwrap().clone();
    assert!(!log.contains("panicked"), "{log}");
}

#[tokio::test]
async fn a_reset_accepted_before_a_sigkill_is_delivered_after_restart() {
    if !smtp::available() {
        return;
    }
    let port = free_port();
    let cfg = plain(port);
    let s = Server::spawn(&cfg);
    s.add_person("early", "early@example.com", None).await;
    s.add_person("late", "late@example.com", None).await;

    // "early": its email is queued (and failing, nothing listens) when the process dies.
    ask_reset(&s, "early").await;
    s.wait_outbox(15, "the queued email", |items| {
        items.len() == 1 && items[0]["attempts"].as_u64().unwrap() >= 1
    })
    .await;
    // "late": killed right after the 202, possibly before the token and its email exist.
    ask_reset(&s, "late").await;
    let key = s.key.clone();
    let dir = s.stop(); // SIGKILL

    let mta = SmtpServer::start_on(port, &Options::default());
    let mut s = Server::spawn_in(dir, &cfg);
    s.key = key;
    let got = mta.wait_received(2, 30).await;
    let mut recipients: Vec<String> = got
        .iter()
        .map(|r| r.meta["rcpt_tos"][0].as_str().unwrap().to_owned())
        .collect();
    recipients.sort();
    assert_eq!(recipients, ["early@example.com", "late@example.com"]);

    // Both links work after the restart.
    for r in &got {
        let text = Mime::parse(&r.raw).parts()[0].decoded();
        let token = token_after(&text, "token=");
        let done = s.complete_reset(&token, GOOD).await;
        assert_eq!(done.status(), 204);
    }
}

#[tokio::test]
async fn a_wrong_smtp_password_keeps_messages_waiting_instead_of_killing_them() {
    if !smtp::available() {
        return;
    }
    // The server answers AUTH with 535: resetd's configuration is wrong, not the message.
    let mta = SmtpServer::start(&Options {
        auth: Some("mailer:the-right-one"),
        ..Default::default()
    });
    let s = Server::spawn(
        &plain(mta.port)
            .smtp_set("username", "mailer")
            .smtp_set("password", SMTP_PASSWORD),
    );
    s.add_person("ines", "ines@example.com", None).await;
    ask_reset(&s, "ines").await;
    let items = s
        .wait_outbox(20, "two failed attempts", |items| {
            items.first().is_some_and(|m| {
                m["attempts"].as_u64().unwrap() >= 2 && m["last_error"].is_string()
            })
        })
        .await;
    assert_eq!(items[0]["status"], "pending");
    let reason = items[0]["last_error"].as_str().unwrap();
    assert!(
        reason.contains("refused the session") && reason.contains("535"),
        "{reason}"
    );
    assert!(!reason.contains(SMTP_PASSWORD));
    assert!(!s.stderr.lock().unwrap().contains(SMTP_PASSWORD));
    assert!(mta.received().is_empty());
}
