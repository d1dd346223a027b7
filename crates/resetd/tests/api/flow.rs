//! The whole native flow against the real binary, a real SQLite file and the demo mail files.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unimplemented
)]

use std::time::Duration;

use crate::helpers::config::TestConfig;
use crate::helpers::{cli, token_from_mail, Server};
use serde_json::{json, Value};

const GOOD: &str = "violet tangerine orbit 7";
const GOOD2: &str = "quiet harbour lantern 42";

#[tokio::test]
async fn full_reset_flow_with_default_argon2_parameters() {
    // Default (OWASP) Argon2id parameters on purpose: the flow a new user sees.
    let s = Server::spawn(&TestConfig::new().no_limits());
    assert!(
        s.key.starts_with("rsd_"),
        "the bootstrap key is printed once"
    );
    let id = s.add_person("jdoe", "jdoe@example.com", Some(GOOD)).await;

    let token = s.reset_token("jdoe", "jdoe@example.com", 1).await;
    let mail = &s.wait_mails("reset_link", "jdoe@example.com", 1).await[0];
    assert!(
        mail.contains(&format!("{}/reset/default?token=", s.base))
            || mail.contains("/reset/default?token="),
        "{mail}"
    );

    let info = s.token_info(&token).await;
    assert_eq!(info.status(), 200);
    let info: Value = info.json().await.unwrap();
    assert_eq!(info["login"], "jdoe");
    assert!(info["expires_at"].as_str().unwrap().ends_with('Z'));

    // A weak password: 422 listing every violation, and the token still works afterwards.
    let weak = s.complete_reset(&token, "jdoe").await;
    assert_eq!(weak.status(), 422);
    assert_eq!(weak.headers()["content-type"], "application/problem+json");
    let body: Value = weak.json().await.unwrap();
    let codes: Vec<&str> = body["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["too_short", "common", "personal"]);

    let done = s.complete_reset(&token, GOOD2).await;
    assert_eq!(done.status(), 204);

    let old = s.authenticate("jdoe", GOOD).await;
    assert_eq!(old.status(), 401);
    let new = s.authenticate("jdoe", GOOD2).await;
    assert_eq!(new.status(), 200);
    let new: Value = new.json().await.unwrap();
    assert_eq!(new["must_change_password"], false);
    assert_eq!(new["person_id"], id.as_str());

    // Single use.
    assert_eq!(
        s.complete_reset(&token, "another fine passphrase")
            .await
            .status(),
        410
    );
    assert_eq!(s.token_info(&token).await.status(), 410);

    // The "your password was changed" notice follows.
    let notice = &s
        .wait_mails("password_changed", "jdoe@example.com", 1)
        .await[0];
    assert!(!notice.contains("token="), "the notice carries no link");

    // The audit log tells the story without secrets.
    let audit: Value = s.audit("").await.json().await.unwrap();
    let kinds: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for k in ["person_created", "reset_requested", "reset_completed"] {
        assert!(kinds.contains(&k), "{kinds:?}");
    }
    let text = audit.to_string();
    assert!(
        !text.contains(&token)
            && !text.contains(GOOD)
            && !text.contains(GOOD2)
            && !text.contains(&s.key)
    );
}

#[tokio::test]
async fn cli_commands_work_on_the_same_database() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, TestConfig::new().fast_argon().toml()).unwrap();
    let d = dir.path();
    cli(d, Some(&cfg), &["migrate"], None);
    assert!(cli(d, Some(&cfg), &["check-config"], None).contains("configuration is valid"));
    cli(
        d,
        Some(&cfg),
        &["tenant", "add", "acme", "--min-password-length", "12"],
        None,
    );
    let id = cli(
        d,
        Some(&cfg),
        &[
            "person",
            "add",
            "--tenant",
            "acme",
            "--login",
            "ann",
            "--email",
            "ann@acme.test",
            "--password-stdin",
        ],
        Some(&format!("{GOOD}\n")),
    );
    assert_eq!(id.trim().len(), 32);
    let key = cli(
        d,
        Some(&cfg),
        &["apikey", "create", "--tenant", "acme", "--scope", "admin"],
        None,
    )
    .trim()
    .to_owned();
    assert!(key.starts_with("rsd_"));

    let s = Server::start_in(dir, TestConfig::new().fast_argon().no_limits().toml());
    let acme = s.tenant("acme", &key);
    let me = acme.person(id.trim()).await;
    assert_eq!(me.status(), 200);
    assert_eq!(me.json::<Value>().await.unwrap()["login"], "ann");
    // The acme key is not valid in the default tenant, and the default key not in acme.
    assert_eq!(
        s.tenant("default", &key).person(id.trim()).await.status(),
        403
    );
    assert_eq!(
        s.tenant("acme", &s.key).person(id.trim()).await.status(),
        403
    );
    let ok = acme.authenticate("ann", GOOD).await;
    assert_eq!(ok.status(), 200);
    // The tenant's minimum applies.
    let v: Value = acme
        .check_password(json!({"password": "tangerine 9"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["violations"][0]["code"], "too_short");
}

#[tokio::test]
async fn superseded_and_expired_and_pre_change_tokens_are_gone() {
    let s = Server::spawn(&TestConfig::new().fast_argon().no_limits());
    let data = s.dir.path().to_owned();
    let cfg = data.join("resetd.toml");
    cli(
        &data,
        Some(&cfg),
        &[
            "tenant",
            "set",
            "default",
            "--cooldown",
            "0",
            "--token-ttl",
            "2",
        ],
        None,
    );
    tokio::time::sleep(Duration::from_millis(5_100)).await; // the tenant cache holds settings for 5 s
    let id = s.add_person("sam", "sam@example.com", Some(GOOD)).await;

    let first = s.reset_token("sam", "sam@example.com", 1).await;
    let second = s.reset_token("sam", "sam@example.com", 2).await;
    assert_ne!(first, second);
    assert_eq!(s.token_info(&first).await.status(), 410, "superseded");
    assert_eq!(s.token_info(&second).await.status(), 200);

    tokio::time::sleep(Duration::from_millis(2_200)).await;
    assert_eq!(
        s.complete_reset(&second, GOOD2).await.status(),
        410,
        "expired"
    );

    // A token issued before an admin password change is void.
    let third = s.reset_token("sam", "sam@example.com", 3).await;
    let set = s.set_password(&id, json!({"password": GOOD2})).await;
    assert_eq!(set.status(), 204);
    assert_eq!(
        s.token_info(&third).await.status(),
        410,
        "older than the password change"
    );

    // Malformed and unknown tokens look exactly like used ones.
    assert_eq!(s.token_info("not-a-token").await.status(), 410);
    assert_eq!(s.token_info(&"A".repeat(43)).await.status(), 410);
}

#[tokio::test]
async fn cool_down_limits_emails_per_account() {
    let s = Server::spawn(&TestConfig::new().fast_argon().no_limits());
    s.add_person("cara", "cara@example.com", None).await;
    for _ in 0..3 {
        assert_eq!(s.request_reset("cara").await.status(), 202);
    }
    s.wait_mails("reset_link", "cara@example.com", 1).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        s.wait_mails("reset_link", "cara@example.com", 1)
            .await
            .len(),
        1,
        "one email per cool-down window"
    );
}

