//! A tenant connected to a real Unleash (`kind = "unleash"`): a reset requested and completed
//! through resetd's Unleash dialect, with the link from the real SMTP test server's email, sets
//! the password in Unleash itself, which then signs the person in with it (`POST
//! /auth/simple/login`) and no longer with the old one. Unleash's own password rules and
//! Unleash being down answer in the dialect's shape, and the link stays usable.

use std::time::{Duration, Instant};

use resetd_apps::testing::unleash::{UnleashServer, ADMIN_TOKEN};
use serde_json::json;

use super::assert_log_free_of;
use crate::helpers::config::TestConfig;
use crate::helpers::dialect::{link_param, post_json, send, Answer};
use crate::helpers::smtp::{self, Options, Received, SmtpServer};
use crate::helpers::Server;

const UI: &str = "https://unleash.example.com/";
/// Passes Unleash's rules and resetd's.
const OLD: &str = "Violet-Tangerine-Orbit-7";
const NEW: &str = "Violet-Tangerine-Orbit-New-42";
/// Passes resetd's tenant policy, fails Unleash's (no upper case, digit or symbol).
const UNLEASH_REFUSES: &str = "quiet harbour lantern lunar meadow";

fn config(unleash: &UnleashServer, smtp_port: u16) -> TestConfig {
    TestConfig::fast()
        .smtp(smtp_port, "Unleash <noreply@unleash.example.com>")
        .smtp_set("tls", "none")
        .unleash(UI)
        .section(&format!(
            "[credentials.default]\nkind = \"unleash\"\nurl = \"{}\"\nadmin_token = \"{ADMIN_TOKEN}\"\ntimeout_secs = 5\n",
            unleash.url
        ))
}

async fn validate(s: &Server, token: &str) -> Answer {
    let path = format!("/auth/reset/validate?token={token}");
    send(s, "GET", &path, None, "", &[]).await
}

async fn change(s: &Server, token: &str, password: &str) -> Answer {
    let body = json!({ "token": token, "password": password }).to_string();
    post_json(s, "/auth/reset/password", &body).await
}

/// The first message at the SMTP server; on a timeout, the failure shows both servers' logs.
async fn wait_mail(mta: &SmtpServer, s: &Server, unleash: &UnleashServer) -> Vec<Received> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = mta.received();
        if !got.is_empty() {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "no reset mail within 60 s; resetd's log:\n{}\nUnleash's log:\n{}",
            s.log(),
            unleash.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_through_the_unleash_dialect_signs_in_to_the_real_unleash() {
    if !smtp::available() {
        return;
    }
    let Some(mut unleash) = UnleashServer::start().await else {
        return;
    };
    unleash.create_user("ada", "ada@example.com", OLD).await;
    assert_eq!(unleash.login("ada", OLD).await, 200);
    let mta = SmtpServer::start(&Options::default());
    let s = Server::spawn(&config(&unleash, mta.port));

    // Unknown in Unleash and known: the same empty 200; only Ada gets a mail.
    let nobody = json!({ "email": "nobody@example.com" }).to_string();
    let unknown = post_json(&s, "/auth/reset/password-email", &nobody).await;
    let ada = json!({ "email": "ada@example.com" }).to_string();
    let known = post_json(&s, "/auth/reset/password-email", &ada).await;
    assert_eq!((known.status, known.body.as_str()), (200, ""), "{known:?}");
    assert_eq!(known, unknown);
    let mails = wait_mail(&mta, &s, &unleash).await;
    assert_eq!(mails[0].meta["rcpt_tos"], json!(["ada@example.com"]));
    let token = link_param(&mails[0].raw, "?token=");
    assert_eq!(validate(&s, &token).await.status, 200);

    // Unleash down: 503 + Retry-After in the dialect's shape; nothing consumed.
    unleash.stop();
    let down = change(&s, &token, NEW).await;
    assert_eq!(down.status, 503, "{down:?}");
    assert!(down.header("retry-after").is_some(), "{down:?}");
    assert_eq!(down.json()["name"], "InternalError", "{down:?}");
    assert!(!down.body.contains("127.0.0.1"), "{down:?}");
    unleash.restart().await;
    assert_eq!(validate(&s, &token).await.status, 200);
    assert_eq!(unleash.login("ada", OLD).await, 200);

    // Unleash's own rules: its message as the dialect's OwaspValidationError; nothing consumed.
    let refused = change(&s, &token, UNLEASH_REFUSES).await;
    assert_eq!(refused.status, 400, "{refused:?}");
    let body = refused.json();
    assert_eq!(body["name"], "OwaspValidationError", "{refused:?}");
    let message = body["message"].as_str().unwrap();
    assert!(message.starts_with("The password must"), "{refused:?}");
    assert_eq!(
        body["details"][0]["validationErrors"][0].as_str(),
        Some(message)
    );
    assert_eq!(unleash.login("ada", UNLEASH_REFUSES).await, 401);
    assert_eq!(validate(&s, &token).await.status, 200);

    // Done: the real Unleash takes the new password and refuses the old one.
    let done = change(&s, &token, NEW).await;
    assert_eq!((done.status, done.body.as_str()), (200, ""), "{done:?}");
    assert_eq!(unleash.login("ada", NEW).await, 200);
    assert_eq!(unleash.login("ada", OLD).await, 401);
    // The link is spent.
    assert_eq!(validate(&s, &token).await.status, 401);
    assert_eq!(change(&s, &token, OLD).await.status, 401);
    assert_eq!(unleash.login("ada", NEW).await, 200);

    assert_log_free_of(&s, &[ADMIN_TOKEN, &token, NEW, OLD, UNLEASH_REFUSES]);
}
