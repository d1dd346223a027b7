//! Accounts: creating, importing and changing them.

use serde_json::json;

use super::*;
use crate::error::CoreError;
use crate::import::ImportRow;
use crate::model::Clock as _;
use crate::service::PersonPatch;

fn row(value: serde_json::Value) -> ImportRow {
    ImportRow::from_json(&value).unwrap()
}

#[tokio::test]
async fn a_person_is_created_under_the_policy_with_a_number_and_an_audit_event() {
    let (h, t) = setup().await;
    let alice = person(&h, &t, "alice").await;
    let bob = person_with(&h, &t, "bob", None).await;
    assert_eq!((alice.number, bob.number), (1, 2));
    assert!(alice.password_hash.is_some() && bob.password_hash.is_none());
    assert_eq!(
        h.service.get_person(&t, &alice.id).await.unwrap(),
        alice,
        "returned as stored"
    );
    let input = |login: &str, password: &str| NewPersonInput {
        login: Login::parse(login).unwrap(),
        email: Email::parse("x@example.com").unwrap(),
        display_name: None,
        locale: None,
        enabled: true,
        verified: false,
        roles: vec![],
        attributes: json!({}),
        password: Some(pw(password)),
    };
    let weak = h
        .service
        .create_person(&t, input("carol", "carol123"), &Actor::Cli)
        .await;
    assert!(matches!(weak, Err(CoreError::Policy(_))), "{weak:?}");
    let taken = h
        .service
        .create_person(&t, input("alice", GOOD2), &Actor::Cli)
        .await;
    assert_eq!(
        taken.map(|p| p.id),
        Err(CoreError::Conflict("login".into()))
    );
    let mut odd = input("dave", GOOD2);
    odd.attributes = json!([1]);
    assert!(matches!(
        h.service.create_person(&t, odd, &Actor::Cli).await,
        Err(CoreError::Invalid(_))
    ));
    assert_eq!(
        audit_kinds(&h, &t).await,
        ["person_created", "person_created"]
    );
}

#[tokio::test]
async fn a_patch_changes_only_what_it_names_and_is_audited_by_field() {
    let (h, t) = setup().await;
    let alice = person(&h, &t, "alice").await;
    h.clock.advance_secs(3);
    let patch = PersonPatch {
        email: Some(Email::parse("alice@new.example.com").unwrap()),
        verified: Some(true),
        ..Default::default()
    };
    let got = h
        .service
        .update_person(&t, &alice.id, patch, &Actor::Cli)
        .await
        .unwrap();
    assert_eq!(got.email.as_str(), "alice@new.example.com");
    assert!(got.verified && got.enabled);
    assert_eq!(got.password_hash, alice.password_hash);
    assert_eq!(got.updated_at, h.clock.now());
    assert_eq!(h.service.get_person(&t, &alice.id).await.unwrap(), got);
    let events = h.service.audit_log(&t, None, 1).await.unwrap();
    assert_eq!(events[0].kind, "person_updated");
    assert_eq!(
        events[0].detail,
        json!({"fields": ["email", "verified"], "enabled": true})
    );
    let ghost = crate::types::PersonId::generate();
    assert_eq!(
        h.service
            .update_person(&t, &ghost, PersonPatch::default(), &Actor::Cli)
            .await,
        Err(CoreError::NotFound("person"))
    );
}

#[tokio::test]
async fn an_import_upserts_by_login_and_a_dry_run_writes_nothing() {
    let (h, t) = setup().await;
    let alice = person(&h, &t, "alice").await;
    let rows = || {
        vec![
            row(json!({"login": "alice", "email": "alice@corp.example.com"})),
            row(json!({"login": "bob", "email": "bob@example.com"})),
            row(json!({"login": "bob", "email": "bob2@example.com"})),
        ]
    };
    let before = audit_kinds(&h, &t).await;
    let dry = h.service.import_people(&t, rows(), true, &Actor::Cli).await;
    assert_eq!(
        dry,
        Ok(vec![false, true, false]),
        "a login twice is inserted once"
    );
    assert_eq!(
        audit_kinds(&h, &t).await,
        before,
        "a dry run records nothing"
    );
    assert_eq!(
        h.service
            .find_person(&t, &Lookup::Login("bob".into()))
            .await,
        Err(CoreError::NotFound("person"))
    );

    let done = h
        .service
        .import_people(&t, rows(), false, &Actor::Cli)
        .await;
    assert_eq!(done, Ok(vec![false, true, false]));
    let a = h.service.get_person(&t, &alice.id).await.unwrap();
    assert_eq!(
        (a.email.as_str(), a.number, a.password_hash.clone()),
        ("alice@corp.example.com", alice.number, alice.password_hash)
    );
    let b = h
        .service
        .find_person(&t, &Lookup::Login("bob".into()))
        .await
        .unwrap();
    assert_eq!((b.email.as_str(), b.number), ("bob2@example.com", 2));
    assert_eq!(audit_kinds(&h, &t).await.last().unwrap(), "people_imported");
}
