//! The Alfresco dialect against the real binary: every row of dialects.md §1.2 (and the error
//! envelope of §1.3), person ids in any case, the round trip through the demo mail, and `@alfresco/js-api` driving it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unimplemented
)]

use crate::helpers::dialect;

use crate::helpers::config::{TestConfig, SHARE_PAGE as PAGE};
use crate::helpers::dialect::{
    disable, link_param, post_json, reset_mails_to, run_node, send, settle, Answer,
};
use crate::helpers::vendors::PEOPLE;
use crate::helpers::{cli, Server};

const OLD: &str = "violet tangerine orbit 7";
const NEW: &str = "quiet harbour lantern 42";

fn alfresco_config() -> TestConfig {
    TestConfig::fast().alfresco(&format!("{PAGE}/"))
}

fn request_path(person: &str) -> String {
    format!("{PEOPLE}/{person}/request-password-reset")
}

fn reset_path(person: &str) -> String {
    format!("{PEOPLE}/{person}/reset-password")
}

/// Checks an Alfresco error answer and returns its body with the per-error parts (the error-log
/// number and the log id) replaced by `NNNNNNNN` and `LOGID`, for exact comparison.
fn alfresco_error(a: &Answer, status: u16) -> String {
    assert_eq!(a.status, status, "{a:?}");
    assert_eq!(
        a.header("content-type"),
        Some("application/json;charset=UTF-8")
    );
    let v = a.json();
    let e = &v["error"];
    let summary = e["briefSummary"].as_str().unwrap();
    let number = &summary[..8];
    assert!(number.bytes().all(|b| b.is_ascii_digit()), "{summary}");
    assert_eq!(&summary[8..9], " ");
    let log_id = e["logId"].as_str().unwrap();
    assert!(dialect::is_uuid(log_id), "{log_id}");
    a.body
        .replacen(number, "NNNNNNNN", 1)
        .replacen(log_id, "LOGID", 1)
}

/// The exact Alfresco error body for `key`, `status` and `message`.
fn envelope(key: &str, status: u16, message: &str) -> String {
    format!(
        r#"{{"error":{{"errorKey":"{key}","statusCode":{status},"briefSummary":"NNNNNNNN {message}","stackTrace":"For security reasons the stack trace is no longer displayed, but the property is kept for previous versions","descriptionURL":"https://api-explorer.alfresco.com","logId":"LOGID"}}}}"#
    )
}

fn accepted(a: &Answer) {
    assert_eq!(a.status, 202, "{a:?}");
    assert_eq!(a.body, "");
    assert_eq!(
        a.headers,
        vec![("content-length".to_string(), "0".to_string())]
    );
}

