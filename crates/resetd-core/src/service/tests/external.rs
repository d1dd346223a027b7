//! Tenants whose passwords live in an external system (issue 17): shadow rows, the claim, write
//! and consume of a reset with every answer the system can give, the administrator's set, logins
//! checked there, and the faults between the two systems.

use std::sync::Arc;

use super::*;
use crate::error::CoreError;
use crate::ports::{Credentials as _, Directory as _, ExternalAccount, ExternalError};
use crate::service::{shadow_id, BACKEND_POLICY_CODE, EXTERNAL_CLAIM_LEASE_SECS};
use crate::store::StoreError;
use crate::testing::{ExternalCall, MemoryExternal};

const UUID: &str = "6f1c2a8e-0000-4000-8000-000000000001";

fn account(login: &str, email: Option<&str>) -> ExternalAccount {
    ExternalAccount {
        stable_id: UUID.into(),
        locator: format!("uid={login},ou=people,dc=example,dc=org"),
        login: login.into(),
        email: email.map(str::to_owned),
        display_name: Some("Alice Liddell".into()),
        enabled: true,
    }
}

/// Tenant `acme` over a directory holding `alice` (password [`GOOD`]).
async fn directory() -> (Harness, TenantId, Arc<MemoryExternal>) {
    let ext = Arc::new(MemoryExternal::directory());
    ext.add(account("alice", Some("alice@example.com")), GOOD);
    let t = TenantId::parse("acme").unwrap();
    let h = Harness::new()
        .unwrap()
        .with_external(t.clone(), ext.clone());
    h.service
        .create_tenant(t.clone(), TenantSettings::default())
        .await
        .unwrap();
    (h, t, ext)
}

/// A reset link for the directory's `alice`, through the anonymous flow.
async fn alice_link(h: &Harness, t: &TenantId) -> ResetSecret {
    assert_eq!(forgot(h, t, Lookup::Login("alice".into())).await, 1);
    h.renderer.last_secret().expect("a link was sent")
}

async fn shadow(h: &Harness, t: &TenantId) -> Person {
    h.store
        .get_person(t, &shadow_id(t, UUID))
        .await
        .unwrap()
        .expect("the shadow row")
}

#[tokio::test]
async fn a_request_finds_the_person_in_the_directory_and_keeps_a_shadow_row_without_a_hash() {
    let (h, t, ext) = directory().await;
    let secret = alice_link(&h, &t).await;
    let s = shadow(&h, &t).await;
    assert_eq!(s.login.as_str(), "alice");
    assert_eq!(s.email.as_str(), "alice@example.com");
    assert_eq!(s.display_name.as_str(), "Alice Liddell");
    assert_eq!(s.password_hash, None);
    assert_eq!(
        h.service
            .inspect_token(&t, &secret)
            .await
            .unwrap()
            .person
            .id,
        s.id
    );
    // By email too, and the same row: the id is derived from the stable id.
    h.clock.advance_secs(3600);
    assert_eq!(
        forgot(&h, &t, Lookup::Email("ALICE@example.com".into())).await,
        1
    );
    assert_eq!(h.renderer.rendered().len(), 2);
    // Ids, numbers and ObjectIds name the shadow rows already known, without asking.
    let asked = ext.count(ExternalCall::FindAccount);
    let by_number = h
        .service
        .find_person(&t, &Lookup::Number(s.number))
        .await
        .unwrap();
    assert_eq!(by_number.id, s.id);
    assert_eq!(ext.count(ExternalCall::FindAccount), asked);
}

#[tokio::test]
async fn an_unknown_or_unusable_entry_is_no_account_and_the_audit_names_only_the_field() {
    let (h, t, ext) = directory().await;
    assert_eq!(forgot(&h, &t, Lookup::Login("bob".into())).await, 1);
    let mut bad = account("carol", None);
    bad.stable_id = "other".into();
    ext.add(bad, GOOD);
    assert_eq!(forgot(&h, &t, Lookup::Login("carol".into())).await, 1);
    assert!(h.renderer.rendered().is_empty());
    let events = h.service.audit_log(&t, None, 10).await.unwrap();
    assert_eq!(events[0].detail["outcome"], "unusable_account");
    assert_eq!(events[0].detail["field"], "email");
    assert_eq!(events[1].detail["outcome"], "no_account");
    assert!(!events[0].detail.to_string().contains("carol"));
}

