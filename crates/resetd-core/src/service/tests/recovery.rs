//! Getting a reset link to a person: the anonymous request and its worker, a trusted caller's
//! "send the link now", voiding a token.

use super::*;
use crate::error::CoreError;
use crate::model::{LinkTemplate, MessageKind, ResetPageUrl, TenantSettings};
use crate::ports::{Directory, Lifecycle, Recovery, StoreError};
use crate::service::RESET_REQUEST_LEASE_SECS;
use crate::testing::{PUBLIC_URL, T0};
use crate::types::{ClientName, Locale, ObjectId};
use serde_json::json;

/// The outcomes of the tenant's `reset_requested` audit events, oldest first.
async fn reset_outcomes(h: &Harness, t: &TenantId) -> Vec<String> {
    audit(h, t)
        .await
        .into_iter()
        .filter(|(k, _)| k == "reset_requested")
        .map(|(_, o)| o)
        .collect()
}

/// How many calls of the store's method `name` were logged since its log was last cleared.
fn calls_of(h: &Harness, name: &str) -> usize {
    h.store.calls().iter().filter(|c| **c == name).count()
}

#[tokio::test]
async fn known_unknown_and_disabled_people_get_the_same_answer_and_only_the_known_an_email() {
    let (h, t) = setup().await;
    let alice = person(&h, &t, "alice").await;
    let dora = person(&h, &t, "dora").await;
    set_enabled(&h, &t, &dora, false).await;

    // The request itself does the same work whoever it names: nothing is looked up.
    let mut calls = Vec::new();
    for name in ["alice", "nobody", "dora"] {
        h.store.clear_calls();
        let answer = h
            .service
            .request_reset(&t, Lookup::Login(name.into()), None, None, None)
            .await;
        assert_eq!(answer, Ok(()), "{name}");
        calls.push(h.store.calls());
    }
    assert_eq!(calls[0], vec!["insert_reset_request"]);
    assert!(calls.iter().all(|c| *c == calls[0]), "{calls:?}");

    let (done, errors) = h.service.process_reset_requests(10).await.unwrap();
    assert_eq!((done, errors), (3, vec![]));
    let out = outbox(&h, &t).await;
    assert_eq!(out.len(), 1, "one email, for the known person only");
    assert_eq!(out[0].message.recipient, alice.email);
    assert_eq!(out[0].message.kind, MessageKind::ResetLink);
    assert_eq!(h.renderer.rendered().len(), 1);
    let requested = reset_outcomes(&h, &t).await;
    assert_eq!(requested, ["token_issued", "no_account", "no_account"]);
    // Resolved: nothing left to claim, even after the leases.
    h.clock.advance_secs(RESET_REQUEST_LEASE_SECS);
    assert_eq!(h.service.process_reset_requests(10).await, Ok((0, vec![])));
}

#[tokio::test]
async fn a_flood_for_made_up_names_is_resolved_a_chunk_at_a_time_and_never_drops_a_real_request() {
    let (h, t) = setup().await;
    let alice = person(&h, &t, "alice").await;
    // 40 requests for 3 names nobody has, with alice's one request in the middle.
    for i in 0..41 {
        let name = if i == 20 {
            "alice".to_owned()
        } else {
            format!("ghost{}", i % 3)
        };
        h.service
            .request_reset(&t, Lookup::Login(name), None, None, None)
            .await
            .unwrap();
    }
    h.store.clear_calls();
    let (done, errors) = h.service.process_reset_requests(100).await.unwrap();
    assert_eq!((done, errors), (41, vec![]));
    let calls = h.store.calls();
    let count = |name: &str| calls_of(&h, name);
    // One chunk (the default concurrency is 64): one read for its 4 distinct accounts, one
    // write for its 40 discards, and alice's token issued on its own.
    assert_eq!(
        (
            count("find_people"),
            count("find_person"),
            count("discard_reset_requests")
        ),
        (1, 0, 1),
        "{calls:?}"
    );
    assert_eq!(count("resolve_reset_request"), 1, "{calls:?}");
    let out = outbox(&h, &t).await;
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].message.recipient, alice.email);
    let outcomes = reset_outcomes(&h, &t).await;
    assert_eq!(outcomes.iter().filter(|o| *o == "no_account").count(), 40);
    assert_eq!(outcomes.iter().filter(|o| *o == "token_issued").count(), 1);
    assert_eq!(h.service.reset_backlog().depth(), 0);

    // The discards' write fails: all of them stay queued and are resolved once, later.
    for i in 0..5 {
        h.service
            .request_reset(&t, Lookup::Login(format!("ghost{i}")), None, None, None)
            .await
            .unwrap();
    }
    h.store.fail(
        "discard_reset_requests",
        StoreError::Unavailable("down".into()),
    );
    let (done, errors) = h.service.process_reset_requests(100).await.unwrap();
    assert_eq!((done, errors.len()), (0, 5));
    h.store.heal();
    h.clock.advance_secs(RESET_REQUEST_LEASE_SECS);
    assert_eq!(h.service.process_reset_requests(100).await, Ok((5, vec![])));
    assert_eq!(
        reset_outcomes(&h, &t)
            .await
            .iter()
            .filter(|o| *o == "no_account")
            .count(),
        45
    );
}

