//! Conformance of the [`Recovery`](resetd_core::ports::Recovery) port: reset requests (recorded,
//! claimed, resolved exactly once, in group commits) and the tokens they issue.

use std::collections::HashSet;
use std::sync::Arc;

use resetd_core::model::{Lookup, MessageKind, OutboxStatus, ResetToken, Timestamp, TokenPurpose};
use resetd_core::store::{Resolution, Resolved, Store, StoreError};
use resetd_core::types::{ClientName, Locale, TenantId};

use super::fixtures::*;

/// Reset requests: recorded, claimed oldest first, resolved exactly once; issuing supersedes
/// earlier tokens, respects the cool-down and writes token, email and audit together.
pub async fn reset_request_lifecycle(store: Arc<dyn Store>) {
    let s = &*store;
    let a = tenant(s, "acme").await;
    let p = add_person(s, &a, "alice", "alice@example.com").await;

    let mut inserted = Vec::new();
    let mut first = request(&a, Lookup::login(&p.login), at(0));
    first.client = Some(ClientName::parse("web").unwrap());
    first.locale = Some(Locale::parse("de").unwrap());
    for (i, r) in [
        first.clone(),
        request(&a, Lookup::email(&p.email), at(1)),
        request(&a, Lookup::id(&p.id), at(2)),
        request(&a, Lookup::Login("nobody".into()), at(3)),
    ]
    .iter()
    .enumerate()
    {
        inserted.push(
            s.insert_reset_request(r)
                .await
                .unwrap_or_else(|e| panic!("insert request {i}: {e}")),
        );
    }
    assert!(
        inserted.windows(2).all(|w| w[0] < w[1]),
        "ids increase: {inserted:?}"
    );
    let lease = at(60_000);
    let head = s.claim_reset_requests(at(10), lease, 2).await.unwrap();
    let rest = s.claim_reset_requests(at(10), lease, 10).await.unwrap();
    let pending: Vec<_> = head.iter().chain(&rest).cloned().collect();
    assert_eq!(
        pending.iter().map(|r| r.id).collect::<Vec<_>>(),
        inserted,
        "claimed oldest first, each once"
    );
    let r0 = &pending[0];
    assert_eq!(
        (&r0.tenant, &r0.lookup, &r0.client, &r0.locale),
        (&a, &first.lookup, &first.client, &first.locale)
    );
    assert_eq!((&r0.ip, r0.created_at), (&first.ip, first.created_at));
    let ids = inserted;

    // Issue.
    let t1 = token(&p, "t1", at(1_000));
    assert_eq!(
        s.resolve_reset_request(ids[0], issue(t1.clone(), at(1_000 - 60_000)))
            .await
            .unwrap(),
        Resolved::Issued
    );
    assert_eq!(get_token(s, "t1").await, t1);
    let out = outbox_of(s, &a).await;
    assert_eq!(out.len(), 1);
    let m = &out[0];
    assert_eq!(
        (m.status, m.attempts, m.next_attempt_at, m.sent_at),
        (OutboxStatus::Pending, 0, at(1_000), None)
    );
    assert_sealed(
        &m.message,
        &message(&a, MessageKind::ResetLink, at(1_000), "reset"),
    );
    assert_eq!(m.last_error, None);
    assert_eq!(
        audit_kinds(s, &a)
            .await
            .iter()
            .filter(|k| *k == "reset_requested")
            .count(),
        1
    );

    // Already resolved: nothing changes.
    let again = token(&p, "t1-again", at(1_500));
    assert_eq!(
        s.resolve_reset_request(ids[0], issue(again, at(0)))
            .await
            .unwrap(),
        Resolved::Discarded
    );
    assert_eq!(s.find_token(hash("t1-again")).await.unwrap(), None);
    assert_eq!(outbox_of(s, &a).await.len(), 1);
    assert_eq!(
        audit_kinds(s, &a)
            .await
            .iter()
            .filter(|k| *k == "reset_requested")
            .count(),
        1
    );

    // Cool-down: t1 was created after cooldown_since.
    let t2 = token(&p, "t2", at(2_000));
    assert_eq!(
        s.resolve_reset_request(ids[1], issue(t2, at(2_000 - 60_000)))
            .await
            .unwrap(),
        Resolved::CoolingDown
    );
    assert_eq!(s.find_token(hash("t2")).await.unwrap(), None);
    assert_eq!(
        get_token(s, "t1").await.revoked_at,
        None,
        "cool-down leaves the live token alone"
    );
    assert_eq!(outbox_of(s, &a).await.len(), 1);
    assert!(
        !claim_all(s, at(1_000_000)).await.contains(&ids[1]),
        "request deleted"
    );

    // After the cool-down: a new token supersedes the old one.
    let t3 = token(&p, "t3", at(120_000));
    assert_eq!(
        s.resolve_reset_request(ids[2], issue(t3.clone(), at(60_000)))
            .await
            .unwrap(),
        Resolved::Issued
    );
    assert_eq!(get_token(s, "t1").await.revoked_at, Some(at(120_000)));
    assert_eq!(get_token(s, "t3").await, t3);
    assert_eq!(outbox_of(s, &a).await.len(), 2);

    // Discard.
    let before = audit_kinds(s, &a).await.len();
    let discard = audit(&a, None, "reset_requested", at(130_000));
    assert_eq!(
        s.resolve_reset_request(ids[3], Resolution::Discard(discard.clone()))
            .await
            .unwrap(),
        Resolved::Discarded
    );
    assert_eq!(audit_kinds(s, &a).await.len(), before + 1);
    assert_eq!(
        s.resolve_reset_request(ids[3], Resolution::Discard(discard))
            .await
            .unwrap(),
        Resolved::Discarded
    );
    assert_eq!(
        audit_kinds(s, &a).await.len(),
        before + 1,
        "a second discard records nothing"
    );
    assert_eq!(
        s.resolve_reset_request(i64::MAX, issue(token(&p, "t9", at(0)), at(0)))
            .await
            .unwrap(),
        Resolved::Discarded
    );
    assert_eq!(claim_all(s, at(10_000_000)).await, Vec::<i64>::new());
    assert_eq!(get_token(s, "t3").await.revoked_at, None);
}

