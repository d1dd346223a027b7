//! The API-key lifecycle: expiry, revocation, rotation with its overlap, the narrower scopes, and
//! `last_used_at` written at most once a minute.

use super::*;
use crate::api_key::{ApiKeyId, NewApiKey, Overlap};
use crate::error::CoreError;
use crate::model::Scope;
use crate::secret::ApiKeySecret;
use crate::testing::T0;

fn new(scopes: Vec<Scope>) -> NewApiKey {
    NewApiKey {
        name: "ci".into(),
        scopes,
        expires_at: None,
    }
}

fn id(k: &crate::model::ApiKey) -> ApiKeyId {
    ApiKeyId::parse(&k.id).unwrap()
}

async fn live(h: &crate::testing::Harness, s: &ApiKeySecret) -> bool {
    match h.service.identify_api_key(s).await {
        Ok(_) => true,
        Err(CoreError::Unauthenticated) => false,
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn an_expired_key_is_refused_like_an_unknown_one() {
    let (h, t) = setup().await;
    let bad = h
        .service
        .create_key(
            &t,
            NewApiKey {
                expires_at: Some(T0),
                ..new(vec![Scope::Admin])
            },
            &Actor::Cli,
        )
        .await;
    assert!(matches!(bad, Err(CoreError::Invalid(i)) if i.field == "expires_at"));
    let (key, secret) = h
        .service
        .create_key(
            &t,
            NewApiKey {
                expires_at: Some(T0.plus_secs(60)),
                ..new(vec![Scope::Admin])
            },
            &Actor::Cli,
        )
        .await
        .unwrap();
    assert!(live(&h, &secret).await);
    h.clock.advance_secs(60);
    assert!(!live(&h, &secret).await);
    assert_eq!(
        h.service.authorize(&t, &secret, Scope::Admin).await,
        Err(CoreError::Unauthenticated)
    );
    assert_eq!(
        h.service
            .rotate_api_key(None, &id(&key), Overlap::default(), &Actor::Cli, None)
            .await
            .map(|_| ()),
        Err(CoreError::KeyExpired)
    );
}

#[tokio::test]
async fn a_revoked_key_stops_at_once_and_revoking_again_says_so() {
    let (h, t) = setup().await;
    let (key, secret) = h
        .service
        .create_key(&t, new(vec![Scope::Admin]), &Actor::Cli)
        .await
        .unwrap();
    let revoked = h
        .service
        .revoke_api_key(Some(&t), &id(&key), &Actor::Cli, Some("192.0.2.1"))
        .await
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(T0));
    assert!(!live(&h, &secret).await);
    assert_eq!(
        h.service
            .revoke_api_key(Some(&t), &id(&key), &Actor::Cli, None)
            .await,
        Err(CoreError::KeyRevoked)
    );
    assert_eq!(
        h.service
            .rotate_api_key(Some(&t), &id(&key), Overlap::default(), &Actor::Cli, None)
            .await
            .map(|_| ()),
        Err(CoreError::KeyRevoked)
    );
    let other = TenantId::parse("beta").unwrap();
    h.service
        .create_tenant(other.clone(), Default::default())
        .await
        .unwrap();
    let unknown = ApiKeyId::parse("0000000000000000").unwrap();
    for (tenant, key_id) in [(Some(&other), id(&key)), (Some(&t), unknown)] {
        assert_eq!(
            h.service
                .revoke_api_key(tenant, &key_id, &Actor::Cli, None)
                .await,
            Err(CoreError::NotFound("API key"))
        );
    }
    let events = h.service.audit_log(&t, None, 10).await.unwrap();
    let revoked: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "api_key_revoked")
        .collect();
    assert_eq!(
        revoked.len(),
        1,
        "one event: the second revoke wrote nothing"
    );
    assert_eq!(
        revoked[0].detail,
        serde_json::json!({"key_id": key.id, "name": "ci"})
    );
    assert_eq!(revoked[0].ip.as_deref(), Some("192.0.2.1"));
}

