//! Using a reset token: its lifetime, single use, and what setting the password with it does.

use super::*;
use crate::error::CoreError;
use crate::model::Clock as _;
use crate::model::MessageKind;
use crate::policy::PolicyMode;
use crate::ports::{Credentials as _, Directory, Recovery};
use crate::service::CompleteOptions;
use crate::testing::T0;

const GOOD4: &str = "brisk walnut meadow 88";

fn codes(e: &CoreError) -> Vec<&'static str> {
    match e {
        CoreError::Policy(v) => v.violations.iter().map(|v| v.code).collect(),
        other => panic!("not a policy refusal: {other:?}"),
    }
}

#[tokio::test]
async fn a_token_lives_until_its_expiry_and_not_a_millisecond_longer() {
    let (h, t) = setup().await; // 30 minutes
    let p = person(&h, &t, "alice").await;
    let secret = reset_link(&h, &t, &p).await;
    let info = h.service.inspect_token(&t, &secret).await.unwrap();
    assert_eq!(
        (info.issued_at, info.expires_at, info.min_password_length),
        (T0, T0.plus_secs(1800), 8)
    );
    assert_eq!(info.person.id, p.id);

    h.clock.set(T0.plus_secs(1800));
    h.clock.advance_ms(-1);
    assert!(h.service.inspect_token(&t, &secret).await.is_ok());
    h.clock.advance_ms(1);
    assert_eq!(
        h.service.inspect_token(&t, &secret).await,
        Err(CoreError::TokenGone)
    );
    assert_eq!(
        h.service
            .complete_reset(&t, &secret, &pw(GOOD2), None)
            .await,
        Err(CoreError::TokenGone)
    );
    let stored = h.store.get_person(&t, &p.id).await.unwrap().unwrap();
    assert_eq!(stored.password_hash, p.password_hash, "nothing changed");
}

#[tokio::test]
async fn a_token_is_single_use_and_sets_the_password() {
    let (h, t) = setup().await;
    let p = person(&h, &t, "alice").await;
    let secret = reset_link(&h, &t, &p).await;
    h.clock.advance_secs(5);

    let done = h
        .service
        .complete_reset(&t, &secret, &pw(GOOD2), Some("192.0.2.8"))
        .await
        .unwrap();
    let stored = h.store.get_person(&t, &p.id).await.unwrap().unwrap();
    assert_eq!(done, stored, "the answer is the person as now stored");
    assert_eq!(stored.password_changed_at, Some(T0.plus_secs(5)));
    assert_ne!(stored.password_hash, p.password_hash);
    let token = h.store.find_token(secret.hash()).await.unwrap().unwrap();
    assert_eq!(token.used_at, Some(T0.plus_secs(5)));

    assert_eq!(
        h.service
            .complete_reset(&t, &secret, &pw(GOOD3), None)
            .await,
        Err(CoreError::TokenGone)
    );
    assert_eq!(
        h.service.inspect_token(&t, &secret).await,
        Err(CoreError::TokenGone)
    );
    // The new password works, the old one does not.
    assert!(h
        .service
        .authenticate(&t, &p.login, &pw(GOOD2), None)
        .await
        .is_ok());
    assert_eq!(
        h.service.authenticate(&t, &p.login, &pw(GOOD), None).await,
        Err(CoreError::BadCredentials)
    );
    // A notice went out, and the completion was audited once.
    let out = outbox(&h, &t).await;
    let notices: Vec<_> = out
        .iter()
        .filter(|m| m.message.kind == MessageKind::PasswordChanged)
        .collect();
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].message.recipient, p.email);
    assert_eq!(
        notices[0].message.deliver_by,
        T0.plus_secs(5)
            .plus_secs(crate::service::DEFAULT_NOTICE_RETRY_SECS)
    );
    let events = h.service.audit_log(&t, None, 1000).await.unwrap();
    let completed: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "reset_completed")
        .collect();
    assert_eq!(completed.len(), 1);
    assert_eq!(
        (completed[0].person.as_deref(), completed[0].ip.as_deref()),
        (Some(p.id.as_str()), Some("192.0.2.8"))
    );
    assert_eq!(completed[0].actor, "anonymous");
}