/// Claims lease requests: a claimed request is not claimed again until its lease ends, the
/// lease does not stop its resolution, and concurrent claimers never share a request.
pub async fn reset_request_claims_are_leased(store: Arc<dyn Store>) {
    let s = &*store;
    let a = tenant(s, "acme").await;
    let mut ids = Vec::new();
    for i in 0..6 {
        let r = request(&a, Lookup::Login(format!("user{i}")), at(i));
        ids.push(add_request(s, &r).await);
    }
    assert_eq!(
        s.claim_reset_requests(at(10), at(60_000), 0).await.unwrap(),
        vec![],
        "a zero limit claims nothing"
    );
    let c = s.claim_reset_requests(at(10), at(60_000), 4).await.unwrap();
    assert_eq!(c.iter().map(|r| r.id).collect::<Vec<_>>(), ids[..4]);
    assert_eq!(
        s.claim_reset_requests(at(59_999), at(100_000), 10)
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>(),
        ids[4..],
        "leased requests are skipped"
    );
    assert_eq!(claim_all(s, at(59_999)).await, Vec::<i64>::new());

    // Every waiting request counts, claimed or not (the queue's cap is held against it).
    assert_eq!(s.count_reset_requests().await.unwrap(), 6);

    // A leased request can still be resolved, by anyone, once.
    let discard = || Resolution::Discard(audit(&a, None, "reset_requested", at(20)));
    assert_eq!(
        s.resolve_reset_request(ids[0], discard()).await.unwrap(),
        Resolved::Discarded
    );
    assert_eq!(s.count_reset_requests().await.unwrap(), 5);

    // The first lease ran out (a crashed worker): claimed again; the resolved one is gone.
    assert_eq!(claim_all(s, at(60_000)).await, ids[1..4].to_vec());
    assert_eq!(claim_all(s, at(100_000)).await, ids[4..].to_vec());

    // Concurrent claimers split the queue: every request exactly once.
    for i in 0..40 {
        let r = request(&a, Lookup::Login(format!("more{i}")), at(i));
        ids.push(add_request(s, &r).await);
    }
    let claimers: Vec<_> = (0..8)
        .map(|_| {
            let s = store.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let got = s
                        .claim_reset_requests(at(500_000), at(600_000), 3)
                        .await
                        .expect("claim");
                    if got.is_empty() {
                        return mine;
                    }
                    mine.extend(got.into_iter().map(|r| r.id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in claimers {
        all.extend(t.await.expect("task"));
    }
    all.sort_unstable();
    assert_eq!(all, ids[1..].to_vec(), "each request claimed exactly once");
}

/// Two requests for one person resolved at the same time (two instances): one token is issued,
/// the other request meets the cool-down.
pub async fn concurrent_issues_honour_the_cooldown(store: Arc<dyn Store>) {
    let s = &*store;
    let a = tenant(s, "acme").await;
    let p = add_person(s, &a, "alice", "alice@example.com").await;
    for round in 0..5i64 {
        let base = round * 1_000_000;
        let mut resolutions = Vec::new();
        for i in 0..4i64 {
            let id = add_request(s, &request(&a, Lookup::id(&p.id), at(base + i))).await;
            let t = token(&p, &format!("r{round}-{i}"), at(base + 100 + i));
            resolutions.push((id, issue(t, at(base + 100 + i - 60_000))));
        }
        let tasks: Vec<_> = resolutions
            .into_iter()
            .map(|(id, r)| {
                let s = store.clone();
                tokio::spawn(async move { s.resolve_reset_request(id, r).await })
            })
            .collect();
        let mut outcomes = Vec::new();
        for t in tasks {
            outcomes.push(t.await.expect("task").expect("resolve"));
        }
        let issued = outcomes.iter().filter(|o| **o == Resolved::Issued).count();
        let cooling = outcomes
            .iter()
            .filter(|o| **o == Resolved::CoolingDown)
            .count();
        assert_eq!((issued, cooling), (1, 3), "round {round}: {outcomes:?}");
    }
    let live: Vec<_> = (0..5)
        .flat_map(|round| (0..4).map(move |i| format!("r{round}-{i}")))
        .collect();
    let mut found = 0;
    for secret in &live {
        if let Some(t) = s.find_token(hash(secret)).await.unwrap() {
            found += 1;
            assert!(t.used_at.is_none());
        }
    }
    assert_eq!(found, 5, "one token per round");
    assert_eq!(
        outbox_of(s, &a).await.len(),
        5,
        "one email per round, never two"
    );
}

/// Tokens issued directly (not through a recorded request) follow the same rules: cool-down,
/// superseding, email and audit in one transaction; and a live token can be voided exactly once.
pub async fn direct_issue_and_void(store: Arc<dyn Store>) {
    let s = &*store;
    let a = tenant(s, "acme").await;
    let b = tenant(s, "beta").await;
    let p = add_person(s, &a, "alice", "alice@example.com").await;

    let direct = |t: ResetToken, cooldown_since: Timestamp| {
        let Resolution::Issue(i) = issue(t, cooldown_since) else {
            unreachable!()
        };
        *i
    };
    let t1 = token(&p, "d1", at(1_000));
    assert_eq!(
        s.issue_token(direct(t1.clone(), at(0))).await.unwrap(),
        Resolved::Issued
    );
    assert_eq!(get_token(s, "d1").await, t1);
    assert_eq!(
        outbox_of(s, &a).await.len(),
        1,
        "the email is queued with the token"
    );
    assert_eq!(
        audit_kinds(s, &a)
            .await
            .iter()
            .filter(|k| *k == "reset_requested")
            .count(),
        1
    );

    // Within the cool-down nothing is stored.
    let t2 = token(&p, "d2", at(2_000));
    assert_eq!(
        s.issue_token(direct(t2, at(500))).await.unwrap(),
        Resolved::CoolingDown
    );
    assert_eq!(s.find_token(hash("d2")).await.unwrap(), None);
    assert_eq!(outbox_of(s, &a).await.len(), 1);

    // A newer token supersedes the live one.
    let t3 = token(&p, "d3", at(3_000));
    assert_eq!(
        s.issue_token(direct(t3, at(2_000))).await.unwrap(),
        Resolved::Issued
    );
    assert_eq!(get_token(s, "d1").await.revoked_at, Some(at(3_000)));
    assert_eq!(get_token(s, "d3").await.revoked_at, None);

    // Voiding: not from another tenant, not twice, not an unknown or superseded token.
    let void_audit = |t: &TenantId| audit(t, Some(&p.id), "reset_token_voided", at(4_000));
    assert!(!s
        .void_token(&b, hash("d3"), at(4_000), void_audit(&b))
        .await
        .unwrap());
    assert!(!s
        .void_token(&a, hash("nope"), at(4_000), void_audit(&a))
        .await
        .unwrap());
    assert!(!s
        .void_token(&a, hash("d1"), at(4_000), void_audit(&a))
        .await
        .unwrap());
    assert!(s
        .void_token(&a, hash("d3"), at(4_000), void_audit(&a))
        .await
        .unwrap());
    assert_eq!(get_token(s, "d3").await.revoked_at, Some(at(4_000)));
    assert!(!s
        .void_token(&a, hash("d3"), at(5_000), void_audit(&a))
        .await
        .unwrap());
    assert_eq!(
        get_token(s, "d3").await.revoked_at,
        Some(at(4_000)),
        "voiding twice keeps the first instant"
    );
    assert_eq!(
        audit_kinds(s, &a)
            .await
            .iter()
            .filter(|k| *k == "reset_token_voided")
            .count(),
        1,
        "only the effective void is audited"
    );
    assert!(audit_kinds(s, &b).await.is_empty());
    assert_eq!(
        s.change_password(change(&p, Some("d3"), "$argon2id$x", at(6_000)))
            .await,
        Err(StoreError::TokenGone),
        "a voided token cannot change the password"
    );
}

/// 500 concurrent durable inserts all succeed (they share commits) and are all pending, and each
/// caller gets the id of its own request (a store that inserts them together must not mix them
/// up).
pub async fn group_commit_many_requests(store: Arc<dyn Store>) {
    let a = tenant(&*store, "acme").await;
    let tasks: Vec<_> = (0..500)
        .map(|i| {
            let s = store.clone();
            let r = request(&a, Lookup::Login(format!("user{i}")), at(i));
            tokio::spawn(async move { s.insert_reset_request(&r).await })
        })
        .collect();
    let mut returned = HashSet::new();
    let mut login_of = std::collections::HashMap::new();
    for (i, t) in tasks.into_iter().enumerate() {
        let id = t.await.expect("task").expect("insert");
        returned.insert(id);
        login_of.insert(id, format!("user{i}"));
    }
    assert_eq!(returned.len(), 500, "each insert returns its own id");
    let pending = store
        .claim_reset_requests(at(1_000), at(61_000), 1_000)
        .await
        .unwrap();
    assert_eq!(pending.len(), 500);
    assert_eq!(
        pending.iter().map(|r| r.id).collect::<HashSet<_>>(),
        returned
    );
    let logins: HashSet<String> = pending
        .iter()
        .map(|r| match &r.lookup {
            Lookup::Login(l) => l.clone(),
            other => panic!("unexpected lookup {other:?}"),
        })
        .collect();
    assert_eq!(logins.len(), 500);
    for r in &pending {
        assert_eq!(
            r.lookup,
            Lookup::Login(login_of[&r.id].clone()),
            "request {} is the one whose insert returned its id",
            r.id
        );
    }
}

/// The reset worker's batch calls: people found for many lookups in their order (a repeated
/// lookup answered each time), and many requests discarded at once, each exactly once: one
/// already resolved elsewhere records no second audit event, and a request not in the batch
/// (the only one for a real account, among a flood for made-up names) is left alone.
pub async fn requests_are_looked_up_and_discarded_in_batches(store: Arc<dyn Store>) {
    let s = &*store;
    let a = tenant(s, "acme").await;
    let b = tenant(s, "beta").await;
    let p = add_person(s, &a, "alice", "alice@example.com").await;
    add_person(s, &b, "bob", "bob@example.com").await;
    let nobody = Lookup::Login("nobody".into());
    let found = s
        .find_people(
            &a,
            &[
                nobody.clone(),
                Lookup::login(&p.login),
                Lookup::Login("bob".into()),
                Lookup::email(&p.email),
                nobody.clone(),
            ],
        )
        .await
        .unwrap();
    let ids: Vec<Option<_>> = found
        .iter()
        .map(|f| f.as_ref().map(|p| p.id.clone()))
        .collect();
    assert_eq!(
        ids,
        vec![None, Some(p.id.clone()), None, Some(p.id.clone()), None],
        "in order, within the tenant only"
    );
    assert_eq!(s.find_people(&a, &[]).await.unwrap(), vec![]);

    let mut ids = Vec::new();
    for (i, lookup) in [
        nobody.clone(),
        nobody.clone(),
        Lookup::login(&p.login),
        Lookup::Login("ghost".into()),
    ]
    .into_iter()
    .enumerate()
    {
        ids.push(add_request(s, &request(&a, lookup, at(i as i64))).await);
    }
    let elsewhere = audit(&a, None, "reset_requested", at(10));
    assert_eq!(
        s.resolve_reset_request(ids[3], Resolution::Discard(elsewhere))
            .await
            .unwrap(),
        Resolved::Discarded
    );
    let discards = [ids[0], ids[1], ids[3]]
        .iter()
        .map(|id| (*id, audit(&a, None, "reset_requested", at(20))))
        .collect();
    s.discard_reset_requests(discards).await.unwrap();
    s.discard_reset_requests(vec![]).await.unwrap();
    let left = s
        .claim_reset_requests(at(30), at(60_000), 10)
        .await
        .unwrap();
    assert_eq!(
        left.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![ids[2]],
        "only the request outside the batch is left"
    );
    let audits = audit_kinds(s, &a).await;
    assert_eq!(
        audits.iter().filter(|k| *k == "reset_requested").count(),
        3,
        "one event per request discarded, none for the one resolved before: {audits:?}"
    );
}

/// A token's purpose is stored with it and comes back on lookup, whichever way it was issued,
/// and stays with it once it is superseded or used.
pub async fn tokens_keep_their_purpose(store: Arc<dyn Store>) {
    let s = &*store;
    let a = tenant(s, "acme").await;
    let p = add_person(s, &a, "alice", "alice@example.com").await;
    let q = add_person(s, &a, "bob", "bob@example.com").await;

    issue_token(s, &p, "queued", at(1_000)).await;
    let Resolution::Issue(direct) = issue(token(&q, "direct", at(1_000)), at(0)) else {
        unreachable!()
    };
    assert_eq!(s.issue_token(*direct).await.unwrap(), Resolved::Issued);
    for secret in ["queued", "direct"] {
        assert_eq!(
            get_token(s, secret).await.purpose,
            TokenPurpose::Reset,
            "{secret}"
        );
    }

    issue_token(s, &p, "newer", at(2_000)).await;
    s.change_password(change(&p, Some("newer"), "$argon2id$new", at(3_000)))
        .await
        .unwrap();
    let (superseded, used) = (get_token(s, "queued").await, get_token(s, "newer").await);
    assert!(superseded.revoked_at.is_some() && used.used_at.is_some());
    assert_eq!(
        (superseded.purpose, used.purpose),
        (TokenPurpose::Reset, TokenPurpose::Reset)
    );
}
