//! Conformance of the [`ApiKeys`](resetd_core::ports::ApiKeys) port: keys stored under their hash
//! and found by it (the replaced secret only during its overlap), listed per tenant and without
//! secrets, revoked and rotated by conditional writes with their audit events, `last_used_at`
//! never moving back.

use std::sync::Arc;

use resetd_core::api_key::{ApiKey, ApiKeyId, Scope};
use resetd_core::store::{Store, StoreError};

use super::fixtures::*;

fn key(id: &str, tenant: &str) -> ApiKey {
    ApiKey {
        id: id.into(),
        tenant: tid(tenant),
        name: "ci".into(),
        scopes: vec![Scope::Admin],
        created_at: at(1),
        revoked_at: None,
        expires_at: None,
        last_used_at: None,
        previous_until: None,
    }
}

fn kid(s: &str) -> ApiKeyId {
    ApiKeyId::parse(s).expect("valid key id")
}

/// API keys: stored under the hash, found by it, unique, with their audit event; every field
/// read back as written.
pub async fn api_keys(store: Arc<dyn Store>) {
    let s = &*store;
    let a = tenant(s, "acme").await;
    let k = ApiKey {
        scopes: vec![Scope::Read, Scope::Payabli],
        expires_at: Some(at(50_000)),
        ..key("00000000000000a1", "acme")
    };
    s.insert_api_key(
        &k,
        hash("secret-1"),
        Some(audit(&a, None, "api_key_created", at(1))),
    )
    .await
    .expect("insert");
    assert_eq!(
        s.find_api_key(hash("secret-1"), at(2)).await.unwrap(),
        Some(k.clone())
    );
    // Found after its expiry too: the use case refuses it, so that every surface does alike.
    assert_eq!(
        s.find_api_key(hash("secret-1"), at(60_000)).await.unwrap(),
        Some(k.clone())
    );
    assert_eq!(s.find_api_key(hash("secret-2"), at(2)).await.unwrap(), None);

    let revoked = ApiKey {
        id: "00000000000000a2".into(),
        name: "old".into(),
        revoked_at: Some(at(9)),
        scopes: vec![],
        expires_at: None,
        ..k.clone()
    };
    s.insert_api_key(&revoked, hash("secret-2"), None)
        .await
        .expect("insert without audit");
    assert_eq!(
        s.find_api_key(hash("secret-2"), at(10)).await.unwrap(),
        Some(revoked)
    );

    let same_hash = key("00000000000000a3", "acme");
    assert!(matches!(
        s.insert_api_key(&same_hash, hash("secret-1"), None).await,
        Err(StoreError::Conflict(_))
    ));
    let same_id = key("00000000000000a1", "acme");
    assert!(matches!(
        s.insert_api_key(&same_id, hash("secret-9"), None).await,
        Err(StoreError::Conflict(_))
    ));
    let ghost = key("00000000000000a4", "ghost");
    assert!(s
        .insert_api_key(&ghost, hash("secret-4"), None)
        .await
        .is_err());
    assert_eq!(
        audit_kinds(s, &a).await,
        vec!["api_key_created".to_string()]
    );
}

/// Listing: per tenant or all, oldest first; reading one by id whatever its tenant.
pub async fn api_keys_are_listed(store: Arc<dyn Store>) {
    let s = &*store;
    tenant(s, "acme").await;
    let b = tenant(s, "beta").await;
    for (i, (id, t)) in [
        ("00000000000000b2", "acme"),
        ("00000000000000b1", "beta"),
        ("00000000000000b3", "acme"),
    ]
    .into_iter()
    .enumerate()
    {
        let k = ApiKey {
            created_at: at(i as i64),
            ..key(id, t)
        };
        s.insert_api_key(&k, hash(id), None).await.expect("insert");
    }
    let ids = |keys: Vec<ApiKey>| keys.into_iter().map(|k| k.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.list_api_keys(Some(&tid("acme"))).await.unwrap()),
        ["00000000000000b2", "00000000000000b3"]
    );
    assert_eq!(
        ids(s.list_api_keys(None).await.unwrap()),
        ["00000000000000b2", "00000000000000b1", "00000000000000b3"]
    );
    assert_eq!(
        s.list_api_keys(Some(&tid("gamma"))).await.unwrap(),
        Vec::<ApiKey>::new()
    );
    let got = s.get_api_key(&kid("00000000000000b1")).await.unwrap();
    assert_eq!(got.map(|k| k.tenant), Some(b));
    assert_eq!(s.get_api_key(&kid("00000000000000ff")).await.unwrap(), None);
}

