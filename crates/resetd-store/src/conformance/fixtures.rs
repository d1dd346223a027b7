//! What the checks build on: a fixed clock, records with test values, and short forms of the
//! store calls most checks make.

use resetd_core::model::{
    Lookup, MessageKind, NewAudit, NewMessage, NewResetRequest, OutboxMessage, OutboxStatus,
    Person, ResetToken, Tenant, TenantSettings, Timestamp, TokenPurpose,
};
use resetd_core::secret::SecretHash;
use resetd_core::store::{IssueToken, PasswordChange, Resolution, Resolved, Store};
use resetd_core::types::{DisplayName, Email, Login, PersonId, TenantId};
use serde_json::json;

/// An arbitrary fixed instant (2023-11-14T22:13:20Z); checks use offsets from it.
pub const T0: i64 = 1_700_000_000_000;

pub(super) fn at(offset_ms: i64) -> Timestamp {
    Timestamp(T0 + offset_ms)
}

pub(super) fn tid(s: &str) -> TenantId {
    TenantId::parse(s).expect("valid tenant id")
}

pub(super) fn hash(s: &str) -> SecretHash {
    SecretHash::of(s)
}

pub(super) fn audit(
    tenant: &TenantId,
    person: Option<&PersonId>,
    kind: &'static str,
    when: Timestamp,
) -> NewAudit {
    NewAudit {
        tenant: tenant.clone(),
        person: person.cloned(),
        kind,
        actor: "system".into(),
        ip: Some("192.0.2.1".into()),
        at: when,
        detail: json!({"check": kind}),
    }
}

pub(super) async fn tenant(store: &dyn Store, name: &str) -> TenantId {
    let t = Tenant {
        id: tid(name),
        settings: TenantSettings::default(),
        created_at: at(0),
    };
    store.create_tenant(&t).await.expect("create tenant");
    t.id
}

pub(super) fn new_person(tenant: &TenantId, login: &str, email: &str) -> Person {
    Person {
        id: PersonId::generate(),
        number: 0,
        tenant: tenant.clone(),
        login: Login::parse(login).expect("valid login"),
        email: Email::parse(email).expect("valid email"),
        display_name: DisplayName::parse("Test Person").expect("valid name"),
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
    }
}

pub(super) async fn add_person(
    store: &dyn Store,
    tenant: &TenantId,
    login: &str,
    email: &str,
) -> Person {
    let mut p = new_person(tenant, login, email);
    p.number = store
        .insert_person(&p, audit(tenant, Some(&p.id), "person_created", at(0)))
        .await
        .expect("insert person");
    p
}

pub(super) async fn person(store: &dyn Store, p: &Person) -> Person {
    store
        .get_person(&p.tenant, &p.id)
        .await
        .expect("get person")
        .expect("person exists")
}

pub(super) fn message(
    tenant: &TenantId,
    kind: MessageKind,
    when: Timestamp,
    tag: &str,
) -> NewMessage {
    NewMessage {
        tenant: tenant.clone(),
        kind,
        recipient: Email::parse("to@example.com").expect("valid email"),
        subject: format!("subject {tag}"),
        text: format!("text {tag}"),
        html: Some(format!("<p>html {tag}</p>")),
        sender_name: None,
        message_id: format!("<{tag}@resetd.test>"),
        created_at: when,
        // Distinct from `created_at` and per kind, so a backend that mixes the columns up fails.
        deliver_by: when.plus_secs(match kind {
            MessageKind::ResetLink => 1800,
            MessageKind::PasswordChanged => 86_400,
        }),
    }
}

/// `stored` (as `list_outbox` shows it) is `expected` with its body sealed: every other field
/// as queued, the text in sealed form without the plain text, no HTML. For a store that keeps
/// bodies as queued ([`BodiesAtRest::Plain`](super::BodiesAtRest)), exactly `expected`.
pub(super) fn assert_sealed(stored: &NewMessage, expected: &NewMessage) {
    if super::bodies_at_rest() == super::BodiesAtRest::Plain {
        assert_eq!(stored, expected);
        return;
    }
    assert!(
        crate::OutboxKeys::sealed_with(&stored.text).is_some(),
        "the body is not sealed at rest: {}",
        stored.text
    );
    assert!(!stored.text.contains(&expected.text) && stored.html.is_none());
    let mut unsealed = stored.clone();
    unsealed.text = expected.text.clone();
    unsealed.html = expected.html.clone();
    assert_eq!(&unsealed, expected);
}

