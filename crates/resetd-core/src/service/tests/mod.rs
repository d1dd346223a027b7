//! Unit tests of the use cases: the rules of each flow over [`MemoryStore`] and a
//! [`ManualClock`] (see `crate::testing`), one module per flow. The SQL behind the ports is the
//! store's own conformance suite's business; these pin what the service decides.
//!
//! [`MemoryStore`]: crate::testing::MemoryStore
//! [`ManualClock`]: crate::testing::ManualClock

mod admin;
mod api_keys;
mod breached;
mod complete;
mod credentials;
mod external;
mod failures;
mod people;
mod recovery;

use crate::model::{Lookup, OutboxMessage, Person, TenantSettings};
use crate::secret::ResetSecret;
use crate::service::{Actor, NewPersonInput};
use crate::testing::Harness;
use crate::types::{Email, Login, Password, TenantId};

/// Passwords the default policy accepts for any of the fixtures' people.
const GOOD: &str = "violet tangerine orbit 7";
const GOOD2: &str = "quiet harbour lantern 42";
const GOOD3: &str = "mossy anvil cathedral 19";

fn pw(s: &str) -> Password {
    Password::parse(s).unwrap()
}

fn login(s: &str) -> Login {
    Login::parse(s).unwrap()
}

/// A harness with tenant `acme` created with `settings`.
async fn with(settings: TenantSettings) -> (Harness, TenantId) {
    let h = Harness::new().unwrap();
    let t = TenantId::parse("acme").unwrap();
    h.service.create_tenant(t.clone(), settings).await.unwrap();
    (h, t)
}

/// [`with`] the default settings.
async fn setup() -> (Harness, TenantId) {
    with(TenantSettings::default()).await
}

/// Creates `login` (email `<login>@example.com`) with the password [`GOOD`].
async fn person(h: &Harness, t: &TenantId, login: &str) -> Person {
    person_with(h, t, login, Some(GOOD)).await
}

async fn person_with(h: &Harness, t: &TenantId, login: &str, password: Option<&str>) -> Person {
    h.service
        .create_person(
            t,
            NewPersonInput {
                login: Login::parse(login).unwrap(),
                email: Email::parse(&format!("{login}@example.com")).unwrap(),
                display_name: None,
                locale: None,
                enabled: true,
                verified: false,
                roles: vec![],
                attributes: serde_json::json!({}),
                password: password.map(pw),
            },
            &Actor::Cli,
        )
        .await
        .unwrap()
}

/// Disables (or enables) a person.
async fn set_enabled(h: &Harness, t: &TenantId, p: &Person, enabled: bool) {
    let patch = crate::service::PersonPatch {
        enabled: Some(enabled),
        ..Default::default()
    };
    h.service
        .update_person(t, &p.id, patch, &Actor::Cli)
        .await
        .unwrap();
}

/// Records a "forgot password" request for `lookup` and resolves the queue; returns how many
/// requests were resolved.
async fn forgot(h: &Harness, t: &TenantId, lookup: Lookup) -> usize {
    h.service
        .request_reset(t, lookup, None, None, Some("192.0.2.7".into()))
        .await
        .unwrap();
    let (done, errors) = h.service.process_reset_requests(100).await.unwrap();
    assert_eq!(errors, vec![]);
    done
}

/// A reset link for `p`, through the anonymous flow; returns its secret.
async fn reset_link(h: &Harness, t: &TenantId, p: &Person) -> ResetSecret {
    forgot(h, t, Lookup::login(&p.login)).await;
    h.renderer.last_secret().unwrap()
}

/// A tenant's outbox, oldest first.
async fn outbox(h: &Harness, t: &TenantId) -> Vec<OutboxMessage> {
    let mut all = h.service.outbox(Some(t), None, 1000).await.unwrap();
    all.reverse();
    all
}

/// A tenant's audit events as (kind, outcome or ""), oldest first.
async fn audit(h: &Harness, t: &TenantId) -> Vec<(String, String)> {
    let mut events = h.service.audit_log(t, None, 1000).await.unwrap();
    events.reverse();
    events
        .into_iter()
        .map(|e| {
            let outcome = e.detail["outcome"].as_str().unwrap_or("").to_owned();
            (e.kind, outcome)
        })
        .collect()
}

/// The kinds of a tenant's audit events, oldest first.
async fn audit_kinds(h: &Harness, t: &TenantId) -> Vec<String> {
    audit(h, t).await.into_iter().map(|(k, _)| k).collect()
}
