//! The store conformance suite: one set of checks that every [`Store`] implementation must pass,
//! whatever its backend.
//!
//! Each check takes a freshly migrated, **empty** store (some look at global state such as the
//! outbox queue) and panics on the first violation. Run them all, one test per check, from a test
//! file of the implementing crate with [`conformance_tests!`](crate::conformance_tests):
//!
//! ```text
//! async fn fresh() -> (std::sync::Arc<dyn resetd_core::store::Store>, MyGuard) { /* ... */ }
//! resetd_store::conformance_tests!(fresh);
//! ```
//!
//! The test crate needs `tokio` with the `macros` and `rt-multi-thread` features.

#![doc(hidden)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support: a check fails by panicking (to move behind a feature, issue 14)"
)]

use std::collections::HashSet;
use std::sync::Arc;

use resetd_core::model::{
    ApiKey, Client, LinkTemplate, Lookup, MessageKind, NewAudit, NewMessage, NewResetRequest,
    OutboxMessage, OutboxStatus, Person, ResetToken, Scope, Tenant, TenantSettings, Timestamp,
};
use resetd_core::secret::SecretHash;
use resetd_core::store::{IssueToken, PasswordChange, Resolution, Resolved, Store, StoreError};
use resetd_core::types::{
    ClientName, DisplayName, Email, Locale, Login, ObjectId, PersonId, TenantId,
};
use serde_json::json;

mod login;
pub use login::{login_attempts_are_reserved_atomically, login_attempts_lock_and_reset};

/// Every check, by name, in the order `conformance_tests!` runs them.
pub const CHECKS: &[&str] = &[
    "ping_and_migrate_are_idempotent",
    "tenants",
    "people",
    "api_keys",
    "clients",
    "reset_request_lifecycle",
    "reset_request_claims_are_leased",
    "concurrent_issues_honour_the_cooldown",
    "token_is_single_use_under_concurrency",
    "password_change_voids_tokens",
    "password_history_is_pruned",
    "login_attempts_lock_and_reset",
    "login_attempts_are_reserved_atomically",
    "outbox_claims_are_leased",
    "outbox_delivery_states",
    "audit_listing",
    "group_commit_many_requests",
    "failed_write_does_not_abort_others",
    "dialect_lookups",
    "direct_issue_and_void",
    "people_import_upserts_by_login",
];

/// Declares one `#[tokio::test]` per conformance check. `$fresh` is an async fn returning
/// `(Arc<dyn Store>, G)`: a freshly migrated, empty store and a guard kept alive for the test
/// (a temporary directory, a throw-away schema, ...).
#[macro_export]
macro_rules! conformance_tests {
    ($fresh:path) => {
        $crate::conformance_tests!(@each $fresh;
            ping_and_migrate_are_idempotent,
            tenants,
            people,
            api_keys,
            clients,
            reset_request_lifecycle,
            reset_request_claims_are_leased,
            concurrent_issues_honour_the_cooldown,
            token_is_single_use_under_concurrency,
            password_change_voids_tokens,
            password_history_is_pruned,
            login_attempts_lock_and_reset,
            login_attempts_are_reserved_atomically,
            outbox_claims_are_leased,
            outbox_delivery_states,
            audit_listing,
            group_commit_many_requests,
            failed_write_does_not_abort_others,
            dialect_lookups,
            direct_issue_and_void,
            people_import_upserts_by_login,
        );
    };
    (@each $fresh:path; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let (store, guard) = $fresh().await;
                $crate::conformance::$check(store).await;
                drop(guard);
            }
        )*
    };
}

// ---- fixtures ---------------------------------------------------------------------------------

/// An arbitrary fixed instant (2023-11-14T22:13:20Z); checks use offsets from it.
pub const T0: i64 = 1_700_000_000_000;

fn at(offset_ms: i64) -> Timestamp {
    Timestamp(T0 + offset_ms)
}

fn tid(s: &str) -> TenantId {
    TenantId::parse(s).expect("valid tenant id")
}

fn hash(s: &str) -> SecretHash {
    SecretHash::of(s)
}

