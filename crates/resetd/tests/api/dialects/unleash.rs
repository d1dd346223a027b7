//! The Unleash dialect against the real binary: every row of dialects.md §3.2 (with resetd's
//! anti-enumeration answer for unknown addresses), both password-rule modes, and the round trip
//! through the demo mail.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unimplemented
)]

use crate::helpers::dialect;

use crate::helpers::config::TestConfig;
use crate::helpers::dialect::{
    disable, first_link, link_param, post_json, reset_mails_to, send, settle, Answer,
};
use crate::helpers::{cli, Server};
use serde_json::json;

const UI: &str = "https://unleash.example.com";
/// Meets Unleash's rules (and resetd's).
const OLD: &str = "Violet-Tangerine-Orbit-7";
const NEW: &str = "Quiet-Harbour-Lantern-42";
/// A well-formed token that was never issued.
const BOGUS: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

fn unleash_config(rules: &str) -> TestConfig {
    TestConfig::fast()
        .unleash(&format!("{UI}/"))
        .dialect("unleash", "password_rules", rules)
}

const JSON: &str = "application/json; charset=utf-8";

/// A JSON string literal.
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// Asserts a handler error (no `id`): status, content type and the exact body text.
fn handler_error(a: &Answer, status: u16, body: String) {
    assert_eq!(a.status, status, "{a:?}");
    assert_eq!(a.header("content-type"), Some(JSON));
    assert_eq!(a.body, body);
}

