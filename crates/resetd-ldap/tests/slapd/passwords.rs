//! Writing passwords (the Password Modify operation, or a replace of userPassword) and checking
//! them by binding as the person; the directory's password policy; an entry that is gone.

use resetd_core::ports::{ExternalCredentials, ExternalError};
use resetd_ldap::testing::{person_by_uid, person_dn, Slapd, SERVICE_DN, SERVICE_PASSWORD};

use crate::helpers::{backend, by_login, password, slapd};

/// The stored userPassword of `uid`, read as the service account.
async fn stored_password(dir: &Slapd, uid: &str) -> String {
    let (conn, mut ldap) = ldap3::LdapConnAsync::new(&dir.url()).await.unwrap();
    ldap3::drive!(conn);
    ldap.simple_bind(SERVICE_DN, SERVICE_PASSWORD)
        .await
        .unwrap()
        .success()
        .unwrap();
    let (entries, _) = ldap
        .search(
            &person_dn(uid),
            ldap3::Scope::Base,
            "(objectClass=*)",
            vec!["userPassword"],
        )
        .await
        .unwrap()
        .success()
        .unwrap();
    let entry = ldap3::SearchEntry::construct(entries.into_iter().next().unwrap());
    let value = entry
        .attrs
        .get("userPassword")
        .and_then(|v| v.first().cloned())
        .or_else(|| {
            entry
                .bin_attrs
                .get("userPassword")
                .and_then(|v| v.first())
                .map(|b| String::from_utf8_lossy(b).into_owned())
        })
        .unwrap();
    let _ = ldap.unbind().await;
    value
}

#[tokio::test]
async fn password_modify_sets_the_password_ldapwhoami_uses() {
    let Some(dir) = slapd() else { return };
    let b = backend(&dir, &[]);
    let alice = by_login(&b, "alice").await.unwrap();
    let old = person_by_uid("alice").password;
    assert!(dir.ldapwhoami(&alice.locator, old));

    let new = "alice-New-password-2024";
    b.set_password(&alice, &password(new), "change-1")
        .await
        .unwrap();
    assert!(
        dir.ldapwhoami(&alice.locator, new),
        "the new password binds"
    );
    assert!(!dir.ldapwhoami(&alice.locator, old), "the old one does not");
    // The server hashed it (olcPasswordHash's default, {SSHA}); no cleartext at rest.
    let stored = stored_password(&dir, "alice").await;
    assert!(stored.starts_with("{SSHA}"), "{stored}");
    // Setting the same password again is harmless (the core may repeat a write).
    b.set_password(&alice, &password(new), "change-1")
        .await
        .unwrap();
    assert!(dir.ldapwhoami(&alice.locator, new));
}

#[tokio::test]
async fn replace_mode_writes_userpassword_hashed_by_ppolicy() {
    let Some(dir) = slapd() else { return };
    let b = backend(&dir, &[("password_write", "replace".into())]);
    let bob = by_login(&b, "bob").await.unwrap();
    let new = "bob-Replaced-password-9";
    b.set_password(&bob, &password(new), "change-2")
        .await
        .unwrap();
    assert!(dir.ldapwhoami(&bob.locator, new));
    assert!(!dir.ldapwhoami(&bob.locator, person_by_uid("bob").password));
    // ppolicy_hash_cleartext hashed the cleartext the modify carried.
    let stored = stored_password(&dir, "bob").await;
    assert!(stored.starts_with("{SSHA}"), "{stored}");
}

#[tokio::test]
async fn the_directory_policy_refusal_comes_back_with_its_reason() {
    let Some(dir) = slapd() else { return };
    for write in ["password_modify", "replace"] {
        let b = backend(&dir, &[("password_write", write.into())]);
        let carol = by_login(&b, "carol").await.unwrap();
        // Eleven characters: the default policy asks for twelve.
        let e = b
            .set_password(&carol, &password("Short-pw-11"), "change-3")
            .await
            .unwrap_err();
        let ExternalError::Refused(reason) = &e else {
            panic!("{write}: {e:?}")
        };
        assert!(
            reason.contains("Password fails quality checking policy"),
            "{write}: {reason}"
        );
        assert!(reason.contains("too short"), "{write}: {reason}");
        assert!(!reason.contains("Short-pw-11"));
        // Nothing changed.
        assert!(dir.ldapwhoami(&carol.locator, person_by_uid("carol").password));
        assert!(!dir.ldapwhoami(&carol.locator, "Short-pw-11"));
    }
}

#[tokio::test]
async fn verify_binds_as_the_person() {
    let Some(dir) = slapd() else { return };
    let b = backend(&dir, &[]);
    let alice = by_login(&b, "alice").await.unwrap();
    let right = person_by_uid("alice").password;
    assert_eq!(b.verify_password(&alice, &password(right)).await, Ok(true));
    assert_eq!(
        b.verify_password(&alice, &password("alice-Wrong-password"))
            .await,
        Ok(false)
    );
    // An empty password would be an unauthenticated bind: never a success.
    assert_eq!(b.verify_password(&alice, &password("")).await, Ok(false));
    // Someone else's password is not alice's.
    assert_eq!(
        b.verify_password(&alice, &password(person_by_uid("bob").password))
            .await,
        Ok(false)
    );
    // Nor is the service account's.
    assert_eq!(
        b.verify_password(&alice, &password(SERVICE_PASSWORD)).await,
        Ok(false)
    );
    // A DN that is not there.
    let mut ghost = alice.clone();
    ghost.locator = person_dn("ghost");
    assert_eq!(b.verify_password(&ghost, &password(right)).await, Ok(false));
}

#[tokio::test]
async fn a_person_removed_from_the_directory_is_no_account() {
    let Some(dir) = slapd() else { return };
    let b = backend(&dir, &[]);
    let erin = by_login(&b, "erin").await.unwrap();
    dir.ldapmodify(&format!("dn: {}\nchangetype: delete\n", erin.locator));
    assert_eq!(by_login(&b, "erin").await, None);
    for write in ["password_modify", "replace"] {
        let b = backend(&dir, &[("password_write", write.into())]);
        assert_eq!(
            b.set_password(&erin, &password("erin-New-password-77"), "change-4")
                .await,
            Err(ExternalError::NoAccount),
            "{write}"
        );
    }
}

#[tokio::test]
async fn an_empty_password_is_never_written() {
    let Some(dir) = slapd() else { return };
    let b = backend(&dir, &[]);
    let bob = by_login(&b, "bob").await.unwrap();
    assert!(matches!(
        b.set_password(&bob, &password(""), "change-5").await,
        Err(ExternalError::Refused(_))
    ));
    assert!(dir.ldapwhoami(&bob.locator, person_by_uid("bob").password));
}
