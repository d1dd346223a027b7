//! Passwords outside a reset: logging in, the lockout, unlocking, an administrator's set, and
//! checking a candidate.

use super::*;
use crate::error::CoreError;
use crate::model::{MessageKind, NewAudit, TenantSettings};
use crate::ports::Directory;
use crate::testing::{HashCounts, T0};

/// Threshold 3, a 15-minute lock.
async fn locking() -> (Harness, TenantId) {
    with(TenantSettings {
        lockout_threshold: 3,
        lockout_secs: 900,
        ..Default::default()
    })
    .await
}

/// Verifications (real or dummy) since `before`.
fn verifications(h: &Harness, before: HashCounts) -> (u32, u32) {
    let now = h.hasher.counts();
    (now.verifies - before.verifies, now.dummies - before.dummies)
}

#[tokio::test]
async fn every_login_costs_exactly_one_verification_whoever_it_names() {
    let (h, t) = locking().await;
    let alice = person(&h, &t, "alice").await;
    let dora = person(&h, &t, "dora").await;
    set_enabled(&h, &t, &dora, false).await;
    person_with(&h, &t, "nopass", None).await;

    let cases = [
        ("alice", GOOD, Ok(()), (1, 0)),
        ("alice", "wrong", Err(CoreError::BadCredentials), (1, 0)),
        ("nobody", GOOD, Err(CoreError::BadCredentials), (0, 1)),
        ("dora", GOOD, Err(CoreError::BadCredentials), (0, 1)),
        ("nopass", GOOD, Err(CoreError::BadCredentials), (0, 1)),
    ];
    for (name, password, expected, cost) in cases {
        let before = h.hasher.counts();
        let got = h
            .service
            .authenticate(&t, &login(name), &pw(password), None)
            .await;
        assert_eq!(
            got.map(|a| a.person.id),
            expected.map(|()| alice.id.clone()),
            "{name}"
        );
        assert_eq!(verifications(&h, before), cost, "{name}");
    }
}

#[tokio::test]
async fn a_success_returns_the_person_and_forgets_the_failures() {
    let (h, t) = locking().await;
    let alice = person(&h, &t, "alice").await;
    for _ in 0..2 {
        let wrong = h
            .service
            .authenticate(&t, &alice.login, &pw("x"), None)
            .await;
        assert_eq!(wrong, Err(CoreError::BadCredentials));
    }
    let stored = h.store.get_person(&t, &alice.id).await.unwrap().unwrap();
    assert_eq!((stored.failed_logins, stored.locked_until), (2, None));
    let ok = h
        .service
        .authenticate(&t, &alice.login, &pw(GOOD), None)
        .await
        .unwrap();
    assert!(!ok.must_change_password);
    assert_eq!(
        (ok.person.id.clone(), ok.person.failed_logins),
        (alice.id, 0)
    );
    // Counted afresh: two more failures do not lock.
    for _ in 0..2 {
        let wrong = h
            .service
            .authenticate(&t, &alice.login, &pw("x"), None)
            .await;
        assert_eq!(wrong, Err(CoreError::BadCredentials));
    }
    assert!(h
        .service
        .authenticate(&t, &alice.login, &pw(GOOD), None)
        .await
        .is_ok());
}

#[tokio::test]
async fn the_threshold_locks_the_login_until_the_lock_ends() {
    let (h, t) = locking().await;
    let alice = person(&h, &t, "alice").await;
    for _ in 0..3 {
        let wrong = h
            .service
            .authenticate(&t, &alice.login, &pw("x"), Some("192.0.2.3"))
            .await;
        assert_eq!(
            wrong,
            Err(CoreError::BadCredentials),
            "the locking attempt is checked too"
        );
    }
    let events = h.service.audit_log(&t, None, 1).await.unwrap();
    assert_eq!(events[0].kind, "locked");
    assert_eq!(events[0].person.as_deref(), Some(alice.id.as_str()));
    assert_eq!(events[0].detail["failures"], 3);
    let until = T0.plus_secs(900);

    // Locked: even the right password is refused, and not checked.
    h.clock.advance_secs(60);
    let before = h.hasher.counts();
    assert_eq!(
        h.service
            .authenticate(&t, &alice.login, &pw(GOOD), None)
            .await,
        Err(CoreError::Locked { until })
    );
    assert_eq!(verifications(&h, before), (0, 1), "a dummy, for the timing");
    assert_eq!(CoreError::Locked { until }.retry_after(), None);
    h.clock.set(until);
    h.clock.advance_ms(-1);
    assert_eq!(
        h.service
            .authenticate(&t, &alice.login, &pw(GOOD), None)
            .await,
        Err(CoreError::Locked { until })
    );
    h.clock.set(until);
    assert!(h
        .service
        .authenticate(&t, &alice.login, &pw(GOOD), None)
        .await
        .is_ok());
    assert_eq!(
        audit_kinds(&h, &t)
            .await
            .iter()
            .filter(|k| *k == "locked")
            .count(),
        1,
        "locking is audited once"
    );
}

