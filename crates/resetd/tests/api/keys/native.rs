//! The key lifecycle on the native API: list and show (never a secret), revoke (once), rotate
//! (with its overlap), expiry, the `read` scope, the audit events, `last_used_at`, and every
//! bad input answered with its problem.

use serde_json::{json, Value};

use super::{in_secs, make, make_scoped, problem, KeyCalls};
use crate::helpers::config::TestConfig;
use crate::helpers::dialect::sleep_secs;
use crate::helpers::Server;

#[tokio::test]
async fn keys_are_listed_and_shown_without_their_secrets() {
    let s = Server::spawn(&TestConfig::fast());
    let t = s.default_tenant();
    let expires = in_secs(3600);
    let res = t
        .create_api_key(
            json!({"name": "reports", "scopes": ["read", "read"], "expires_at": expires}),
        )
        .await;
    assert_eq!(res.status(), 201);
    assert_eq!(
        res.headers().get("cache-control").unwrap(),
        "no-store",
        "the answer holds the secret"
    );
    let created: Value = res.json().await.unwrap();
    let (id, secret) = (
        created["id"].as_str().unwrap().to_owned(),
        created["key"].as_str().unwrap().to_owned(),
    );
    assert_eq!(created["scopes"], json!(["read"]), "duplicates dropped");
    assert_eq!(created["state"], "active");

    let items = t.key_items().await;
    assert_eq!(items.len(), 2, "the bootstrap key and this one: {items:?}");
    let listed = items.iter().find(|k| k["id"] == id.as_str()).unwrap();
    let mut fields: Vec<&str> = listed
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "created_at",
            "expires_at",
            "id",
            "last_used_at",
            "name",
            "previous_secret_valid_until",
            "revoked_at",
            "scopes",
            "state",
            "tenant"
        ]
    );
    assert_eq!(listed["name"], "reports");
    assert_eq!(listed["tenant"], "default");
    assert_eq!(listed["last_used_at"], Value::Null);
    // The same instant, written back to the millisecond.
    assert_eq!(
        listed["expires_at"].as_str().unwrap().get(..19),
        expires.get(..19)
    );
    let bootstrap = items.iter().find(|k| k["id"] != id.as_str()).unwrap();
    assert_eq!(bootstrap["name"], "bootstrap");
    assert!(
        bootstrap["last_used_at"].is_string(),
        "the bootstrap key has just been used: {bootstrap}"
    );

    let text = t.list_keys().await.text().await.unwrap();
    assert!(!text.contains(&secret) && !text.contains(&s.key));
    assert!(!text.contains("rsd_"), "no secret of any key: {text}");
    let shown = t.show_key(&id).await;
    assert_eq!(shown.status(), 200);
    let shown: Value = shown.json().await.unwrap();
    assert_eq!(&shown, listed);

    // The new key is used once: its last use is recorded.
    assert_eq!(t.audit_as(&secret).await.status(), 200);
    let shown: Value = t.show_key(&id).await.json().await.unwrap();
    assert!(shown["last_used_at"].is_string(), "{shown}");

    // The audit log names the key, never its secret.
    let audit = t.audit("").await.text().await.unwrap();
    assert!(audit.contains("api_key_created") && audit.contains(&id));
    assert!(!audit.contains("rsd_"));
}

