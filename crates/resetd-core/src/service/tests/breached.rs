//! The breach-corpus check: every password set and check consults the index, with the tenant's
//! threshold, and fails closed when the index cannot be read.

use std::collections::HashMap;
use std::sync::Arc;

use super::*;
use crate::error::CoreError;
use crate::policy::PolicyMode;
use crate::ports::{password_sha1, BreachError, BreachedPasswords, RangeEntry};

/// Not common to zxcvbn, so only the corpus refuses it.
const LEAKED: &str = "amber kettle nocturne 58";

struct Corpus {
    counts: HashMap<[u8; 20], u32>,
    broken: bool,
}

impl BreachedPasswords for Corpus {
    fn count(&self, sha1: &[u8; 20]) -> Result<Option<u32>, BreachError> {
        if self.broken {
            return Err(BreachError("read failed".into()));
        }
        Ok(self.counts.get(sha1).copied())
    }

    fn range(&self, prefix: u32) -> Result<Option<Vec<RangeEntry>>, BreachError> {
        let mut v: Vec<RangeEntry> = self
            .counts
            .iter()
            .filter(|(h, _)| u32::from_be_bytes([0, h[0], h[1], h[2]]) >> 4 == prefix)
            .map(|(h, c)| RangeEntry {
                sha1: *h,
                count: *c,
            })
            .collect();
        v.sort_by_key(|e| e.sha1);
        Ok(Some(v))
    }
}

fn corpus(entries: &[(&str, u32)], broken: bool) -> Arc<Corpus> {
    Arc::new(Corpus {
        counts: entries
            .iter()
            .map(|(p, c)| (password_sha1(&pw(p)), *c))
            .collect(),
        broken,
    })
}

async fn with_corpus(settings: TenantSettings, c: Arc<Corpus>) -> (Harness, TenantId) {
    let h = Harness::new().unwrap();
    let Harness {
        service,
        store,
        clock,
        hasher,
        renderer,
    } = h;
    let h = Harness {
        service: service.with_breached(c),
        store,
        clock,
        hasher,
        renderer,
    };
    let t = TenantId::parse("acme").unwrap();
    h.service.create_tenant(t.clone(), settings).await.unwrap();
    (h, t)
}

fn codes(e: &CoreError) -> Vec<&'static str> {
    match e {
        CoreError::Policy(v) => v.violations.iter().map(|v| v.code).collect(),
        other => panic!("not a policy error: {other:?}"),
    }
}

#[tokio::test]
async fn a_breached_password_is_refused_on_every_set_and_reported_by_the_check() {
    let (h, t) = with_corpus(TenantSettings::default(), corpus(&[(LEAKED, 3)], false)).await;
    let alice = person(&h, &t, "alice").await;

    let v = h
        .service
        .check_password(&t, &pw(LEAKED), None)
        .await
        .unwrap();
    assert_eq!(
        v.violations.iter().map(|v| v.code).collect::<Vec<_>>(),
        ["breached"]
    );
    assert!(v.score <= 1);
    assert!(h
        .service
        .check_password(&t, &pw(GOOD2), None)
        .await
        .unwrap()
        .is_ok());

    let admin = Actor::ApiKey("k1".into());
    let e = h
        .service
        .admin_set_password(&t, &alice.id, &pw(LEAKED), false, false, &admin, None)
        .await
        .unwrap_err();
    assert_eq!(codes(&e), ["breached"]);

    let secret = reset_link(&h, &t, &alice).await;
    let v = h
        .service
        .check_reset_password(&t, &secret, &pw(LEAKED))
        .await
        .unwrap();
    assert!(!v.is_ok());
    let e = h
        .service
        .complete_reset(&t, &secret, &pw(LEAKED), None)
        .await
        .unwrap_err();
    assert_eq!(codes(&e), ["breached"]);
    // The refusal did not use the token.
    h.service
        .complete_reset(&t, &secret, &pw(GOOD2), None)
        .await
        .unwrap();

    let e = h
        .service
        .create_person(
            &t,
            NewPersonInput {
                login: login("bob"),
                email: Email::parse("bob@example.com").unwrap(),
                display_name: None,
                locale: None,
                enabled: true,
                verified: false,
                roles: vec![],
                attributes: serde_json::json!({}),
                password: Some(pw(LEAKED)),
            },
            &Actor::Cli,
        )
        .await
        .unwrap_err();
    assert_eq!(codes(&e), ["breached"]);
}