#[tokio::test]
async fn only_the_tenant_and_the_client_are_checked_when_a_request_is_made() {
    let (h, t) = setup().await;
    let ghost = TenantId::parse("ghost").unwrap();
    let lookup = || Lookup::Login("alice".into());
    assert_eq!(
        h.service
            .request_reset(&ghost, lookup(), None, None, None)
            .await,
        Err(CoreError::UnknownTenant)
    );
    let web = ClientName::parse("web").unwrap();
    assert_eq!(
        h.service
            .request_reset(&t, lookup(), Some(web), None, None)
            .await,
        Err(CoreError::UnknownClient)
    );
    assert!(!h.store.calls().contains(&"insert_reset_request"));
}

#[tokio::test]
async fn a_client_found_is_not_read_again_for_a_while_and_a_name_not_found_always_is() {
    let (h, t) = setup().await;
    person(&h, &t, "alice").await;
    let web = ClientName::parse("web").unwrap();
    let ask = |client: &ClientName| {
        h.service.request_reset(
            &t,
            Lookup::Login("alice".into()),
            Some(client.clone()),
            None,
            None,
        )
    };
    let reads = || calls_of(&h, "list_clients");
    // A made-up name is read every time (and never cached).
    h.store.clear_calls();
    for _ in 0..3 {
        assert_eq!(ask(&web).await, Err(CoreError::UnknownClient));
    }
    assert_eq!(reads(), 3);
    // A new client works at once; then it is read once per cache period, not per request.
    let template = LinkTemplate::parse("https://app.example.com/r/{token}").unwrap();
    h.service
        .register_client(&t, web.clone(), template, vec![], &Actor::Cli)
        .await
        .unwrap();
    h.store.clear_calls();
    for _ in 0..5 {
        assert_eq!(ask(&web).await, Ok(()));
    }
    assert_eq!(reads(), 1);
    // Removed behind this instance's back (another instance, the CLI): accepted until the
    // period ends, and the worker then discards those requests.
    let removal = h
        .service
        .audit(&t, None, "client_removed", &Actor::Cli, None, json!({}));
    h.store.delete_client(&t, &web, removal).await.unwrap();
    assert_eq!(ask(&web).await, Ok(()));
    h.clock.advance_ms(super::super::CLIENT_CACHE_MS);
    assert_eq!(ask(&web).await, Err(CoreError::UnknownClient));
    h.service.process_reset_requests(100).await.unwrap();
    assert!(
        outbox(&h, &t).await.is_empty(),
        "no email for a removed client"
    );
    let outcomes = reset_outcomes(&h, &t).await;
    assert_eq!(outcomes.len(), 6);
    assert!(
        outcomes.iter().all(|o| o == "client_removed"),
        "{outcomes:?}"
    );
    // Removed through this instance: refused at once.
    let template = LinkTemplate::parse("https://app.example.com/r/{token}").unwrap();
    h.service
        .register_client(&t, web.clone(), template, vec![], &Actor::Cli)
        .await
        .unwrap();
    assert_eq!(ask(&web).await, Ok(()));
    h.service
        .remove_client(&t, &web, &Actor::Cli)
        .await
        .unwrap();
    assert_eq!(ask(&web).await, Err(CoreError::UnknownClient));
}