#[tokio::test]
async fn a_revoked_key_is_refused_like_an_unknown_one_and_revoking_twice_is_409() {
    let s = Server::spawn(&TestConfig::fast());
    let t = s.default_tenant();
    let k = make_scoped(&t, "ci", &["admin"]).await;
    assert_eq!(t.audit_as(&k.key).await.status(), 200, "live before");

    let res = t.revoke_key(&k.id).await;
    assert_eq!(res.status(), 200);
    let revoked: Value = res.json().await.unwrap();
    assert_eq!(revoked["state"], "revoked");
    assert!(revoked["revoked_at"].is_string());
    assert!(!revoked.to_string().contains("rsd_"));

    let unknown = "rsd_".to_owned() + &"A".repeat(43);
    let refused = t.audit_as(&k.key).await;
    let as_unknown = t.audit_as(&unknown).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(
        refused.headers().get("www-authenticate"),
        as_unknown.headers().get("www-authenticate")
    );
    assert_eq!(
        refused.text().await.unwrap(),
        as_unknown.text().await.unwrap()
    );

    let (status, slug, body) = problem(t.revoke_key(&k.id).await).await;
    assert_eq!((status, slug.as_str()), (409, "api-key-revoked"), "{body}");
    let (status, slug, _) = problem(t.rotate_key(&k.id, "").await).await;
    assert_eq!((status, slug.as_str()), (409, "api-key-revoked"));

    for id in ["0000000000000000", "not-a-key-id", "0123456789ABCDEF"] {
        for res in [
            t.revoke_key(id).await,
            t.rotate_key(id, "").await,
            t.show_key(id).await,
        ] {
            let (status, slug, _) = problem(res).await;
            assert_eq!((status, slug.as_str()), (404, "not-found"), "{id}");
        }
    }

    // Another tenant's key is not found from here, and its admin cannot revoke ours.
    crate::helpers::cli(s.dir.path(), None, &["tenant", "add", "acme"], None);
    let acme_admin = crate::helpers::cli(
        s.dir.path(),
        None,
        &["apikey", "create", "--tenant", "acme"],
        None,
    );
    let acme = s.tenant("acme", acme_admin.trim());
    let mine = make_scoped(&t, "mine", &["admin"]).await;
    let (status, slug, _) = problem(acme.revoke_key(&mine.id).await).await;
    assert_eq!((status, slug.as_str()), (404, "not-found"));
    assert_eq!(t.audit_as(&mine.key).await.status(), 200, "still live");

    let revokes = t
        .audit_items("")
        .await
        .into_iter()
        .filter(|e| e["kind"] == "api_key_revoked")
        .collect::<Vec<_>>();
    assert_eq!(revokes.len(), 1, "{revokes:?}");
    assert_eq!(revokes[0]["detail"], json!({"key_id": k.id, "name": "ci"}));
}

#[tokio::test]
async fn a_rotated_key_keeps_its_old_secret_for_the_overlap_only() {
    let s = Server::spawn(&TestConfig::fast());
    let t = s.default_tenant();
    let k = make_scoped(&t, "deploy", &["read"]).await;

    let res = t.rotate_key(&k.id, "?overlap_secs=2").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers().get("cache-control").unwrap(), "no-store");
    let rotated: Value = res.json().await.unwrap();
    let fresh = rotated["key"].as_str().unwrap().to_owned();
    assert_eq!(rotated["id"], k.id.as_str(), "the same key id");
    assert_eq!(rotated["scopes"], json!(["read"]));
    assert!(rotated["previous_secret_valid_until"].is_string());
    assert_ne!(fresh, k.key);
    assert_eq!(t.audit_as(&fresh).await.status(), 200);
    assert_eq!(t.audit_as(&k.key).await.status(), 200, "inside the overlap");
    sleep_secs(3).await;
    assert_eq!(t.audit_as(&k.key).await.status(), 401, "after the overlap");
    assert_eq!(t.audit_as(&fresh).await.status(), 200);

    // Overlap 0: the old secret stops at once.
    let res = t.rotate_key(&k.id, "?overlap_secs=0").await;
    let newest = res.json::<Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(t.audit_as(&fresh).await.status(), 401);
    assert_eq!(t.audit_as(&newest).await.status(), 200);
    let listed: Value = t.show_key(&k.id).await.json().await.unwrap();
    assert_eq!(listed["previous_secret_valid_until"], Value::Null);

    for (query, status, slug) in [
        ("?overlap_secs=-1", 422, "invalid-input"),
        ("?overlap_secs=86401", 422, "invalid-input"),
        ("?overlap_secs=soon", 400, "invalid-query"),
        ("?overlap=5", 400, "invalid-query"),
    ] {
        let (got, got_slug, body) = problem(t.rotate_key(&k.id, query).await).await;
        assert_eq!((got, got_slug.as_str()), (status, slug), "{query}: {body}");
    }
    assert_eq!(
        t.audit_as(&newest).await.status(),
        200,
        "refusals changed nothing"
    );
    let rotations: Vec<Value> = t
        .audit_items("")
        .await
        .into_iter()
        .filter(|e| e["kind"] == "api_key_rotated")
        .collect();
    assert_eq!(rotations.len(), 2);
    assert!(!Value::Array(rotations).to_string().contains("rsd_"));
}