#[tokio::test]
async fn an_unknown_login_locks_like_a_known_one() {
    let (h, t) = locking().await;
    for _ in 0..3 {
        let got = h
            .service
            .authenticate(&t, &login("nobody"), &pw("x"), None)
            .await;
        assert_eq!(got, Err(CoreError::BadCredentials));
    }
    assert!(matches!(
        h.service
            .authenticate(&t, &login("nobody"), &pw("x"), None)
            .await,
        Err(CoreError::Locked { .. })
    ));
    let events = h.service.audit_log(&t, None, 1).await.unwrap();
    assert_eq!(
        (events[0].kind.as_str(), events[0].person.as_deref()),
        ("locked", None)
    );
}

#[tokio::test]
async fn an_unlock_lifts_the_lock_and_is_audited() {
    let (h, t) = locking().await;
    let alice = person(&h, &t, "alice").await;
    for _ in 0..3 {
        let _ = h
            .service
            .authenticate(&t, &alice.login, &pw("x"), None)
            .await;
    }
    let admin = Actor::ApiKey("k1".into());
    h.service
        .unlock(&t, &alice.id, &admin, Some("192.0.2.4"))
        .await
        .unwrap();
    assert!(h
        .service
        .authenticate(&t, &alice.login, &pw(GOOD), None)
        .await
        .is_ok());
    let events = h.service.audit_log(&t, None, 10).await.unwrap();
    let unlocked = events.iter().find(|e| e.kind == "unlocked").unwrap();
    assert_eq!(
        (unlocked.actor.as_str(), unlocked.ip.as_deref()),
        ("api_key:k1", Some("192.0.2.4"))
    );
    let ghost = crate::types::PersonId::generate();
    assert_eq!(
        h.service.unlock(&t, &ghost, &admin, None).await,
        Err(CoreError::NotFound("person"))
    );
}

#[tokio::test]
async fn an_imported_hash_is_replaced_by_argon2id_at_the_first_login() {
    use sha2::Digest as _;
    let (h, t) = setup().await;
    let p = person_with(&h, &t, "legacy", None).await;
    let salt = "pepper";
    let digest = sha2::Sha256::digest(format!("{GOOD}{{{salt}}}").as_bytes());
    let mut row = h.store.get_person(&t, &p.id).await.unwrap().unwrap();
    row.password_hash = Some(format!(
        "alfresco-sha256${salt}${}",
        crate::secret::hex(&digest)
    ));
    row.password_changed_at = Some(T0);
    let audit = NewAudit {
        tenant: t.clone(),
        person: None,
        kind: "people_imported",
        actor: "cli".into(),
        ip: None,
        at: T0,
        detail: serde_json::json!({}),
    };
    h.store.upsert_people(&[row], audit).await.unwrap();

    h.clock.advance_secs(1);
    let hashes = h.hasher.counts().hashes;
    let ok = h
        .service
        .authenticate(&t, &p.login, &pw(GOOD), None)
        .await
        .unwrap();
    assert_eq!(h.hasher.counts().hashes, hashes + 1, "rehashed once");
    let hash = ok.person.password_hash.unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert_eq!(
        ok.person.password_changed_at,
        Some(T0),
        "the password itself did not change: its tokens stay valid"
    );
    assert!(h
        .service
        .authenticate(&t, &p.login, &pw(GOOD), None)
        .await
        .is_ok());
    assert_eq!(h.hasher.counts().hashes, hashes + 1, "no second rehash");
}