/// Requests a reset for `login` through Alfresco and returns (key, id) from the n-th mail.
async fn alfresco_link(s: &Server, login: &str, email: &str, nth: usize) -> (String, String) {
    accepted(&post_json(s, &request_path(login), r#"{"client":"share"}"#).await);
    let mails = s.wait_mails("reset_link", email, nth).await;
    let mail = &mails[nth - 1];
    (link_param(mail, "?key="), link_param(mail, "&id="))
}

fn reset_body(password: &str, id: &str, key: &str) -> String {
    serde_json::json!({"password": password, "id": id, "key": key}).to_string()
}

#[tokio::test]
async fn request_password_reset_rows() {
    let s = Server::spawn(&alfresco_config());
    s.add_person("jdoe", "jdoe@example.com", Some(OLD)).await;
    let off = s.add_person("off", "off@example.com", Some(OLD)).await;
    disable(&s, &off).await;

    // Known and enabled, unknown, disabled: the same 202 with an empty body.
    let known = post_json(&s, &request_path("jdoe"), r#"{"client":"share"}"#).await;
    let unknown = post_json(&s, &request_path("nobody"), r#"{"client":"share"}"#).await;
    let disabled = post_json(&s, &request_path("off"), r#"{"client":"share"}"#).await;
    accepted(&known);
    assert_eq!(known, unknown);
    assert_eq!(known, disabled);
    // Only the known, enabled person gets an email, with Alfresco's link to the client's page.
    let mail = &s.wait_mails("reset_link", "jdoe@example.com", 1).await[0];
    let key = link_param(mail, "?key=");
    let id = link_param(mail, "&id=");
    assert_eq!(key.len(), 43, "{key}");
    assert!(id.starts_with("activiti$") && id[9..].bytes().all(|b| b.is_ascii_digit()));
    assert!(
        dialect::flat(mail).contains(&format!("{PAGE}?key={key}&id={id}")),
        "{mail}"
    );
    settle(&s).await;
    assert_eq!(reset_mails_to(&s, "off@example.com"), 0);

    // client missing, null or "": 400, "is null".
    for body in ["{}", r#"{"client":null}"#, r#"{"client":""}"#] {
        let a = post_json(&s, &request_path("jdoe"), body).await;
        assert_eq!(
            alfresco_error(&a, 400),
            envelope(
                "Field 'client' is null, but is required.",
                400,
                "Field 'client' is null, but is required."
            ),
            "{body}"
        );
    }

    // An unregistered client: 404 for every person alike (Alfresco gives 202 to unknown and
    // disabled people here, which tells them apart; resetd checks the client first).
    let mut answers = vec![];
    for person in ["jdoe", "nobody", "off"] {
        let a = post_json(&s, &request_path(person), r#"{"client":"myapp"}"#).await;
        assert_eq!(
            alfresco_error(&a, 404),
            envelope(
                "framework.exception.ApiDefault",
                404,
                "Client was not found [myapp]"
            )
        );
        answers.push((a.status, a.headers.clone()));
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]));
    settle(&s).await;
    assert_eq!(
        reset_mails_to(&s, "jdoe@example.com"),
        1,
        "no mail for a bad client"
    );
    s.stop();
}

#[tokio::test]
async fn reset_password_rows_and_round_trip() {
    let s = Server::spawn(&alfresco_config());
    s.add_person("jdoe", "jdoe@example.com", Some(OLD)).await;
    s.add_person("other", "other@example.com", Some(OLD)).await;
    let (key, id) = alfresco_link(&s, "jdoe", "jdoe@example.com", 1).await;

    // Missing or null fields, checked in the order password, id, key; "" counts as null.
    let rows = [
        (r#"{}"#.to_string(), "password"),
        (
            r#"{"password":"","id":"x","key":"y"}"#.to_string(),
            "password",
        ),
        (r#"{"password":"x"}"#.to_string(), "id"),
        (r#"{"password":"x","id":null,"key":"y"}"#.to_string(), "id"),
        (format!(r#"{{"password":"x","id":"{id}"}}"#), "key"),
        (format!(r#"{{"password":"x","id":"{id}","key":""}}"#), "key"),
    ];
    for (body, field) in rows {
        let a = post_json(&s, &reset_path("jdoe"), &body).await;
        let message = format!("Field '{field}' is null, but is required.");
        assert_eq!(
            alfresco_error(&a, 400),
            envelope(&message, 400, &message),
            "{body}"
        );
    }

    // Unknown id, key mismatch, another person's path: 202 and nothing happens.
    let other_key = {
        let (k, _) = alfresco_link(&s, "other", "other@example.com", 1).await;
        k
    };
    let nothing = [
        (reset_path("jdoe"), reset_body(NEW, "activiti$1", &key)),
        (reset_path("jdoe"), reset_body(NEW, &id, &other_key)),
        (reset_path("jdoe"), reset_body(NEW, &id, "not-a-key")),
        (reset_path("other"), reset_body(NEW, &id, &key)),
        (reset_path("nobody"), reset_body(NEW, &id, &key)),
    ];
    for (path, body) in &nothing {
        accepted(&post_json(&s, path, body).await);
    }
    assert_eq!(s.auth_status("jdoe", OLD).await, 200);
    assert_eq!(s.auth_status("other", OLD).await, 200);

    // White space only, with a live id and key: Alfresco's 400, word for word. With a dead key
    // the same password changes nothing and answers 202.
    let a = post_json(&s, &reset_path("jdoe"), &reset_body("  ", &id, &key)).await;
    assert_eq!(
        alfresco_error(&a, 400),
        envelope(
            "framework.exception.ApiDefault",
            400,
            "Invalid password value [  ]"
        )
    );
    accepted(
        &post_json(
            &s,
            &reset_path("jdoe"),
            &reset_body("  ", "activiti$1", &key),
        )
        .await,
    );
    // A password the policy refuses: 400 naming every reason (Alfresco checks none).
    let a = post_json(&s, &reset_path("jdoe"), &reset_body("jdoe", &id, &key)).await;
    assert_eq!(
        alfresco_error(&a, 400),
        envelope(
            "framework.exception.ApiDefault",
            400,
            "Invalid password value: Use at least 8 characters. This password is too common or too easy to guess. Do not use your login, email address or name in your password."
        )
    );

    // The valid id and key for this person: 202, the password is set, the confirmation follows.
    accepted(&post_json(&s, &reset_path("jdoe"), &reset_body(NEW, &id, &key)).await);
    assert_eq!(s.auth_status("jdoe", NEW).await, 200);
    assert_eq!(s.auth_status("jdoe", OLD).await, 401);
    s.wait_mails("password_changed", "jdoe@example.com", 1)
        .await;

    // Used: 202 and nothing happens.
    accepted(
        &post_json(
            &s,
            &reset_path("jdoe"),
            &reset_body("another fine passphrase", &id, &key),
        )
        .await,
    );
    assert_eq!(s.auth_status("jdoe", NEW).await, 200);
    // The other person's link still works for them (the wrong-path attempt did not spend it).
    let mail = &s.wait_mails("reset_link", "other@example.com", 1).await[0];
    let other_id = link_param(mail, "&id=");
    accepted(
        &post_json(
            &s,
            &reset_path("other"),
            &reset_body(NEW, &other_id, &other_key),
        )
        .await,
    );
    assert_eq!(s.auth_status("other", NEW).await, 200);
    s.stop();
}

/// Alfresco's user names ignore case by default (`user.name.caseSensitive=false`): a person id
/// in any case names the person, on request and on completion; two logins that fold alike and
/// neither written as asked name nobody.
#[tokio::test]
async fn person_ids_match_in_any_case_by_default() {
    let s = Server::spawn(&alfresco_config());
    s.add_person("alf.known", "alf@example.com", Some(OLD))
        .await;
    s.add_person("Twin", "twin1@example.com", Some(OLD)).await;
    s.add_person("TWIN", "twin2@example.com", Some(OLD)).await;

    let upper = post_json(&s, &request_path("ALF.KNOWN"), r#"{"client":"share"}"#).await;
    accepted(&upper);
    let unknown = post_json(&s, &request_path("NO.BODY"), r#"{"client":"share"}"#).await;
    assert_eq!(upper, unknown);
    let mail = &s.wait_mails("reset_link", "alf@example.com", 1).await[0];
    let (key, id) = (link_param(mail, "?key="), link_param(mail, "&id="));

    // Two logins fold alike and neither is written "twin": nobody is mailed.
    accepted(&post_json(&s, &request_path("twin"), r#"{"client":"share"}"#).await);
    settle(&s).await;
    assert_eq!(reset_mails_to(&s, "twin1@example.com"), 0);
    assert_eq!(reset_mails_to(&s, "twin2@example.com"), 0);
    // Written exactly, each is found.
    accepted(&post_json(&s, &request_path("TWIN"), r#"{"client":"share"}"#).await);
    s.wait_mails("reset_link", "twin2@example.com", 1).await;
    settle(&s).await;
    assert_eq!(reset_mails_to(&s, "twin1@example.com"), 0);

    // Completion with yet another case of the id works; another person's id still does not.
    accepted(&post_json(&s, &reset_path("Twin"), &reset_body(NEW, &id, &key)).await);
    assert_eq!(s.auth_status("alf.known", OLD).await, 200);
    accepted(&post_json(&s, &reset_path("Alf.Known"), &reset_body(NEW, &id, &key)).await);
    assert_eq!(s.auth_status("alf.known", NEW).await, 200);
    assert_eq!(s.auth_status("alf.known", OLD).await, 401);
    s.stop();
}

/// `case_sensitive_user_names = true` (Alfresco's `user.name.caseSensitive=true`): only the id
/// as written names the person.
#[tokio::test]
async fn case_sensitive_user_names_match_ids_as_written() {
    let s =
        Server::spawn(&alfresco_config().dialect("alfresco", "case_sensitive_user_names", true));
    s.add_person("alf.known", "alf@example.com", Some(OLD))
        .await;
    accepted(&post_json(&s, &request_path("ALF.KNOWN"), r#"{"client":"share"}"#).await);
    settle(&s).await;
    assert_eq!(reset_mails_to(&s, "alf@example.com"), 0);
    let (key, id) = alfresco_link(&s, "alf.known", "alf@example.com", 1).await;
    accepted(&post_json(&s, &reset_path("ALF.KNOWN"), &reset_body(NEW, &id, &key)).await);
    assert_eq!(s.auth_status("alf.known", OLD).await, 200);
    accepted(&post_json(&s, &reset_path("alf.known"), &reset_body(NEW, &id, &key)).await);
    assert_eq!(s.auth_status("alf.known", NEW).await, 200);
    s.stop();
}

#[tokio::test]
async fn expired_links_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, TestConfig::new().fast_argon().toml()).unwrap();
    cli(
        dir.path(),
        Some(&cfg),
        &["tenant", "add", "default", "--token-ttl", "1"],
        None,
    );
    cli(
        dir.path(),
        Some(&cfg),
        &[
            "person",
            "add",
            "--tenant",
            "default",
            "--login",
            "jdoe",
            "--email",
            "jdoe@example.com",
            "--password-stdin",
        ],
        Some(&format!("{OLD}\n")),
    );
    let s = Server::spawn_in(dir, &alfresco_config());
    let (key, id) = alfresco_link(&s, "jdoe", "jdoe@example.com", 1).await;
    dialect::sleep_secs(2).await;
    accepted(&post_json(&s, &reset_path("jdoe"), &reset_body(NEW, &id, &key)).await);
    assert_eq!(s.auth_status("jdoe", OLD).await, 200);
    s.stop();
}

#[tokio::test]
async fn bad_requests_get_alfresco_errors() {
    let s = Server::spawn(&alfresco_config());
    let path = request_path("jdoe");
    // Wrong or missing content type.
    for ct in [Some("text/plain"), None] {
        let a = send(&s, "POST", &path, ct, r#"{"client":"share"}"#, &[]).await;
        assert_eq!(
            alfresco_error(&a, 415),
            envelope(
                "framework.exception.ApiDefault",
                415,
                "Unsupported Content-Type: send the body as application/json"
            )
        );
    }
    // Not JSON, or not an object; the message never repeats the input.
    let a = post_json(&s, &reset_path("jdoe"), r#"{"password": "hunter2"#).await;
    let body = alfresco_error(&a, 400);
    assert!(
        body.contains("Could not read content from HTTP request body: "),
        "{body}"
    );
    assert!(!body.contains("hunter2"));
    let a = post_json(&s, &path, "[1,2]").await;
    let m = "Could not read content from HTTP request body: expected a JSON object";
    assert_eq!(alfresco_error(&a, 400), envelope(m, 400, m));
    // Too large.
    let big = format!(r#"{{"client":"{}"}}"#, "x".repeat(70 * 1024));
    let a = post_json(&s, &path, &big).await;
    assert_eq!(
        alfresco_error(&a, 413),
        envelope(
            "framework.exception.RequestEntityTooLarge",
            413,
            "The request body is larger than the server accepts"
        )
    );
    // Wrong method on a known resource; unknown paths and networks.
    let a = send(&s, "GET", &path, None, "", &[]).await;
    assert_eq!(
        alfresco_error(&a, 405),
        envelope(
            "framework.exception.UnsupportedResourceOperation",
            405,
            "The operation is unsupported"
        )
    );
    for unknown in [
        format!("{PEOPLE}/jdoe/avatar"),
        "/alfresco/api/-other-/public/alfresco/versions/1/people/jdoe/request-password-reset"
            .to_string(),
    ] {
        let a = post_json(&s, &unknown, r#"{"client":"share"}"#).await;
        assert_eq!(
            alfresco_error(&a, 404),
            envelope(
                "framework.exception.NotFound",
                404,
                &format!("{unknown} was not found")
            )
        );
    }
    s.stop();
}

#[tokio::test]
async fn per_ip_limit_answers_429_in_alfresco_shape() {
    let s = Server::spawn(
        &TestConfig::new()
            .fast_argon()
            .recovery_limit(1, 1)
            .dialect("alfresco", "enabled", true)
            .dialect("alfresco.clients.share", "reset_password_page_url", PAGE),
    );
    accepted(&post_json(&s, &request_path("a"), r#"{"client":"share"}"#).await);
    let a = post_json(&s, &request_path("b"), r#"{"client":"share"}"#).await;
    assert_eq!(
        alfresco_error(&a, 429),
        envelope(
            "framework.exception.ApiDefault",
            429,
            "Too many requests from this address; try again later"
        )
    );
    assert!(a.header("retry-after").is_some());
    s.stop();
}

#[tokio::test]
async fn disabled_dialect_is_not_mounted() {
    let s = Server::spawn(
        &TestConfig::fast()
            .dialect("alfresco", "enabled", false)
            .dialect(
                "alfresco.clients.share",
                "reset_password_page_url",
                "https://x.example.com/r",
            ),
    );
    let a = post_json(&s, &request_path("jdoe"), r#"{"client":"share"}"#).await;
    assert_eq!(a.status, 404);
    assert_eq!(a.header("content-type"), Some("application/problem+json"));
    s.stop();
}

#[tokio::test]
async fn alfresco_js_api_drives_the_server() {
    let s = Server::spawn(&alfresco_config());
    s.add_person("jsuser", "jsuser@example.com", Some(OLD))
        .await;
    s.add_person("js.upper", "js.upper@example.com", Some(OLD))
        .await;
    run_node(
        "alfresco.test.js",
        &[
            ("RESETD_URL", s.base.clone()),
            ("RESETD_MAIL_DIR", s.mail_dir().display().to_string()),
            ("RESETD_OLD_PASSWORD", OLD.to_string()),
        ],
    );
    s.stop();
}
