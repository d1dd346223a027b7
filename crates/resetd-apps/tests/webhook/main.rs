//! The signed webhook sink against a real HTTP receiver (receiver.py: the reference
//! `standardwebhooks` library checks the signature, argon2-cffi and bcrypt the hash). Without
//! python3 and those modules each test prints SKIPPED and passes, except with CI=true, where it
//! fails (`scripts/test.sh` installs them).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use resetd_apps::connect_webhook;
use resetd_apps::testing::receiver::{new_secret, Receiver};
use resetd_core::ports::{AccountQuery, ExternalAccount, ExternalCredentials, ExternalError};
use resetd_core::types::Password;
use serde_json::{json, Value};

/// The sink for tenant tests, pointed at `rx` (cheap hash parameters).
trait SinkFor {
    fn sink(&self, extra: &str) -> Arc<dyn ExternalCredentials>;
    fn sink_with_secret(&self, secret: &str, extra: &str) -> Arc<dyn ExternalCredentials>;
}

impl SinkFor for Receiver {
    fn sink(&self, extra: &str) -> Arc<dyn ExternalCredentials> {
        self.sink_with_secret(&self.secret.clone(), extra)
    }

    fn sink_with_secret(&self, secret: &str, extra: &str) -> Arc<dyn ExternalCredentials> {
        let table: toml::Table = format!(
            "url = \"{}\"\nsecret = \"{secret}\"\n\
             argon2 = {{ m_cost = 8192, t_cost = 1, p_cost = 1 }}\nbcrypt_cost = 4\n{extra}",
            self.hook_url()
        )
        .parse()
        .unwrap();
        connect_webhook(&table).unwrap()
    }
}

fn account() -> ExternalAccount {
    ExternalAccount {
        stable_id: "p_01J9ZQ3".into(),
        locator: "p_01J9ZQ3".into(),
        login: "ada".into(),
        email: Some("ada@example.com".into()),
        display_name: Some("Ada".into()),
        enabled: true,
    }
}

const NEW: &str = "Purple-Elephants-Juggle-42!";

fn pw(s: &str) -> Password {
    Password::parse(s).unwrap()
}

#[tokio::test]
async fn argon2id_delivery_is_signed_and_carries_a_verifiable_hash_and_no_plaintext() {
    let Some(rx) = Receiver::start() else { return };
    let sink = rx.sink("");
    assert!(!sink.capabilities().holds_people && !sink.capabilities().verifies_passwords);
    sink.set_password(&account(), &pw(NEW), "chg_7f3a9c")
        .await
        .unwrap();

    let got = rx.received().await;
    assert_eq!(got.len(), 1);
    let delivery = &got[0];
    assert_eq!(
        delivery["verified"], true,
        "the reference library accepts the signature"
    );
    assert_eq!(delivery["headers"]["webhook-id"], "chg_7f3a9c");
    assert_eq!(delivery["headers"]["content-type"], "application/json");
    let raw = delivery["body"].as_str().unwrap();
    assert!(!raw.contains(NEW), "no plaintext by default: {raw}");
    let body: Value = serde_json::from_str(raw).unwrap();
    assert_eq!(body["type"], "password.changed");
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(body["data"]["person_id"], "p_01J9ZQ3");
    assert_eq!(body["data"]["login"], "ada");
    assert!(body["data"].get("password").is_none());
    let hash = body["data"]["password_hash"].as_str().unwrap();
    assert!(hash.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"), "{hash}");
    assert!(
        rx.hash_verifies(hash, NEW).await,
        "argon2-cffi verifies the new password"
    );
    assert!(!rx.hash_verifies(hash, "Old-Horse-Battery-7").await);

    // The same change again (after an unknown outcome) carries the same webhook-id.
    sink.set_password(&account(), &pw(NEW), "chg_7f3a9c")
        .await
        .unwrap();
    let got = rx.received().await;
    assert_eq!(got[1]["headers"]["webhook-id"], "chg_7f3a9c");
}

#[tokio::test]
async fn a_tampered_body_or_a_wrong_secret_fails_verification() {
    let Some(rx) = Receiver::start() else { return };
    rx.sink("")
        .set_password(&account(), &pw(NEW), "chg_1")
        .await
        .unwrap();
    let original = rx.received().await.remove(0);
    let headers = original["headers"].as_object().unwrap();
    let resend = |body: String| {
        let mut r = rx.http.post(format!("{}/hook", rx.base));
        for name in [
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
            "content-type",
        ] {
            r = r.header(name, headers[name].as_str().unwrap());
        }
        r.body(body).send()
    };
    // The untouched replay verifies (within the 5-minute tolerance), so the tampering is what fails.
    assert_eq!(
        resend(original["body"].as_str().unwrap().to_owned())
            .await
            .unwrap()
            .status(),
        204
    );
    let tampered = original["body"]
        .as_str()
        .unwrap()
        .replace("\"ada\"", "\"eve\"");
    assert_eq!(resend(tampered).await.unwrap().status(), 401);

    let wrong = rx.sink_with_secret(&new_secret(), "");
    let e = wrong
        .set_password(&account(), &pw(NEW), "chg_2")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ExternalError::Failed(m) if m.contains("401")),
        "{e:?}"
    );
    assert_eq!(rx.received().await.last().unwrap()["verified"], false);
}

