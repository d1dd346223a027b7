//! Conformance of the [`Directory`](resetd_core::ports::Directory) port: tenants, people (lookups,
//! import), clients; and a failing write undone alone (API keys: `keys`).

use std::collections::HashSet;
use std::sync::Arc;

use resetd_core::model::{Client, LinkTemplate, Lookup, Tenant, TenantSettings};
use resetd_core::store::{Store, StoreError};
use resetd_core::types::{
    ClientName, DisplayName, Email, Locale, Login, ObjectId, PersonId, TenantId,
};
use serde_json::json;

use super::fixtures::*;

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

/// `Lookup::LoginAnyCase`: the exact login wins, else the one login that folds alike (Unicode
/// simple lowercase, non-ASCII too); two that fold alike and no exact one name nobody. The fold
/// follows the login through inserts, renames and imports, and stays in its tenant.
pub async fn logins_in_any_case(store: Arc<dyn Store>) {
    let s = &*store;
    let a = tenant(s, "acme").await;
    let b = tenant(s, "beta").await;
    let known = add_person(s, &a, "alf.known", "alf@example.com").await;
    let zoe = add_person(s, &a, "Zoë.Ärger", "zoe@example.com").await;
    let upper = add_person(s, &a, "ANN", "ann1@example.com").await;
    let mixed = add_person(s, &a, "Ann", "ann2@example.com").await;
    add_person(s, &b, "carol", "carol@example.com").await;

    let find = |l: &str, t: &TenantId| {
        let (store, t, l) = (store.clone(), t.clone(), Lookup::LoginAnyCase(l.to_owned()));
        async move { store.find_person(&t, &l).await.expect("find").map(|p| p.id) }
    };
    assert_eq!(find("alf.known", &a).await, Some(known.id.clone()));
    assert_eq!(find("ALF.KNOWN", &a).await, Some(known.id.clone()));
    assert_eq!(find("Alf.Known", &a).await, Some(known.id.clone()));
    assert_eq!(
        find("zoË.äRGER", &a).await,
        Some(zoe.id.clone()),
        "non-ASCII letters fold"
    );
    assert_eq!(
        find("ANN", &a).await,
        Some(upper.id.clone()),
        "an exact login wins"
    );
    assert_eq!(find("Ann", &a).await, Some(mixed.id.clone()));
    assert_eq!(
        find("ann", &a).await,
        None,
        "two fold matches, no exact one: nobody"
    );
    assert_eq!(find("aNN", &a).await, None);
    assert_eq!(find("nobody", &a).await, None);
    assert_eq!(find("CAROL", &a).await, None, "no crossing tenants");
    assert!(find("CAROL", &b).await.is_some());
    // The exact lookup is unchanged.
    assert_eq!(
        s.find_person(&a, &Lookup::Login("ALF.KNOWN".into()))
            .await
            .unwrap(),
        None
    );

    // A rename refolds.
    let mut renamed = person(s, &known).await;
    renamed.login = Login::parse("Alfred").unwrap();
    s.update_person(
        &renamed,
        audit(&a, Some(&known.id), "person_updated", at(5)),
    )
    .await
    .unwrap();
    assert_eq!(find("ALFRED", &a).await, Some(known.id.clone()));
    assert_eq!(find("ALF.KNOWN", &a).await, None);

    // An import inserts with the fold, and updating an imported login keeps it.
    let imported = new_person(&a, "Imported.One", "imp@example.com");
    let batch = [imported.clone()];
    s.upsert_people(&batch, audit(&a, None, "people_imported", at(6)))
        .await
        .unwrap();
    s.upsert_people(&batch, audit(&a, None, "people_imported", at(7)))
        .await
        .unwrap();
    assert_eq!(find("imported.one", &a).await, Some(imported.id.clone()));
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
