//! Every surface that takes API keys refuses a revoked key, an expired key and a secret rotated
//! out exactly as it refuses a key nobody ever had (status, headers and body alike), and a key
//! scoped to one dialect works there and nowhere else. The surfaces: the native API (bearer),
//! Crafter Profile (`accessTokenId`), EmpowerID (the application key and the bearer, each) and
//! Payabli (`requestToken`). Alfresco, Unleash and the hosted page take no keys.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{in_secs, make, make_scoped, KeyCalls, Made};
use crate::helpers::config::TestConfig;
use crate::helpers::dialect::{send, Answer};
use crate::helpers::vendors::{CRAFTER, EMPOWERID};
use crate::helpers::Server;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Door {
    Native,
    Crafter,
    /// The key as EmpowerID's application key, with a live admin key as the bearer.
    EmpowerIdApp,
    /// The key as EmpowerID's bearer, with a live admin key as the application key.
    EmpowerIdBearer,
    Payabli,
}

const DOORS: [Door; 5] = [
    Door::Native,
    Door::Crafter,
    Door::EmpowerIdApp,
    Door::EmpowerIdBearer,
    Door::Payabli,
];

/// A key nobody ever had, in the right format.
fn unknown() -> String {
    "rsd_".to_owned() + &"Q".repeat(43)
}

/// One call through `door` presenting `key`; `admin` is a live admin key for EmpowerID's other
/// header. Each call is one the key's scope may make, with a body that is wrong in some other
/// way, so that a live key gets an answer other than the refusal.
async fn knock(s: &Server, door: Door, key: &str, admin: &str) -> Answer {
    let bearer = |k: &str| format!("Bearer {k}");
    match door {
        Door::Native => {
            let auth = bearer(key);
            send(
                s,
                "GET",
                "/v1/default/audit",
                None,
                "",
                &[("authorization", &auth)],
            )
            .await
        }
        Door::Crafter => {
            let path = format!("{CRAFTER}/x/reset_password");
            let form = format!("accessTokenId={key}");
            let ct = Some("application/x-www-form-urlencoded");
            send(s, "POST", &path, ct, &form, &[]).await
        }
        Door::EmpowerIdApp | Door::EmpowerIdBearer => {
            let (app, auth) = if door == Door::EmpowerIdApp {
                (key.to_owned(), bearer(admin))
            } else {
                (admin.to_owned(), bearer(key))
            };
            let headers = [
                ("X-EmpowerID-API-Key", app.as_str()),
                ("authorization", &auth),
            ];
            send(
                s,
                "POST",
                EMPOWERID,
                Some("application/json"),
                "{}",
                &headers,
            )
            .await
        }
        Door::Payabli => {
            let body = r#"{"email":"nobody@example.com"}"#;
            let headers = [("requestToken", key)];
            send(
                s,
                "POST",
                "/api/User/authreset",
                Some("application/json"),
                body,
                &headers,
            )
            .await
        }
    }
}

/// Starts a server with Crafter, EmpowerID and Payabli on `default`, after making the keys
/// `make_keys` returns on a first start (Payabli takes only keys listed by id at start-up).
async fn with_dialects<F, Fut>(make_keys: F) -> (Server, Vec<Made>)
where
    F: FnOnce(Server) -> Fut,
    Fut: std::future::Future<Output = (Server, Vec<Made>)>,
{
    let (first, keys) = make_keys(Server::spawn(&TestConfig::fast())).await;
    let ids: Vec<&str> = keys.iter().map(|k| k.id.as_str()).collect();
    let config = TestConfig::fast()
        .dialect_on("crafter", "default")
        .dialect_on("empowerid", "default")
        .payabli(&ids);
    (first.restart(&config), keys)
}