#[tokio::test]
async fn processing_issues_one_token_and_queues_one_email_with_its_link() {
    let (h, t) = setup().await;
    let alice = person(&h, &t, "alice").await;
    forgot(&h, &t, Lookup::email(&alice.email)).await;

    let rendered = h.renderer.last().unwrap();
    let secret = rendered.secret().unwrap();
    let link = format!("{PUBLIC_URL}/reset/acme?token={}", secret.expose());
    assert_eq!(rendered.link.as_deref(), Some(link.as_str()));
    assert_eq!(
        (rendered.login.as_str(), rendered.name.as_str()),
        ("alice", "alice"),
        "no display name: the login"
    );
    assert_eq!((rendered.expires_in_minutes, rendered.client), (30, None));

    let token = h.store.find_token(secret.hash()).await.unwrap().unwrap();
    assert_eq!(
        (token.person, token.tenant.clone()),
        (alice.id.clone(), t.clone())
    );
    assert_eq!(
        (token.created_at, token.expires_at),
        (T0, T0.plus_secs(30 * 60))
    );
    assert_eq!(token.ip.as_deref(), Some("192.0.2.7"));
    let out = outbox(&h, &t).await;
    assert_eq!(out.len(), 1);
    let m = &out[0].message;
    assert!(m.text.contains(&link), "{}", m.text);
    assert_eq!(
        m.deliver_by, token.expires_at,
        "retried until the link expires"
    );
    assert!(m.message_id.ends_with("@resetd.test>"), "{}", m.message_id);
    let info = h.service.inspect_token(&t, &secret).await.unwrap();
    assert_eq!(
        (info.login, info.expires_at),
        (alice.login, token.expires_at)
    );
}

#[tokio::test]
async fn a_registered_clients_template_builds_the_link_and_the_persons_locale_wins() {
    let (h, t) = with(TenantSettings {
        default_locale: "fr".into(),
        ..Default::default()
    })
    .await;
    let web = ClientName::parse("web").unwrap();
    let template = LinkTemplate::parse("https://app.example.com/{tenant}/r?t={token}").unwrap();
    h.service
        .register_client(&t, web.clone(), template, vec![], &Actor::Cli)
        .await
        .unwrap();
    let alice = person(&h, &t, "alice").await;
    let bob = person(&h, &t, "bob").await;
    let patch = crate::service::PersonPatch {
        locale: Some(Some(Locale::parse("de").unwrap())),
        ..Default::default()
    };
    h.service
        .update_person(&t, &bob.id, patch, &Actor::Cli)
        .await
        .unwrap();

    let it = Some(Locale::parse("it").unwrap());
    for p in [&alice, &bob] {
        h.service
            .request_reset(
                &t,
                Lookup::login(&p.login),
                Some(web.clone()),
                it.clone(),
                None,
            )
            .await
            .unwrap();
    }
    h.service
        .request_reset(&t, Lookup::Login("carol".into()), None, None, None)
        .await
        .unwrap();
    person(&h, &t, "carol").await;
    h.service.process_reset_requests(10).await.unwrap();

    let r = h.renderer.rendered();
    assert_eq!(r.len(), 3);
    let secret = r[0].secret().unwrap();
    assert_eq!(
        r[0].link.as_deref(),
        Some(format!("https://app.example.com/acme/r?t={}", secret.expose()).as_str())
    );
    assert_eq!(r[0].client.as_ref(), Some(&web));
    let locales: Vec<&str> = r.iter().map(|m| m.locale.as_str()).collect();
    assert_eq!(
        locales,
        ["it", "de", "fr"],
        "the person's own, else the request's, else the tenant's"
    );
    let token = h.store.find_token(secret.hash()).await.unwrap().unwrap();
    assert_eq!(token.client, Some(web));
}

