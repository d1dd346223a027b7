//! Conformance of the [`Outbox`](resetd_core::ports::Outbox) port: leased claims, delivery
//! states, bodies sealed at rest and erased once sent or dead.

use std::sync::Arc;

use resetd_core::model::{MessageKind, OutboxStatus, Person, Timestamp};
use resetd_core::store::{Store, StoreError};

use super::fixtures::*;

/// Enqueues a "password changed" email for `p` created at `when` and returns its outbox id.
async fn enqueue(store: &dyn Store, p: &Person, when: Timestamp, tag: &str) -> i64 {
    let mut c = change(p, None, "$argon2id$x", when);
    c.message = Some(message(&p.tenant, MessageKind::PasswordChanged, when, tag));
    store.change_password(c).await.expect("enqueue");
    outbox_of(store, &p.tenant)
        .await
        .into_iter()
        .map(|m| m.id)
        .max()
        .expect("queued")
}

/// Claims lease messages: due ones in order, not again before the lease ends, again after it;
/// concurrent claimers never share a message.
pub async fn outbox_claims_are_leased(store: Arc<dyn Store>) {
    let s = &*store;
    let a = tenant(s, "acme").await;
    let p = add_person(s, &a, "alice", "alice@example.com").await;
    let m1 = enqueue(s, &p, at(1), "m1").await;
    let m2 = enqueue(s, &p, at(2), "m2").await;
    let m3 = enqueue(s, &p, at(3), "m3").await;
    let future = enqueue(s, &p, at(10_000), "future").await;

    let lease = at(60_000);
    let c = s.claim_outbox(at(5), lease, 2).await.unwrap();
    assert_eq!(
        c.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![m1, m2],
        "due first, oldest first"
    );
    assert!(c.iter().all(|m| m.attempts == 1
        && m.next_attempt_at == lease
        && m.status == OutboxStatus::Pending));
    assert_eq!(
        c[0].message,
        message(&a, MessageKind::PasswordChanged, at(1), "m1")
    );
    let c = s.claim_outbox(at(5), lease, 10).await.unwrap();
    assert_eq!(c.iter().map(|m| m.id).collect::<Vec<_>>(), vec![m3]);
    assert_eq!(
        s.claim_outbox(at(5), lease, 10).await.unwrap(),
        vec![],
        "leased messages are not claimed again"
    );

    let c = s.claim_outbox(at(30_000), at(90_000), 10).await.unwrap();
    assert_eq!(
        c.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![future],
        "only the now-due message"
    );
    assert_eq!(
        s.claim_outbox(at(59_999), at(100_000), 10).await.unwrap(),
        vec![]
    );

    // The lease ran out (a crashed worker): claimed again, attempts counted.
    let c = s.claim_outbox(at(60_000), at(120_000), 10).await.unwrap();
    assert_eq!(c.iter().map(|m| m.id).collect::<Vec<_>>(), vec![m1, m2, m3]);
    assert!(c
        .iter()
        .all(|m| m.attempts == 2 && m.next_attempt_at == at(120_000)));
    assert_eq!(
        s.claim_outbox(at(60_000), at(120_000), 0).await.unwrap(),
        vec![]
    );

    // Concurrent claimers split the work.
    let claimers: Vec<_> = (0..10)
        .map(|_| {
            let s = store.clone();
            tokio::spawn(async move { s.claim_outbox(at(200_000), at(300_000), 1).await })
        })
        .collect();
    let mut ids = Vec::new();
    for t in claimers {
        ids.extend(
            t.await
                .expect("task")
                .expect("claim")
                .into_iter()
                .map(|m| m.id),
        );
    }
    ids.sort_unstable();
    assert_eq!(
        ids,
        vec![m1, m2, m3, future],
        "each message claimed by exactly one claimer"
    );
}

