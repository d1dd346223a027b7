//! The double's own checks: the SQL stores' semantics that the use cases' tests rely on, taken
//! from `resetd-store`'s conformance suite (which needs a real backend to run).

use serde_json::json;

use super::*;
use crate::model::{
    Lookup, MessageKind, NewAudit, NewMessage, NewResetRequest, OutboxStatus, Person, ResetToken,
    Tenant, TenantSettings, Timestamp, TokenPurpose,
};
use crate::ports::{
    Audit, Credentials, Directory, IssueToken, LoginAttempt, Outbox, PasswordChange, Recovery,
    Resolution, Resolved, Schema, StoreError,
};
use crate::secret::SecretHash;
use crate::types::{DisplayName, Email, Login, ObjectId, PersonId, TenantId};

fn at(ms: i64) -> Timestamp {
    Timestamp(T0.0 + ms)
}

fn audit(t: &TenantId, kind: &'static str) -> NewAudit {
    NewAudit {
        tenant: t.clone(),
        person: None,
        kind,
        actor: "system".into(),
        ip: None,
        at: at(0),
        detail: json!({}),
    }
}

async fn tenant(s: &MemoryStore, name: &str) -> TenantId {
    let id = TenantId::parse(name).unwrap();
    let t = Tenant {
        id: id.clone(),
        settings: TenantSettings::default(),
        created_at: at(0),
    };
    s.create_tenant(&t).await.unwrap();
    id
}

async fn add(s: &MemoryStore, t: &TenantId, login: &str, email: &str) -> Person {
    let mut p = Person {
        id: PersonId::generate(),
        number: 0,
        tenant: t.clone(),
        login: Login::parse(login).unwrap(),
        email: Email::parse(email).unwrap(),
        display_name: DisplayName::empty(),
        locale: None,
        enabled: true,
        verified: false,
        roles: vec![],
        attributes: json!({}),
        password_hash: Some("$argon2id$initial".into()),
        password_changed_at: Some(at(0)),
        must_change_password: false,
        failed_logins: 0,
        locked_until: None,
        created_at: at(0),
        updated_at: at(0),
    };
    p.number = s
        .insert_person(&p, audit(t, "person_created"))
        .await
        .unwrap();
    p
}

fn message(t: &TenantId, kind: MessageKind, when: Timestamp) -> NewMessage {
    NewMessage {
        tenant: t.clone(),
        kind,
        recipient: Email::parse("to@example.com").unwrap(),
        subject: "s".into(),
        text: "text".into(),
        html: Some("<p>html</p>".into()),
        sender_name: None,
        message_id: "<m@resetd.test>".into(),
        created_at: when,
        deliver_by: when.plus_secs(3600),
    }
}

fn issue(p: &Person, secret: &str, created: Timestamp, cooldown_since: Timestamp) -> IssueToken {
    IssueToken {
        token: ResetToken {
            hash: SecretHash::of(secret),
            tenant: p.tenant.clone(),
            person: p.id.clone(),
            client: None,
            created_at: created,
            expires_at: created.plus_secs(1800),
            used_at: None,
            revoked_at: None,
            ip: None,
            purpose: TokenPurpose::Reset,
            claimed: false,
        },
        cooldown_since,
        message: message(&p.tenant, MessageKind::ResetLink, created),
        audit: audit(&p.tenant, "reset_requested"),
    }
}

fn change(p: &Person, token: Option<&str>, hash: &str, when: Timestamp) -> PasswordChange {
    PasswordChange {
        tenant: p.tenant.clone(),
        person: p.id.clone(),
        token: token.map(SecretHash::of),
        claim: None,
        new_hash: Some(hash.into()),
        must_change_password: false,
        unlock: false,
        keep_history: 0,
        at: when,
        message: None,
        audit: audit(&p.tenant, "reset_completed"),
    }
}

#[tokio::test]
async fn people_keep_their_keys_lookups_and_references() {
    let s = MemoryStore::new();
    let a = tenant(&s, "acme").await;
    assert_eq!(
        s.create_tenant(&s.get_tenant(&a).await.unwrap().unwrap())
            .await,
        Err(StoreError::Conflict("tenant".into()))
    );
    let p1 = add(&s, &a, "alice", "shared@example.com").await;
    let p2 = add(&s, &a, "bob", "shared@example.com").await;
    assert_eq!((p1.number, p2.number), (1, 2));
    let dup = Person {
        id: PersonId::generate(),
        ..p1.clone()
    };
    assert_eq!(
        s.insert_person(&dup, audit(&a, "person_created")).await,
        Err(StoreError::Conflict("login".into()))
    );
    let orphan = Person {
        id: PersonId::generate(),
        tenant: TenantId::parse("ghost").unwrap(),
        ..p1.clone()
    };
    assert_eq!(
        s.insert_person(&orphan, audit(&a, "person_created")).await,
        Err(StoreError::NotFound)
    );
    let events = s.list_audit(&a, None, 10).await.unwrap();
    assert_eq!(events.len(), 2, "a refused insert records nothing");

    let find = |l: Lookup| {
        let s = &s;
        let a = a.clone();
        async move { s.find_person(&a, &l).await.unwrap().map(|p| p.id) }
    };
    assert_eq!(
        find(Lookup::Email("SHARED@Example.com".into())).await,
        Some(p1.id.clone())
    );
    assert_eq!(find(Lookup::Login("Alice".into())).await, None);
    let oid = ObjectId::of(&p2.id).as_str().to_uppercase();
    assert_eq!(find(Lookup::ObjectId(oid)).await, Some(p2.id.clone()));
    assert_eq!(find(Lookup::Number(2)).await, Some(p2.id.clone()));
    assert_eq!(find(Lookup::Id("not-an-id".into())).await, None);
}

