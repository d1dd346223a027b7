//! Conformance checks of the login counter: [`Store::begin_login`],
//! [`Store::record_login_success`], [`Store::unlock`] and the unlocking password change.

use std::collections::BTreeSet;
use std::sync::Arc;

use resetd_core::model::Timestamp;
use resetd_core::store::{LoginAccount, LoginAttempt, LoginStart, Store, StoreError};
use resetd_core::types::{Login, PersonId, TenantId};

use super::{add_person, at, audit, audit_kinds, change, new_person, person, tenant};

/// The window of these checks, in ms.
const W: i64 = 900_000;

fn login(s: &str) -> Login {
    Login::parse(s).expect("valid login")
}

async fn begin(s: &dyn Store, t: &TenantId, l: &str, threshold: u32, now: i64) -> LoginStart {
    s.begin_login(t, &login(l), threshold, at(now), at(now + W))
        .await
        .expect("begin login")
}

fn granted(failures: u32, locked_until: Option<Timestamp>) -> LoginAttempt {
    LoginAttempt::Granted {
        failures,
        locked_until,
    }
}

/// The counter is per tenant and login, unknown logins included: attempts are granted up to the
/// threshold (the one reaching it locks until its window's end), refused while locked, counted
/// afresh once the window ended; a success gives the count back (storing a rehash), an unlock or
/// an unlocking password change clears it, a plain password change does not. The account is read
/// along, whatever its state. Ended counters are removed a few per call.
pub async fn login_attempts_lock_and_reset(store: Arc<dyn Store>) {
    let s = &*store;
    let a = tenant(s, "acme").await;
    let b = tenant(s, "beta").await;
    let p = add_person(s, &a, "alice", "alice@example.com").await;
    let account = LoginAccount {
        person: p.id.clone(),
        enabled: true,
        password_hash: p.password_hash.clone(),
        must_change_password: false,
    };

    let r1 = begin(s, &a, "alice", 3, 0).await;
    assert_eq!(r1.attempt, granted(1, None));
    assert_eq!(r1.account.as_ref(), Some(&account));
    assert_eq!(
        begin(s, &a, "alice", 3, 1_000).await.attempt,
        granted(2, None)
    );
    let got = person(s, &p).await;
    assert_eq!((got.failed_logins, got.locked_until), (2, None));
    // The third reaches the threshold: granted (its password is checked) and locking.
    let lock = at(2_000 + W);
    assert_eq!(
        begin(s, &a, "alice", 3, 2_000).await.attempt,
        granted(3, Some(lock))
    );
    let got = person(s, &p).await;
    assert_eq!((got.failed_logins, got.locked_until), (3, Some(lock)));
    for now in [3_000, 2_000 + W - 1] {
        let r = begin(s, &a, "alice", 3, now).await;
        assert_eq!(r.attempt, LoginAttempt::Locked { until: lock }, "at {now}");
        assert_eq!(r.account.as_ref(), Some(&account), "read while locked too");
    }
    assert_eq!(
        person(s, &p).await.failed_logins,
        3,
        "refusals do not count"
    );
    // The window ended: a fresh count.
    assert_eq!(
        begin(s, &a, "alice", 3, 2_000 + W).await.attempt,
        granted(1, None)
    );

    // A login nobody has counts and locks the same way, and reads no account.
    for i in 0..3u32 {
        let r = begin(s, &a, "nobody", 3, i64::from(i)).await;
        let locks = (i == 2).then_some(at(2 + W));
        assert_eq!((r.attempt, r.account), (granted(i + 1, locks), None));
    }
    assert_eq!(
        begin(s, &a, "nobody", 3, 10).await.attempt,
        LoginAttempt::Locked { until: at(2 + W) }
    );
    // Per tenant: "alice" in beta is another counter, and nobody there.
    let r = begin(s, &b, "alice", 3, 10).await;
    assert_eq!((r.attempt, r.account), (granted(1, None), None));
    // A threshold of 1 locks at the first attempt, which is still checked.
    assert_eq!(
        begin(s, &a, "solo", 1, 0).await.attempt,
        granted(1, Some(at(W)))
    );
    assert!(matches!(
        begin(s, &a, "solo", 1, 1).await.attempt,
        LoginAttempt::Locked { .. }
    ));

    // Disabled and passwordless people are read as they are.
    let mut d = new_person(&a, "dora", "dora@example.com");
    d.enabled = false;
    d.password_hash = None;
    d.must_change_password = true;
    d.number = s
        .insert_person(&d, audit(&a, Some(&d.id), "person_created", at(0)))
        .await
        .unwrap();
    assert_eq!(
        begin(s, &a, "dora", 3, 0).await.account,
        Some(LoginAccount {
            person: d.id.clone(),
            enabled: false,
            password_hash: None,
            must_change_password: true,
        })
    );

    // A success forgets the count; a rehash replaces the hash but not password_changed_at.
    let t = 3_000 + W;
    assert_eq!(begin(s, &a, "alice", 3, t).await.attempt, granted(2, None));
    s.record_login_success(&a, &login("alice"), &p.id, None)
        .await
        .unwrap();
    let got = person(s, &p).await;
    assert_eq!(
        (got.failed_logins, got.password_hash.clone()),
        (0, p.password_hash.clone())
    );
    assert_eq!(begin(s, &a, "alice", 3, t).await.attempt, granted(1, None));
    s.record_login_success(
        &a,
        &login("alice"),
        &p.id,
        Some("$argon2id$rehashed".into()),
    )
    .await
    .unwrap();
    let got = person(s, &p).await;
    assert_eq!(got.password_hash.as_deref(), Some("$argon2id$rehashed"));
    assert_eq!(
        (got.password_changed_at, got.failed_logins),
        (p.password_changed_at, 0)
    );
    // The attempt that locked was the right password: its success lifts the lock.
    for _ in 0..3 {
        begin(s, &a, "alice", 3, t).await;
    }
    s.record_login_success(&a, &login("alice"), &p.id, None)
        .await
        .unwrap();
    assert_eq!(person(s, &p).await.locked_until, None);
    assert_eq!(begin(s, &a, "alice", 3, t).await.attempt, granted(1, None));

    // Unlock clears and is audited.
    for _ in 0..3 {
        begin(s, &a, "alice", 3, t).await;
    }
    assert!(matches!(
        begin(s, &a, "alice", 3, t).await.attempt,
        LoginAttempt::Locked { .. }
    ));
    s.unlock(&a, &p.id, audit(&a, Some(&p.id), "unlocked", at(5)))
        .await
        .unwrap();
    let got = person(s, &p).await;
    assert_eq!((got.failed_logins, got.locked_until), (0, None));
    assert!(audit_kinds(s, &a).await.contains(&"unlocked".to_string()));
    assert_eq!(begin(s, &a, "alice", 3, t).await.attempt, granted(1, None));

    // A password change keeps the lock, unless it unlocks.
    for _ in 0..2 {
        begin(s, &a, "alice", 3, t).await;
    }
    s.change_password(change(&p, None, "$argon2id$c1", at(t)))
        .await
        .unwrap();
    assert!(matches!(
        begin(s, &a, "alice", 3, t).await.attempt,
        LoginAttempt::Locked { .. }
    ));
    let mut unlocking = change(&p, None, "$argon2id$c2", at(t));
    unlocking.unlock = true;
    s.change_password(unlocking).await.unwrap();
    let got = person(s, &p).await;
    assert_eq!((got.failed_logins, got.locked_until), (0, None));
    assert_eq!(begin(s, &a, "alice", 3, t).await.attempt, granted(1, None));

    // Unknown people.
    let ghost = PersonId::generate();
    assert_eq!(
        s.record_login_success(&a, &login("ghost"), &ghost, None)
            .await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        s.unlock(&a, &ghost, audit(&a, Some(&ghost), "unlocked", at(6)))
            .await,
        Err(StoreError::NotFound)
    );

    // Ended counters go, a few per call: three people's counters end, then two calls for
    // another login remove them (up to two each), so the people show no failures.
    let people = [
        add_person(s, &b, "p1", "p1@example.com").await,
        add_person(s, &b, "p2", "p2@example.com").await,
        add_person(s, &b, "p3", "p3@example.com").await,
    ];
    for q in &people {
        begin(s, &b, q.login.as_str(), 3, 0).await;
        assert_eq!(person(s, q).await.failed_logins, 1);
    }
    let later = 100 * W;
    for _ in 0..2 {
        begin(s, &b, "someone-else", 3, later).await;
    }
    // Ended ones of `a` ("nobody", "solo", "dora", "alice" in beta...) go too, so call until
    // every ended counter is gone: each call removes up to two, and there are fewer than 20.
    for _ in 0..10 {
        begin(s, &b, "someone-else", 3, later).await;
    }
    for q in &people {
        assert_eq!(
            person(s, q).await.failed_logins,
            0,
            "{} was removed",
            q.login
        );
    }
}