#[tokio::test]
async fn an_expiring_key_stops_at_its_expiry_and_bad_expiries_are_refused() {
    let s = Server::spawn(&TestConfig::fast());
    let t = s.default_tenant();
    for (expires, why) in [
        (json!("2001-01-01T00:00:00Z"), "must be in the future"),
        (json!("tomorrow"), "RFC 3339"),
        (json!("2030-13-01T00:00:00Z"), "RFC 3339"),
    ] {
        let res = t
            .create_api_key(json!({"name": "x", "expires_at": expires}))
            .await;
        let (status, slug, body) = problem(res).await;
        assert_eq!((status, slug.as_str()), (422, "invalid-input"), "{body}");
        assert_eq!(body["errors"][0]["field"], "expires_at");
        assert!(body["detail"].as_str().unwrap().contains(why), "{body}");
    }
    let (status, slug, _) = problem(
        t.create_api_key(json!({"name": "x", "expires_at": 12}))
            .await,
    )
    .await;
    assert_eq!((status, slug.as_str()), (422, "invalid-body"));
    let (status, _, body) = problem(
        t.create_api_key(json!({"name": "x", "scopes": ["root"]}))
            .await,
    )
    .await;
    assert_eq!(status, 422, "{body}");

    let k = make(&t, json!({"name": "short", "expires_at": in_secs(2)})).await;
    assert_eq!(t.audit_as(&k.key).await.status(), 200);
    sleep_secs(3).await;
    let unknown = "rsd_".to_owned() + &"B".repeat(43);
    let refused = t.audit_as(&k.key).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(
        refused.text().await.unwrap(),
        t.audit_as(&unknown).await.text().await.unwrap()
    );
    let listed: Value = t.show_key(&k.id).await.json().await.unwrap();
    assert_eq!(listed["state"], "expired");
    let (status, slug, _) = problem(t.rotate_key(&k.id, "").await).await;
    assert_eq!((status, slug.as_str()), (409, "api-key-expired"));
    // An expired key can still be revoked, so that the listing says what was done.
    assert_eq!(t.revoke_key(&k.id).await.status(), 200);
}

#[tokio::test]
async fn a_read_key_reads_the_audit_log_and_outbox_and_nothing_else() {
    let s = Server::spawn(&TestConfig::fast());
    let t = s.default_tenant();
    let reader = make_scoped(&t, "dashboard", &["read"]).await;
    let r = s.tenant("default", &reader.key);
    assert_eq!(r.audit("").await.status(), 200);
    assert_eq!(r.outbox("").await.status(), 200);
    let person = json!({"login": "jdoe", "email": "jdoe@example.com"});
    for res in [
        r.create_person(person.clone()).await,
        r.list_keys().await,
        r.create_api_key(json!({"name": "escalate"})).await,
        r.retry_outbox(1).await,
        r.revoke_key(&reader.id).await,
    ] {
        let (status, slug, _) = problem(res).await;
        assert_eq!((status, slug.as_str()), (403, "forbidden"));
    }
    // A dialect's key opens nothing on the native API.
    for scope in ["crafter", "empowerid", "payabli"] {
        let k = make_scoped(&t, scope, &[scope]).await;
        let (status, slug, _) = problem(t.audit_as(&k.key).await).await;
        assert_eq!((status, slug.as_str()), (403, "forbidden"), "{scope}");
    }
}