fn audit(
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

async fn tenant(store: &dyn Store, name: &str) -> TenantId {
    let t = Tenant {
        id: tid(name),
        settings: TenantSettings::default(),
        created_at: at(0),
    };
    store.create_tenant(&t).await.expect("create tenant");
    t.id
}

fn new_person(tenant: &TenantId, login: &str, email: &str) -> Person {
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

async fn add_person(store: &dyn Store, tenant: &TenantId, login: &str, email: &str) -> Person {
    let mut p = new_person(tenant, login, email);
    p.number = store
        .insert_person(&p, audit(tenant, Some(&p.id), "person_created", at(0)))
        .await
        .expect("insert person");
    p
}

async fn person(store: &dyn Store, p: &Person) -> Person {
    store
        .get_person(&p.tenant, &p.id)
        .await
        .expect("get person")
        .expect("person exists")
}

fn message(tenant: &TenantId, kind: MessageKind, when: Timestamp, tag: &str) -> NewMessage {
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
/// as queued, the text in sealed form without the plain text, no HTML.
fn assert_sealed(stored: &NewMessage, expected: &NewMessage) {
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

fn token(p: &Person, secret: &str, created: Timestamp) -> ResetToken {
    ResetToken {
        hash: hash(secret),
        tenant: p.tenant.clone(),
        person: p.id.clone(),
        client: None,
        created_at: created,
        expires_at: created.plus_secs(1800),
        used_at: None,
        revoked_at: None,
        ip: Some("192.0.2.7".into()),
    }
}

fn request(tenant: &TenantId, lookup: Lookup, when: Timestamp) -> NewResetRequest {
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
async fn add_request(store: &dyn Store, r: &NewResetRequest) -> i64 {
    store
        .insert_reset_request(r)
        .await
        .expect("insert reset request")
}

/// Claims every claimable request at `now` (leased for a minute) and returns their ids.
async fn claim_all(store: &dyn Store, now: Timestamp) -> Vec<i64> {
    store
        .claim_reset_requests(now, now.plus_secs(60), 100_000)
        .await
        .expect("claim reset requests")
        .into_iter()
        .map(|r| r.id)
        .collect()
}

fn issue(t: ResetToken, cooldown_since: Timestamp) -> Resolution {
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
async fn issue_token(
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

async fn get_token(store: &dyn Store, secret: &str) -> ResetToken {
    store
        .find_token(hash(secret))
        .await
        .expect("find token")
        .expect("token exists")
}

fn change(p: &Person, token: Option<&str>, new_hash: &str, when: Timestamp) -> PasswordChange {
    PasswordChange {
        tenant: p.tenant.clone(),
        person: p.id.clone(),
        token: token.map(hash),
        new_hash: new_hash.into(),
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

fn count_of(counts: &[(OutboxStatus, u64)], status: OutboxStatus) -> u64 {
    counts
        .iter()
        .filter(|(s, _)| *s == status)
        .map(|(_, n)| *n)
        .sum()
}

async fn outbox_of(store: &dyn Store, tenant: &TenantId) -> Vec<OutboxMessage> {
    store
        .list_outbox(Some(tenant), None, 1000)
        .await
        .expect("list outbox")
}

async fn audit_kinds(store: &dyn Store, tenant: &TenantId) -> Vec<String> {
    store
        .list_audit(tenant, None, 1000)
        .await
        .expect("list audit")
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

// ---- checks -----------------------------------------------------------------------------------

/// `migrate` may be called again, and concurrently, without harm; `ping` answers.
pub async fn ping_and_migrate_are_idempotent(store: Arc<dyn Store>) {
    store.ping().await.expect("ping");
    let t = tenant(&*store, "mig").await;
    store.migrate().await.expect("second migrate");
    store.migrate().await.expect("third migrate");
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let s = store.clone();
            tokio::spawn(async move { s.migrate().await })
        })
        .collect();
    for r in runs {
        r.await.expect("task").expect("concurrent migrate");
    }
    assert!(
        store.get_tenant(&t).await.expect("get").is_some(),
        "data survives migrate"
    );
    store.ping().await.expect("ping");
}

/// Tenants: create, read, conflict, update, list.
pub async fn tenants(store: Arc<dyn Store>) {
    let s = &*store;
    let a = Tenant {
        id: tid("acme"),
        settings: TenantSettings::default(),
        created_at: at(5),
    };
    s.create_tenant(&a).await.expect("create");
    assert_eq!(s.get_tenant(&a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(
        s.create_tenant(&a).await,
        Err(StoreError::Conflict("tenant".into()))
    );
    assert_eq!(s.get_tenant(&tid("nope")).await.unwrap(), None);

    let settings = TenantSettings {
        token_ttl_secs: 600,
        password_history: 3,
        default_locale: "de".into(),
        ..Default::default()
    };
    s.update_tenant_settings(&a.id, &settings)
        .await
        .expect("update");
    let got = s.get_tenant(&a.id).await.unwrap().expect("exists");
    assert_eq!(got.settings, settings);
    assert_eq!(got.created_at, a.created_at);
    assert_eq!(
        s.update_tenant_settings(&tid("nope"), &settings).await,
        Err(StoreError::NotFound)
    );

    tenant(s, "beta").await;
    let ids: Vec<String> = s
        .list_tenants()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id.to_string())
        .collect();
    assert!(
        ids.contains(&"acme".to_string()) && ids.contains(&"beta".to_string()),
        "{ids:?}"
    );
    assert_eq!(ids.len(), 2);
}

/// People: numbers, login conflicts, lookups by login, email (oldest, case-insensitive) and id,
/// updates, tenant isolation.
pub async fn people(store: Arc<dyn Store>) {
    let s = &*store;
    let a = tenant(s, "acme").await;
    let b = tenant(s, "beta").await;

    let p1 = add_person(s, &a, "alice", "shared@example.com").await;
    let mut p2 = new_person(&a, "bob", "shared@example.com");
    p2.locale = Some(Locale::parse("de-CH").unwrap());
    p2.roles = vec!["admin".into(), "ops".into()];
    p2.verified = true;
    p2.attributes = json!({"dept": "it", "n": 3, "nested": {"x": [1, 2]}});
    p2.password_hash = None;
    p2.password_changed_at = None;
    p2.must_change_password = true;
    // The counters are the login's (`begin_login`), not written with the person.
    p2.failed_logins = 2;
    p2.locked_until = Some(at(99));
    p2.created_at = at(10);
    p2.updated_at = at(11);
    p2.number = s
        .insert_person(&p2, audit(&a, Some(&p2.id), "person_created", at(10)))
        .await
        .expect("insert p2");
    let p3 = add_person(s, &b, "alice", "alice@example.org").await;

    assert!(
        p1.number > 0 && p2.number > p1.number,
        "numbers increase: {} {}",
        p1.number,
        p2.number
    );
    assert!(p3.number > 0);

    assert_eq!(person(s, &p1).await, p1);
    // Read back, the counters are those of the login, which has none.
    p2.failed_logins = 0;
    p2.locked_until = None;
    assert_eq!(person(s, &p2).await, p2);
    assert_eq!(person(s, &p3).await, p3);

    // A taken login in the same tenant.
    let dup = new_person(&a, "alice", "other@example.com");
    assert_eq!(
        s.insert_person(&dup, audit(&a, Some(&dup.id), "person_created", at(1)))
            .await,
        Err(StoreError::Conflict("login".into()))
    );
    assert_eq!(s.get_person(&a, &dup.id).await.unwrap(), None);
    // An unknown tenant.
    let orphan = new_person(&tid("ghost"), "x", "x@example.com");
    assert!(s
        .insert_person(&orphan, audit(&a, None, "person_created", at(1)))
        .await
        .is_err());

    let find = |l: Lookup, t: TenantId| {
        let store = store.clone();
        async move { store.find_person(&t, &l).await.expect("find") }
    };
    assert_eq!(
        find(Lookup::Login("alice".into()), a.clone())
            .await
            .map(|p| p.id),
        Some(p1.id.clone())
    );
    assert_eq!(
        find(Lookup::Login("alice".into()), b.clone())
            .await
            .map(|p| p.id),
        Some(p3.id.clone())
    );
    assert_eq!(find(Lookup::Login("Alice".into()), a.clone()).await, None);
    assert_eq!(find(Lookup::Login("nobody".into()), a.clone()).await, None);
    assert_eq!(
        find(Lookup::Email("shared@example.com".into()), a.clone())
            .await
            .map(|p| p.id),
        Some(p1.id.clone())
    );
    assert_eq!(
        find(Lookup::Email("SHARED@Example.com".into()), a.clone())
            .await
            .map(|p| p.id),
        Some(p1.id.clone())
    );
    assert_eq!(
        find(Lookup::Email("alice@example.org".into()), a.clone()).await,
        None
    );
    assert_eq!(
        find(Lookup::Id(p2.id.to_string()), a.clone()).await,
        Some(p2.clone())
    );
    assert_eq!(
        find(Lookup::Id(p3.id.to_string()), a.clone()).await,
        None,
        "ids do not cross tenants"
    );
    assert_eq!(find(Lookup::Id("not-an-id".into()), a.clone()).await, None);
    assert_eq!(s.get_person(&b, &p1.id).await.unwrap(), None);

    // Updates.
    let mut u = p1.clone();
    u.email = Email::parse("alice@new.example.com").unwrap();
    u.display_name = DisplayName::parse("Alice A.").unwrap();
    u.locale = Some(Locale::parse("fr").unwrap());
    u.enabled = false;
    u.verified = true;
    u.roles = vec!["user".into()];
    u.attributes = json!({"k": "v"});
    u.updated_at = at(50);
    s.update_person(&u, audit(&a, Some(&u.id), "person_updated", at(50)))
        .await
        .expect("update");
    assert_eq!(person(s, &p1).await, u);
    assert_eq!(
        find(Lookup::Email("shared@example.com".into()), a.clone())
            .await
            .map(|p| p.id),
        Some(p2.id.clone())
    );
    assert_eq!(
        find(Lookup::Email("alice@new.example.com".into()), a.clone())
            .await
            .map(|p| p.id),
        Some(p1.id.clone())
    );

    let mut clash = u.clone();
    clash.login = Login::parse("bob").unwrap();
    assert_eq!(
        s.update_person(&clash, audit(&a, Some(&u.id), "person_updated", at(51)))
            .await,
        Err(StoreError::Conflict("login".into()))
    );
    assert_eq!(person(s, &p1).await.login.as_str(), "alice");
    let mut renamed = u.clone();
    renamed.login = Login::parse("alice2").unwrap();
    s.update_person(&renamed, audit(&a, Some(&u.id), "person_updated", at(52)))
        .await
        .expect("rename");
    assert_eq!(
        find(Lookup::Login("alice2".into()), a.clone())
            .await
            .map(|p| p.id),
        Some(p1.id.clone())
    );

    let ghost = new_person(&a, "ghost", "ghost@example.com");
    assert_eq!(
        s.update_person(&ghost, audit(&a, None, "person_updated", at(53)))
            .await,
        Err(StoreError::NotFound)
    );

    let kinds = audit_kinds(s, &a).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "person_created").count(),
        2,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "person_updated").count(),
        2,
        "{kinds:?}"
    );
}

/// API keys: stored under the hash, found by it, unique, with their audit event.
pub async fn api_keys(store: Arc<dyn Store>) {
    let s = &*store;
    let a = tenant(s, "acme").await;
    let key = ApiKey {
        id: "k1".into(),
        tenant: a.clone(),
        name: "ci".into(),
        scopes: vec![Scope::Admin],
        created_at: at(1),
        revoked_at: None,
    };
    s.insert_api_key(
        &key,
        hash("secret-1"),
        Some(audit(&a, None, "api_key_created", at(1))),
    )
    .await
    .expect("insert");
    assert_eq!(
        s.find_api_key(hash("secret-1")).await.unwrap(),
        Some(key.clone())
    );
    assert_eq!(s.find_api_key(hash("secret-2")).await.unwrap(), None);

    let revoked = ApiKey {
        id: "k2".into(),
        name: "old".into(),
        revoked_at: Some(at(9)),
        scopes: vec![],
        ..key.clone()
    };
    s.insert_api_key(&revoked, hash("secret-2"), None)
        .await
        .expect("insert without audit");
    assert_eq!(
        s.find_api_key(hash("secret-2")).await.unwrap(),
        Some(revoked)
    );

    let same_hash = ApiKey {
        id: "k3".into(),
        ..key.clone()
    };
    assert!(matches!(
        s.insert_api_key(&same_hash, hash("secret-1"), None).await,
        Err(StoreError::Conflict(_))
    ));
    let ghost = ApiKey {
        id: "k4".into(),
        tenant: tid("ghost"),
        ..key.clone()
    };
    assert!(s
        .insert_api_key(&ghost, hash("secret-4"), None)
        .await
        .is_err());

    assert_eq!(
        audit_kinds(s, &a).await,
        vec!["api_key_created".to_string()]
    );
}

/// Clients: upsert replaces, listing is per tenant and by name.
pub async fn clients(store: Arc<dyn Store>) {
    let s = &*store;
    let a = tenant(s, "acme").await;
    let b = tenant(s, "beta").await;
    let web = Client {
        tenant: a.clone(),
        name: ClientName::parse("web").unwrap(),
        link_template: LinkTemplate::parse("https://app.example.com/reset?t={token}").unwrap(),
        allowed_prefixes: vec!["https://app.example.com/".into()],
        created_at: at(1),
    };
    s.upsert_client(&web, audit(&a, None, "client_registered", at(1)))
        .await
        .expect("upsert");
    assert_eq!(
        s.get_client(&a, &web.name).await.unwrap(),
        Some(web.clone())
    );

    let web2 = Client {
        link_template: LinkTemplate::parse("https://new.example.com/{tenant}/r/{token}").unwrap(),
        allowed_prefixes: vec![],
        created_at: at(2),
        ..web.clone()
    };
    s.upsert_client(&web2, audit(&a, None, "client_registered", at(2)))
        .await
        .expect("replace");
    let got = s.get_client(&a, &web.name).await.unwrap().expect("exists");
    assert_eq!(got.link_template, web2.link_template);
    assert_eq!(got.allowed_prefixes, web2.allowed_prefixes);

    let app = Client {
        name: ClientName::parse("app").unwrap(),
        ..web.clone()
    };
    s.upsert_client(&app, audit(&a, None, "client_registered", at(3)))
        .await
        .expect("upsert app");
    let names: Vec<String> = s
        .list_clients(&a)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name.to_string())
        .collect();
    assert_eq!(names, vec!["app", "web"]);
    assert_eq!(s.list_clients(&b).await.unwrap(), vec![]);
    assert_eq!(s.get_client(&b, &web.name).await.unwrap(), None);
    assert_eq!(audit_kinds(s, &a).await.len(), 3);
}

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

    // A leased request can still be resolved, by anyone, once.
    let discard = || Resolution::Discard(audit(&a, None, "reset_requested", at(20)));
    assert_eq!(
        s.resolve_reset_request(ids[0], discard()).await.unwrap(),
        Resolved::Discarded
    );

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
    assert!(crate::OutboxKeys::sealed_with(&o2.message.text).is_some());

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

/// Audit events: per tenant, newest first, paginated by id.
pub async fn audit_listing(store: Arc<dyn Store>) {
    let s = &*store;
    let a = tid("acme");
    let b = tid("beta");
    let pid = PersonId::generate();
    for i in 0..25 {
        let mut e = audit(&a, Some(&pid), "event", at(i));
        e.detail = json!({"i": i});
        s.append_audit(e).await.unwrap();
        if i % 10 == 0 {
            s.append_audit(audit(&b, None, "other", at(i)))
                .await
                .unwrap();
        }
    }
    let page1 = s.list_audit(&a, None, 10).await.unwrap();
    assert_eq!(page1.len(), 10);
    assert!(page1.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    assert_eq!(page1[0].detail, json!({"i": 24}));
    let e = &page1[0];
    assert_eq!(
        (
            e.person.as_deref(),
            e.kind.as_str(),
            e.actor.as_str(),
            e.ip.as_deref(),
            e.at
        ),
        (
            Some(pid.as_str()),
            "event",
            "system",
            Some("192.0.2.1"),
            at(24)
        )
    );

    let page2 = s.list_audit(&a, Some(page1[9].id), 10).await.unwrap();
    assert_eq!(page2.len(), 10);
    assert_eq!(page2[0].detail, json!({"i": 14}));
    let page3 = s.list_audit(&a, Some(page2[9].id), 10).await.unwrap();
    assert_eq!(
        page3
            .iter()
            .map(|e| e.detail["i"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        vec![4, 3, 2, 1, 0]
    );
    assert_eq!(
        s.list_audit(&a, Some(page3[4].id), 10).await.unwrap(),
        vec![]
    );

    let other = s.list_audit(&b, None, 100).await.unwrap();
    assert_eq!(other.len(), 3);
    assert!(other
        .iter()
        .all(|e| e.kind == "other" && e.person.is_none()));
    assert_eq!(
        s.list_audit(&tid("nobody"), None, 100).await.unwrap(),
        vec![]
    );
}

/// 500 concurrent durable inserts all succeed (they share commits) and are all pending.
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
    for t in tasks {
        returned.insert(t.await.expect("task").expect("insert"));
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
    assert_eq!(
        pending.iter().map(|r| r.id).collect::<HashSet<_>>().len(),
        500
    );
}

/// A failing change (a taken login) is undone alone: concurrent changes committed alongside it
/// succeed, and none of its own writes (its audit event) remain.
pub async fn failed_write_does_not_abort_others(store: Arc<dyn Store>) {
    let a = tenant(&*store, "acme").await;
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let s = store.clone();
            let p = new_person(&a, &format!("user{}", i % 50), &format!("u{i}@example.com"));
            let e = audit(&a, Some(&p.id), "person_created", at(i));
            tokio::spawn(async move { s.insert_person(&p, e).await })
        })
        .collect();
    let (mut ok, mut conflicts, mut numbers) = (0, 0, HashSet::new());
    for t in tasks {
        match t.await.expect("task") {
            Ok(n) => {
                ok += 1;
                numbers.insert(n);
            }
            Err(StoreError::Conflict(what)) => {
                assert_eq!(what, "login");
                conflicts += 1;
            }
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!((ok, conflicts), (50, 50));
    assert_eq!(numbers.len(), 50, "numbers are unique");
    for i in 0..50 {
        let found = store
            .find_person(&a, &Lookup::Login(format!("user{i}")))
            .await
            .unwrap();
        assert!(
            found.is_some_and(|p| numbers.contains(&p.number)),
            "user{i}"
        );
    }
    let events = store.list_audit(&a, None, 1_000).await.unwrap();
    assert_eq!(
        events.len(),
        50,
        "the failed inserts' audit events were rolled back"
    );
}

/// The lookups dialects use: by person number and by the ObjectId form of the id, per tenant.
pub async fn dialect_lookups(store: Arc<dyn Store>) {
    let s = &*store;
    let a = tenant(s, "acme").await;
    let b = tenant(s, "beta").await;
    let p1 = add_person(s, &a, "alice", "alice@example.com").await;
    let p2 = add_person(s, &a, "bob", "bob@example.com").await;
    let q1 = add_person(s, &b, "carol", "carol@example.com").await;

    let find = |l: Lookup, t: &TenantId| {
        let (store, t) = (store.clone(), t.clone());
        async move { store.find_person(&t, &l).await.expect("find") }
    };
    assert_eq!(find(Lookup::Number(p1.number), &a).await, Some(p1.clone()));
    assert_eq!(find(Lookup::Number(p2.number), &a).await, Some(p2.clone()));
    assert_eq!(find(Lookup::Number(q1.number), &b).await, Some(q1.clone()));
    assert_eq!(find(Lookup::Number(p2.number + 100), &a).await, None);
    assert_eq!(find(Lookup::Number(0), &a).await, None);
    assert_eq!(find(Lookup::Number(-1), &a).await, None);

    let oid = ObjectId::of(&p2.id);
    assert_eq!(find(Lookup::object_id(&oid), &a).await, Some(p2.clone()));
    assert_eq!(
        find(Lookup::ObjectId(oid.as_str().to_uppercase()), &a).await,
        Some(p2.clone()),
        "ObjectIds are hex of either case"
    );
    assert_eq!(
        find(Lookup::object_id(&oid), &b).await,
        None,
        "ObjectIds do not cross tenants"
    );
    assert_eq!(
        find(Lookup::object_id(&ObjectId::of(&q1.id)), &b).await,
        Some(q1.clone())
    );
    assert_eq!(find(Lookup::ObjectId(p2.id.to_string()), &a).await, None);
    assert_eq!(find(Lookup::ObjectId("zz".into()), &a).await, None);
    let absent = ObjectId::of(&PersonId::generate());
    assert_eq!(find(Lookup::object_id(&absent), &a).await, None);
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

/// `upsert_people`: new logins are inserted with fresh numbers, known ones are updated in place
/// (id, number and counters kept), a re-run is idempotent, and an imported hash never replaces an
/// Argon2id one (set or upgraded in resetd).
pub async fn people_import_upserts_by_login(store: Arc<dyn Store>) {
    let s = &*store;
    let a = tenant(s, "acme").await;
    let existing = add_person(s, &a, "known", "old@example.org").await;
    let mut foreign = new_person(&a, "legacy", "legacy@example.org");
    foreign.password_hash = Some("$2b$10$legacy".into());
    foreign.number = s
        .insert_person(
            &foreign,
            audit(&a, Some(&foreign.id), "person_created", at(0)),
        )
        .await
        .unwrap();

    let mut known = new_person(&a, "known", "new@example.org");
    known.password_hash = Some("$2b$10$imported-for-known".into());
    known.roles = vec!["imported".into()];
    known.updated_at = at(5);
    let mut legacy = new_person(&a, "legacy", "legacy@example.org");
    legacy.password_hash = Some("$2b$10$legacy-again".into());
    legacy.password_changed_at = Some(at(5));
    let mut fresh = Vec::new();
    for i in 0..3 {
        let mut p = new_person(&a, &format!("new{i}"), "n@example.org");
        p.password_hash = (i != 0).then(|| format!("$2b$10$new{i}"));
        fresh.push(p);
    }
    let mut batch = vec![known.clone(), legacy.clone()];
    batch.extend(fresh.iter().cloned());
    let audit_of = |n| audit(&a, None, "people_imported", at(n));
    let first = s.upsert_people(&batch, audit_of(5)).await.unwrap();
    assert_eq!(first, vec![false, false, true, true, true]);

    let k = person(s, &existing).await;
    assert_eq!(k.email.as_str(), "new@example.org", "profile replaced");
    assert_eq!(k.roles, vec!["imported".to_string()]);
    assert_eq!(k.number, existing.number, "number kept");
    assert_eq!(
        k.password_hash.as_deref(),
        Some("$argon2id$initial"),
        "an Argon2id hash is never replaced by an import"
    );
    let l = person(s, &foreign).await;
    assert_eq!(l.password_hash.as_deref(), Some("$2b$10$legacy-again"));
    assert_eq!(l.password_changed_at, Some(at(5)));

    let mut numbers = vec![existing.number, foreign.number];
    for p in &fresh {
        let got = s
            .find_person(&a, &Lookup::login(&p.login))
            .await
            .unwrap()
            .expect("imported");
        assert_eq!(got.id, p.id);
        assert_eq!(got.password_hash, p.password_hash);
        numbers.push(got.number);
    }
    let mut unique = numbers.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique.len(),
        numbers.len(),
        "numbers are unique: {numbers:?}"
    );

    // A re-run changes nothing and inserts nobody.
    let again = s.upsert_people(&batch, audit_of(6)).await.unwrap();
    assert_eq!(again, vec![false; 5]);
    let got = s
        .find_person(&a, &Lookup::login(&fresh[1].login))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.id, fresh[1].id, "the second run updated, not inserted");
    assert!(audit_kinds(s, &a)
        .await
        .contains(&"people_imported".to_string()));
}
