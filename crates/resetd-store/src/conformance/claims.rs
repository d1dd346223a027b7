//! Conformance of the store's part in a password set that spans two systems (issue 17, the rule
//! in `docs/architecture.md`): token claims (one winner, release, lapse, consume on the claim),
//! a change that stores no hash, shadow rows, and an attempt given back.

use std::sync::Arc;

use resetd_core::model::Lookup;
use resetd_core::store::{ClaimId, LoginAttempt, Store, StoreError};
use resetd_core::types::{Email, Login};

use super::fixtures::*;

/// Twenty concurrent claims of one token: exactly one wins, and the claimed token is no longer
/// claimable, consumable without the claim, or voided into life again.
pub async fn claim_has_one_winner_under_concurrency(store: Arc<dyn Store>) {
    let a = tenant(&*store, "acme").await;
    let p = add_person(&*store, &a, "alice", "alice@example.com").await;
    issue_token(&*store, &p, "tok", at(1_000)).await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let s = store.clone();
            let claim = ClaimId::generate();
            tokio::spawn(async move {
                let r = s
                    .claim_token(hash("tok"), &claim, at(2_000), at(62_000))
                    .await;
                (claim, r)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        let (claim, r) = t.await.expect("task");
        match r {
            Ok(()) => winners.push(claim),
            Err(StoreError::TokenGone) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one winner");
    assert!(get_token(&*store, "tok").await.claimed);
    // Without the claim, a change cannot consume it.
    assert_eq!(
        store
            .change_password(change(&p, Some("tok"), "$argon2id$x", at(3_000)))
            .await,
        Err(StoreError::TokenGone)
    );
    // With it, exactly once; the hash may be absent (the password lives elsewhere).
    let mut ch = change(&p, Some("tok"), "unused", at(3_000));
    ch.claim = Some(winners[0].clone());
    ch.new_hash = None;
    store.change_password(ch.clone()).await.expect("consume");
    let got = person(&*store, &p).await;
    assert_eq!(got.password_hash, None, "no hash stored");
    assert_eq!(got.password_changed_at, Some(at(3_000)));
    assert_eq!(get_token(&*store, "tok").await.used_at, Some(at(3_000)));
    assert_eq!(store.change_password(ch).await, Err(StoreError::TokenGone));
}

/// A released claim makes the token live again (claimable, consumable without a claim); only
/// the claimer's own claim is released.
pub async fn released_token_is_live_again(store: Arc<dyn Store>) {
    let s = &*store;
    let a = tenant(s, "acme").await;
    let p = add_person(s, &a, "alice", "alice@example.com").await;
    issue_token(s, &p, "tok", at(1_000)).await;
    let ours = ClaimId::generate();
    s.claim_token(hash("tok"), &ours, at(2_000), at(62_000))
        .await
        .expect("claim");
    let theirs = ClaimId::generate();
    assert!(!s
        .release_token_claim(hash("tok"), &theirs, at(3_000))
        .await
        .expect("release"));
    assert!(s
        .release_token_claim(hash("tok"), &ours, at(3_000))
        .await
        .expect("release"));
    assert!(!get_token(s, "tok").await.claimed);
    // The old claim is gone: consuming on it fails; the token is claimable again.
    let mut ch = change(&p, Some("tok"), "$argon2id$x", at(4_000));
    ch.claim = Some(ours);
    assert_eq!(s.change_password(ch).await, Err(StoreError::TokenGone));
    let again = ClaimId::generate();
    s.claim_token(hash("tok"), &again, at(4_000), at(64_000))
        .await
        .expect("claim again");
    s.release_token_claim(hash("tok"), &again, at(5_000))
        .await
        .expect("release");
    s.change_password(change(&p, Some("tok"), "$argon2id$y", at(6_000)))
        .await
        .expect("a live token is consumed as before");
}

/// A claim whose lease ran out without a consume or a release is lapsed: it cannot be released,
/// the token cannot be claimed or consumed without the claim, ever again; the claimer may still
/// consume it (its write may have happened).
pub async fn lapsed_claim_is_never_live_again(store: Arc<dyn Store>) {
    let s = &*store;
    let a = tenant(s, "acme").await;
    let p = add_person(s, &a, "alice", "alice@example.com").await;
    issue_token(s, &p, "tok", at(1_000)).await;
    let claim = ClaimId::generate();
    s.claim_token(hash("tok"), &claim, at(2_000), at(10_000))
        .await
        .expect("claim");
    assert!(!s
        .release_token_claim(hash("tok"), &claim, at(10_000))
        .await
        .expect("release after the lease"));
    assert!(get_token(s, "tok").await.claimed);
    assert_eq!(
        s.claim_token(hash("tok"), &ClaimId::generate(), at(11_000), at(70_000))
            .await,
        Err(StoreError::TokenGone)
    );
    assert_eq!(
        s.change_password(change(&p, Some("tok"), "$argon2id$x", at(12_000)))
            .await,
        Err(StoreError::TokenGone)
    );
    let mut ch = change(&p, Some("tok"), "$argon2id$late", at(13_000));
    ch.claim = Some(claim);
    s.change_password(ch).await.expect("the claimer's consume");
}

/// A consume with a claim that is not the token's (never taken, or another's) is `TokenGone`
/// and changes nothing; so is claiming a used, voided or expired token.
pub async fn consume_with_a_wrong_claim_is_token_gone(store: Arc<dyn Store>) {
    let s = &*store;
    let a = tenant(s, "acme").await;
    let p = add_person(s, &a, "alice", "alice@example.com").await;
    issue_token(s, &p, "tok", at(1_000)).await;
    let mut ch = change(&p, Some("tok"), "$argon2id$x", at(2_000));
    ch.claim = Some(ClaimId::generate());
    assert_eq!(
        s.change_password(ch.clone()).await,
        Err(StoreError::TokenGone),
        "an unclaimed token"
    );
    s.claim_token(hash("tok"), &ClaimId::generate(), at(2_000), at(62_000))
        .await
        .expect("claim");
    assert_eq!(s.change_password(ch).await, Err(StoreError::TokenGone));
    let unchanged = person(s, &p).await;
    assert_eq!(
        (unchanged.password_hash, unchanged.password_changed_at),
        (p.password_hash.clone(), p.password_changed_at)
    );
    // Expired and voided tokens cannot be claimed.
    issue_token(s, &p, "old", at(3_000)).await;
    assert_eq!(
        s.claim_token(
            hash("old"),
            &ClaimId::generate(),
            at(3_000 + 1_800_000),
            at(9_999_999)
        )
        .await,
        Err(StoreError::TokenGone)
    );
    assert_eq!(
        s.claim_token(hash("nope"), &ClaimId::generate(), at(3_000), at(60_000))
            .await,
        Err(StoreError::TokenGone)
    );
}

/// A shadow row is inserted under its id with a number, then updated in place (profile only,
/// the password dates kept); a login another person holds is a conflict.
pub async fn shadow_rows_upsert_by_id(store: Arc<dyn Store>) {
    let s = &*store;
    let a = tenant(s, "acme").await;
    let local = add_person(s, &a, "bob", "bob@example.com").await;
    let mut shadow = new_person(&a, "alice", "alice@example.com");
    shadow.password_hash = None;
    shadow.password_changed_at = None;
    let stored = s.upsert_shadow_person(&shadow).await.expect("insert");
    assert_eq!(stored.id, shadow.id);
    assert!(stored.number > local.number);
    s.change_password({
        let mut ch = change(&stored, None, "unused", at(5_000));
        ch.new_hash = None;
        ch
    })
    .await
    .expect("a set without a hash");
    let mut renamed = shadow.clone();
    renamed.login = Login::parse("alice2").expect("login");
    renamed.email = Email::parse("alice2@example.com").expect("email");
    renamed.enabled = false;
    let again = s.upsert_shadow_person(&renamed).await.expect("update");
    assert_eq!(
        (again.id.clone(), again.number),
        (stored.id.clone(), stored.number)
    );
    assert_eq!(again.login.as_str(), "alice2");
    assert_eq!(again.email.as_str(), "alice2@example.com");
    assert!(!again.enabled);
    assert_eq!(again.password_changed_at, Some(at(5_000)), "kept");
    assert_eq!(again.password_hash, None);
    let found = s
        .find_person(&a, &Lookup::Login("alice2".into()))
        .await
        .expect("find")
        .expect("by its new login");
    assert_eq!(found.id, stored.id);
    let mut clash = new_person(&a, "bob", "x@example.com");
    clash.password_hash = None;
    assert!(matches!(
        s.upsert_shadow_person(&clash).await,
        Err(StoreError::Conflict(_))
    ));
}

/// A forgiven attempt comes off the login's count, and a lock it set goes with it.
pub async fn forgiven_attempts_come_off_the_count(store: Arc<dyn Store>) {
    let s = &*store;
    let a = tenant(s, "acme").await;
    let login = Login::parse("alice").expect("login");
    let until = at(600_000);
    for _ in 0..2 {
        s.begin_login(&a, &login, 3, at(1_000), until)
            .await
            .expect("begin");
    }
    let third = s
        .begin_login(&a, &login, 3, at(1_000), until)
        .await
        .expect("begin");
    assert_eq!(
        third.attempt,
        LoginAttempt::Granted {
            failures: 3,
            locked_until: Some(until)
        }
    );
    s.forgive_login_attempt(&a, &login, 3)
        .await
        .expect("forgive");
    let next = s
        .begin_login(&a, &login, 3, at(2_000), until)
        .await
        .expect("begin");
    assert_eq!(
        next.attempt,
        LoginAttempt::Granted {
            failures: 3,
            locked_until: Some(until)
        },
        "the third attempt again, not a lock"
    );
    // A login without a counter: nothing happens.
    let other = Login::parse("nobody").expect("login");
    s.forgive_login_attempt(&a, &other, 3)
        .await
        .expect("forgive");
}