/// Revoking: once, in the key's tenant only; the second time is a `Conflict` that writes nothing.
/// A revoked key's replaced secret stops too.
pub async fn api_keys_are_revoked_once(store: Arc<dyn Store>) {
    let s = &*store;
    let a = tenant(s, "acme").await;
    let b = tenant(s, "beta").await;
    let id = kid("00000000000000c1");
    s.insert_api_key(&key(id.as_str(), "acme"), hash("c1"), None)
        .await
        .expect("insert");
    s.rotate_api_key(
        &a,
        &id,
        hash("c1-new"),
        at(100_000),
        at(5),
        audit(&a, None, "api_key_rotated", at(5)),
    )
    .await
    .expect("rotate");
    assert_eq!(
        s.revoke_api_key(&b, &id, at(6), audit(&b, None, "api_key_revoked", at(6)))
            .await,
        Err(StoreError::NotFound),
        "another tenant's key"
    );
    assert_eq!(
        s.revoke_api_key(
            &a,
            &kid("00000000000000c9"),
            at(6),
            audit(&a, None, "api_key_revoked", at(6))
        )
        .await,
        Err(StoreError::NotFound)
    );
    let revoked = s
        .revoke_api_key(&a, &id, at(7), audit(&a, None, "api_key_revoked", at(7)))
        .await
        .expect("revoke");
    assert_eq!(revoked.revoked_at, Some(at(7)));
    assert!(matches!(
        s.revoke_api_key(&a, &id, at(8), audit(&a, None, "api_key_revoked", at(8)))
            .await,
        Err(StoreError::Conflict(_))
    ));
    let found = s.find_api_key(hash("c1-new"), at(9)).await.unwrap();
    assert_eq!(found.and_then(|k| k.revoked_at), Some(at(7)));
    assert_eq!(
        s.find_api_key(hash("c1"), at(9)).await.unwrap(),
        None,
        "the replaced secret stops with the revocation, inside its overlap"
    );
    assert!(matches!(
        s.rotate_api_key(
            &a,
            &id,
            hash("c1-newer"),
            at(100_000),
            at(9),
            audit(&a, None, "api_key_rotated", at(9))
        )
        .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        audit_kinds(s, &a).await,
        ["api_key_revoked", "api_key_rotated"]
    );
    assert_eq!(audit_kinds(s, &b).await, Vec::<String>::new());
}

/// Rotating: the new secret finds the key at once, the replaced one until its overlap ends (not
/// at that instant), one replaced secret at most; an expired key is not rotated.
pub async fn api_keys_rotate_with_an_overlap(store: Arc<dyn Store>) {
    let s = &*store;
    let a = tenant(s, "acme").await;
    let id = kid("00000000000000d1");
    let k = ApiKey {
        expires_at: Some(at(1_000_000)),
        ..key(id.as_str(), "acme")
    };
    s.insert_api_key(&k, hash("d1"), None)
        .await
        .expect("insert");
    let rotate = |new: &'static str, until: i64, now: i64| {
        s.rotate_api_key(
            &a,
            &id,
            hash(new),
            at(until),
            at(now),
            audit(&a, None, "api_key_rotated", at(now)),
        )
    };
    let rotated = rotate("d2", 30_000, 10).await.expect("rotate");
    assert_eq!(rotated.previous_until, Some(at(30_000)));
    assert_eq!(
        (rotated.id.as_str(), rotated.expires_at),
        (id.as_str(), k.expires_at)
    );
    let finds = |secret: &'static str, now: i64| async move {
        s.find_api_key(hash(secret), at(now))
            .await
            .unwrap()
            .is_some()
    };
    assert!(finds("d2", 11).await && finds("d1", 11).await);
    assert!(finds("d1", 29_999).await);
    assert!(!finds("d1", 30_000).await, "the overlap is over");
    assert!(finds("d2", 30_000).await);

    rotate("d3", 60_000, 20_000).await.expect("second rotation");
    assert!(!finds("d1", 20_001).await, "two rotations back");
    assert!(finds("d2", 20_001).await && finds("d3", 20_001).await);
    assert!(matches!(
        rotate("d4", 2_000_000, 1_000_000).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(
        finds("d3", 1_000_000).await,
        "a refused rotation changed nothing"
    );
    assert_eq!(
        audit_kinds(s, &a).await,
        ["api_key_rotated", "api_key_rotated"]
    );
}

/// `touch`: sets `last_used_at`, never moves it back, ignores an unknown id.
pub async fn api_keys_record_their_last_use(store: Arc<dyn Store>) {
    let s = &*store;
    tenant(s, "acme").await;
    let id = kid("00000000000000e1");
    s.insert_api_key(&key(id.as_str(), "acme"), hash("e1"), None)
        .await
        .expect("insert");
    let last = || async {
        s.get_api_key(&id)
            .await
            .unwrap()
            .and_then(|k| k.last_used_at)
    };
    assert_eq!(last().await, None);
    s.touch_api_key(id.as_str(), at(100)).await.expect("touch");
    assert_eq!(last().await, Some(at(100)));
    s.touch_api_key(id.as_str(), at(50)).await.expect("touch");
    assert_eq!(last().await, Some(at(100)), "never back");
    s.touch_api_key(id.as_str(), at(200)).await.expect("touch");
    assert_eq!(last().await, Some(at(200)));
    s.touch_api_key("00000000000000ff", at(300))
        .await
        .expect("an unknown id is nothing to record");
}
