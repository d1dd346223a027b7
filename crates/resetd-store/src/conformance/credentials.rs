//! Conformance of the [`Credentials`](resetd_core::ports::Credentials) port: password changes
//! (single use of a token, the tokens they void, history) and the login counter.

use std::collections::BTreeSet;
use std::sync::Arc;

use resetd_core::model::{MessageKind, Timestamp};
use resetd_core::store::{LoginAccount, LoginAttempt, LoginStart, Store, StoreError};
use resetd_core::types::{Login, PersonId, TenantId};

use super::fixtures::*;

/// Twenty concurrent changes presenting the same token: exactly one wins.
pub async fn token_is_single_use_under_concurrency(store: Arc<dyn Store>) {
    let a = tenant(&*store, "acme").await;
    let p = add_person(&*store, &a, "alice", "alice@example.com").await;
    issue_token(&*store, &p, "tok", at(1_000)).await;

    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let s = store.clone();
            let c = change(&p, Some("tok"), &format!("$argon2id$new{i}"), at(2_000));
            tokio::spawn(async move { (i, s.change_password(c).await) })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        let (i, r) = t.await.expect("task");
        match r {
            Ok(()) => winners.push(i),
            Err(StoreError::TokenGone) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one winner: {winners:?}");
    let got = person(&*store, &p).await;
    assert_eq!(
        got.password_hash,
        Some(format!("$argon2id$new{}", winners[0]))
    );
    assert_eq!(got.password_changed_at, Some(at(2_000)));
    assert_eq!(get_token(&*store, "tok").await.used_at, Some(at(2_000)));
    let changed = outbox_of(&*store, &a)
        .await
        .into_iter()
        .filter(|m| m.message.kind == MessageKind::PasswordChanged)
        .count();
    assert_eq!(changed, 1, "one 'password changed' email");
    assert_eq!(
        audit_kinds(&*store, &a)
            .await
            .iter()
            .filter(|k| *k == "reset_completed")
            .count(),
        1
    );
    assert_eq!(
        store
            .change_password(change(&p, Some("tok"), "x", at(3_000)))
            .await,
        Err(StoreError::TokenGone)
    );
}

/// A password change voids live tokens; superseded, foreign and expired tokens are refused; the
/// flags and lock handling are applied.
pub async fn password_change_voids_tokens(store: Arc<dyn Store>) {
    let s = &*store;
    let a = tenant(s, "acme").await;
    let p = add_person(s, &a, "alice", "alice@example.com").await;
    let q = add_person(s, &a, "bob", "bob@example.com").await;

    // An admin change voids the live token.
    issue_token(s, &p, "t1", at(1_000)).await;
    let mut admin = change(&p, None, "$argon2id$admin", at(2_000));
    admin.must_change_password = true;
    s.change_password(admin).await.expect("admin change");
    assert_eq!(get_token(s, "t1").await.revoked_at, Some(at(2_000)));
    let got = person(s, &p).await;
    assert_eq!(
        (got.password_hash.as_deref(), got.password_changed_at),
        (Some("$argon2id$admin"), Some(at(2_000)))
    );
    assert!(got.must_change_password);
    assert_eq!(got.updated_at, at(2_000));
    assert_eq!(
        s.change_password(change(&p, Some("t1"), "$argon2id$x", at(3_000)))
            .await,
        Err(StoreError::TokenGone)
    );
    assert_eq!(
        person(s, &p).await.password_hash.as_deref(),
        Some("$argon2id$admin"),
        "a refused change changes nothing"
    );

    // A superseded token is refused; the newest one works and clears must_change_password.
    issue_token(s, &p, "t2", at(10_000)).await;
    issue_token(s, &p, "t3", at(20_000)).await;
    assert_eq!(
        s.change_password(change(&p, Some("t2"), "$argon2id$x", at(21_000)))
            .await,
        Err(StoreError::TokenGone)
    );
    s.change_password(change(&p, Some("t3"), "$argon2id$t3", at(22_000)))
        .await
        .expect("newest token");
    let got = person(s, &p).await;
    assert_eq!(got.password_hash.as_deref(), Some("$argon2id$t3"));
    assert!(!got.must_change_password);

    // Another person's token cannot change this person's password.
    issue_token(s, &q, "tq", at(30_000)).await;
    assert_eq!(
        s.change_password(change(&p, Some("tq"), "$argon2id$x", at(31_000)))
            .await,
        Err(StoreError::TokenGone)
    );
    assert_eq!(get_token(s, "tq").await.used_at, None);

    // An expired token is refused even if the caller's check raced with the expiry.
    issue_token(s, &p, "t4", at(40_000)).await; // expires at 40_000 + 1_800_000
    assert_eq!(
        s.change_password(change(
            &p,
            Some("t4"),
            "$argon2id$x",
            at(40_000 + 1_800_000)
        ))
        .await,
        Err(StoreError::TokenGone)
    );
    assert_eq!(get_token(s, "t4").await.used_at, None);

    // Unknown token and unknown person.
    assert_eq!(
        s.change_password(change(&p, Some("never-issued"), "x", at(41_000)))
            .await,
        Err(StoreError::TokenGone)
    );
    let ghost = new_person(&a, "ghost", "ghost@example.com");
    assert_eq!(
        s.change_password(change(&ghost, None, "x", at(41_000)))
            .await,
        Err(StoreError::NotFound)
    );

    // unlock = false keeps the login's counter, unlock = true clears it (more in
    // `login_attempts_lock_and_reset`).
    for now in [0, 1] {
        s.begin_login(&a, &q.login, 2, at(now), at(99_000))
            .await
            .unwrap(); // the second locks
    }
    s.change_password(change(&q, None, "$argon2id$q1", at(50_000)))
        .await
        .unwrap();
    let got = person(s, &q).await;
    assert_eq!((got.failed_logins, got.locked_until), (2, Some(at(99_000))));
    assert_eq!(get_token(s, "tq").await.revoked_at, Some(at(50_000)));
    let mut unlocking = change(&q, None, "$argon2id$q2", at(51_000));
    unlocking.unlock = true;
    s.change_password(unlocking).await.unwrap();
    let got = person(s, &q).await;
    assert_eq!((got.failed_logins, got.locked_until), (0, None));

    // Without a message nothing is queued.
    let queued = outbox_of(s, &a).await.len();
    let mut quiet = change(&q, None, "$argon2id$q3", at(52_000));
    quiet.message = None;
    s.change_password(quiet).await.unwrap();
    assert_eq!(outbox_of(s, &a).await.len(), queued);
}

/// History keeps the previous hashes, newest first, pruned to `keep_history`.
pub async fn password_history_is_pruned(store: Arc<dyn Store>) {
    let s = &*store;
    let a = tenant(s, "acme").await;
    let p = add_person(s, &a, "alice", "alice@example.com").await; // hash "$argon2id$initial"
    for (i, h) in ["h1", "h2", "h3", "h4"].iter().enumerate() {
        let mut c = change(&p, None, h, at(1_000 * (i as i64 + 1)));
        c.keep_history = 2;
        s.change_password(c).await.unwrap();
    }
    assert_eq!(
        s.password_history(&a, &p.id, 10).await.unwrap(),
        vec!["h3", "h2"]
    );
    assert_eq!(s.password_history(&a, &p.id, 1).await.unwrap(), vec!["h3"]);
    let mut c = change(&p, None, "h5", at(9_000));
    c.keep_history = 3;
    s.change_password(c).await.unwrap();
    assert_eq!(
        s.password_history(&a, &p.id, 10).await.unwrap(),
        vec!["h4", "h3", "h2"]
    );

    // keep_history = 0 records nothing.
    let q = add_person(s, &a, "bob", "bob@example.com").await;
    s.change_password(change(&q, None, "q1", at(1_000)))
        .await
        .unwrap();
    assert_eq!(
        s.password_history(&a, &q.id, 10).await.unwrap(),
        Vec::<String>::new()
    );

    // No previous password: nothing to remember.
    let mut r = new_person(&a, "carol", "carol@example.com");
    r.password_hash = None;
    r.number = s
        .insert_person(&r, audit(&a, Some(&r.id), "person_created", at(0)))
        .await
        .unwrap();
    let mut c = change(&r, None, "r1", at(1_000));
    c.keep_history = 5;
    s.change_password(c).await.unwrap();
    assert_eq!(
        s.password_history(&a, &r.id, 10).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        s.password_history(&a, &p.id, 10).await.unwrap().len(),
        3,
        "per person"
    );
}

// ---- the login counter: begin_login, record_login_success, unlock and the unlocking change ----

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
    s.record_login_success(&a, &login("alice"), &p.id, None, None)
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
        None,
    )
    .await
    .unwrap();
    let got = person(s, &p).await;
    assert_eq!(got.password_hash.as_deref(), Some("$argon2id$rehashed"));
    assert_eq!(
        (got.password_changed_at, got.failed_logins),
        (p.password_changed_at, 0)
    );
    assert!(!got.must_change_password);
    // Evidence of compromise at a login: the person must change the password, the event is
    // audited in the same step, and the hash and its date stay as they were.
    assert_eq!(begin(s, &a, "alice", 3, t).await.attempt, granted(1, None));
    s.record_login_success(
        &a,
        &login("alice"),
        &p.id,
        None,
        Some(audit(&a, Some(&p.id), "breached_at_login", at(t))),
    )
    .await
    .unwrap();
    let got = person(s, &p).await;
    assert!(got.must_change_password);
    assert_eq!(
        (
            got.password_hash.as_deref(),
            got.password_changed_at,
            got.failed_logins
        ),
        (Some("$argon2id$rehashed"), p.password_changed_at, 0)
    );
    let events = s.list_audit(&a, None, 100).await.unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind == "breached_at_login" && e.person.as_deref() == Some(p.id.as_str()))
            .count(),
        1
    );
    // A later success without that evidence does not clear the flag (only a new password does).
    s.record_login_success(&a, &login("alice"), &p.id, None, None)
        .await
        .unwrap();
    assert!(person(s, &p).await.must_change_password);
    // The attempt that locked was the right password: its success lifts the lock.
    for _ in 0..3 {
        begin(s, &a, "alice", 3, t).await;
    }
    s.record_login_success(&a, &login("alice"), &p.id, None, None)
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
        s.record_login_success(&a, &login("ghost"), &ghost, None, None)
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