#[tokio::test]
async fn a_directory_that_cannot_answer_keeps_the_request_queued() {
    let (h, t, ext) = directory().await;
    ext.fail(
        ExternalCall::FindAccount,
        ExternalError::Unavailable("connection refused".into()),
        1,
    );
    h.service
        .request_reset(&t, Lookup::Login("alice".into()), None, None, None)
        .await
        .unwrap();
    let (done, errors) = h.service.process_reset_requests(10).await.unwrap();
    assert_eq!(done, 0);
    assert!(matches!(errors[..], [CoreError::Unavailable(_)]));
    h.clock
        .advance_secs(crate::service::RESET_REQUEST_LEASE_SECS);
    let (done, errors) = h.service.process_reset_requests(10).await.unwrap();
    assert_eq!((done, errors), (1, vec![]));
    assert!(h.renderer.last_secret().is_some());
}

#[tokio::test]
async fn a_reset_writes_the_password_to_the_directory_and_consumes_the_token_on_its_claim() {
    let (h, t, ext) = directory().await;
    let secret = alice_link(&h, &t).await;
    h.clock.advance_secs(5);
    let done = h
        .service
        .complete_reset(&t, &secret, &pw(GOOD2), None)
        .await
        .unwrap();
    assert_eq!(ext.password_of(UUID).as_deref(), Some(GOOD2));
    assert_eq!(done.password_hash, None);
    let s = shadow(&h, &t).await;
    assert_eq!(s.password_hash, None, "never a hash for a directory tenant");
    assert_eq!(s.password_changed_at, Some(h.service.now()));
    assert_eq!(
        h.service.inspect_token(&t, &secret).await,
        Err(CoreError::TokenGone)
    );
    let sets: Vec<_> = ext
        .calls()
        .into_iter()
        .filter(|c| c.call == ExternalCall::SetPassword)
        .collect();
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0].stable_id.as_deref(), Some(UUID));
    assert!(audit_kinds(&h, &t)
        .await
        .contains(&"reset_completed".to_owned()));
    let notices = outbox(&h, &t).await;
    assert_eq!(
        notices.len(),
        2,
        "the link and the 'password changed' notice"
    );
}

#[tokio::test]
async fn resetds_own_policy_is_checked_before_anything_is_claimed_or_written() {
    let (h, t, ext) = directory().await;
    let secret = alice_link(&h, &t).await;
    let e = h
        .service
        .complete_reset(&t, &secret, &pw("short"), None)
        .await
        .unwrap_err();
    assert!(matches!(e, CoreError::Policy(_)));
    assert_eq!(ext.count(ExternalCall::SetPassword), 0);
    assert!(h.service.inspect_token(&t, &secret).await.is_ok());
}

#[tokio::test]
async fn a_refusal_releases_the_token_and_reports_the_directorys_reason() {
    let (h, t, ext) = directory().await;
    let secret = alice_link(&h, &t).await;
    let reason = "Password fails quality checking policy";
    ext.fail(
        ExternalCall::SetPassword,
        ExternalError::Refused(reason.into()),
        1,
    );
    let e = h
        .service
        .complete_reset(&t, &secret, &pw(GOOD2), None)
        .await
        .unwrap_err();
    let CoreError::Policy(v) = e else {
        panic!("not a policy refusal: {e:?}")
    };
    assert_eq!(v.violations[0].code, BACKEND_POLICY_CODE);
    assert_eq!(v.violations[0].message, reason);
    assert_eq!(ext.password_of(UUID).as_deref(), Some(GOOD), "unchanged");
    assert_eq!(shadow(&h, &t).await.password_changed_at, None);
    // The token is live again: the person tries another password with the same link.
    assert!(h.service.inspect_token(&t, &secret).await.is_ok());
    h.service
        .complete_reset(&t, &secret, &pw(GOOD3), None)
        .await
        .unwrap();
    assert_eq!(ext.password_of(UUID).as_deref(), Some(GOOD3));
}