#[tokio::test]
async fn tokens_follow_the_cool_down_are_superseded_and_consumed_once() {
    let s = MemoryStore::new();
    let a = tenant(&s, "acme").await;
    let p = add(&s, &a, "alice", "alice@example.com").await;
    let q = add(&s, &a, "bob", "bob@example.com").await;
    assert_eq!(
        s.issue_token(issue(&p, "t1", at(1_000), at(0))).await,
        Ok(Resolved::Issued)
    );
    assert_eq!(
        s.issue_token(issue(&p, "t2", at(2_000), at(500))).await,
        Ok(Resolved::CoolingDown)
    );
    assert_eq!(s.find_token(SecretHash::of("t2")).await, Ok(None));
    let id = s
        .insert_reset_request(&NewResetRequest {
            tenant: a.clone(),
            lookup: Lookup::id(&p.id),
            client: None,
            locale: None,
            ip: None,
            created_at: at(0),
        })
        .await
        .unwrap();
    let resolution = || Resolution::Issue(Box::new(issue(&p, "t3", at(3_000), at(2_000))));
    assert_eq!(
        s.resolve_reset_request(id, resolution()).await,
        Ok(Resolved::Issued)
    );
    assert_eq!(
        s.resolve_reset_request(id, resolution()).await,
        Ok(Resolved::Discarded)
    );
    let t1 = s.find_token(SecretHash::of("t1")).await.unwrap().unwrap();
    assert_eq!(t1.revoked_at, Some(at(3_000)), "superseded");
    assert_eq!(s.list_outbox(None, None, 10).await.unwrap().len(), 2);

    s.issue_token(issue(&q, "tq", at(3_000), at(0)))
        .await
        .unwrap();
    assert_eq!(
        s.change_password(change(&p, Some("tq"), "x", at(4_000)))
            .await,
        Err(StoreError::TokenGone),
        "another person's token"
    );
    assert_eq!(
        s.change_password(change(&p, Some("t3"), "x", at(3_000 + 1_800_000)))
            .await,
        Err(StoreError::TokenGone),
        "expired at the change"
    );
    s.change_password(change(&p, Some("t3"), "$argon2id$new", at(4_000)))
        .await
        .unwrap();
    assert_eq!(
        s.change_password(change(&p, Some("t3"), "y", at(5_000)))
            .await,
        Err(StoreError::TokenGone)
    );
    let got = s.get_person(&a, &p.id).await.unwrap().unwrap();
    assert_eq!(got.password_hash.as_deref(), Some("$argon2id$new"));
    let ghost = Person {
        id: PersonId::generate(),
        ..p.clone()
    };
    assert_eq!(
        s.change_password(change(&ghost, None, "x", at(6_000)))
            .await,
        Err(StoreError::NotFound)
    );
}

#[tokio::test]
async fn history_is_pruned_to_what_the_change_keeps() {
    let s = MemoryStore::new();
    let a = tenant(&s, "acme").await;
    let p = add(&s, &a, "alice", "alice@example.com").await;
    for (i, h) in ["h1", "h2", "h3", "h4"].iter().enumerate() {
        let mut c = change(&p, None, h, at(i as i64));
        c.keep_history = 2;
        s.change_password(c).await.unwrap();
    }
    assert_eq!(
        s.password_history(&a, &p.id, 10).await.unwrap(),
        ["h3", "h2"]
    );
    assert_eq!(s.password_history(&a, &p.id, 1).await.unwrap(), ["h3"]);
}