pub(super) fn token(p: &Person, secret: &str, created: Timestamp) -> ResetToken {
    ResetToken {
        hash: hash(secret),
        tenant: p.tenant.clone(),
        person: p.id.clone(),
        purpose: TokenPurpose::Reset,
        client: None,
        created_at: created,
        expires_at: created.plus_secs(1800),
        used_at: None,
        revoked_at: None,
        ip: Some("192.0.2.7".into()),
        claimed: false,
    }
}

pub(super) fn request(tenant: &TenantId, lookup: Lookup, when: Timestamp) -> NewResetRequest {
    NewResetRequest {
        tenant: tenant.clone(),
        lookup,
        client: None,
        locale: None,
        ip: Some("192.0.2.7".into()),
        created_at: when,
    }
}

/// Records a request and returns its id.
pub(super) async fn add_request(store: &dyn Store, r: &NewResetRequest) -> i64 {
    store
        .insert_reset_request(r)
        .await
        .expect("insert reset request")
}

/// Claims every claimable request at `now` (leased for a minute) and returns their ids.
pub(super) async fn claim_all(store: &dyn Store, now: Timestamp) -> Vec<i64> {
    store
        .claim_reset_requests(now, now.plus_secs(60), 100_000)
        .await
        .expect("claim reset requests")
        .into_iter()
        .map(|r| r.id)
        .collect()
}

pub(super) fn issue(t: ResetToken, cooldown_since: Timestamp) -> Resolution {
    let audit = audit(&t.tenant, Some(&t.person), "reset_requested", t.created_at);
    let message = message(&t.tenant, MessageKind::ResetLink, t.created_at, "reset");
    Resolution::Issue(Box::new(IssueToken {
        token: t,
        cooldown_since,
        message,
        audit,
    }))
}

/// Issues a token for `p` created at `created` (no cool-down in the way) through a request.
pub(super) async fn issue_token(
    store: &dyn Store,
    p: &Person,
    secret: &str,
    created: Timestamp,
) -> ResetToken {
    let id = add_request(store, &request(&p.tenant, Lookup::id(&p.id), created)).await;
    let t = token(p, secret, created);
    let got = store
        .resolve_reset_request(id, issue(t.clone(), created))
        .await
        .expect("resolve");
    assert_eq!(got, Resolved::Issued);
    t
}

pub(super) async fn get_token(store: &dyn Store, secret: &str) -> ResetToken {
    store
        .find_token(hash(secret))
        .await
        .expect("find token")
        .expect("token exists")
}

pub(super) fn change(
    p: &Person,
    token: Option<&str>,
    new_hash: &str,
    when: Timestamp,
) -> PasswordChange {
    PasswordChange {
        tenant: p.tenant.clone(),
        person: p.id.clone(),
        token: token.map(hash),
        claim: None,
        new_hash: Some(new_hash.into()),
        must_change_password: false,
        unlock: false,
        keep_history: 0,
        at: when,
        message: Some(message(
            &p.tenant,
            MessageKind::PasswordChanged,
            when,
            new_hash,
        )),
        audit: audit(&p.tenant, Some(&p.id), "reset_completed", when),
    }
}

pub(super) fn count_of(counts: &[(OutboxStatus, u64)], status: OutboxStatus) -> u64 {
    counts
        .iter()
        .filter(|(s, _)| *s == status)
        .map(|(_, n)| *n)
        .sum()
}

pub(super) async fn outbox_of(store: &dyn Store, tenant: &TenantId) -> Vec<OutboxMessage> {
    store
        .list_outbox(Some(tenant), None, 1000)
        .await
        .expect("list outbox")
}

pub(super) async fn audit_kinds(store: &dyn Store, tenant: &TenantId) -> Vec<String> {
    store
        .list_audit(tenant, None, 1000)
        .await
        .expect("list audit")
        .into_iter()
        .map(|e| e.kind)
        .collect()
}