#[tokio::test]
async fn revoked_expired_and_rotated_out_keys_answer_like_unknown_ones_on_every_surface() {
    const EXPIRES_IN: u64 = 10;
    let made = Instant::now();
    let (s, keys) = with_dialects(|s| async move {
        let t = s.default_tenant();
        let revoked = make_scoped(&t, "revoked", &["admin"]).await;
        let rotated = make_scoped(&t, "rotated", &["admin"]).await;
        let expiring = make(
            &t,
            json!({"name": "expiring", "expires_at": in_secs(EXPIRES_IN as i64)}),
        )
        .await;
        drop(t);
        (s, vec![revoked, rotated, expiring])
    })
    .await;
    let admin = s.key.clone();
    let t = s.default_tenant();
    let nobody = unknown();

    // Each key works on each surface first, so that the refusals below are the keys' doing.
    for door in DOORS {
        let refusal = knock(&s, door, &nobody, &admin).await;
        assert!(
            matches!(refusal.status, 401 | 403),
            "{door:?}: an unknown key is refused: {refusal:?}"
        );
        for k in &keys {
            let live = knock(&s, door, &k.key, &admin).await;
            assert_ne!(live, refusal, "{door:?}: the live key {} is refused", k.id);
        }
    }
    assert!(
        made.elapsed() < Duration::from_secs(EXPIRES_IN),
        "the expiring key expired before it was seen to work"
    );

    let (revoked, rotated, expired) = (&keys[0], &keys[1], &keys[2]);
    assert_eq!(t.revoke_key(&revoked.id).await.status(), 200);
    let res = t.rotate_key(&rotated.id, "?overlap_secs=0").await;
    assert_eq!(res.status(), 200);
    let fresh: serde_json::Value = res.json().await.unwrap();
    let fresh = fresh["key"].as_str().unwrap().to_owned();
    if let Some(rest) = Duration::from_secs(EXPIRES_IN + 1).checked_sub(made.elapsed()) {
        tokio::time::sleep(rest).await;
    }

    for door in DOORS {
        let refusal = knock(&s, door, &nobody, &admin).await;
        for (what, key) in [
            ("revoked", &revoked.key),
            ("rotated out", &rotated.key),
            ("expired", &expired.key),
        ] {
            let got = knock(&s, door, key, &admin).await;
            assert_eq!(
                got, refusal,
                "{door:?}: a {what} key answers like an unknown one"
            );
        }
        let live = knock(&s, door, &fresh, &admin).await;
        assert_ne!(
            live, refusal,
            "{door:?}: the rotated key's new secret works"
        );
    }
}

#[tokio::test]
async fn a_dialect_key_works_on_its_dialect_only() {
    let (s, keys) = with_dialects(|s| async move {
        let t = s.default_tenant();
        let mut keys = Vec::new();
        for scope in ["crafter", "empowerid", "payabli", "read"] {
            keys.push(make_scoped(&t, scope, &[scope]).await);
        }
        drop(t);
        (s, keys)
    })
    .await;
    let admin = s.key.clone();
    let nobody = unknown();
    let opens = |scope: &str, door: Door| match scope {
        "crafter" => door == Door::Crafter,
        "empowerid" => matches!(door, Door::EmpowerIdApp | Door::EmpowerIdBearer),
        "payabli" => door == Door::Payabli,
        _ => door == Door::Native,
    };
    for (k, scope) in keys.iter().zip(["crafter", "empowerid", "payabli", "read"]) {
        for door in DOORS {
            let refusal = knock(&s, door, &nobody, &admin).await;
            let got = knock(&s, door, &k.key, &admin).await;
            if opens(scope, door) {
                assert_ne!(got, refusal, "a {scope} key works on {door:?}");
                assert!(got.status < 500, "{got:?}");
            } else {
                // Refused: as a key that may not (403) where the surface says so, else as an
                // unknown key (Payabli answers both alike).
                assert!(
                    matches!(got.status, 401 | 403),
                    "a {scope} key is refused on {door:?}: {got:?}"
                );
            }
        }
    }
    // The refusal of a live key of the wrong scope is "may not", not "unknown", where the surface
    // has the two answers.
    let crafter_on_native = knock(&s, Door::Native, &keys[0].key, &admin).await;
    assert_eq!(crafter_on_native.status, 403);
    let payabli_on_crafter = knock(&s, Door::Crafter, &keys[2].key, &admin).await;
    assert!(
        payabli_on_crafter.body.contains("ACTION_DENIED"),
        "{payabli_on_crafter:?}"
    );
    // The key that was used is recorded as used; the others are not.
    let t = s.default_tenant();
    let items = t.key_items().await;
    let crafter = items
        .iter()
        .find(|k| k["id"] == keys[0].id.as_str())
        .unwrap();
    assert!(crafter["last_used_at"].is_string());
}
