//! The Payabli dialect against the real binary: `POST /api/User/authreset` (dialects.md §5) for
//! known, unknown and disabled addresses, entry points mapped to tenants, request tokens, every
//! error in the `PayabliErrorBody` shape, the round trip through the demo mail, and
//! `@payabli/sdk-node` driving it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unimplemented
)]

use std::process::{Command, Stdio};

use crate::helpers::config::TestConfig;
use crate::helpers::dialect::{
    disable, first_link, link_param, reset_mails_to, run_node, send, settle, Answer,
};
use crate::helpers::{cli, Server, BIN};
use serde_json::{json, Value};

const PATH: &str = "/api/User/authreset";
const OLD: &str = "violet tangerine orbit 7";
const NEW: &str = "quiet harbour lantern 42";
const SUCCESS: &str = r#"{"responseText":"Success","isSuccess":true}"#;
const JSON: &str = "application/json; charset=utf-8";

/// A running server with the Payabli dialect on, and the keys the tests use.
struct Setup {
    s: Server,
    /// An allow-listed key of `default`.
    key: String,
    /// A key of `default` that is not allow-listed.
    other: String,
    /// An allow-listed key of `acme`.
    acme: String,
}

/// Creates an API key of `tenant` with the CLI; returns (id, secret).
fn cli_key(dir: &std::path::Path, tenant: &str) -> (String, String) {
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(["apikey", "create", "--tenant", tenant, "--name", "payhub"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    let id = err
        .split("API key ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("the key id on stderr")
        .to_owned();
    (id, String::from_utf8(out.stdout).unwrap().trim().to_owned())
}

async fn setup() -> Setup {
    setup_on(TestConfig::fast()).await
}

/// [`setup`] over `base` (e.g. with the default per-IP limits).
async fn setup_on(base: TestConfig) -> Setup {
    let s = Server::spawn(&TestConfig::fast());
    let admin = s.key.clone();
    s.add_person("jdoe", "jdoe@example.com", Some(OLD)).await;
    let off = s.add_person("off", "off@example.com", Some(OLD)).await;
    disable(&s, &off).await;
    let dir = s.stop();
    let d = dir.path();
    let (key_id, key) = cli_key(d, "default");
    let (_, other) = cli_key(d, "default");
    cli(d, None, &["tenant", "add", "acme"], None);
    cli(
        d,
        None,
        &[
            "person",
            "add",
            "--tenant",
            "acme",
            "--login",
            "ann",
            "--email",
            "ann@acme.example.com",
        ],
        None,
    );
    let (acme_id, acme) = cli_key(d, "acme");
    let mut s = Server::spawn_in(
        dir,
        &base
            .payabli(&[&key_id, &acme_id])
            .dialect(
                "payabli",
                "link_template",
                "https://payhub.example.com/{tenant}/reset?token={token}",
            )
            .payabli_entry("pp-acme", 2, "acme"),
    );
    s.key = admin;
    Setup {
        s,
        key,
        other,
        acme,
    }
}

async fn reset(s: &Server, token: Option<&str>, body: &str) -> Answer {
    let headers: Vec<(&str, &str)> = token.map(|t| ("requestToken", t)).into_iter().collect();
    send(s, "POST", PATH, Some("application/json"), body, &headers).await
}

fn success(a: &Answer) {
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body, SUCCESS);
    assert_eq!(a.header("content-type"), Some(JSON));
}

/// Asserts a `PayabliErrorBody`: status, `responseCode`, `responseText`, and the exact key order.
fn error(a: &Answer, status: u16, text: &str) -> Value {
    assert_eq!(a.status, status, "{a:?}");
    assert_eq!(a.header("content-type"), Some(JSON));
    let v = a.json();
    let explanation = v["responseData"]["explanation"].as_str().unwrap();
    let todo = v["responseData"]["todoAction"].as_str().unwrap();
    assert!(!explanation.is_empty() && !todo.is_empty());
    assert_eq!(
        a.body,
        format!(
            r#"{{"isSuccess":false,"responseCode":{status},"responseText":{},"responseData":{{"explanation":{},"todoAction":{}}}}}"#,
            json!(text),
            json!(explanation),
            json!(todo)
        )
    );
    v
}

#[tokio::test]
async fn authreset_rows() {
    let Setup {
        s,
        key,
        other,
        acme,
    } = setup().await;

    // Known, unknown, disabled: the same success answer; mail only to the known person, with
    // the configured link.
    let known = reset(&s, Some(&key), r#"{"email":"jdoe@example.com"}"#).await;
    success(&known);
    assert_eq!(
        known,
        reset(&s, Some(&key), r#"{"email":"nobody@example.com"}"#).await
    );
    assert_eq!(
        known,
        reset(&s, Some(&key), r#"{"email":"off@example.com"}"#).await
    );
    // entryType without entry says nothing; unknown fields are ignored.
    assert_eq!(
        known,
        reset(
            &s,
            Some(&key),
            r#"{"email":"nobody2@example.com","entry":null,"entryType":2,"x":1}"#
        )
        .await
    );
    let mail = &s.wait_mails("reset_link", "jdoe@example.com", 1).await[0];
    let token = link_param(mail, "?token=");
    assert_eq!(
        first_link(mail),
        format!("https://payhub.example.com/default/reset?token={token}")
    );
    settle(&s).await;
    assert_eq!(reset_mails_to(&s, "off@example.com"), 0);

    // An entry point maps to its tenant; its key acts there, another tenant's key does not.
    let body = r#"{"email":"ann@acme.example.com","entry":"pp-acme","entryType":2}"#;
    success(&reset(&s, Some(&acme), body).await);
    let mail = &s.wait_mails("reset_link", "ann@acme.example.com", 1).await[0];
    assert!(first_link(mail).starts_with("https://payhub.example.com/acme/reset?token="));
    error(
        &reset(&s, Some(&key), body).await,
        401,
        "Unauthorized request.",
    );
    error(
        &reset(&s, Some(&acme), r#"{"email":"ann@acme.example.com"}"#).await,
        401,
        "Unauthorized request.",
    );
    // entryType as a string holding an integer is read as Payabli's binder reads it: the same
    // entry point (the acme key acts there, the default one does not).
    for body in [
        r#"{"email":"ann@acme.example.com","entry":"pp-acme","entryType":"2"}"#,
        r#"{"email":"ann@acme.example.com","entry":"pp-acme","entryType":"+02"}"#,
    ] {
        success(&reset(&s, Some(&acme), body).await);
        error(
            &reset(&s, Some(&key), body).await,
            401,
            "Unauthorized request.",
        );
    }

    // requestToken missing, malformed, unknown, or a key that is not allow-listed: 401.
    let unknown_key = format!("rsd_{}", "A".repeat(43));
    for t in [
        None,
        Some("nonsense"),
        Some(unknown_key.as_str()),
        Some(other.as_str()),
    ] {
        error(
            &reset(&s, t, r#"{"email":"jdoe@example.com"}"#).await,
            401,
            "Unauthorized request.",
        );
    }
    // The SDK's own spelling of the header name works too (header names ignore case).
    let a = send(
        &s,
        "POST",
        PATH,
        Some("application/json"),
        r#"{"email":"x@example.com"}"#,
        &[("RequestToken", &key)],
    )
    .await;
    success(&a);

    // Bad bodies: 400 "Bad request/ invalid data".
    for body in [
        "{}",
        r#"{"email":null}"#,
        r#"{"email":"not an address"}"#,
        r#"{"email":"a@example.com","entry":"pp-acme"}"#,
        r#"{"email":"a@example.com","entry":"pp-unknown","entryType":2}"#,
        r#"{"email":"a@example.com","entry":"pp-acme","entryType":"2.0"}"#,
        r#"{"email":"a@example.com","entry":"pp-acme","entryType":"two"}"#,
        r#"{"email":"a@example.com","entry":"pp-acme","entryType":""}"#,
        r#"{"email":"a@example.com","entry":"pp-acme","entryType":"0x2"}"#,
        r#"{"email":"a@example.com","entry":"pp-acme","entryType":" 2"}"#,
        r#"{"email":"a@example.com","entry":"pp-acme","entryType":true}"#,
        "[]",
        "{oops",
    ] {
        error(
            &reset(&s, Some(&key), body).await,
            400,
            "Bad request/ invalid data",
        );
    }
    // A string that is not an integer is refused exactly as a wrong type is.
    let wrong_type = reset(
        &s,
        Some(&key),
        r#"{"email":"a@example.com","entry":"pp-acme","entryType":true}"#,
    )
    .await;
    for t in [r#""2.0""#, r#""two""#, r#""""#, r#""0x2""#, r#"" 2""#] {
        let body = format!(r#"{{"email":"a@example.com","entry":"pp-acme","entryType":{t}}}"#);
        assert_eq!(reset(&s, Some(&key), &body).await, wrong_type, "{t}");
    }
    let a = send(
        &s,
        "POST",
        PATH,
        Some("text/plain"),
        r#"{"email":"a@example.com"}"#,
        &[("requestToken", &key)],
    )
    .await;
    let v = error(&a, 400, "Bad request/ invalid data");
    assert!(v["responseData"]["explanation"]
        .as_str()
        .unwrap()
        .contains("application/json"));
    let big = format!(
        r#"{{"email":"a@example.com","x":"{}"}}"#,
        "x".repeat(70 * 1024)
    );
    error(
        &reset(&s, Some(&key), &big).await,
        413,
        "Bad request/ invalid data",
    );

    // Unknown paths and methods below /api/User.
    error(
        &send(&s, "GET", PATH, None, "", &[]).await,
        405,
        "Method not allowed",
    );
    error(
        &send(
            &s,
            "PUT",
            "/api/User/authpsw",
            Some("application/json"),
            "{}",
            &[],
        )
        .await,
        404,
        "Not found",
    );

    // The round trip: the emailed token completes through the native API, then the login works.
    let done = s.complete_reset(&token, NEW).await;
    assert_eq!(done.status(), 204);
    assert_eq!(s.auth_status("jdoe", NEW).await, 200);
    assert_eq!(s.auth_status("jdoe", OLD).await, 401);
    s.stop();
}

#[tokio::test]
async fn an_enabled_dialect_needs_request_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        TestConfig::new()
            .fast_argon()
            .dialect("payabli", "enabled", true)
            .toml(),
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .arg("--data-dir")
        .arg(dir.path())
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("dialects.payabli.request_tokens"));
}

#[tokio::test]
async fn payabli_sdk_drives_the_server() {
    // The default per-IP limits: one token goes past their burst (limited per key instead).
    let Setup {
        s,
        key,
        other,
        acme,
    } = setup_on(TestConfig::new().fast_argon()).await;
    s.add_person("sdk", "sdk@example.com", Some(OLD)).await;
    run_node(
        "payabli.test.js",
        &[
            ("RESETD_URL", s.base.clone()),
            ("RESETD_MAIL_DIR", s.mail_dir().display().to_string()),
            ("PAYABLI_KEY", key),
            ("PAYABLI_OTHER_KEY", other),
            ("PAYABLI_ACME_KEY", acme),
            ("RESETD_OLD_PASSWORD", OLD.to_string()),
        ],
    );
    s.stop();
}
