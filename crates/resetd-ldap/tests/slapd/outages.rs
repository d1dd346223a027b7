//! A directory that is down, hung, or loses the answer to a write: every call ends within its
//! bound with the error the port's semantics ask for.

use std::time::{Duration, Instant};

use resetd_core::ports::{AccountQuery, ExternalCredentials, ExternalError};
use resetd_ldap::testing::{person_by_uid, SUFFIX};

use crate::helpers::{backend, backend_at, by_login, password, silent_server, slapd, LossyProxy};

fn unavailable<T: std::fmt::Debug>(r: Result<T, ExternalError>) -> bool {
    matches!(r, Err(ExternalError::Unavailable(_)))
}

#[tokio::test]
async fn a_directory_that_is_down_is_unavailable_and_comes_back() {
    let Some(mut dir) = slapd() else { return };
    let b = backend(&dir, &[]);
    let alice = by_login(&b, "alice").await.unwrap();
    dir.stop();

    let started = Instant::now();
    assert!(unavailable(
        b.find_account(&AccountQuery::Login("alice".into())).await
    ));
    let new = password("alice-New-password-down");
    assert!(unavailable(b.set_password(&alice, &new, "change-d").await));
    assert!(unavailable(
        b.verify_password(&alice, &password(person_by_uid("alice").password))
            .await
    ));
    // Connection refused is immediate; the bound is the configured timeout (3 s) per call.
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "{:?}",
        started.elapsed()
    );

    dir.restart();
    assert_eq!(by_login(&b, "alice").await, Some(alice.clone()));
    b.set_password(&alice, &new, "change-d").await.unwrap();
    assert!(dir.ldapwhoami(&alice.locator, new.expose()));
}

#[tokio::test]
async fn a_hung_server_costs_one_timeout_and_changes_nothing() {
    let Some(dir) = slapd() else { return };
    let real = backend(&dir, &[]);
    let alice = by_login(&real, "alice").await.unwrap();
    let (url, listener) = silent_server().await;
    let b = backend_at(&dir, &url, &[("timeout_secs", 1.into())]);

    // Each call: the connect succeeds, the bind never gets its answer. Nothing was written,
    // so even the password write is Unavailable. One timeout (1 s) plus scheduling slack.
    let bound = Duration::from_secs(4);
    let started = Instant::now();
    let r = b.find_account(&AccountQuery::Login("alice".into())).await;
    assert!(unavailable(r.clone()), "find: {r:?}");
    assert!(started.elapsed() < bound, "find: {:?}", started.elapsed());

    let started = Instant::now();
    let r = b
        .set_password(&alice, &password("alice-New-password-hung"), "change-h")
        .await;
    assert!(unavailable(r.clone()), "set: {r:?}");
    assert!(started.elapsed() < bound, "set: {:?}", started.elapsed());

    let started = Instant::now();
    let r = b
        .verify_password(&alice, &password(person_by_uid("alice").password))
        .await;
    assert!(unavailable(r.clone()), "verify: {r:?}");
    assert!(started.elapsed() < bound, "verify: {:?}", started.elapsed());

    listener.abort();
    assert!(dir.ldapwhoami(&alice.locator, person_by_uid("alice").password));
}

#[tokio::test]
async fn a_lost_answer_is_indeterminate_and_the_repeat_is_recognised() {
    let Some(dir) = slapd() else { return };
    let proxy = LossyProxy::start(dir.port()).await;
    let b = backend_at(&dir, &proxy.url, &[("timeout_secs", 1.into())]);
    let bob = by_login(&b, "bob").await.unwrap();
    let new = password("bob-New-password-lost-1");

    // The bind's answer gets through, the Password Modify's does not: the directory changed the
    // password and we cannot know.
    proxy.pass_answers(1);
    let started = Instant::now();
    let r = b.set_password(&bob, &new, "change-lost").await;
    assert!(matches!(r, Err(ExternalError::Indeterminate(_))), "{r:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(
        dir.ldapwhoami(&bob.locator, new.expose()),
        "the write landed"
    );

    // With a password history the directory now refuses the same password again, so a plain
    // repeat would look like a policy refusal although the change is done.
    dir.ldapmodify(&format!(
        "dn: cn=default,ou=policies,{SUFFIX}\nchangetype: modify\nreplace: pwdInHistory\n\
         pwdInHistory: 3\n"
    ));
    proxy.pass_answers(usize::MAX);
    let other = backend(&dir, &[]);
    assert!(
        matches!(
            other.set_password(&bob, &new, "another-change").await,
            Err(ExternalError::Refused(_))
        ),
        "a new change with a password in the history is refused"
    );
    // The repeat of the lost change (same change id) is recognised as done.
    assert_eq!(b.set_password(&bob, &new, "change-lost").await, Ok(()));
    assert!(dir.ldapwhoami(&bob.locator, new.expose()));
}
