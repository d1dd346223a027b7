//! Conformance of the [`Lifecycle`](resetd_core::ports::Lifecycle) port: people by page, a
//! person's erasure (what goes, what stays under the pseudonym), client and tenant removal.

use std::sync::Arc;

use resetd_core::model::{Client, LinkTemplate, Lookup};
use resetd_core::store::{PeoplePage, Store, StoreError};
use resetd_core::types::{ClientName, DisplayName, Email, Login, PersonId, TenantId};
use serde_json::json;

use super::fixtures::*;

fn page(after: i64, limit: u32, search: Option<&str>) -> PeoplePage {
    PeoplePage {
        after,
        limit,
        search: search.map(str::to_owned),
    }
}

async fn logins(s: &dyn Store, t: &TenantId, p: PeoplePage) -> Vec<String> {
    s.list_people(t, &p)
        .await
        .expect("list people")
        .into_iter()
        .map(|p| p.login.as_str().to_owned())
        .collect()
}

/// Pages follow the person number, tenant by tenant; `after` continues where a page ended and past
/// the end is an empty page; the search matches login, email or display name as a substring with
/// ASCII letters in any case, its `%` and `_` as themselves.
pub async fn people_are_listed_by_page(store: Arc<dyn Store>) {
    let s = &*store;
    let a = tenant(s, "acme").await;
    let b = tenant(s, "beta").await;
    for (login, email) in [
        ("alice", "alice@example.com"),
        ("bob", "bob@Example.org"),
        ("carol", "c100%@example.com"),
        ("dave", "dave@example.net"),
        ("erin", "erin_x@example.com"),
    ] {
        add_person(s, &a, login, email).await;
    }
    add_person(s, &b, "zoe", "zoe@example.com").await;
    let mut named = new_person(&a, "frank", "f@example.com");
    named.display_name = DisplayName::parse("Frank Ocean").expect("valid name");
    s.insert_person(&named, audit(&a, Some(&named.id), "person_created", at(0)))
        .await
        .expect("insert");

    assert_eq!(logins(s, &a, page(0, 2, None)).await, ["alice", "bob"]);
    let first = s.list_people(&a, &page(0, 2, None)).await.expect("list");
    let last = first.last().map(|p| p.number).expect("a page");
    assert_eq!(logins(s, &a, page(last, 2, None)).await, ["carol", "dave"]);
    assert_eq!(logins(s, &a, page(0, 100, None)).await.len(), 6);
    assert!(logins(s, &a, page(6, 10, None)).await.is_empty(), "the end");
    assert!(logins(s, &a, page(1_000, 10, None)).await.is_empty());
    assert_eq!(logins(s, &b, page(0, 10, None)).await, ["zoe"]);

    assert_eq!(
        logins(s, &a, page(0, 10, Some("EXAMPLE.ORG"))).await,
        ["bob"]
    );
    assert_eq!(logins(s, &a, page(0, 10, Some("ocean"))).await, ["frank"]);
    assert_eq!(logins(s, &a, page(0, 10, Some("%@"))).await, ["carol"]);
    assert_eq!(logins(s, &a, page(0, 10, Some("n_x"))).await, ["erin"]);
    assert_eq!(
        logins(s, &a, page(0, 2, Some("example.com"))).await,
        ["alice", "carol"]
    );
    assert!(logins(s, &a, page(0, 10, Some("zoe"))).await.is_empty());
    let unknown = TenantId::parse("nobody").expect("valid id");
    assert!(logins(s, &unknown, page(0, 10, None)).await.is_empty());
}