#[tokio::test]
async fn a_password_change_voids_every_other_token_of_the_person() {
    let (h, t) = with(crate::model::TenantSettings {
        cooldown_secs: 0,
        ..Default::default()
    })
    .await;
    let p = person(&h, &t, "alice").await;
    let q = person(&h, &t, "bob").await;
    let first = reset_link(&h, &t, &p).await;
    let bobs = reset_link(&h, &t, &q).await;
    h.clock.advance_secs(1);
    let second = reset_link(&h, &t, &p).await;
    assert_eq!(
        h.service.inspect_token(&t, &first).await,
        Err(CoreError::TokenGone),
        "a newer token supersedes"
    );
    // An administrator's change voids the live one.
    h.clock.advance_secs(1);
    h.service
        .admin_set_password(&t, &p.id, &pw(GOOD2), false, false, &Actor::Cli, None)
        .await
        .unwrap();
    let token = h.store.find_token(second.hash()).await.unwrap().unwrap();
    assert_eq!(token.revoked_at, Some(T0.plus_secs(2)));
    assert_eq!(
        h.service
            .complete_reset(&t, &second, &pw(GOOD3), None)
            .await,
        Err(CoreError::TokenGone)
    );
    // So does completing a reset; another person's token is left alone.
    h.clock.advance_secs(1);
    let third = reset_link(&h, &t, &p).await;
    h.service
        .complete_reset(&t, &third, &pw(GOOD3), None)
        .await
        .unwrap();
    assert!(h.service.inspect_token(&t, &bobs).await.is_ok());
    assert_eq!(
        h.service
            .complete_reset(&t, &bobs, &pw(GOOD3), None)
            .await
            .map(|p| p.id),
        Ok(q.id)
    );
}

#[tokio::test]
async fn a_token_issued_before_the_last_password_change_is_void() {
    let (h, t) = setup().await;
    // An imported account with a foreign hash: a re-import may replace it, which changes the
    // password without going through the tokens.
    let p = person_with(&h, &t, "legacy", None).await;
    let mut row = h.store.get_person(&t, &p.id).await.unwrap().unwrap();
    let audit = |at| crate::model::NewAudit {
        tenant: t.clone(),
        person: None,
        kind: "people_imported",
        actor: "cli".into(),
        ip: None,
        at,
        detail: serde_json::json!({}),
    };
    row.password_hash = Some("$2b$10$first".into());
    row.password_changed_at = Some(T0);
    h.store
        .upsert_people(&[row.clone()], audit(T0))
        .await
        .unwrap();
    let secret = reset_link(&h, &t, &p).await;
    assert!(h.service.inspect_token(&t, &secret).await.is_ok());

    h.clock.advance_secs(2);
    row.password_hash = Some("$2b$10$second".into());
    row.password_changed_at = Some(h.clock.now());
    h.store
        .upsert_people(&[row], audit(h.clock.now()))
        .await
        .unwrap();
    let token = h.store.find_token(secret.hash()).await.unwrap().unwrap();
    assert_eq!((token.used_at, token.revoked_at), (None, None));
    assert_eq!(
        h.service.inspect_token(&t, &secret).await,
        Err(CoreError::TokenGone),
        "older than the password it would replace"
    );
    assert_eq!(
        h.service
            .complete_reset(&t, &secret, &pw(GOOD2), None)
            .await,
        Err(CoreError::TokenGone)
    );
}

#[tokio::test]
async fn the_policy_refuses_with_every_violation_and_only_for_a_live_token() {
    let (h, t) = setup().await;
    let p = person(&h, &t, "alice").await;
    let secret = reset_link(&h, &t, &p).await;

    let e = h
        .service
        .complete_reset(&t, &secret, &pw("alice"), None)
        .await
        .unwrap_err();
    assert_eq!(codes(&e), ["too_short", "common", "personal"]);
    let e = h
        .service
        .complete_reset(&t, &secret, &pw("password1234"), None)
        .await
        .unwrap_err();
    assert_eq!(codes(&e), ["common"]);
    let e = h
        .service
        .complete_reset(&t, &secret, &pw("alice@example.com rocks 99"), None)
        .await
        .unwrap_err();
    assert_eq!(codes(&e), ["personal"], "the email address is personal too");
    assert!(
        h.service.inspect_token(&t, &secret).await.is_ok(),
        "a refusal keeps the token"
    );
    assert_eq!(
        h.hasher.counts().hashes,
        1,
        "refused passwords are never hashed (1: the creation)"
    );

    // A dead token is reported before any verdict, so the policy never reaches a stranger.
    let stranger = ResetSecret::generate();
    assert_eq!(
        h.service
            .complete_reset(&t, &stranger, &pw("x"), None)
            .await,
        Err(CoreError::TokenGone)
    );
    let verdict = h
        .service
        .check_reset_password(&t, &secret, &pw("alice2024"))
        .await
        .unwrap();
    assert!(verdict.violations.iter().any(|v| v.code == "personal"));
    assert!(
        h.service.inspect_token(&t, &secret).await.is_ok(),
        "checking uses nothing"
    );

    // A surface's own rule set replaces the tenant's.
    let owasp = CompleteOptions {
        holder: None,
        mode: Some(PolicyMode::Owasp),
    };
    let e = h
        .service
        .complete_reset_with(&t, &secret, &pw(GOOD2), &owasp, None)
        .await
        .unwrap_err();
    assert!(codes(&e).contains(&"no_uppercase"), "{e:?}");
}