#[tokio::test]
async fn an_administrator_sets_a_password_under_the_policy_with_its_flags() {
    let (h, t) = locking().await;
    let alice = person(&h, &t, "alice").await;
    let admin = Actor::ApiKey("k1".into());
    let e = h
        .service
        .admin_set_password(&t, &alice.id, &pw("short"), false, false, &admin, None)
        .await
        .unwrap_err();
    assert!(matches!(e, CoreError::Policy(_)), "{e:?}");
    let ghost = crate::types::PersonId::generate();
    assert_eq!(
        h.service
            .admin_set_password(&t, &ghost, &pw(GOOD2), false, false, &admin, None)
            .await,
        Err(CoreError::NotFound("person"))
    );

    // Without unlocking, a lock stays.
    for _ in 0..3 {
        let _ = h
            .service
            .authenticate(&t, &alice.login, &pw("x"), None)
            .await;
    }
    h.clock.advance_secs(1);
    h.service
        .admin_set_password(&t, &alice.id, &pw(GOOD2), false, true, &admin, None)
        .await
        .unwrap();
    let stored = h.store.get_person(&t, &alice.id).await.unwrap().unwrap();
    assert!(stored.must_change_password);
    assert_eq!(stored.password_changed_at, Some(T0.plus_secs(1)));
    assert!(matches!(
        h.service
            .authenticate(&t, &alice.login, &pw(GOOD2), None)
            .await,
        Err(CoreError::Locked { .. })
    ));
    // Unlocking: the person logs in and is told to change the password.
    h.service
        .admin_set_password(&t, &alice.id, &pw(GOOD3), true, true, &admin, None)
        .await
        .unwrap();
    let ok = h
        .service
        .authenticate(&t, &alice.login, &pw(GOOD3), None)
        .await
        .unwrap();
    assert!(ok.must_change_password);

    let events = h.service.audit_log(&t, None, 100).await.unwrap();
    let sets: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "password_set_by_admin")
        .map(|e| (e.actor.as_str(), e.detail.clone()))
        .collect();
    assert_eq!(
        sets,
        [
            (
                "api_key:k1",
                serde_json::json!({"unlock": true, "must_change_password": true})
            ),
            (
                "api_key:k1",
                serde_json::json!({"unlock": false, "must_change_password": true})
            ),
        ]
    );
    let notices = outbox(&h, &t)
        .await
        .into_iter()
        .filter(|m| m.message.kind == MessageKind::PasswordChanged)
        .count();
    assert_eq!(notices, 2, "the person is told each time");
}

#[tokio::test]
async fn a_candidate_is_judged_with_the_given_login_only() {
    let (h, t) = setup().await;
    person(&h, &t, "alice").await;
    let ok = h.service.check_password(&t, &pw(GOOD), None).await.unwrap();
    assert!(ok.is_ok());
    // "alice" exists, "zed" does not: the verdict depends on the login given, not on who exists.
    for name in ["alice", "zed"] {
        let v = h
            .service
            .check_password(&t, &pw(&format!("{name} {GOOD}")), Some(&login(name)))
            .await
            .unwrap();
        let codes: Vec<_> = v.violations.iter().map(|v| v.code).collect();
        assert_eq!(codes, ["personal"], "{name}");
    }
    assert_eq!(
        h.service
            .check_password(&TenantId::parse("ghost").unwrap(), &pw(GOOD), None)
            .await,
        Err(CoreError::UnknownTenant)
    );
}

#[tokio::test]
async fn a_saturated_hasher_is_overloaded_with_a_retry_hint() {
    let (h, t) = setup().await;
    let alice = person(&h, &t, "alice").await;
    h.hasher.set_overloaded(true);
    let got = h
        .service
        .authenticate(&t, &alice.login, &pw(GOOD), None)
        .await;
    assert_eq!(got, Err(CoreError::Overloaded));
    assert_eq!(CoreError::Overloaded.retry_after(), Some(1));
    assert_eq!(
        h.service.check_password(&t, &pw(GOOD), None).await,
        Err(CoreError::Overloaded)
    );
    h.hasher.set_overloaded(false);
    assert!(h
        .service
        .authenticate(&t, &alice.login, &pw(GOOD), None)
        .await
        .is_ok());
}