/// Delivery outcomes: sent, retry later (error kept, cut to 500 characters), dead; bodies
/// opened when claimed and erased when sent or dead, so a dead message cannot be revived.
pub async fn outbox_delivery_states(store: Arc<dyn Store>) {
    let s = &*store;
    let a = tenant(s, "acme").await;
    let b = tenant(s, "beta").await;
    let p = add_person(s, &a, "alice", "alice@example.com").await;
    let q = add_person(s, &b, "bob", "bob@example.com").await;
    let m1 = enqueue(s, &p, at(1), "m1").await;
    let m2 = enqueue(s, &p, at(2), "m2").await;
    let m3 = enqueue(s, &p, at(3), "m3").await;
    let mb = enqueue(s, &q, at(4), "mb").await;
    // Claimed bodies are opened (they are sealed at rest: see `reset_request_lifecycle`).
    let claimed = s.claim_outbox(at(10), at(1_000), 10).await.unwrap();
    let texts: Vec<(&str, Option<&str>)> = claimed
        .iter()
        .map(|m| (m.message.text.as_str(), m.message.html.as_deref()))
        .collect();
    assert_eq!(
        texts,
        [
            ("text m1", Some("<p>html m1</p>")),
            ("text m2", Some("<p>html m2</p>")),
            ("text m3", Some("<p>html m3</p>")),
            ("text mb", Some("<p>html mb</p>"))
        ]
    );

    s.mark_sent(m1, at(20)).await.unwrap();
    let long = "x".repeat(800);
    s.mark_failed(m2, &long, Some(at(5_000))).await.unwrap();
    s.mark_failed(m3, "550 no such user", None).await.unwrap();

    let all_a = outbox_of(s, &a).await;
    assert_eq!(
        all_a.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![m3, m2, m1],
        "newest first, tenant only"
    );
    let (o3, o2, o1) = (&all_a[0], &all_a[1], &all_a[2]);
    assert_eq!((o1.status, o1.sent_at), (OutboxStatus::Sent, Some(at(20))));
    // The delivery deadline is stored as given and survives every state change.
    for (m, created) in [(o1, 1), (o2, 2), (o3, 3)] {
        assert_eq!(
            m.message.deliver_by,
            at(created).plus_secs(86_400),
            "{}",
            m.id
        );
    }
    assert_eq!(
        (o2.status, o2.next_attempt_at, o2.attempts),
        (OutboxStatus::Pending, at(5_000), 1)
    );
    assert_eq!(
        o2.last_error.as_deref().map(|e| e.chars().count()),
        Some(500)
    );
    assert_eq!(
        (o3.status, o3.last_error.as_deref()),
        (OutboxStatus::Dead, Some("550 no such user"))
    );
    // Sent and dead: the bodies are erased (recipient, subject, Message-ID and errors stay);
    // the pending one keeps its sealed body.
    for o in [o1, o3] {
        assert_eq!(
            (o.message.text.as_str(), o.message.html.as_deref()),
            ("", None)
        );
        assert_eq!(o.message.recipient.as_str(), "to@example.com");
        assert!(
            o.message.subject.starts_with("subject m")
                && o.message.message_id.ends_with("@resetd.test>")
        );
    }
    match super::bodies_at_rest() {
        super::BodiesAtRest::Sealed => {
            assert!(crate::OutboxKeys::sealed_with(&o2.message.text).is_some())
        }
        super::BodiesAtRest::Plain => assert!(o2.message.text.starts_with("text m")),
    }

    let sent = s
        .list_outbox(None, Some(OutboxStatus::Sent), 10)
        .await
        .unwrap();
    assert_eq!(sent.iter().map(|m| m.id).collect::<Vec<_>>(), vec![m1]);
    let pending = s
        .list_outbox(None, Some(OutboxStatus::Pending), 10)
        .await
        .unwrap();
    assert_eq!(
        pending.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![mb, m2]
    );
    let pending_b = s
        .list_outbox(Some(&b), Some(OutboxStatus::Pending), 10)
        .await
        .unwrap();
    assert_eq!(pending_b.iter().map(|m| m.id).collect::<Vec<_>>(), vec![mb]);
    assert_eq!(s.list_outbox(None, None, 2).await.unwrap().len(), 2);

    let counts = s.outbox_counts().await.unwrap();
    assert_eq!(
        (
            count_of(&counts, OutboxStatus::Pending),
            count_of(&counts, OutboxStatus::Sent),
            count_of(&counts, OutboxStatus::Dead)
        ),
        (2, 1, 1)
    );

    // The retried message is due at its time (after mb, whose lease ran out earlier); sent and
    // dead ones never are.
    let c = s.claim_outbox(at(5_000), at(6_000), 10).await.unwrap();
    assert_eq!(c.iter().map(|m| m.id).collect::<Vec<_>>(), vec![mb, m2]);
    assert_eq!(c[1].attempts, 2);
    assert_eq!(
        c[1].last_error.as_deref().map(|e| e.chars().count()),
        Some(500)
    );

    // A dead message's body was erased: it cannot be sent again (`Erased`), and stays dead.
    // Scoped to a tenant first: another tenant's message is not found.
    assert_eq!(
        s.retry_outbox(Some(&b), m3, at(7_000)).await,
        Err(StoreError::NotFound),
        "a tenant cannot retry another tenant's message"
    );
    assert_eq!(
        s.retry_outbox(Some(&a), m3, at(7_000)).await,
        Err(StoreError::Erased)
    );
    assert_eq!(
        s.retry_outbox(None, m3, at(7_000)).await,
        Err(StoreError::Erased)
    );
    assert_eq!(
        outbox_of(s, &a)
            .await
            .iter()
            .find(|m| m.id == m3)
            .unwrap()
            .status,
        OutboxStatus::Dead
    );
    let c = s.claim_outbox(at(7_000), at(8_000), 10).await.unwrap();
    assert!(
        !c.iter().any(|m| m.id == m3),
        "an erased message is never claimed"
    );
    // Retrying a pending message makes it due now; a retried notice gets a fresh retry window as
    // long as its first (a reset link keeps its deadline: the link's expiry does not move).
    assert_eq!(s.retry_outbox(None, m2, at(8_500)).await, Ok(a.clone()));
    let c = s.claim_outbox(at(8_500), at(9_000), 10).await.unwrap();
    let retried = c.iter().find(|m| m.id == m2).expect("due now");
    assert_eq!(retried.message.deliver_by, at(8_500).plus_secs(86_400));

    assert_eq!(
        s.retry_outbox(None, m1, at(9_000)).await,
        Err(StoreError::NotFound),
        "a sent message stays sent"
    );
    assert_eq!(
        s.retry_outbox(None, i64::MAX, at(9_000)).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        s.mark_sent(i64::MAX, at(9_000)).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        s.mark_failed(i64::MAX, "e", None).await,
        Err(StoreError::NotFound)
    );
    let counts = s.outbox_counts().await.unwrap();
    assert_eq!(
        count_of(&counts, OutboxStatus::Dead),
        1,
        "the erased one stays dead"
    );
    assert_eq!(count_of(&counts, OutboxStatus::Pending), 2);
}