#[tokio::test]
async fn the_cool_down_is_per_account_and_ends_with_its_time() {
    let (h, t) = setup().await; // 60 s
    let alice = person(&h, &t, "alice").await;
    let bob = person(&h, &t, "bob").await;
    let first = reset_link(&h, &t, &alice).await;

    h.clock.advance_ms(59_999);
    forgot(&h, &t, Lookup::login(&alice.login)).await;
    assert_eq!(
        outbox(&h, &t).await.len(),
        1,
        "no second email within the cool-down"
    );
    assert!(
        h.service.inspect_token(&t, &first).await.is_ok(),
        "the first stays live"
    );
    assert_eq!(
        audit(&h, &t).await.last().unwrap(),
        &("reset_requested".to_owned(), "cooling_down".to_owned())
    );
    // Another account is not held back by alice's.
    reset_link(&h, &t, &bob).await;
    assert_eq!(outbox(&h, &t).await.len(), 2);

    h.clock.set(T0.plus_secs(60));
    let second = reset_link(&h, &t, &alice).await;
    assert_ne!(second, first);
    assert_eq!(outbox(&h, &t).await.len(), 3);
    assert_eq!(
        h.service.inspect_token(&t, &first).await,
        Err(CoreError::TokenGone),
        "superseded by the new one"
    );
    let old = h.store.find_token(first.hash()).await.unwrap().unwrap();
    assert_eq!(old.revoked_at, Some(T0.plus_secs(60)));
}

#[tokio::test]
async fn a_cool_down_of_zero_never_refuses() {
    let (h, t) = with(TenantSettings {
        cooldown_secs: 0,
        ..Default::default()
    })
    .await;
    let carol = person(&h, &t, "carol").await;
    forgot(&h, &t, Lookup::Number(carol.number)).await;
    // A concurrent request that read the clock a moment before the first token was stored.
    h.clock.advance_ms(-1);
    forgot(&h, &t, Lookup::Number(carol.number)).await;
    assert_eq!(outbox(&h, &t).await.len(), 2, "one email per request");
}

#[tokio::test]
async fn a_template_that_fails_to_render_discards_the_request_and_reports_it() {
    let (h, t) = setup().await;
    let alice = person(&h, &t, "alice").await;
    h.renderer.fail_with(Some("template syntax"));
    h.service
        .request_reset(&t, Lookup::login(&alice.login), None, None, None)
        .await
        .unwrap();
    let (done, errors) = h.service.process_reset_requests(10).await.unwrap();
    assert_eq!(done, 0);
    assert!(
        matches!(&errors[..], [CoreError::Internal(m)] if m.contains("template syntax")),
        "{errors:?}"
    );
    assert!(outbox(&h, &t).await.is_empty());
    assert_eq!(
        audit(&h, &t).await.last().unwrap().1,
        "render_failed",
        "recorded, not retried forever"
    );
    h.renderer.fail_with(None);
    h.clock.advance_secs(RESET_REQUEST_LEASE_SECS);
    assert_eq!(h.service.process_reset_requests(10).await, Ok((0, vec![])));
}

#[tokio::test]
async fn a_request_for_an_unknown_tenant_is_discarded_by_the_worker() {
    let (h, t) = setup().await;
    let ghost = TenantId::parse("ghost").unwrap();
    // Recorded while the tenant existed elsewhere (another instance's cache): the store has it.
    let r = crate::model::NewResetRequest {
        tenant: ghost.clone(),
        lookup: Lookup::Login("alice".into()),
        client: None,
        locale: None,
        ip: None,
        created_at: T0,
    };
    h.store.insert_reset_request(&r).await.unwrap();
    assert_eq!(h.service.process_reset_requests(10).await, Ok((1, vec![])));
    assert!(outbox(&h, &t).await.is_empty());
    let events = crate::ports::Audit::list_audit(&*h.store, &ghost, None, 10)
        .await
        .unwrap();
    assert_eq!(events[0].detail["outcome"], "no_tenant");
}