#[tokio::test]
async fn the_login_counter_grants_up_to_the_threshold_then_locks_until_the_window_ends() {
    let s = MemoryStore::new();
    let a = tenant(&s, "acme").await;
    let p = add(&s, &a, "alice", "alice@example.com").await;
    let w = 900_000;
    let begin = |now: i64| {
        let (s, a, l) = (&s, a.clone(), p.login.clone());
        async move {
            s.begin_login(&a, &l, 3, at(now), at(now + w))
                .await
                .unwrap()
        }
    };
    let granted = |failures, locked_until| LoginAttempt::Granted {
        failures,
        locked_until,
    };
    assert_eq!(begin(0).await.attempt, granted(1, None));
    assert_eq!(begin(1).await.attempt, granted(2, None));
    let start = begin(2).await;
    assert_eq!(start.attempt, granted(3, Some(at(2 + w))));
    assert_eq!(start.account.map(|a| a.person), Some(p.id.clone()));
    let got = s.get_person(&a, &p.id).await.unwrap().unwrap();
    assert_eq!((got.failed_logins, got.locked_until), (3, Some(at(2 + w))));
    assert_eq!(
        begin(3).await.attempt,
        LoginAttempt::Locked { until: at(2 + w) }
    );
    assert_eq!(
        begin(2 + w).await.attempt,
        granted(1, None),
        "a fresh window"
    );
    s.record_login_success(&a, &p.login, &p.id, Some("$argon2id$re".into()), None)
        .await
        .unwrap();
    let got = s.get_person(&a, &p.id).await.unwrap().unwrap();
    assert_eq!(
        (got.failed_logins, got.password_hash.as_deref()),
        (0, Some("$argon2id$re"))
    );
    assert_eq!(got.password_changed_at, p.password_changed_at);

    let nobody = Login::parse("nobody").unwrap();
    let solo = s.begin_login(&a, &nobody, 1, at(0), at(w)).await.unwrap();
    assert_eq!(
        (solo.attempt, solo.account),
        (granted(1, Some(at(w))), None)
    );

    // Ended counters go, a few per call (a person shows a count until then).
    let c = add(&s, &a, "carol", "carol@example.com").await;
    s.begin_login(&a, &c.login, 3, at(0), at(w)).await.unwrap();
    let carol = || async {
        s.get_person(&a, &c.id)
            .await
            .unwrap()
            .unwrap()
            .failed_logins
    };
    assert_eq!(carol().await, 1);
    for _ in 0..2 {
        s.begin_login(&a, &nobody, 3, at(10 * w), at(11 * w))
            .await
            .unwrap();
    }
    assert_eq!(carol().await, 0, "removed");
}

#[tokio::test]
async fn the_outbox_leases_claims_erases_bodies_and_revives_only_what_it_can_send() {
    let s = MemoryStore::new();
    let a = TenantId::parse("acme").unwrap();
    let m1 = s.queue_message(&message(&a, MessageKind::PasswordChanged, at(1)));
    let m2 = s.queue_message(&message(&a, MessageKind::ResetLink, at(2)));
    assert_eq!((m1, m2), (1, 2));
    let c = s.claim_outbox(at(5), at(1_000), 10).await.unwrap();
    assert_eq!(
        c.iter().map(|m| (m.id, m.attempts)).collect::<Vec<_>>(),
        [(1, 1), (2, 1)]
    );
    assert_eq!(
        s.claim_outbox(at(999), at(2_000), 10).await,
        Ok(vec![]),
        "leased"
    );

    s.mark_failed(m1, &"x".repeat(800), Some(at(5_000)))
        .await
        .unwrap();
    s.mark_failed(m2, "550", None).await.unwrap();
    let all = s.list_outbox(Some(&a), None, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|m| m.id).collect::<Vec<_>>(),
        [2, 1],
        "newest first"
    );
    assert_eq!(
        all[1].last_error.as_ref().map(|e| e.chars().count()),
        Some(MAX_ERROR_CHARS)
    );
    assert_eq!(
        (all[0].status, all[0].message.text.as_str()),
        (OutboxStatus::Dead, "")
    );
    assert_eq!(
        s.retry_outbox(None, m2, at(6_000)).await,
        Err(StoreError::Erased)
    );

    // A revived notice gets a fresh window as long as its first.
    assert_eq!(s.retry_outbox(Some(&a), m1, at(7_000)).await, Ok(a.clone()));
    let c = s.claim_outbox(at(7_000), at(8_000), 10).await.unwrap();
    assert_eq!((c[0].id, c[0].attempts), (m1, 1));
    assert_eq!(c[0].message.deliver_by, at(7_000).plus_secs(3600));
    s.mark_sent(m1, at(7_500)).await.unwrap();
    assert_eq!(
        s.retry_outbox(None, m1, at(9_000)).await,
        Err(StoreError::NotFound)
    );
    let counts = s.outbox_counts().await.unwrap();
    assert_eq!(
        counts,
        [
            (OutboxStatus::Pending, 0),
            (OutboxStatus::Sent, 1),
            (OutboxStatus::Dead, 1)
        ]
    );
}

#[tokio::test]
async fn failures_on_demand_change_nothing_and_are_logged() {
    let s = MemoryStore::new();
    let a = tenant(&s, "acme").await;
    s.fail("append_audit", StoreError::Unavailable("down".into()));
    assert_eq!(
        s.append_audit(audit(&a, "x")).await,
        Err(StoreError::Unavailable("down".into()))
    );
    assert!(s.ping().await.is_ok(), "only the named method fails");
    s.fail_all(StoreError::Backend("broken".into()));
    assert_eq!(s.ping().await, Err(StoreError::Backend("broken".into())));
    s.heal();
    assert_eq!(s.list_audit(&a, None, 10).await, Ok(vec![]));
    assert_eq!(
        s.calls(),
        [
            "create_tenant",
            "append_audit",
            "ping",
            "ping",
            "list_audit"
        ]
    );
}
