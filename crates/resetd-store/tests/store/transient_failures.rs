//! A database failing for a moment must not break a promise already made: a reset request
//! answered with 202 whose tenant cannot be read (the database failed) stays queued and is
//! resolved later, instead of being discarded as if the tenant did not exist. Run over the real
//! SQLite store, with the failure made by a tenant row that cannot be decoded.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use resetd_core::hash::{HashError, PasswordHasher, Verified};
use resetd_core::model::{Clock, Lookup, MessageKind, SystemClock, TenantSettings, Timestamp};
use resetd_core::render::{MessageContext, Rendered, Renderer};
use resetd_core::service::{Actor, NewPersonInput, RESET_REQUEST_LEASE_SECS};
use resetd_core::store::{Schema, Store};
use resetd_core::types::{Email, Login, Password, TenantId};
use resetd_core::{Service, ServiceConfig};
use resetd_store::SqliteStore;
use serde_json::json;

/// A clock the test moves forward.
struct ManualClock(AtomicI64);

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

/// Never called: nobody here has a password.
struct NoHasher;

#[async_trait]
impl PasswordHasher for NoHasher {
    async fn hash(&self, _: &Password) -> Result<String, HashError> {
        unreachable!("no password is set in this test")
    }
    async fn verify(&self, _: &Password, _: &str) -> Result<Verified, HashError> {
        unreachable!("no password is checked in this test")
    }
    async fn verify_dummy(&self, _: &Password) -> Result<(), HashError> {
        unreachable!("no password is checked in this test")
    }
}

struct Plain;

impl Renderer for Plain {
    fn render(&self, ctx: &MessageContext<'_>) -> Result<Rendered, String> {
        Ok(Rendered {
            subject: "reset".into(),
            text: ctx.link.unwrap_or("").into(),
            html: None,
            sender_name: None,
        })
    }
}

#[tokio::test]
async fn a_reset_request_whose_tenant_cannot_be_read_stays_queued_and_is_resolved_later() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("resetd.db");
    let store = SqliteStore::open(&path).unwrap();
    store.migrate().await.unwrap();
    let store: Arc<dyn Store> = Arc::new(store);
    let clock = Arc::new(ManualClock(AtomicI64::new(SystemClock.now().0)));
    let service = Service::new(
        store.clone(),
        Arc::new(NoHasher),
        Arc::new(Plain),
        clock.clone(),
        ServiceConfig {
            public_url: "http://resetd.test".into(),
            message_id_domain: "resetd.test".into(),
            notice_retry_secs: resetd_core::service::DEFAULT_NOTICE_RETRY_SECS,
        },
    );
    let tenant = TenantId::parse("acme").unwrap();
    service
        .create_tenant(tenant.clone(), TenantSettings::default())
        .await
        .unwrap();
    service
        .create_person(
            &tenant,
            NewPersonInput {
                login: Login::parse("alice").unwrap(),
                email: Email::parse("alice@example.com").unwrap(),
                display_name: None,
                locale: None,
                enabled: true,
                verified: false,
                roles: vec![],
                attributes: json!({}),
                password: None,
            },
            &Actor::Cli,
        )
        .await
        .unwrap();
    service
        .request_reset(
            &tenant,
            Lookup::login(&Login::parse("alice").unwrap()),
            None,
            None,
            None,
        )
        .await
        .unwrap();

    // The tenant's row becomes unreadable (reading it fails, as it would with the database
    // down), and the service's tenant cache has expired.
    let db = rusqlite::Connection::open(&path).unwrap();
    let settings: String = db
        .query_row("SELECT settings FROM tenant WHERE id = 'acme'", [], |r| {
            r.get(0)
        })
        .unwrap();
    db.execute(
        "UPDATE tenant SET settings = 'not json' WHERE id = 'acme'",
        [],
    )
    .unwrap();
    clock.0.fetch_add(60_000, Ordering::SeqCst);
    let (done, errors) = service.process_reset_requests(10).await.unwrap();
    assert_eq!(
        (done, errors.len()),
        (0, 1),
        "the request was resolved (discarded as if the tenant did not exist) instead of staying queued: {errors:?}"
    );
    assert!(store.list_outbox(None, None, 10).await.unwrap().is_empty());

    // The database is fine again: once the lease has run out the request is claimed again and
    // the email is queued.
    db.execute(
        "UPDATE tenant SET settings = ?1 WHERE id = 'acme'",
        [&settings],
    )
    .unwrap();
    clock
        .0
        .fetch_add(RESET_REQUEST_LEASE_SECS * 1000 + 1, Ordering::SeqCst);
    let (done, errors) = service.process_reset_requests(10).await.unwrap();
    assert_eq!((done, errors.len()), (1, 0), "{errors:?}");
    let outbox = store.list_outbox(None, None, 10).await.unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].message.kind, MessageKind::ResetLink);
    assert_eq!(outbox[0].message.recipient.as_str(), "alice@example.com");
}