/// The fixture of `send_reset_link`: two clients with reset page prefixes.
async fn with_pages(cooldown_secs: i64) -> (Harness, TenantId) {
    let (h, t) = with(TenantSettings {
        cooldown_secs,
        ..Default::default()
    })
    .await;
    for (name, prefix) in [
        ("portal", "https://portal.example.com/reset"),
        ("admin", "https://admin.example.com/"),
    ] {
        h.service
            .register_client(
                &t,
                ClientName::parse(name).unwrap(),
                LinkTemplate::parse("https://x.example.com/{token}").unwrap(),
                vec![prefix.into()],
                &Actor::Cli,
            )
            .await
            .unwrap();
    }
    (h, t)
}

async fn send(
    h: &Harness,
    t: &TenantId,
    lookup: &Lookup,
    url: &str,
    only: Option<&str>,
) -> Result<Person, CoreError> {
    let only = only.map(|c| ClientName::parse(c).unwrap());
    h.service
        .send_reset_link(
            t,
            lookup,
            &ResetPageUrl::parse(url).unwrap(),
            "tokenId",
            only.as_ref(),
            &Actor::ApiKey("k1".into()),
            Some("192.0.2.9"),
        )
        .await
}

#[tokio::test]
async fn a_refused_reset_page_is_refused_before_anyone_is_looked_up() {
    let (h, t) = with_pages(0).await;
    let p = person(&h, &t, "alice").await;
    let by_oid = Lookup::object_id(&ObjectId::of(&p.id));
    let before = audit_kinds(&h, &t).await;
    h.store.clear_calls();
    for (url, only) in [
        ("https://evil.example.com/reset", None),
        ("https://portal.example.com/resetx", None),
        // Allowed by `admin`, but only `portal` may be used.
        ("https://admin.example.com/reset", Some("portal")),
    ] {
        assert_eq!(
            send(&h, &t, &by_oid, url, only).await,
            Err(CoreError::LinkNotAllowed),
            "{url}"
        );
    }
    let nobody = Lookup::ObjectId("000000000000000000000000".into());
    assert_eq!(
        send(&h, &t, &nobody, "https://evil.example.com/", None).await,
        Err(CoreError::LinkNotAllowed),
        "an unknown person gets the same answer"
    );
    assert!(
        h.store.calls().iter().all(|c| *c == "list_clients"),
        "{:?}",
        h.store.calls()
    );
    assert!(h.renderer.rendered().is_empty());
    assert!(outbox(&h, &t).await.is_empty());
    assert_eq!(audit_kinds(&h, &t).await, before);
}

#[tokio::test]
async fn a_trusted_callers_page_is_matched_against_clients_read_once_a_period() {
    let (h, t) = with_pages(0).await;
    let p = person(&h, &t, "alice").await;
    let by_number = Lookup::Number(p.number);
    let lists = || calls_of(&h, "list_clients");
    h.store.clear_calls();
    for _ in 0..4 {
        send(&h, &t, &by_number, "https://portal.example.com/reset", None)
            .await
            .unwrap();
    }
    assert_eq!(lists(), 1, "read once, then used for the period");
    // A page no cached client allows is read again every time: a new prefix works at once.
    let new_page = "https://new.example.com/reset";
    for _ in 0..2 {
        assert_eq!(
            send(&h, &t, &by_number, new_page, None).await,
            Err(CoreError::LinkNotAllowed)
        );
    }
    assert_eq!(lists(), 3);
    let audit = h
        .service
        .audit(&t, None, "client_registered", &Actor::Cli, None, json!({}));
    let client = crate::model::Client {
        tenant: t.clone(),
        name: ClientName::parse("new").unwrap(),
        link_template: LinkTemplate::parse("https://x.example.com/{token}").unwrap(),
        allowed_prefixes: vec!["https://new.example.com/".into()],
        created_at: T0,
    };
    h.store.upsert_client(&client, audit).await.unwrap();
    send(&h, &t, &by_number, new_page, None).await.unwrap();
    // Removed here: refused at once.
    h.service
        .remove_client(&t, &client.name, &Actor::Cli)
        .await
        .unwrap();
    assert_eq!(
        send(&h, &t, &by_number, new_page, None).await,
        Err(CoreError::LinkNotAllowed)
    );
}

