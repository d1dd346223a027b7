//! Finding people: by login and by email, the entry's fields, nothing for a missing, ambiguous
//! or hostile query.

use resetd_core::ports::ExternalCredentials;
use resetd_ldap::testing::{person_dn, PEOPLE_DN};

use crate::helpers::{backend, by_email, by_login, slapd};

#[tokio::test]
async fn finds_a_person_by_login_and_by_email() {
    let Some(dir) = slapd() else { return };
    let b = backend(&dir, &[]);
    assert!(b.capabilities().holds_people && b.capabilities().verifies_passwords);

    let alice = by_login(&b, "alice").await.expect("alice by login");
    assert_eq!(alice.login, "alice");
    assert_eq!(alice.locator, person_dn("alice"));
    assert_eq!(alice.email.as_deref(), Some("alice@example.org"));
    assert_eq!(alice.display_name.as_deref(), Some("Alice Liddell"));
    assert!(alice.enabled);
    // entryUUID: 8-4-4-4-12 hex digits.
    let groups: Vec<usize> = alice.stable_id.split('-').map(str::len).collect();
    assert_eq!(groups, [8, 4, 4, 4, 12], "{}", alice.stable_id);

    assert_eq!(by_email(&b, "alice@example.org").await, Some(alice.clone()));
    // The directory's matching rules apply: uid and mail compare case-insensitively.
    assert_eq!(by_login(&b, "ALICE").await, Some(alice.clone()));
    assert_eq!(by_email(&b, "Alice@Example.ORG").await, Some(alice.clone()));

    let bob = by_login(&b, "bob").await.expect("bob");
    assert_ne!(bob.stable_id, alice.stable_id);
}

#[tokio::test]
async fn missing_ambiguous_addressless_and_locked_people() {
    let Some(dir) = slapd() else { return };
    let b = backend(&dir, &[]);
    assert_eq!(by_login(&b, "nobody").await, None);
    assert_eq!(by_email(&b, "nobody@example.org").await, None);
    assert_eq!(by_login(&b, "").await, None);
    // Two entries share the address: no one is picked.
    assert_eq!(by_email(&b, "shared@example.org").await, None);
    assert!(by_login(&b, "erin").await.is_some());

    let carol = by_login(&b, "carol").await.expect("carol");
    assert_eq!(carol.email, None);
    let dave = by_login(&b, "dave").await.expect("dave");
    assert!(
        !dave.enabled,
        "an administrator's lock disables the account"
    );
}

#[tokio::test]
async fn filter_injection_finds_nothing() {
    let Some(dir) = slapd() else { return };
    let b = backend(&dir, &[]);
    for hostile in [
        "*",
        "*)(uid=*",
        "alice)(uid=*",
        "a*",
        "*)(|(uid=*",
        "alice)(|(objectClass=*",
        "\\2a",
        "alice\0",
    ] {
        assert_eq!(by_login(&b, hostile).await, None, "login {hostile:?}");
        assert_eq!(by_email(&b, hostile).await, None, "email {hostile:?}");
    }
    assert_eq!(by_email(&b, "*@example.org").await, None);
    assert_eq!(by_email(&b, "alice@example.org)(mail=*").await, None);
}

#[tokio::test]
async fn custom_filters_and_attributes() {
    let Some(dir) = slapd() else { return };
    // Log in by mail, show the surname, and use the DN-independent uid as the stable id.
    let b = backend(
        &dir,
        &[
            (
                "login_filter",
                "(&(objectClass=inetOrgPerson)(mail={login}))".into(),
            ),
            ("login_attribute", "mail".into()),
            ("name_attribute", "sn".into()),
            ("id_attribute", "uid".into()),
        ],
    );
    let bob = by_login(&b, "bob@example.org").await.expect("bob by mail");
    assert_eq!(bob.login, "bob@example.org");
    assert_eq!(bob.display_name.as_deref(), Some("Builder"));
    assert_eq!(bob.stable_id, "bob");
    assert_eq!(by_login(&b, "bob").await, None);
}

#[tokio::test]
async fn a_wrong_base_dn_or_service_password_is_an_error_not_a_miss() {
    let Some(dir) = slapd() else { return };
    let b = backend(
        &dir,
        &[("base_dn", format!("ou=nowhere,{PEOPLE_DN}").into())],
    );
    let e = b
        .find_account(&resetd_core::ports::AccountQuery::Login("alice".into()))
        .await
        .unwrap_err();
    assert!(
        matches!(e, resetd_core::ports::ExternalError::Failed(_)),
        "{e:?}"
    );

    let b = backend(
        &dir,
        &[("bind_password", "not-the-service-password".into())],
    );
    let e = b
        .find_account(&resetd_core::ports::AccountQuery::Login("alice".into()))
        .await
        .unwrap_err();
    assert!(
        matches!(e, resetd_core::ports::ExternalError::Unavailable(_)),
        "{e:?}"
    );
    assert!(!e.to_string().contains("not-the-service-password"));
    assert!(b.probe().await.is_err());
    assert!(backend(&dir, &[]).probe().await.is_ok());
}