/// However many attempts at one login arrive at once, exactly `threshold` are granted — with
/// the counts 1..=threshold, one of them locking — and the rest refused, for a known and for an
/// unknown login. Run with 100 concurrent calls (on PostgreSQL, on as many pooled connections).
pub async fn login_attempts_are_reserved_atomically(store: Arc<dyn Store>) {
    let a = tenant(&*store, "acme").await;
    add_person(&*store, &a, "alice", "alice@example.com").await;
    for name in ["alice", "nobody"] {
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let (s, a) = (store.clone(), a.clone());
                tokio::spawn(async move { s.begin_login(&a, &login(name), 10, at(0), at(W)).await })
            })
            .collect();
        let (mut counts, mut locking, mut refused) = (BTreeSet::new(), 0, 0);
        for t in tasks {
            match t.await.expect("task").expect("begin login").attempt {
                LoginAttempt::Granted {
                    failures,
                    locked_until,
                } => {
                    assert!(counts.insert(failures), "{name}: count {failures} twice");
                    locking += usize::from(locked_until.is_some());
                }
                LoginAttempt::Locked { until } => {
                    assert_eq!(until, at(W));
                    refused += 1;
                }
            }
        }
        assert_eq!(counts, (1..=10).collect::<BTreeSet<u32>>(), "{name}");
        assert_eq!((locking, refused), (1, 90), "{name}");
    }
}