/// Everything that holds the person's data goes in one step; their audit events stay under the
/// pseudonym, without IP or personal detail; another person's records are untouched. A second
/// erasure is `NotFound`.
pub async fn erasure_removes_personal_data(store: Arc<dyn Store>) {
    let s = &*store;
    let a = tenant(s, "acme").await;
    let p = add_person(s, &a, "alice", "alice@example.com").await;
    let q = add_person(s, &a, "bob", "bob@example.com").await;

    // History, a live token, mail to her in every state (pending, sent, dead), requests naming
    // her in several ways, her login's counter, audit events with personal detail.
    let to_her = |tag: &str, recipient: &str| {
        let mut c = change(&p, None, tag, at(1_000));
        c.keep_history = 5;
        if let Some(m) = c.message.as_mut() {
            m.recipient = email(recipient);
        }
        c
    };
    s.change_password(to_her("$argon2id$dead", "alice@example.com"))
        .await
        .expect("change");
    s.change_password(to_her("$argon2id$sent", "ALICE@example.com"))
        .await
        .expect("change");
    let claimed = s
        .claim_outbox(at(3_000), at(60_000), 100)
        .await
        .expect("claim");
    for m in &claimed {
        match m.message.subject.as_str() {
            "subject $argon2id$sent" => s.mark_sent(m.id, at(3_100)).await.expect("sent"),
            _ => s.mark_failed(m.id, "refused", None).await.expect("dead"),
        }
    }
    s.change_password(to_her("$argon2id$pending", "alice@example.com"))
        .await
        .expect("change");
    let mut bobs_mail = change(&q, None, "$argon2id$bob", at(1_000));
    if let Some(m) = bobs_mail.message.as_mut() {
        m.recipient = q.email.clone();
    }
    s.change_password(bobs_mail).await.expect("change");
    issue_token(s, &p, "tok-a", at(2_000)).await;
    issue_token(s, &q, "tok-b", at(2_000)).await;
    for lookup in [
        Lookup::login(&p.login),
        Lookup::Email("Alice@Example.com".into()),
        Lookup::Number(p.number),
        Lookup::LoginAnyCase("ALICE".into()),
    ] {
        add_request(s, &request(&a, lookup, at(4_000))).await;
    }
    let bobs = add_request(s, &request(&a, Lookup::login(&q.login), at(4_000))).await;
    let login = Login::parse("alice").expect("valid login");
    s.begin_login(&a, &login, 5, at(5_000), at(900_000))
        .await
        .expect("begin login");
    let mut created = audit(&a, Some(&p.id), "person_created", at(5_000));
    created.detail =
        json!({"login": "alice", "email": "alice@example.com", "display_name": "A", "kept": 1});
    s.append_audit(created).await.expect("audit");

    let pseudonym = PersonId::generate();
    let mut erased = audit(&a, Some(&pseudonym), "person_erased", at(6_000));
    erased.ip = None;
    s.erase_person(&a, &p.id, &pseudonym, erased)
        .await
        .expect("erase");

    assert_eq!(s.get_person(&a, &p.id).await.expect("get"), None);
    assert_eq!(
        s.find_person(&a, &Lookup::login(&p.login))
            .await
            .expect("find"),
        None
    );
    assert_eq!(s.find_token(hash("tok-a")).await.expect("token"), None);
    assert!(s.find_token(hash("tok-b")).await.expect("token").is_some());
    assert!(s
        .password_history(&a, &p.id, 10)
        .await
        .expect("history")
        .is_empty());
    let outbox = outbox_of(s, &a).await;
    assert!(
        outbox.iter().all(|m| !m
            .message
            .recipient
            .as_str()
            .eq_ignore_ascii_case("alice@example.com")),
        "no mail to her is left, whatever its state"
    );
    assert!(outbox.iter().any(|m| m.message.recipient == q.email));
    assert_eq!(
        claim_all(s, at(4_000_000)).await,
        [bobs],
        "only bob's request"
    );
    let fresh = s
        .begin_login(&a, &login, 5, at(6_000), at(900_000))
        .await
        .expect("begin login");
    assert_eq!(
        fresh.attempt,
        resetd_core::store::LoginAttempt::Granted {
            failures: 1,
            locked_until: None
        },
        "her login's counter was forgotten"
    );
    assert!(fresh.account.is_none());

    let events = s.list_audit(&a, None, 1000).await.expect("audit");
    assert!(events
        .iter()
        .all(|e| e.person.as_deref() != Some(p.id.as_str())));
    let hers: Vec<_> = events
        .iter()
        .filter(|e| e.person.as_deref() == Some(pseudonym.as_str()))
        .collect();
    assert!(hers.iter().any(|e| e.kind == "person_erased"));
    assert!(hers.iter().any(|e| e.kind == "reset_completed"));
    assert!(hers.iter().any(|e| e.kind == "person_created"));
    assert!(hers.iter().all(|e| e.ip.is_none()), "IPs cleared");
    let detail = &hers
        .iter()
        .find(|e| e.detail.get("kept").is_some())
        .expect("the event with personal detail")
        .detail;
    assert_eq!(detail, &json!({"kept": 1}));
    assert!(events
        .iter()
        .filter(|e| e.person.as_deref() == Some(q.id.as_str()))
        .all(|e| e.ip.is_some()));
    assert_eq!(person(s, &q).await.login, q.login);

    let again = audit(&a, Some(&pseudonym), "person_erased", at(7_000));
    assert_eq!(
        s.erase_person(&a, &p.id, &PersonId::generate(), again)
            .await,
        Err(StoreError::NotFound)
    );
}