#[tokio::test]
async fn an_unavailable_directory_is_unavailable_and_the_token_stays_usable() {
    let (h, t, ext) = directory().await;
    let secret = alice_link(&h, &t).await;
    // At the lookup before the claim, and at the write after it.
    ext.fail(
        ExternalCall::FindAccount,
        ExternalError::Unavailable("connection refused".into()),
        1,
    );
    let e = h
        .service
        .complete_reset(&t, &secret, &pw(GOOD2), None)
        .await;
    assert!(matches!(e, Err(CoreError::Unavailable(_))), "{e:?}");
    ext.fail(
        ExternalCall::SetPassword,
        ExternalError::Unavailable("503".into()),
        1,
    );
    let e = h
        .service
        .complete_reset(&t, &secret, &pw(GOOD2), None)
        .await;
    assert!(matches!(e, Err(CoreError::Unavailable(_))), "{e:?}");
    assert_eq!(ext.password_of(UUID).as_deref(), Some(GOOD));
    assert!(h.service.inspect_token(&t, &secret).await.is_ok());
    h.service
        .complete_reset(&t, &secret, &pw(GOOD2), None)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_unknown_answer_is_retried_with_the_same_change_id_until_it_succeeds() {
    let (h, t, ext) = directory().await;
    let secret = alice_link(&h, &t).await;
    ext.fail(
        ExternalCall::SetPassword,
        ExternalError::Indeterminate("timeout".into()),
        2,
    );
    h.service
        .complete_reset(&t, &secret, &pw(GOOD2), None)
        .await
        .unwrap();
    let ids: Vec<_> = ext
        .calls()
        .into_iter()
        .filter(|c| c.call == ExternalCall::SetPassword)
        .map(|c| c.change_id)
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.iter().all(|i| i == &ids[0]));
    assert_eq!(ext.password_of(UUID).as_deref(), Some(GOOD2));
}

#[tokio::test]
async fn an_answer_that_stays_unknown_keeps_the_claim_so_the_token_lapses() {
    let (h, t, ext) = directory().await;
    let secret = alice_link(&h, &t).await;
    ext.apply_before_failing(true);
    ext.fail(
        ExternalCall::SetPassword,
        ExternalError::Indeterminate("timeout".into()),
        10,
    );
    let e = h
        .service
        .complete_reset(&t, &secret, &pw(GOOD2), None)
        .await;
    assert!(matches!(e, Err(CoreError::Unavailable(_))), "{e:?}");
    assert_eq!(
        ext.count(ExternalCall::SetPassword),
        crate::service::MAX_WRITE_ATTEMPTS as usize
    );
    // The password may have changed: the link is never live again, not even after the lease.
    for _ in 0..2 {
        assert_eq!(
            h.service.inspect_token(&t, &secret).await,
            Err(CoreError::TokenGone)
        );
        assert_eq!(
            h.service
                .check_reset_password(&t, &secret, &pw(GOOD3))
                .await,
            Err(CoreError::TokenGone)
        );
        assert_eq!(
            h.service
                .complete_reset(&t, &secret, &pw(GOOD3), None)
                .await,
            Err(CoreError::TokenGone)
        );
        h.clock.advance_secs(EXTERNAL_CLAIM_LEASE_SECS + 1);
    }
    assert_eq!(ext.count(ExternalCall::SetPassword), 3, "no later write");
}

#[tokio::test]
async fn fault_the_local_consume_fails_after_the_directory_changed_the_password() {
    let (h, t, ext) = directory().await;
    let secret = alice_link(&h, &t).await;
    h.store.fail(
        "change_password",
        StoreError::Unavailable("disk full".into()),
    );
    let e = h
        .service
        .complete_reset(&t, &secret, &pw(GOOD2), None)
        .await;
    assert!(matches!(e, Err(CoreError::Unavailable(_))), "{e:?}");
    h.store.heal();
    assert_eq!(
        ext.password_of(UUID).as_deref(),
        Some(GOOD2),
        "new password"
    );
    assert_eq!(
        h.service.inspect_token(&t, &secret).await,
        Err(CoreError::TokenGone),
        "a changed password never leaves a live token"
    );
    assert_eq!(
        h.service
            .complete_reset(&t, &secret, &pw(GOOD3), None)
            .await,
        Err(CoreError::TokenGone)
    );
    assert_eq!(ext.password_of(UUID).as_deref(), Some(GOOD2));
}

#[tokio::test]
async fn two_completions_at_once_have_one_winner_and_one_write() {
    let (h, t, ext) = directory().await;
    let secret = alice_link(&h, &t).await;
    let (p2, p3) = (pw(GOOD2), pw(GOOD3));
    let (a, b) = tokio::join!(
        h.service.complete_reset(&t, &secret, &p2, None),
        h.service.complete_reset(&t, &secret, &p3, None),
    );
    let wins = [&a, &b].iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "{a:?} {b:?}");
    assert!([a, b].into_iter().any(|r| r == Err(CoreError::TokenGone)));
    assert_eq!(ext.count(ExternalCall::SetPassword), 1);
}

#[tokio::test]
async fn an_account_gone_from_the_directory_makes_the_link_gone() {
    let (h, t, ext) = directory().await;
    let secret = alice_link(&h, &t).await;
    ext.remove(UUID);
    assert_eq!(
        h.service
            .complete_reset(&t, &secret, &pw(GOOD2), None)
            .await,
        Err(CoreError::TokenGone)
    );
    assert_eq!(ext.count(ExternalCall::SetPassword), 0);
}