#[tokio::test]
async fn bcrypt_and_the_explicit_plaintext_option() {
    let Some(rx) = Receiver::start() else { return };
    rx.sink("hash = \"bcrypt\"")
        .set_password(&account(), &pw(NEW), "chg_b")
        .await
        .unwrap();
    rx.sink("include_plaintext = true")
        .set_password(&account(), &pw(NEW), "chg_p")
        .await
        .unwrap();
    let got = rx.received().await;
    let bodies: Vec<Value> = got
        .iter()
        .map(|d| serde_json::from_str(d["body"].as_str().unwrap()).unwrap())
        .collect();
    let bcrypt_hash = bodies[0]["data"]["password_hash"].as_str().unwrap();
    assert!(bcrypt_hash.starts_with("$2b$04$"), "{bcrypt_hash}");
    assert!(
        rx.hash_verifies(bcrypt_hash, NEW).await,
        "Python's bcrypt verifies it"
    );
    assert!(bodies[0]["data"].get("password").is_none());
    assert_eq!(
        bodies[1]["data"]["password"], NEW,
        "only when the operator asked for it"
    );
    assert!(got.iter().all(|d| d["verified"] == true));
}

#[tokio::test]
async fn receiver_answers_map_to_the_port_errors() {
    let Some(rx) = Receiver::start() else { return };
    let sink = rx.sink("timeout_secs = 1");
    let (who, new) = (account(), pw(NEW));
    let set = || sink.set_password(&who, &new, "chg_x");

    rx.mode(json!({ "status": 422, "content_type": "application/json",
        "body": "{\"message\": \"this password was used before\"}" }))
        .await;
    assert_eq!(
        set().await,
        Err(ExternalError::Refused(
            "this password was used before".into()
        ))
    );

    rx.mode(json!({ "status": 400, "body": "too similar to the login\ntrace..." }))
        .await;
    assert_eq!(
        set().await,
        Err(ExternalError::Refused("too similar to the login".into()))
    );

    // A receiver that echoes the password gets a generic reason instead.
    rx.mode(json!({ "status": 400, "body": format!("{NEW} is weak") }))
        .await;
    let e = set().await.unwrap_err();
    assert!(
        matches!(&e, ExternalError::Refused(r) if !r.contains(NEW)),
        "{e:?}"
    );

    rx.mode(json!({ "status": 503, "body": "maintenance" }))
        .await;
    assert!(matches!(set().await, Err(ExternalError::Unavailable(_))));
    rx.mode(json!({ "status": 429 })).await;
    assert!(matches!(set().await, Err(ExternalError::Unavailable(_))));

    // Past the 1 s bound, after the request went out: the outcome is unknown.
    rx.mode(json!({ "status": 204, "delay": 3 })).await;
    assert!(
        matches!(set().await, Err(ExternalError::Indeterminate(_))),
        "a timeout after sending"
    );

    rx.mode(json!({ "status": 204 })).await;
    assert_eq!(set().await, Ok(()));

    for e in [
        sink.find_account(&AccountQuery::Login("ada".into()))
            .await
            .unwrap_err(),
        sink.verify_password(&account(), &pw(NEW))
            .await
            .unwrap_err(),
    ] {
        assert!(
            matches!(&e, ExternalError::Failed(m) if m.contains("not supported")),
            "{e:?}"
        );
    }
}

#[tokio::test]
async fn nothing_listening_is_unavailable() {
    // A port that was free a moment ago: connection refused, nothing was sent.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let table: toml::Table = format!(
        "url = \"http://127.0.0.1:{port}/hook\"\nsecret = \"{}\"\nhash = \"bcrypt\"\nbcrypt_cost = 4",
        new_secret()
    )
    .parse()
    .unwrap();
    let sink = connect_webhook(&table).unwrap();
    let e = sink
        .set_password(&account(), &pw(NEW), "chg_y")
        .await
        .unwrap_err();
    assert!(matches!(&e, ExternalError::Unavailable(_)), "{e:?}");
    assert!(!e.to_string().contains(NEW));
}