#[tokio::test]
async fn a_rotated_out_secret_works_for_the_overlap_then_stops() {
    let (h, t) = setup().await;
    let (key, old) = h
        .service
        .create_key(&t, new(vec![Scope::Read]), &Actor::Cli)
        .await
        .unwrap();
    let overlap = Overlap::from_secs(30).unwrap();
    let (rotated, fresh) = h
        .service
        .rotate_api_key(Some(&t), &id(&key), overlap, &Actor::Cli, None)
        .await
        .unwrap();
    assert_eq!(
        (rotated.id.as_str(), rotated.scopes.as_slice()),
        (key.id.as_str(), &[Scope::Read][..])
    );
    assert_eq!(rotated.previous_until, Some(T0.plus_secs(30)));
    assert_ne!(fresh, old);
    assert!(live(&h, &old).await && live(&h, &fresh).await);
    h.clock.advance_secs(29);
    assert!(live(&h, &old).await);
    h.clock.advance_secs(1);
    assert!(!live(&h, &old).await, "the overlap is over");
    assert!(live(&h, &fresh).await);

    // A second rotation ends the first one's overlap: one earlier secret at most.
    let (_, third) = h
        .service
        .rotate_api_key(Some(&t), &id(&key), overlap, &Actor::Cli, None)
        .await
        .unwrap();
    assert!(live(&h, &fresh).await && live(&h, &third).await);
    let (_, fourth) = h
        .service
        .rotate_api_key(
            None,
            &id(&key),
            Overlap::from_secs(0).unwrap(),
            &Actor::Cli,
            None,
        )
        .await
        .unwrap();
    assert!(!live(&h, &fresh).await, "two rotations back");
    assert!(!live(&h, &third).await, "overlap 0 ends it at once");
    assert!(live(&h, &fourth).await);
    // Revoking ends every secret.
    h.service
        .rotate_api_key(Some(&t), &id(&key), overlap, &Actor::Cli, None)
        .await
        .unwrap();
    h.service
        .revoke_api_key(None, &id(&key), &Actor::Cli, None)
        .await
        .unwrap();
    assert!(!live(&h, &fourth).await, "revoked during its overlap");
    let kinds: Vec<String> = h
        .service
        .audit_log(&t, None, 20)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .filter(|k| k.starts_with("api_key_"))
        .collect();
    assert_eq!(
        kinds,
        [
            "api_key_revoked",
            "api_key_rotated",
            "api_key_rotated",
            "api_key_rotated",
            "api_key_rotated",
            "api_key_created"
        ]
    );
}

#[tokio::test]
async fn narrow_scopes_open_only_their_calls() {
    let (h, t) = setup().await;
    for (scope, opens, closed) in [
        (Scope::Read, Scope::Read, Scope::Admin),
        (Scope::Crafter, Scope::Crafter, Scope::Empowerid),
        (Scope::Empowerid, Scope::Empowerid, Scope::Read),
        (Scope::Payabli, Scope::Payabli, Scope::Admin),
        (Scope::Admin, Scope::Payabli, Scope::Payabli),
    ] {
        let (_, s) = h
            .service
            .create_key(&t, new(vec![scope]), &Actor::Cli)
            .await
            .unwrap();
        assert!(h.service.authorize(&t, &s, opens).await.is_ok(), "{scope}");
        if scope != Scope::Admin {
            assert_eq!(
                h.service.authorize(&t, &s, closed).await,
                Err(CoreError::Forbidden),
                "{scope} -> {closed}"
            );
        }
    }
}

#[tokio::test]
async fn last_used_is_written_at_most_once_a_minute() {
    let (h, t) = setup().await;
    let (key, secret) = h
        .service
        .create_key(&t, new(vec![Scope::Admin]), &Actor::Cli)
        .await
        .unwrap();
    let touches = |h: &crate::testing::Harness| {
        h.store
            .calls()
            .iter()
            .filter(|c| **c == "touch_api_key")
            .count()
    };
    for _ in 0..5 {
        assert!(live(&h, &secret).await);
    }
    assert_eq!(touches(&h), 1);
    h.clock.advance_secs(59);
    assert!(live(&h, &secret).await);
    assert_eq!(touches(&h), 1);
    h.clock.advance_secs(1);
    assert!(live(&h, &secret).await);
    assert!(live(&h, &secret).await);
    assert_eq!(touches(&h), 2);
    let listed = h.service.api_keys(Some(&t)).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].last_used_at, Some(T0.plus_secs(60)));
    assert_eq!(
        h.service.api_key(Some(&t), &id(&key)).await.unwrap().id,
        key.id
    );
    // A store that cannot record the use does not fail the call.
    h.clock.advance_secs(60);
    h.store.fail(
        "touch_api_key",
        crate::ports::StoreError::Unavailable("down".into()),
    );
    assert!(live(&h, &secret).await);
}
