//! Conformance of the [`Retention`](resetd_core::ports::Retention) port: what is live or inside
//! its period is never deleted; what is past it goes, oldest first, a batch at a time.

use std::sync::Arc;

use resetd_core::model::{OutboxStatus, Timestamp};
use resetd_core::ports::{Purged, DEFAULT_RETENTION};
use resetd_core::store::Store;

use super::fixtures::*;

const DAY: i64 = 86_400_000;

fn purged(tokens: u64, messages: u64, audit_events: u64) -> Purged {
    Purged {
        tokens,
        messages,
        audit_events,
    }
}

/// With the default policy (tokens a day after expiry, finished email rows a week after they
/// were queued, audit a year): a live token, a token expired an hour and a half ago, pending
/// email of any age, a sent email three days old and the recent audit events stay; the rest goes,
/// at most `batch` of each kind per call.
pub async fn retention_keeps_what_is_live_or_inside_its_period(store: Arc<dyn Store>) {
    let s = &*store;
    let a = tenant(s, "acme").await;
    let now = at(30 * DAY);
    // An audit event from 400 days before, then one token (with its email and audit event) per
    // person, oldest first, as time runs.
    s.append_audit(audit(&a, None, "ancient", Timestamp(now.0 - 400 * DAY)))
        .await
        .unwrap();
    let ages = [
        ("old5", 20 * DAY),
        ("old4", 12 * DAY),
        ("old3", 10 * DAY),
        ("old2", 5 * DAY),
        ("old1", 3 * DAY),
        ("recent", 2 * 3_600_000),
        ("live", 60_000),
    ];
    for (name, age) in ages {
        let p = add_person(s, &a, name, &format!("{name}@example.com")).await;
        issue_token(s, &p, name, Timestamp(now.0 - age)).await;
    }
    let queued_at = |age: i64| {
        let when = Timestamp(now.0 - age);
        move |m: &&resetd_core::model::OutboxMessage| m.message.created_at == when
    };
    let outbox = outbox_of(s, &a).await;
    let id_of = |age: i64| outbox.iter().find(queued_at(age)).unwrap().id;
    s.mark_sent(id_of(10 * DAY), Timestamp(now.0 - 10 * DAY + 1000))
        .await
        .unwrap();
    s.mark_failed(id_of(12 * DAY), "gave up", None)
        .await
        .unwrap();
    s.mark_sent(id_of(3 * DAY), Timestamp(now.0 - 3 * DAY + 1000))
        .await
        .unwrap();

    let policy = DEFAULT_RETENTION;
    let mut calls = Vec::new();
    loop {
        let p = s.purge(now, &policy, 2).await.unwrap();
        calls.push(p);
        if p.total() == 0 {
            break;
        }
    }
    assert_eq!(
        calls,
        [
            purged(2, 2, 1),
            purged(2, 0, 0),
            purged(1, 0, 0),
            purged(0, 0, 0)
        ],
        "a batch at a time, oldest first"
    );

    for (name, _) in &ages[..5] {
        assert!(s.find_token(hash(name)).await.unwrap().is_none(), "{name}");
    }
    let live = get_token(s, "live").await;
    assert!(
        live.used_at.is_none() && live.revoked_at.is_none() && live.expires_at > now,
        "the live token stays live"
    );
    get_token(s, "recent").await;
    let left = outbox_of(s, &a).await;
    let pending = left
        .iter()
        .filter(|m| m.status == OutboxStatus::Pending)
        .count();
    assert_eq!(pending, 4, "pending email is never deleted, however old");
    assert_eq!(left.len(), 5, "the sent email inside its week stays");
    let kinds = audit_kinds(s, &a).await;
    // Each person's creation and token request.
    assert_eq!(kinds.len(), 14, "{kinds:?}");
    assert!(!kinds.iter().any(|k| k == "ancient"));

    // Keeping the audit log for ever deletes none of it.
    s.append_audit(audit(&a, None, "ancient", Timestamp(now.0 - 900 * DAY)))
        .await
        .unwrap();
    let forever = resetd_core::ports::RetentionPolicy {
        audit_after_secs: None,
        ..policy
    };
    assert_eq!(s.purge(now, &forever, 100).await.unwrap(), purged(0, 0, 0));
    assert_eq!(audit_kinds(s, &a).await.len(), 15);
}