#[tokio::test]
async fn an_administrators_set_writes_to_the_directory_first() {
    let (h, t, ext) = directory().await;
    alice_link(&h, &t).await;
    let id = shadow_id(&t, UUID);
    ext.fail(
        ExternalCall::SetPassword,
        ExternalError::Refused("too young".into()),
        1,
    );
    let e = h
        .service
        .admin_set_password(&t, &id, &pw(GOOD2), true, true, &Actor::Cli, None)
        .await;
    assert!(matches!(e, Err(CoreError::Policy(_))), "{e:?}");
    assert_eq!(shadow(&h, &t).await.password_changed_at, None);
    h.service
        .admin_set_password(&t, &id, &pw(GOOD2), true, true, &Actor::Cli, None)
        .await
        .unwrap();
    assert_eq!(ext.password_of(UUID).as_deref(), Some(GOOD2));
    let s = shadow(&h, &t).await;
    assert!(s.must_change_password);
    assert_eq!(s.password_hash, None);
}

#[tokio::test]
async fn a_login_is_checked_by_the_directory_with_resetds_counters() {
    let settings = TenantSettings {
        lockout_threshold: 2,
        ..TenantSettings::default()
    };
    let (h, t, ext) = directory().await;
    h.service
        .update_tenant_settings(&t, settings)
        .await
        .unwrap();
    let ok = h
        .service
        .authenticate(&t, &login("alice"), &pw(GOOD), None)
        .await
        .unwrap();
    assert_eq!(ok.person.id, shadow_id(&t, UUID));
    assert!(!ok.must_change_password);
    assert_eq!(h.hasher.counts().verifies, 0, "no local hash checked");

    // The directory down: not a failure, and the reserved attempt is given back.
    for _ in 0..3 {
        ext.fail(
            ExternalCall::VerifyPassword,
            ExternalError::Unavailable("down".into()),
            1,
        );
        let e = h
            .service
            .authenticate(&t, &login("alice"), &pw(GOOD), None)
            .await;
        assert!(matches!(e, Err(CoreError::Unavailable(_))), "{e:?}");
    }
    assert_eq!(shadow(&h, &t).await.failed_logins, 0);

    let wrong = h
        .service
        .authenticate(&t, &login("alice"), &pw(GOOD2), None)
        .await;
    assert_eq!(wrong, Err(CoreError::BadCredentials));
    let unknown = h
        .service
        .authenticate(&t, &login("nobody"), &pw(GOOD2), None)
        .await;
    assert_eq!(unknown, Err(CoreError::BadCredentials));
    let _ = h
        .service
        .authenticate(&t, &login("alice"), &pw(GOOD2), None)
        .await;
    let locked = h
        .service
        .authenticate(&t, &login("alice"), &pw(GOOD), None)
        .await;
    assert!(
        matches!(locked, Err(CoreError::Locked { .. })),
        "{locked:?}"
    );
}

#[tokio::test]
async fn must_change_comes_from_the_shadow_row() {
    let (h, t, _ext) = directory().await;
    alice_link(&h, &t).await;
    let id = shadow_id(&t, UUID);
    h.service
        .admin_set_password(&t, &id, &pw(GOOD2), false, true, &Actor::Cli, None)
        .await
        .unwrap();
    let ok = h
        .service
        .authenticate(&t, &login("alice"), &pw(GOOD2), None)
        .await
        .unwrap();
    assert!(ok.must_change_password);
}

#[tokio::test]
async fn a_sink_keeps_the_local_hash_and_must_accept_before_the_token_is_consumed() {
    let ext = Arc::new(MemoryExternal::sink());
    let t = TenantId::parse("acme").unwrap();
    let h = Harness::new()
        .unwrap()
        .with_external(t.clone(), ext.clone());
    h.service
        .create_tenant(t.clone(), TenantSettings::default())
        .await
        .unwrap();
    let p = person(&h, &t, "alice").await;
    ext.add(
        ExternalAccount {
            stable_id: p.id.as_str().into(),
            locator: p.id.as_str().into(),
            login: "alice".into(),
            email: Some("alice@example.com".into()),
            display_name: None,
            enabled: true,
        },
        GOOD,
    );
    let secret = reset_link(&h, &t, &p).await;
    ext.fail(
        ExternalCall::SetPassword,
        ExternalError::Refused("rejected by the application".into()),
        1,
    );
    let e = h
        .service
        .complete_reset(&t, &secret, &pw(GOOD2), None)
        .await;
    assert!(matches!(e, Err(CoreError::Policy(_))), "{e:?}");
    let stored = h.store.get_person(&t, &p.id).await.unwrap().unwrap();
    assert_eq!(stored.password_hash, p.password_hash, "unchanged");
    assert!(h.service.inspect_token(&t, &secret).await.is_ok());

    h.service
        .complete_reset(&t, &secret, &pw(GOOD2), None)
        .await
        .unwrap();
    assert_eq!(ext.password_of(p.id.as_str()).as_deref(), Some(GOOD2));
    // resetd still authenticates the sink's people itself, with its own hash.
    h.service
        .authenticate(&t, &login("alice"), &pw(GOOD2), None)
        .await
        .unwrap();
    assert_eq!(ext.count(ExternalCall::VerifyPassword), 0);
}

