//! API keys, clients, the outbox and the audit log.

use super::*;
use crate::error::CoreError;
use crate::model::{LinkTemplate, OutboxStatus, Scope};
use crate::ports::Outbox;
use crate::secret::ApiKeySecret;
use crate::testing::T0;
use crate::types::ClientName;

#[tokio::test]
async fn an_api_key_is_found_by_its_secret_and_authorised_by_tenant_and_scope() {
    let (h, t) = setup().await;
    let beta = TenantId::parse("beta").unwrap();
    h.service
        .create_tenant(beta.clone(), Default::default())
        .await
        .unwrap();
    let (key, secret) = h
        .service
        .create_api_key(&t, "  ci  ", vec![Scope::Admin], &Actor::Cli)
        .await
        .unwrap();
    assert_eq!((key.name.as_str(), key.created_at), ("ci", T0));
    assert_eq!(h.service.identify_api_key(&secret).await, Ok(key.clone()));
    assert_eq!(
        h.service
            .authorize(&t, &secret, Scope::Admin)
            .await
            .map(|k| k.id),
        Ok(key.id.clone())
    );
    assert_eq!(
        h.service.authorize(&beta, &secret, Scope::Admin).await,
        Err(CoreError::Forbidden),
        "another tenant's key"
    );
    let (_, scopeless) = h
        .service
        .create_api_key(&t, "reader", vec![], &Actor::Cli)
        .await
        .unwrap();
    assert_eq!(
        h.service.authorize(&t, &scopeless, Scope::Admin).await,
        Err(CoreError::Forbidden)
    );
    assert_eq!(
        h.service.identify_api_key(&ApiKeySecret::generate()).await,
        Err(CoreError::Unauthenticated)
    );
    for bad in ["", "   ", "a\u{7}b", &"x".repeat(129)] {
        let got = h.service.create_api_key(&t, bad, vec![], &Actor::Cli).await;
        assert!(matches!(got, Err(CoreError::Invalid(_))), "{bad:?}");
    }
    let events = h.service.audit_log(&t, None, 10).await.unwrap();
    let created: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "api_key_created")
        .collect();
    assert_eq!(created.len(), 2);
    assert_eq!(
        created[1].detail,
        serde_json::json!({"key_id": key.id, "name": "ci", "scopes": ["admin"], "expires_at": null})
    );
    assert_eq!(
        h.service
            .create_api_key(&TenantId::parse("ghost").unwrap(), "x", vec![], &Actor::Cli)
            .await
            .map(|_| ()),
        Err(CoreError::UnknownTenant)
    );
}

#[tokio::test]
async fn clients_are_registered_with_checked_prefixes_and_replaced_by_name() {
    let (h, t) = setup().await;
    let web = ClientName::parse("web").unwrap();
    let template = || LinkTemplate::parse("https://app.example.com/r/{token}").unwrap();
    let bad = h
        .service
        .register_client(
            &t,
            web.clone(),
            template(),
            vec!["ftp://x/".into()],
            &Actor::Cli,
        )
        .await;
    assert!(matches!(bad, Err(CoreError::Invalid(_))), "{bad:?}");
    assert_eq!(
        h.service.client(&t, &web).await,
        Err(CoreError::UnknownClient)
    );
    h.service
        .register_client(&t, web.clone(), template(), vec![], &Actor::Cli)
        .await
        .unwrap();
    h.clock.advance_secs(1);
    let prefixes = vec!["https://app.example.com/".to_owned()];
    h.service
        .register_client(&t, web.clone(), template(), prefixes.clone(), &Actor::Cli)
        .await
        .unwrap();
    let got = h.service.client(&t, &web).await.unwrap();
    assert_eq!((got.allowed_prefixes, got.created_at), (prefixes, T0));
    assert_eq!(h.service.list_clients(&t).await.unwrap().len(), 1);
    assert_eq!(
        audit_kinds(&h, &t).await,
        ["client_registered", "client_registered"]
    );
}

#[tokio::test]
async fn a_dead_message_whose_body_was_erased_cannot_be_retried() {
    let (h, t) = setup().await;
    let p = person(&h, &t, "alice").await;
    reset_link(&h, &t, &p).await;
    let id = outbox(&h, &t).await[0].id;
    h.store
        .mark_failed(id, "550 no such user", None)
        .await
        .unwrap();
    let actor = Actor::ApiKey("k1".into());
    assert_eq!(
        h.service.retry_message(Some(&t), id, &actor, None).await,
        Err(CoreError::MessageErased)
    );
    assert_eq!(
        outbox(&h, &t).await[0].status,
        OutboxStatus::Dead,
        "stays dead"
    );
    assert!(!audit_kinds(&h, &t)
        .await
        .contains(&"outbox_retried".to_owned()));
}

#[tokio::test]
async fn a_waiting_message_is_retried_now_and_a_sent_one_is_not_found() {
    let (h, t) = setup().await;
    let beta = TenantId::parse("beta").unwrap();
    h.service
        .create_tenant(beta.clone(), Default::default())
        .await
        .unwrap();
    let p = person(&h, &t, "alice").await;
    reset_link(&h, &t, &p).await;
    let id = outbox(&h, &t).await[0].id;
    h.store
        .mark_failed(id, "421 later", Some(T0.plus_secs(600)))
        .await
        .unwrap();
    let actor = Actor::ApiKey("k1".into());
    assert_eq!(
        h.service.retry_message(Some(&beta), id, &actor, None).await,
        Err(CoreError::NotFound("message")),
        "another tenant's message"
    );
    h.clock.advance_secs(5);
    h.service
        .retry_message(Some(&t), id, &actor, Some("192.0.2.5"))
        .await
        .unwrap();
    let m = &outbox(&h, &t).await[0];
    assert_eq!(
        (m.status, m.next_attempt_at, m.attempts),
        (OutboxStatus::Pending, T0.plus_secs(5), 0)
    );
    let events = h.service.audit_log(&t, None, 1).await.unwrap();
    assert_eq!(events[0].kind, "outbox_retried");
    assert_eq!(events[0].detail, serde_json::json!({"message": id}));

    h.store.mark_sent(id, T0.plus_secs(6)).await.unwrap();
    assert_eq!(
        h.service.retry_message(None, id, &actor, None).await,
        Err(CoreError::NotFound("message"))
    );
    assert_eq!(
        h.service.retry_message(None, 999, &actor, None).await,
        Err(CoreError::NotFound("message"))
    );
}

#[tokio::test]
async fn the_audit_log_pages_newest_first() {
    let (h, t) = setup().await;
    for i in 0..5 {
        person(&h, &t, &format!("user{i}")).await;
    }
    let page = h.service.audit_log(&t, None, 2).await.unwrap();
    assert_eq!(page.len(), 2);
    assert_eq!(page[0].detail["login"], "user4");
    let next = h.service.audit_log(&t, Some(page[1].id), 10).await.unwrap();
    let logins: Vec<_> = next
        .iter()
        .map(|e| e.detail["login"].as_str().unwrap())
        .collect();
    assert_eq!(logins, ["user2", "user1", "user0"]);
    // The limit is clamped to at least one.
    assert_eq!(h.service.audit_log(&t, None, 0).await.unwrap().len(), 1);
}
