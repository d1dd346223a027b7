//! A tenant with a signed credential sink (`kind = "webhook"`) pointed at the real receiver
//! (`tests/webhook/receiver.py` of resetd-apps: the reference `standardwebhooks` library checks
//! the signature, argon2-cffi the hash). A reset through the native API completes only once the
//! receiver took a verified delivery whose hash verifies the new password; a refusal or the
//! receiver down leave the token usable and the password unchanged. The people stay in resetd:
//! `authenticate` answers with the local hash.

use resetd_apps::testing::receiver::Receiver;
use serde_json::{json, Value};

use super::assert_log_free_of;
use crate::helpers::config::TestConfig;
use crate::helpers::Server;

const OLD: &str = "Violet-Tangerine-Orbit-7";
const NEW: &str = "Violet-Tangerine-Orbit-New-42";

fn config(rx: &Receiver) -> TestConfig {
    TestConfig::fast().section(&format!(
        "[credentials.default]\nkind = \"webhook\"\nurl = \"{}\"\nsecret = \"{}\"\n\
         hash = \"argon2id\"\nargon2 = {{ m_cost = 8192, t_cost = 1, p_cost = 1 }}\ntimeout_secs = 5\n",
        rx.hook_url(),
        rx.secret
    ))
}

/// The deliveries' bodies, parsed, each asserted verified by the receiver.
async fn verified_deliveries(rx: &Receiver) -> Vec<Value> {
    rx.received()
        .await
        .into_iter()
        .map(|r| {
            assert_eq!(r["verified"], true, "{r}");
            serde_json::from_str(r["body"].as_str().unwrap()).unwrap()
        })
        .collect()
}

#[tokio::test]
async fn a_reset_completes_once_the_receiver_took_the_signed_hash() {
    let Some(rx) = Receiver::start() else { return };
    let s = Server::spawn(&config(&rx));
    let id = s.add_person("ada", "ada@example.com", Some(OLD)).await;
    let token = s.reset_token("ada", "ada@example.com", 1).await;

    let done = s.complete_reset(&token, NEW).await;
    assert_eq!(done.status(), 204);
    let deliveries = verified_deliveries(&rx).await;
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    let event = &deliveries[0];
    assert_eq!(event["type"], "password.changed");
    assert_eq!(event["data"]["person_id"], id.as_str());
    assert_eq!(event["data"]["login"], "ada");
    let hash = event["data"]["password_hash"].as_str().unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(rx.hash_verifies(hash, NEW).await);
    assert!(!rx.hash_verifies(hash, OLD).await);
    let raw = rx.received().await[0]["body"].as_str().unwrap().to_owned();
    assert!(!raw.contains(NEW) && event["data"].get("password").is_none());

    // The sink tenant keeps the local hash: authenticate takes the new password only.
    assert_eq!(s.auth_status("ada", NEW).await, 200);
    assert_eq!(s.auth_status("ada", OLD).await, 401);
    assert_eq!(s.complete_reset(&token, OLD).await.status(), 410);
    assert_log_free_of(&s, &[&rx.secret, &token, NEW, OLD]);
}

#[tokio::test]
async fn a_refusal_or_an_absent_receiver_leaves_the_token_and_the_old_password() {
    let Some(mut rx) = Receiver::start() else {
        return;
    };
    let s = Server::spawn(&config(&rx));
    s.add_person("ada", "ada@example.com", Some(OLD)).await;
    let token = s.reset_token("ada", "ada@example.com", 1).await;

    // A 4xx with a reason: the native policy problem, with the receiver's reason.
    rx.mode(json!({
        "status": 422,
        "body": r#"{"message":"this password was used here before"}"#,
        "content_type": "application/json",
    }))
    .await;
    let refused = s.complete_reset(&token, NEW).await;
    assert_eq!(refused.status(), 422);
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(
        problem["type"]
            .as_str()
            .map(|t| t.ends_with("password-policy")),
        Some(true),
        "{problem}"
    );
    let violations = problem["violations"].as_array().unwrap();
    assert!(
        violations.iter().any(|v| v["code"] == "backend_policy"
            && v["message"]
                .as_str()
                .is_some_and(|m| m.contains("this password was used here before"))),
        "{problem}"
    );
    assert_eq!(s.token_info(&token).await.status(), 200);
    assert_eq!(s.auth_status("ada", OLD).await, 200);
    assert_eq!(s.auth_status("ada", NEW).await, 401);

    // The receiver down: 503 + Retry-After; still nothing consumed or changed.
    rx.stop();
    let down = s.complete_reset(&token, NEW).await;
    assert_eq!(down.status(), 503);
    assert!(down.headers().contains_key("retry-after"));
    let problem: Value = down.json().await.unwrap();
    assert!(!problem.to_string().contains("127.0.0.1"), "{problem}");
    assert_eq!(s.token_info(&token).await.status(), 200);
    assert_eq!(s.auth_status("ada", OLD).await, 200);
    assert_eq!(s.auth_status("ada", NEW).await, 401);
    assert_log_free_of(&s, &[&rx.secret, &token, NEW, OLD]);
}