#[tokio::test]
async fn local_only_paths_are_refused_for_a_directory_tenant() {
    let (h, t, _ext) = directory().await;
    let e = h
        .service
        .import_people(&t, vec![], false, &Actor::Cli)
        .await;
    assert!(matches!(e, Err(CoreError::Invalid(_))), "{e:?}");
    let input = NewPersonInput {
        login: login("mallory"),
        email: Email::parse("m@example.com").unwrap(),
        display_name: None,
        locale: None,
        enabled: true,
        verified: false,
        roles: vec![],
        attributes: serde_json::json!({}),
        password: None,
    };
    let e = h.service.create_person(&t, input, &Actor::Cli).await;
    assert!(matches!(e, Err(CoreError::Invalid(_))), "{e:?}");
}

#[tokio::test]
async fn the_store_keeps_a_claimed_token_out_of_every_path() {
    let (h, t, _ext) = directory().await;
    let secret = alice_link(&h, &t).await;
    let s = shadow(&h, &t).await;
    // A password change without the claim cannot consume a claimed token.
    let claim = crate::ports::ClaimId::generate();
    crate::ports::Recovery::claim_token(
        h.store.as_ref(),
        secret.hash(),
        &claim,
        h.service.now(),
        h.service.now().plus_secs(60),
    )
    .await
    .unwrap();
    let change = crate::ports::PasswordChange {
        tenant: t.clone(),
        person: s.id.clone(),
        token: Some(secret.hash()),
        claim: None,
        new_hash: None,
        must_change_password: false,
        unlock: false,
        keep_history: 0,
        at: h.service.now(),
        message: None,
        audit: crate::model::NewAudit {
            tenant: t.clone(),
            person: None,
            kind: "reset_completed",
            actor: "test".into(),
            ip: None,
            at: h.service.now(),
            detail: serde_json::json!({}),
        },
    };
    assert_eq!(
        h.store.change_password(change).await,
        Err(StoreError::TokenGone)
    );
}

#[tokio::test]
async fn an_unknown_login_costs_what_a_wrong_password_costs() {
    let (h, t, ext) = directory().await;
    // Alice's shadow row exists (she signed in once), as it would for any real account.
    h.service
        .authenticate(&t, &login("alice"), &pw(GOOD), None)
        .await
        .unwrap();
    let mut work = Vec::new();
    for name in ["alice", "nobody"] {
        let external_before = ext.calls().len();
        h.store.clear_calls();
        let answer = h
            .service
            .authenticate(&t, &login(name), &pw(GOOD2), None)
            .await;
        assert_eq!(answer, Err(CoreError::BadCredentials), "{name}");
        let external: Vec<ExternalCall> = ext.calls()[external_before..]
            .iter()
            .map(|c| c.call)
            .collect();
        work.push((external, h.store.calls()));
    }
    let (alice, nobody) = (&work[0], &work[1]);
    assert_eq!(
        alice.0,
        [ExternalCall::FindAccount, ExternalCall::VerifyPassword]
    );
    assert_eq!(
        nobody.0,
        [ExternalCall::FindAccount, ExternalCall::VerifyNobody]
    );
    assert_eq!(
        alice.1, nobody.1,
        "the same store calls: no shadow write for a wrong password"
    );
    assert!(!alice.1.contains(&"upsert_shadow_person"), "{:?}", alice.1);

    // A directory that cannot answer the bind for nobody is unavailable, as it is for alice.
    ext.fail(
        ExternalCall::VerifyNobody,
        ExternalError::Unavailable("down".into()),
        1,
    );
    let e = h
        .service
        .authenticate(&t, &login("nobody"), &pw(GOOD2), None)
        .await;
    assert!(matches!(e, Err(CoreError::Unavailable(_))), "{e:?}");
}