#[tokio::test]
async fn a_token_for_another_holder_or_a_disabled_person_is_gone() {
    let (h, t) = setup().await;
    let p = person(&h, &t, "alice").await;
    let q = person(&h, &t, "bob").await;
    let secret = reset_link(&h, &t, &p).await;
    let not_hers = CompleteOptions {
        holder: Some(Lookup::login(&q.login)),
        mode: None,
    };
    assert_eq!(
        h.service
            .complete_reset_with(&t, &secret, &pw(GOOD2), &not_hers, None)
            .await,
        Err(CoreError::TokenGone)
    );
    set_enabled(&h, &t, &p, false).await;
    assert_eq!(
        h.service.inspect_token(&t, &secret).await,
        Err(CoreError::TokenGone)
    );
    set_enabled(&h, &t, &p, true).await;
    let hers = CompleteOptions {
        holder: Some(Lookup::login(&p.login)),
        mode: None,
    };
    assert!(h
        .service
        .complete_reset_with(&t, &secret, &pw(GOOD2), &hers, None)
        .await
        .is_ok());
    // Another tenant's service never sees it.
    let beta = TenantId::parse("beta").unwrap();
    h.service
        .create_tenant(beta.clone(), Default::default())
        .await
        .unwrap();
    let other = reset_link(&h, &t, &q).await;
    assert_eq!(
        h.service.inspect_token(&beta, &other).await,
        Err(CoreError::TokenGone)
    );
}

#[tokio::test]
async fn previous_passwords_are_refused_as_far_back_as_the_history_goes() {
    let (h, t) = with(crate::model::TenantSettings {
        password_history: 2,
        cooldown_secs: 0,
        ..Default::default()
    })
    .await;
    let p = person(&h, &t, "alice").await; // GOOD
    let set = |new: &'static str| {
        let (h, t, p) = (&h, &t, &p);
        async move {
            let secret = reset_link(h, t, p).await;
            h.service.complete_reset(t, &secret, &pw(new), None).await
        }
    };
    let reused = |r: Result<Person, CoreError>| matches!(&r, Err(e @ CoreError::Policy(_)) if codes(e) == ["reused"]);
    assert!(reused(set(GOOD).await), "the current password");
    set(GOOD2).await.unwrap();
    assert!(reused(set(GOOD).await), "the one before");
    set(GOOD3).await.unwrap();
    assert!(reused(set(GOOD).await), "two back");
    set(GOOD4).await.unwrap();
    // The history holds two: GOOD has dropped out.
    assert_eq!(
        h.store.password_history(&t, &p.id, 10).await.unwrap().len(),
        2
    );
    assert!(set(GOOD).await.is_ok(), "three back is allowed again");
}

#[tokio::test]
async fn a_reset_clears_must_change_and_unlocks_when_the_tenant_says_so() {
    for unlocks in [true, false] {
        let (h, t) = with(crate::model::TenantSettings {
            lockout_threshold: 2,
            reset_unlocks: unlocks,
            ..Default::default()
        })
        .await;
        let p = person(&h, &t, "alice").await;
        h.service
            .admin_set_password(&t, &p.id, &pw(GOOD2), false, true, &Actor::Cli, None)
            .await
            .unwrap();
        let ok = h.service.authenticate(&t, &p.login, &pw(GOOD2), None).await;
        assert!(ok.unwrap().must_change_password);
        for _ in 0..2 {
            let wrong = h
                .service
                .authenticate(&t, &p.login, &pw("wrong"), None)
                .await;
            assert_eq!(wrong, Err(CoreError::BadCredentials));
        }
        let secret = reset_link(&h, &t, &p).await;
        let done = h
            .service
            .complete_reset(&t, &secret, &pw(GOOD3), None)
            .await
            .unwrap();
        assert!(!done.must_change_password);
        let after = h.service.authenticate(&t, &p.login, &pw(GOOD3), None).await;
        if unlocks {
            assert_eq!((done.failed_logins, done.locked_until), (0, None));
            assert!(!after.unwrap().must_change_password);
        } else {
            assert!(done.locked_until.is_some());
            assert!(matches!(after, Err(CoreError::Locked { .. })), "{after:?}");
        }
    }
}