fn email(s: &str) -> Email {
    Email::parse(s).expect("valid email")
}

fn client(t: &TenantId, name: &str) -> Client {
    Client {
        tenant: t.clone(),
        name: ClientName::parse(name).expect("valid name"),
        link_template: LinkTemplate::parse("https://app.example.com/r?t={token}")
            .expect("template"),
        allowed_prefixes: vec![],
        created_at: at(0),
    }
}

/// A removed client is gone from its tenant only; removing it again is `NotFound`.
pub async fn clients_are_removed(store: Arc<dyn Store>) {
    let s = &*store;
    let a = tenant(s, "acme").await;
    let b = tenant(s, "beta").await;
    for t in [&a, &b] {
        s.upsert_client(
            &client(t, "web"),
            audit(t, None, "client_registered", at(0)),
        )
        .await
        .expect("client");
    }
    let web = ClientName::parse("web").expect("valid name");
    s.delete_client(&a, &web, audit(&a, None, "client_removed", at(1)))
        .await
        .expect("delete");
    assert_eq!(s.get_client(&a, &web).await.expect("get"), None);
    assert!(s.get_client(&b, &web).await.expect("get").is_some());
    assert!(audit_kinds(s, &a)
        .await
        .contains(&"client_removed".to_owned()));
    assert_eq!(
        s.delete_client(&a, &web, audit(&a, None, "client_removed", at(2)))
            .await,
        Err(StoreError::NotFound)
    );
}

/// A tenant with people goes only with `force` (nothing changes without it); with it, its people
/// are erased and its keys, clients, requests, tokens and mail go; another tenant is untouched.
pub async fn tenants_are_removed(store: Arc<dyn Store>) {
    let s = &*store;
    let a = tenant(s, "acme").await;
    let b = tenant(s, "beta").await;
    let empty = tenant(s, "empty").await;
    let p = add_person(s, &a, "alice", "alice@example.com").await;
    let q = add_person(s, &b, "alice", "alice@example.com").await;
    for t in [&a, &b] {
        s.upsert_client(
            &client(t, "web"),
            audit(t, None, "client_registered", at(0)),
        )
        .await
        .expect("client");
    }
    issue_token(s, &p, "tok-a", at(1_000)).await;
    issue_token(s, &q, "tok-b", at(1_000)).await;

    let removal = |t: &TenantId| audit(t, None, "tenant_removed", at(2_000));
    assert_eq!(
        s.delete_tenant(&a, false, removal(&a)).await,
        Err(StoreError::Conflict("people".into()))
    );
    assert!(s.get_person(&a, &p.id).await.expect("get").is_some());
    assert!(s.get_tenant(&a).await.expect("get").is_some());

    let removed = s
        .delete_tenant(&a, true, removal(&a))
        .await
        .expect("remove");
    assert_eq!(removed.people, 1);
    assert_eq!(s.get_tenant(&a).await.expect("get"), None);
    assert_eq!(s.get_person(&a, &p.id).await.expect("get"), None);
    assert_eq!(s.find_token(hash("tok-a")).await.expect("token"), None);
    assert!(outbox_of(s, &a).await.is_empty());
    let web = ClientName::parse("web").expect("valid name");
    assert_eq!(s.get_client(&a, &web).await.expect("get"), None);
    let kept: Vec<_> = s.list_audit(&a, None, 100).await.expect("audit");
    assert!(kept.iter().any(|e| e.kind == "tenant_removed"));
    assert!(kept
        .iter()
        .all(|e| e.person.as_deref() != Some(p.id.as_str())));

    assert!(s.find_token(hash("tok-b")).await.expect("token").is_some());
    assert_eq!(person(s, &q).await.login, q.login);
    assert!(s.get_client(&b, &web).await.expect("get").is_some());

    let none = s.delete_tenant(&empty, false, removal(&empty)).await;
    assert_eq!(none, Ok(resetd_core::store::TenantRemoval { people: 0 }));
    // The name is free again.
    tenant(s, "acme").await;
    assert_eq!(
        s.delete_tenant(&TenantId::parse("gone").expect("id"), true, removal(&a))
            .await,
        Err(StoreError::NotFound)
    );
}
