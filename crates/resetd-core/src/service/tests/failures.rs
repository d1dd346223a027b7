//! A store that fails: each flow answers the error of its layer (`Unavailable` for a database
//! that is down, with its retry hint; `Internal` for anything else), changes nothing it did not
//! commit, and leaves queued work queued.

use super::*;
use crate::error::{CoreError, RETRY_UNAVAILABLE_SECS};
use crate::model::{MessageKind, TenantSettings};
use crate::ports::{Recovery, StoreError};
use crate::service::RESET_REQUEST_LEASE_SECS;

fn down() -> StoreError {
    StoreError::Unavailable("database is locked".into())
}

#[tokio::test]
async fn a_database_that_is_down_is_unavailable_and_anything_else_internal() {
    let (h, t) = setup().await;
    h.store.fail_all(down());
    let got = h
        .service
        .request_reset(&t, Lookup::Login("alice".into()), None, None, None)
        .await;
    assert_eq!(
        got,
        Err(CoreError::Unavailable("database is locked".into()))
    );
    assert_eq!(got.unwrap_err().retry_after(), Some(RETRY_UNAVAILABLE_SECS));

    h.store
        .fail_all(StoreError::Backend("disk I/O error".into()));
    let got = h
        .service
        .authenticate(&t, &login("alice"), &pw(GOOD), None)
        .await;
    assert_eq!(got, Err(CoreError::Internal("disk I/O error".into())));
    assert_eq!(
        h.hasher.counts().verifies + h.hasher.counts().dummies,
        0,
        "nothing checked"
    );

    h.store.heal();
    let ghost = TenantId::parse("ghost").unwrap();
    assert_eq!(
        h.service
            .update_tenant_settings(&ghost, TenantSettings::default())
            .await,
        Err(CoreError::NotFound("record"))
    );
    // Nothing the failed calls attempted was stored.
    assert_eq!(h.service.process_reset_requests(10).await, Ok((0, vec![])));
}

#[tokio::test]
async fn a_failed_password_change_keeps_the_token_and_sends_nothing() {
    let (h, t) = setup().await;
    let p = person(&h, &t, "alice").await;
    let secret = reset_link(&h, &t, &p).await;
    let before = (outbox(&h, &t).await.len(), audit_kinds(&h, &t).await);
    h.store.fail("change_password", down());
    assert_eq!(
        h.service
            .complete_reset(&t, &secret, &pw(GOOD2), None)
            .await,
        Err(down().into())
    );
    h.store.heal();
    assert_eq!(
        (outbox(&h, &t).await.len(), audit_kinds(&h, &t).await),
        before
    );
    // The client is told to retry, and the retry works.
    assert!(h
        .service
        .complete_reset(&t, &secret, &pw(GOOD2), None)
        .await
        .is_ok());
    let notices = outbox(&h, &t)
        .await
        .into_iter()
        .filter(|m| m.message.kind == MessageKind::PasswordChanged)
        .count();
    assert_eq!(notices, 1);
}

#[tokio::test]
async fn requests_the_worker_cannot_resolve_stay_queued_until_the_database_is_back() {
    let (h, t) = setup().await;
    let alice = person(&h, &t, "alice").await;
    h.service
        .request_reset(&t, Lookup::login(&alice.login), None, None, None)
        .await
        .unwrap();
    h.store.fail("claim_reset_requests", down());
    assert_eq!(
        h.service.process_reset_requests(10).await,
        Err(down().into())
    );
    h.store.heal();

    // The tenant cannot be read (its cache has expired): not discarded as an unknown tenant.
    h.clock.advance_secs(6);
    h.store.fail("get_tenant", down());
    assert_eq!(
        h.service.process_reset_requests(10).await,
        Ok((0, vec![down().into()]))
    );
    h.store.heal();
    h.store.fail("find_people", down());
    h.clock.advance_secs(RESET_REQUEST_LEASE_SECS);
    assert_eq!(
        h.service.process_reset_requests(10).await,
        Ok((0, vec![down().into()]))
    );
    h.store.heal();
    assert!(outbox(&h, &t).await.is_empty());
    assert!(audit(&h, &t)
        .await
        .iter()
        .all(|(k, _)| k != "reset_requested"));

    // Still leased by the failed round: nothing yet; after the lease, resolved once.
    assert_eq!(h.service.process_reset_requests(10).await, Ok((0, vec![])));
    h.clock.advance_secs(RESET_REQUEST_LEASE_SECS);
    assert_eq!(h.service.process_reset_requests(10).await, Ok((1, vec![])));
    assert_eq!(outbox(&h, &t).await.len(), 1);
}

#[tokio::test]
async fn a_trusted_callers_link_is_not_sent_when_the_token_cannot_be_stored() {
    let (h, t) = setup().await;
    h.service
        .register_client(
            &t,
            crate::types::ClientName::parse("portal").unwrap(),
            crate::model::LinkTemplate::parse("https://x.example.com/{token}").unwrap(),
            vec!["https://portal.example.com/".into()],
            &Actor::Cli,
        )
        .await
        .unwrap();
    let alice = person(&h, &t, "alice").await;
    h.store.fail("issue_token", down());
    let page = crate::model::ResetPageUrl::parse("https://portal.example.com/reset").unwrap();
    let got = h
        .service
        .send_reset_link(
            &t,
            &Lookup::login(&alice.login),
            &page,
            "token",
            None,
            &Actor::Cli,
            None,
        )
        .await;
    assert_eq!(got, Err(down().into()));
    h.store.heal();
    assert!(outbox(&h, &t).await.is_empty());
    let secret = h.renderer.last_secret().unwrap();
    assert_eq!(h.store.find_token(secret.hash()).await, Ok(None));
}