#[tokio::test]
async fn the_threshold_is_per_tenant_and_zero_turns_the_check_off() {
    let c = corpus(&[(LEAKED, 3)], false);
    let (h, t) = with_corpus(
        TenantSettings {
            breached_min_count: 4,
            ..Default::default()
        },
        c.clone(),
    )
    .await;
    assert!(h
        .service
        .check_password(&t, &pw(LEAKED), None)
        .await
        .unwrap()
        .is_ok());
    let (h, t) = with_corpus(
        TenantSettings {
            breached_min_count: 3,
            ..Default::default()
        },
        c.clone(),
    )
    .await;
    assert!(!h
        .service
        .check_password(&t, &pw(LEAKED), None)
        .await
        .unwrap()
        .is_ok());
    let (h, t) = with_corpus(
        TenantSettings {
            breached_min_count: 0,
            ..Default::default()
        },
        c,
    )
    .await;
    assert!(h
        .service
        .check_password(&t, &pw(LEAKED), None)
        .await
        .unwrap()
        .is_ok());
}

#[tokio::test]
async fn without_an_index_nothing_changes() {
    let (h, t) = setup().await;
    assert!(h
        .service
        .check_password(&t, &pw(LEAKED), None)
        .await
        .unwrap()
        .is_ok());
    assert_eq!(h.service.breached_range(&t, 0x21bd1).await, Ok(None));
}

#[tokio::test]
async fn an_unreadable_index_refuses_the_set_instead_of_skipping_the_check() {
    let (h, t) = with_corpus(TenantSettings::default(), corpus(&[], true)).await;
    let alice = person_with(&h, &t, "alice", None).await;
    let e = h
        .service
        .admin_set_password(&t, &alice.id, &pw(GOOD), false, false, &Actor::Cli, None)
        .await
        .unwrap_err();
    assert!(matches!(e, CoreError::Internal(_)), "{e:?}");
}

#[tokio::test]
async fn the_owasp_rules_come_first_then_the_corpus() {
    let (h, t) = with_corpus(
        TenantSettings::default(),
        corpus(&[("Zq7-Vx2!Lm", 1), ("short", 1)], false),
    )
    .await;
    let v = h
        .service
        .check_password_with(&t, &pw("Zq7-Vx2!Lm"), None, Some(PolicyMode::Owasp))
        .await
        .unwrap();
    assert_eq!(
        v.violations.iter().map(|v| v.code).collect::<Vec<_>>(),
        ["breached"]
    );
    let v = h
        .service
        .check_password_with(&t, &pw("short"), None, Some(PolicyMode::Owasp))
        .await
        .unwrap();
    assert!(!v.violations.iter().any(|v| v.code == "breached"), "{v:?}");
}

#[tokio::test]
async fn the_range_lists_the_prefix_in_hash_order() {
    let (h, t) = with_corpus(
        TenantSettings::default(),
        corpus(&[("P@ssw0rd", 52579)], false),
    )
    .await;
    let r = h
        .service
        .breached_range(&t, 0x21bd1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].count, 52579);
    assert!(h
        .service
        .breached_range(&t, 0x21bd2)
        .await
        .unwrap()
        .unwrap()
        .is_empty());
}

/// A person whose password was set before the corpus knew it well enough (count 2 under a
/// threshold of 3), on a tenant then switched to threshold 2 with `settings` applied.
async fn known_leaked_login(check_at_login: bool) -> (Harness, TenantId, Login) {
    let c = corpus(&[(LEAKED, 2)], false);
    let strict = TenantSettings {
        breached_min_count: 3,
        ..Default::default()
    };
    let (h, t) = with_corpus(strict, c).await;
    let input = NewPersonInput {
        login: login("carol"),
        email: Email::parse("carol@example.com").unwrap(),
        display_name: None,
        locale: None,
        enabled: true,
        verified: false,
        roles: vec![],
        attributes: serde_json::json!({}),
        password: Some(pw(LEAKED)),
    };
    h.service
        .create_person(&t, input, &Actor::Cli)
        .await
        .unwrap();
    h.service
        .update_tenant_settings(
            &t,
            TenantSettings {
                breached_min_count: 2,
                breached_check_at_login: check_at_login,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    (h, t, login("carol"))
}

#[tokio::test]
async fn a_login_with_a_breached_password_must_change_it_when_the_tenant_asks() {
    let (h, t, carol) = known_leaked_login(true).await;
    let a = h
        .service
        .authenticate(&t, &carol, &pw(LEAKED), Some("192.0.2.7"))
        .await
        .unwrap();
    assert!(a.must_change_password && a.person.must_change_password);
    let kinds = audit_kinds(&h, &t).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "breached_at_login").count(),
        1
    );
    // Audited once: the next login already knows.
    let again = h
        .service
        .authenticate(&t, &carol, &pw(LEAKED), None)
        .await
        .unwrap();
    assert!(again.must_change_password);
    let kinds = audit_kinds(&h, &t).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "breached_at_login").count(),
        1
    );
}

#[tokio::test]
async fn a_login_with_a_breached_password_is_left_alone_unless_the_tenant_asks() {
    let (h, t, carol) = known_leaked_login(false).await;
    let a = h
        .service
        .authenticate(&t, &carol, &pw(LEAKED), None)
        .await
        .unwrap();
    assert!(!a.must_change_password);
    assert!(!audit_kinds(&h, &t)
        .await
        .iter()
        .any(|k| k == "breached_at_login"));
}