#[tokio::test]
async fn reset_by_email_and_registered_client_links() {
    let s = Server::spawn(&TestConfig::new().fast_argon().no_limits());
    s.add_person("dina", "Dina@Example.com", None).await;
    let reg = s
        .create_client(
            json!({"name": "portal", "link_template": "https://portal.example.com/reset#t={token}"}),
        )
        .await;
    assert_eq!(reg.status(), 201);
    // An unregistered client is refused up front, for known and unknown accounts alike.
    for login in ["dina", "nobody"] {
        let r = s
            .request_reset_with(json!({"login": login, "client": "evil"}))
            .await;
        assert_eq!(r.status(), 422);
    }
    let res = s
        .request_reset_with(json!({"email": "Dina@EXAMPLE.com", "client": "portal"}))
        .await;
    assert_eq!(res.status(), 202);
    let mail = &s.wait_mails("reset_link", "Dina@example.com", 1).await[0];
    let flat = mail.replace("=\r\n", "").replace("=3D", "=");
    assert!(
        flat.contains("https://portal.example.com/reset#t="),
        "{mail}"
    );
}

#[tokio::test]
async fn host_header_never_changes_the_link() {
    let s = Server::spawn(&TestConfig::new().fast_argon().no_limits());
    s.add_person("hal", "hal@example.com", None).await;
    let res = s
        .http
        .post(s.url("/v1/default/recovery"))
        .header("Host", "evil.example")
        .header("X-Forwarded-Host", "evil.example")
        .json(&json!({"login": "hal"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let mail = &s.wait_mails("reset_link", "hal@example.com", 1).await[0];
    assert!(!mail.contains("evil.example"));
    assert!(!token_from_mail(mail).is_empty());
}

#[tokio::test]
async fn lockout_unlock_and_admin_reset_with_must_change() {
    let s = Server::spawn(&TestConfig::new().fast_argon().no_limits());
    let id = s.add_person("lou", "lou@example.com", Some(GOOD)).await;
    for _ in 0..10 {
        assert_eq!(s.authenticate("lou", "wrong password").await.status(), 401);
    }
    let locked = s.authenticate("lou", GOOD).await;
    assert_eq!(locked.status(), 423, "locked even with the right password");
    let retry: i64 = locked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 800 && retry <= 900, "{retry}");
    let p = s.person_json(&id).await;
    assert_eq!(p["locked"], true);
    assert!(p.get("password_hash").is_none());

    assert_eq!(s.unlock_person(&id).await.status(), 204);
    assert_eq!(s.authenticate("lou", GOOD).await.status(), 200);

    for _ in 0..10 {
        s.authenticate("lou", "wrong again").await;
    }
    let set = s
        .set_password(
            &id,
            json!({"password": GOOD2, "unlock": true, "must_change_password": true}),
        )
        .await;
    assert_eq!(set.status(), 204);
    let ok = s.authenticate("lou", GOOD2).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.json::<Value>().await.unwrap()["must_change_password"],
        true
    );
    // The admin reset obeys the policy too.
    let weak = s.set_password(&id, json!({"password": "password"})).await;
    assert_eq!(weak.status(), 422);
    // Unknown logins get the very same 401 as wrong passwords.
    let unknown = s.authenticate("nobody", GOOD).await;
    assert_eq!(unknown.status(), 401);
}

#[tokio::test]
async fn weaker_stored_hashes_are_upgraded_on_login() {
    let s = Server::spawn(&TestConfig::new().fast_argon().no_limits());
    s.add_person("rex", "rex@example.com", Some(GOOD)).await;
    let db = s.dir.path().join("resetd.db");
    let read = || -> String {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.query_row(
            "SELECT password_hash FROM person WHERE login = 'rex'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert!(read().contains("m=1024,t=1,p=1"));
    let dir = s.stop();
    let s = Server::start_in(dir, TestConfig::new().argon2(2048, 2, 1).no_limits().toml());
    assert_eq!(s.authenticate("rex", GOOD).await.status(), 200);
    assert!(read().contains("m=2048,t=2,p=1"), "{}", read());
    assert_eq!(s.authenticate("rex", GOOD).await.status(), 200);
}

#[tokio::test]
async fn admin_people_crud_and_disable() {
    let s = Server::spawn(&TestConfig::new().fast_argon().no_limits());
    let id = s.add_person("pat", "pat@example.com", Some(GOOD)).await;
    assert_eq!(
        s.create_person(json!({"login": "pat", "email": "x@example.com"}))
            .await
            .status(),
        409
    );
    let patched = s
        .update_person(
            &id,
            json!({"email": "pat2@example.com", "locale": "de", "attributes": {"team": "blue"}}),
        )
        .await;
    assert_eq!(patched.status(), 200);
    let p: Value = patched.json().await.unwrap();
    assert_eq!(
        (
            p["email"].as_str(),
            p["locale"].as_str(),
            p["attributes"]["team"].as_str()
        ),
        (Some("pat2@example.com"), Some("de"), Some("blue"))
    );
    let found = s.find_people("pat").await;
    assert_eq!(found["items"][0]["id"], id.as_str());
    assert_eq!(s.disable_person(&id).await.status(), 200);
    assert_eq!(s.authenticate("pat", GOOD).await.status(), 401, "disabled");
    assert_eq!(s.enable_person(&id).await.status(), 200);
    assert_eq!(s.authenticate("pat", GOOD).await.status(), 200);
    // Admin calls need a key.
    assert_eq!(
        s.get(&format!("/v1/default/people/{id}")).await.status(),
        401
    );
    let bad = s.tenant("default", "rsd_wrong").person(&id).await;
    assert_eq!(bad.status(), 401);
    assert_eq!(bad.headers()["www-authenticate"], "Bearer");
    // New keys are shown once and work.
    let k: Value = s
        .create_api_key(json!({"name": "ci"}))
        .await
        .json()
        .await
        .unwrap();
    let key = k["key"].as_str().unwrap();
    assert_eq!(s.tenant("default", key).person(&id).await.status(), 200);
}

#[tokio::test]
async fn health_metrics_and_openapi() {
    let s = Server::spawn(&TestConfig::new().fast_argon().no_limits());
    assert_eq!(s.get("/healthz").await.status(), 200);
    assert_eq!(s.mgmt_get("/readyz").await.status(), 200);
    s.request_reset("someone").await;
    let m = s.mgmt_get("/metrics").await.text().await.unwrap();
    assert!(m.contains("resetd_resets_requested_total 1"), "{m}");
    assert!(m.contains("resetd_http_requests_total{route=\"/v1/{tenant}/recovery\",method=\"POST\",status=\"202\"} 1"), "{m}");
    let spec: Value = s.get("/openapi.json").await.json().await.unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
    assert!(spec["paths"]["/v1/{tenant}/recovery"]["post"].is_object());
}