#[tokio::test]
async fn a_trusted_caller_gets_the_link_built_from_its_page() {
    let (h, t) = with_pages(60).await;
    let p = person(&h, &t, "alice").await;
    let by_number = Lookup::Number(p.number);
    let got = send(
        &h,
        &t,
        &by_number,
        "https://portal.example.com/reset?lang=de",
        None,
    )
    .await
    .unwrap();
    assert_eq!(got.id, p.id);
    let r = h.renderer.last().unwrap();
    let secret = r.secret().unwrap();
    assert_eq!(
        r.link.unwrap(),
        format!(
            "https://portal.example.com/reset?lang=de&tokenId={}",
            secret.expose()
        )
    );
    assert_eq!(r.client.unwrap().as_str(), "portal", "the matching client");
    let token = h.store.find_token(secret.hash()).await.unwrap().unwrap();
    assert_eq!(token.ip.as_deref(), Some("192.0.2.9"));
    let events = h.service.audit_log(&t, None, 1).await.unwrap();
    assert_eq!(
        (events[0].kind.as_str(), events[0].actor.as_str()),
        ("reset_requested", "api_key:k1")
    );
    assert_eq!(events[0].detail["client"], "portal");

    // Within the cool-down: told so, with the time it ends.
    h.clock.advance_secs(10);
    assert_eq!(
        send(&h, &t, &by_number, "https://portal.example.com/reset", None).await,
        Err(CoreError::CoolingDown {
            until: T0.plus_secs(70)
        })
    );
    assert_eq!(outbox(&h, &t).await.len(), 1);
}

#[tokio::test]
async fn a_trusted_caller_learns_of_unknown_and_disabled_people() {
    let (h, t) = with_pages(0).await;
    let url = "https://portal.example.com/reset";
    let nobody = Lookup::ObjectId("000000000000000000000000".into());
    assert_eq!(
        send(&h, &t, &nobody, url, None).await,
        Err(CoreError::NotFound("person"))
    );
    let q = person(&h, &t, "bob").await;
    set_enabled(&h, &t, &q, false).await;
    assert_eq!(
        send(&h, &t, &Lookup::Number(q.number), url, None).await,
        Err(CoreError::Disabled)
    );
    assert!(outbox(&h, &t).await.is_empty());
}

#[tokio::test]
async fn a_token_is_voided_once_and_only_in_its_tenant() {
    let (h, t) = setup().await;
    let other = TenantId::parse("beta").unwrap();
    h.service
        .create_tenant(other.clone(), TenantSettings::default())
        .await
        .unwrap();
    let p = person(&h, &t, "alice").await;
    let secret = reset_link(&h, &t, &p).await;
    let actor = Actor::ApiKey("k1".into());
    assert!(!h
        .service
        .void_token(&other, &secret, &actor, None)
        .await
        .unwrap());
    assert!(h.service.inspect_token(&t, &secret).await.is_ok());
    assert!(h
        .service
        .void_token(&t, &secret, &actor, None)
        .await
        .unwrap());
    assert!(!h
        .service
        .void_token(&t, &secret, &actor, None)
        .await
        .unwrap());
    let unknown = ResetSecret::generate();
    assert!(!h
        .service
        .void_token(&t, &unknown, &actor, None)
        .await
        .unwrap());
    assert_eq!(
        h.service.inspect_token(&t, &secret).await,
        Err(CoreError::TokenGone)
    );
    let voided = audit_kinds(&h, &t)
        .await
        .into_iter()
        .filter(|k| k == "reset_token_voided")
        .count();
    assert_eq!(voided, 1, "only the effective void is audited");
}

/// A tenant whose cool-down is a minute.
async fn with_cooldown_minute() -> (Harness, TenantId) {
    with(TenantSettings {
        cooldown_secs: 60,
        ..TenantSettings::default()
    })
    .await
}

async fn ask(h: &Harness, t: &TenantId, name: &str) -> Result<(), CoreError> {
    h.service
        .request_reset(t, Lookup::Login(name.into()), None, None, None)
        .await
}