/// Asserts a middleware error (with a fresh `id` first): status, content type, exact body text.
fn middleware_error(a: &Answer, status: u16, body: String) {
    assert_eq!(a.status, status, "{a:?}");
    assert_eq!(a.header("content-type"), Some(JSON));
    let v = a.json();
    let id = v["id"].as_str().expect("an id");
    assert!(dialect::is_uuid(id), "{id}");
    assert_eq!(a.body, format!(r#"{{"id":"{id}",{}"#, &body[1..]));
}

fn ok_empty(a: &Answer) {
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body, "");
    assert_eq!(
        a.headers,
        vec![("content-length".to_string(), "0".to_string())]
    );
}

/// `{"name","message","details":[{"message"}]}`.
fn plain(name: &str, message: &str) -> String {
    format!(
        r#"{{"name":{},"message":{},"details":[{{"message":{}}}]}}"#,
        q(name),
        q(message),
        q(message)
    )
}

/// `OwaspValidationError` listing `messages`.
fn owasp(messages: &[&str]) -> String {
    let list: Vec<String> = messages.iter().map(|m| q(m)).collect();
    format!(
        r#"{{"name":"OwaspValidationError","message":{},"details":[{{"validationErrors":[{}],"message":{}}}]}}"#,
        q(messages[0]),
        list.join(","),
        q(messages[0])
    )
}

const BAD_DATA: &str = "Request validation failed: your request body or params contain invalid data. Refer to the `details` list for more information.";

/// `BadDataError` (without its id) for one schema violation.
fn bad_data(path: &str, message: &str) -> String {
    format!(
        r#"{{"name":"BadDataError","message":{},"details":[{{"path":{},"message":{}}}]}}"#,
        q(BAD_DATA),
        q(path),
        q(message)
    )
}

const UNDEFINED: &str = "Password cannot be empty or undefined";
const MIN: &str = "The password must be at least 10 characters long.";
const UPPER: &str = "The password must contain at least one uppercase letter.";
const NUMBER: &str = "The password must contain at least one number.";
const SPECIAL: &str = "The password must contain at least one special character.";

async fn email_request(s: &Server, email: &str) -> Answer {
    post_json(
        s,
        "/auth/reset/password-email",
        &json!({ "email": email }).to_string(),
    )
    .await
}

async fn validate(s: &Server, token: &str) -> Answer {
    send(
        s,
        "GET",
        &format!("/auth/reset/validate?token={token}"),
        None,
        "",
        &[],
    )
    .await
}

async fn change(s: &Server, token: &str, password: &str) -> Answer {
    post_json(
        s,
        "/auth/reset/password",
        &json!({"token": token, "password": password}).to_string(),
    )
    .await
}

/// Requests a reset for `email` and returns the token from its n-th mail.
async fn token_for(s: &Server, email: &str, nth: usize) -> String {
    ok_empty(&email_request(s, email).await);
    let mails = s.wait_mails("reset_link", email, nth).await;
    link_param(&mails[nth - 1], "?token=")
}

#[tokio::test]
async fn password_email_rows() {
    let s = Server::spawn(&unleash_config("unleash"));
    s.add_person("jdoe", "jdoe@example.com", Some(OLD)).await;
    let off = s.add_person("off", "off@example.com", Some(OLD)).await;
    disable(&s, &off).await;

    // Known (in any letter case), unknown and disabled: the same empty 200.
    let known = email_request(&s, "JDoe@Example.com").await;
    ok_empty(&known);
    assert_eq!(known, email_request(&s, "nobody@example.com").await);
    assert_eq!(known, email_request(&s, "off@example.com").await);
    let mail = &s.wait_mails("reset_link", "jdoe@example.com", 1).await[0];
    let token = link_param(mail, "?token=");
    assert_eq!(token.len(), 43);
    assert_eq!(
        first_link(mail),
        format!("{UI}/reset-password?token={token}")
    );
    settle(&s).await;
    assert_eq!(reset_mails_to(&s, "off@example.com"), 0);
    assert_eq!(reset_mails_to(&s, "nobody@example.com"), 0);

    // Content type: 415 quoting the header, or saying there was none.
    let msg = |given: &str| {
        format!("We do not accept the content-type you provided ({given}). Try using one of the content-types we do accept instead (application/json) and make sure the body is in the corresponding format.")
    };
    let body = r#"{"email":"jdoe@example.com"}"#;
    let a = send(
        &s,
        "POST",
        "/auth/reset/password-email",
        Some("text/plain"),
        body,
        &[],
    )
    .await;
    middleware_error(&a, 415, plain("ContentTypeError", &msg("text/plain")));
    let a = send(&s, "POST", "/auth/reset/password-email", None, body, &[]).await;
    middleware_error(
        &a,
        415,
        plain("ContentTypeError", &msg("you didn't provide one")),
    );

    // Schema violations.
    let rows = [
        ("{}", bad_data("email", "The `email` property is required. It was not present on the data you sent.")),
        (r#"{"email":"a@example.com","foo":1}"#, bad_data("foo", "The root object of the request body does not allow additional properties. Your request included the `foo` property.")),
        (r#"{"email":42}"#, bad_data("/email", "The `/email` property must be string. You sent 42.")),
        ("[]", bad_data("", "The `` property must be object. You sent [].")),
        (r#"{"email":""}"#, bad_data("/email", "The `/email` property must match format \"email\". You sent \"\".")),
    ];
    for (body, expected) in rows {
        let a = post_json(&s, "/auth/reset/password-email", body).await;
        middleware_error(&a, 400, expected);
    }
    // Not JSON at all.
    let a = post_json(&s, "/auth/reset/password-email", "{oops").await;
    assert_eq!(a.status, 400);
    assert_eq!(a.json()["name"], "BadDataError");
    s.stop();
}

#[tokio::test]
async fn validate_and_change_rows_with_unleash_rules() {
    let s = Server::spawn(&unleash_config("unleash"));
    let id = s.add_person("jdoe", "jdoe@example.com", Some(OLD)).await;
    let res = s
        .create_person(json!({"login": "ed", "email": "ed@example.com", "roles": ["editor"]}))
        .await;
    assert_eq!(res.status(), 201);
    let number = s.person_json(&id).await["number"].as_i64().unwrap();
    let token = token_for(&s, "jdoe@example.com", 1).await;

    // validate: the token user, exactly.
    let a = validate(&s, &token).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some(JSON));
    assert_eq!(
        a.body,
        format!(
            r#"{{"token":"{token}","createdBy":"unleash_system_user","email":"jdoe@example.com","name":"Test Person","id":{number},"role":{{"id":3,"type":"root","name":"Viewer"}}}}"#
        )
    );
    // A person with an Unleash role name among their roles gets that root role; no name, no key.
    let ed_token = token_for(&s, "ed@example.com", 1).await;
    let ed = validate(&s, &ed_token).await.json();
    assert_eq!(
        ed["role"],
        json!({"id": 2, "type": "root", "name": "Editor"})
    );
    assert!(ed.get("name").is_none());

    // Unknown, malformed or missing tokens: 401 InvalidTokenError.
    let invalid = plain("InvalidTokenError", "Token was not valid");
    for t in [BOGUS, "abc", ""] {
        handler_error(&validate(&s, t).await, 401, invalid.clone());
    }
    let a = send(&s, "GET", "/auth/reset/validate", None, "", &[]).await;
    handler_error(&a, 401, invalid.clone());

    // password: strength first, even with a bogus token; every failed rule is listed.
    handler_error(
        &change(&s, BOGUS, "simple").await,
        400,
        owasp(&[MIN, UPPER, NUMBER, SPECIAL]),
    );
    handler_error(
        &change(&s, &token, "").await,
        400,
        format!(
            r#"{{"name":"PasswordUndefinedError","message":"{UNDEFINED}","details":[{{"validationErrors":[],"message":"{UNDEFINED}"}}]}}"#
        ),
    );
    handler_error(&change(&s, BOGUS, NEW).await, 401, invalid.clone());
    // Schema: both properties required, strings only; a non-string password is not repeated.
    let a = post_json(&s, "/auth/reset/password", r#"{"password":"x"}"#).await;
    middleware_error(
        &a,
        400,
        bad_data(
            "token",
            "The `token` property is required. It was not present on the data you sent.",
        ),
    );
    let a = post_json(
        &s,
        "/auth/reset/password",
        &format!(r#"{{"token":"{token}","password":12345678901}}"#),
    )
    .await;
    middleware_error(
        &a,
        400,
        bad_data(
            "/password",
            "The `/password` property must be string. You sent [hidden].",
        ),
    );
    // Personal details are refused once the token is known to be good.
    handler_error(
        &change(&s, &token, "Jdoe-Was-Here-2024").await,
        400,
        owasp(&["Do not use your login, email address or name in your password."]),
    );

    // Success: an empty 200, the new password works, and the token is spent.
    ok_empty(&change(&s, &token, NEW).await);
    assert_eq!(s.auth_status("jdoe", NEW).await, 200);
    assert_eq!(s.auth_status("jdoe", OLD).await, 401);
    s.wait_mails("password_changed", "jdoe@example.com", 1)
        .await;
    handler_error(&validate(&s, &token).await, 401, invalid.clone());
    handler_error(
        &change(&s, &token, "Another-Fine-Phrase-9").await,
        401,
        invalid,
    );
    assert_eq!(s.auth_status("jdoe", NEW).await, 200);

    // validate-password.
    let vp = |pw: serde_json::Value| json!({ "password": pw }).to_string();
    ok_empty(&post_json(&s, "/auth/reset/validate-password", &vp(json!(NEW))).await);
    let a = post_json(&s, "/auth/reset/validate-password", &vp(json!("simple"))).await;
    handler_error(&a, 400, owasp(&[MIN, UPPER, NUMBER, SPECIAL]));
    let a = post_json(
        &s,
        "/auth/reset/validate-password",
        &vp(json!("Password1!")),
    )
    .await;
    handler_error(
        &a,
        400,
        owasp(&["This password is too common or too easy to guess."]),
    );
    let a = post_json(&s, "/auth/reset/validate-password", &vp(json!(""))).await;
    assert_eq!(a.json()["name"], "PasswordUndefinedError");
    let a = post_json(&s, "/auth/reset/validate-password", "{}").await;
    middleware_error(
        &a,
        400,
        bad_data(
            "password",
            "The `password` property is required. It was not present on the data you sent.",
        ),
    );

    // Unknown paths and wrong methods: Unleash's 404.
    let nf = plain("NotFoundError", "The requested resource was not found.");
    handler_error(
        &send(&s, "GET", "/auth/reset/password-email", None, "", &[]).await,
        404,
        nf.clone(),
    );
    handler_error(
        &send(&s, "POST", "/auth/reset/other", None, "", &[]).await,
        404,
        nf,
    );
    s.stop();
}

#[tokio::test]
async fn tenant_rules_are_the_default() {
    let s = Server::spawn(&unleash_config("tenant"));
    let vp = |pw: &str| json!({ "password": pw }).to_string();
    // No composition rules: a long lower-case passphrase is fine.
    ok_empty(
        &post_json(
            &s,
            "/auth/reset/validate-password",
            &vp("purple elephants juggle quietly"),
        )
        .await,
    );
    let a = post_json(&s, "/auth/reset/validate-password", &vp("qwerty")).await;
    handler_error(
        &a,
        400,
        owasp(&[
            "Use at least 8 characters.",
            "This password is too common or too easy to guess.",
        ]),
    );
    s.stop();
}

/// A data directory whose `default` tenant has `settings`, with `jdoe` in it.
fn prepared(settings: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, TestConfig::new().fast_argon().toml()).unwrap();
    let mut args = vec!["tenant", "add", "default"];
    args.extend_from_slice(settings);
    cli(dir.path(), Some(&cfg), &args, None);
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
            "--name",
            "Jane Doe",
            "--password-stdin",
        ],
        Some(&format!("{OLD}\n")),
    );
    dir
}

#[tokio::test]
async fn reusing_a_password_is_refused_by_name() {
    let s = Server::spawn_in(
        prepared(&["--password-history", "3", "--cooldown", "0"]),
        &unleash_config("unleash"),
    );
    let token = token_for(&s, "jdoe@example.com", 1).await;
    handler_error(
        &change(&s, &token, OLD).await,
        400,
        plain(
            "PasswordPreviouslyUsedError",
            "You've previously used this password. Please use a new password.",
        ),
    );
    // The refusal did not spend the token.
    ok_empty(&change(&s, &token, NEW).await);
    let token = token_for(&s, "jdoe@example.com", 2).await;
    assert_eq!(
        change(&s, &token, OLD).await.json()["name"],
        "PasswordPreviouslyUsedError"
    );
    s.stop();
}

#[tokio::test]
async fn expired_and_superseded_tokens_are_invalid() {
    let s = Server::spawn_in(
        prepared(&["--token-ttl", "1", "--cooldown", "0"]),
        &unleash_config("unleash"),
    );
    let first = token_for(&s, "jdoe@example.com", 1).await;
    let second = token_for(&s, "jdoe@example.com", 2).await;
    let invalid = plain("InvalidTokenError", "Token was not valid");
    // A newer token voids the older one, as in Unleash.
    handler_error(&validate(&s, &first).await, 401, invalid.clone());
    dialect::sleep_secs(2).await;
    handler_error(&validate(&s, &second).await, 401, invalid.clone());
    handler_error(&change(&s, &second, NEW).await, 401, invalid);
    assert_eq!(s.auth_status("jdoe", OLD).await, 200);
    s.stop();
}

#[tokio::test]
async fn base_path_and_rate_limit() {
    let s = Server::spawn(
        &TestConfig::new()
            .fast_argon()
            .recovery_limit(1, 1)
            .dialect("unleash", "enabled", true)
            .dialect("unleash", "base_path", "/unleash")
            .dialect("unleash", "unleash_url", UI),
    );
    let path = "/unleash/auth/reset/password-email";
    ok_empty(&post_json(&s, path, r#"{"email":"a@example.com"}"#).await);
    let a = post_json(&s, path, r#"{"email":"b@example.com"}"#).await;
    assert!(a.header("retry-after").is_some());
    handler_error(
        &a,
        429,
        plain(
            "RateLimitError",
            "Too many requests, please try again later.",
        ),
    );
    // Nothing is mounted outside the base path.
    let a = post_json(
        &s,
        "/auth/reset/password-email",
        r#"{"email":"a@example.com"}"#,
    )
    .await;
    assert_eq!(a.status, 404);
    assert_eq!(a.header("content-type"), Some("application/problem+json"));
    s.stop();
}