#[tokio::test]
async fn a_full_queue_refuses_known_and_unknown_accounts_alike_until_it_drains() {
    let (mut h, t) = setup().await;
    h.service = h.service.with_reset_queue_cap(2);
    person(&h, &t, "alice").await;
    assert_eq!(ask(&h, &t, "alice").await, Ok(()));
    assert_eq!(ask(&h, &t, "nobody").await, Ok(()));

    // Full: the same refusal, after the same work (none), whoever is named.
    let mut calls = Vec::new();
    for name in ["alice", "nobody"] {
        h.store.clear_calls();
        assert_eq!(
            ask(&h, &t, name).await,
            Err(CoreError::Overloaded),
            "{name}"
        );
        calls.push(h.store.calls());
    }
    assert_eq!(calls[0], calls[1]);
    assert!(!calls[0].contains(&"insert_reset_request"), "{calls:?}");
    let backlog = h.service.reset_backlog();
    assert_eq!(
        (backlog.depth(), backlog.cap(), backlog.refused()),
        (2, 2, 2)
    );

    // Resolving frees the places, and the store's count is taken again once drained.
    assert_eq!(h.service.process_reset_requests(10).await, Ok((2, vec![])));
    assert_eq!(h.service.reset_backlog().depth(), 0);
    assert_eq!(ask(&h, &t, "nobody").await, Ok(()));
    assert_eq!(
        outbox(&h, &t).await.len(),
        1,
        "the refused requests sent nothing"
    );
}

#[tokio::test]
async fn a_request_whose_insert_fails_gives_its_place_back() {
    let (mut h, t) = setup().await;
    h.service = h.service.with_reset_queue_cap(1);
    h.store.fail(
        "insert_reset_request",
        crate::ports::StoreError::Unavailable("down".into()),
    );
    assert!(ask(&h, &t, "alice").await.is_err());
    h.store.heal();
    assert_eq!(h.service.reset_backlog().depth(), 0);
    assert_eq!(ask(&h, &t, "alice").await, Ok(()));
}

#[tokio::test]
async fn a_request_that_waited_in_the_backlog_is_coalesced_with_the_token_issued_meanwhile() {
    let (h, t) = with_cooldown_minute().await;
    person(&h, &t, "alice").await;
    // A flood: three requests for alice within a second, resolved slowly (one a minute and a
    // half apart, as a long backlog drains).
    for _ in 0..3 {
        ask(&h, &t, "alice").await.unwrap();
    }
    h.clock.advance_secs(100);
    assert_eq!(h.service.process_reset_requests(1).await, Ok((1, vec![])));
    h.clock.advance_secs(100);
    assert_eq!(h.service.process_reset_requests(10).await, Ok((2, vec![])));
    // The cool-down runs back from when alice asked: one email, not one per resolution.
    assert_eq!(outbox(&h, &t).await.len(), 1);
    let outcomes = reset_outcomes(&h, &t).await;
    assert_eq!(outcomes, ["token_issued", "cooling_down", "cooling_down"]);
}

#[tokio::test]
async fn coalescing_never_drops_the_only_request_for_an_account() {
    let (h, t) = with_cooldown_minute().await;
    person(&h, &t, "alice").await;
    person(&h, &t, "bob").await;
    ask(&h, &t, "alice").await.unwrap();
    h.service.process_reset_requests(10).await.unwrap();
    // Past the cool-down alice asks again, and bob for the first time; both wait ten minutes in
    // the backlog behind a flood of requests for nobody.
    h.clock.advance_secs(61);
    ask(&h, &t, "alice").await.unwrap();
    ask(&h, &t, "bob").await.unwrap();
    for _ in 0..50 {
        ask(&h, &t, "nobody").await.unwrap();
    }
    h.clock.advance_secs(600);
    assert_eq!(
        h.service.process_reset_requests(100).await,
        Ok((52, vec![]))
    );
    let to: Vec<_> = outbox(&h, &t)
        .await
        .into_iter()
        .map(|m| m.message.recipient.as_str().to_owned())
        .collect();
    assert_eq!(
        to,
        ["alice@example.com", "alice@example.com", "bob@example.com"]
    );
}
