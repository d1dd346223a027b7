//! The core use cases the dialects added (send a reset link to a caller-supplied, allow-listed
//! URL; void a token; lookups by number and ObjectId), run over the real SQLite store.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use resetd_core::hash::{Argon2id, HashError, HashParams, PasswordHasher, Verified};
use resetd_core::model::{
    Clock, LinkTemplate, Lookup, ResetPageUrl, SystemClock, TenantSettings, Timestamp,
};
use resetd_core::render::{MessageContext, Rendered, Renderer};
use resetd_core::secret::ResetSecret;
use resetd_core::service::{Actor, NewPersonInput};
use resetd_core::store::{Schema, Store};
use resetd_core::types::{ClientName, Email, Login, ObjectId, Password, TenantId};
use resetd_core::{CoreError, Service, ServiceConfig};
use resetd_store::SqliteStore;
use serde_json::json;

/// Argon2id at test cost, run inline.
struct Inline(Argon2id);

#[async_trait]
impl PasswordHasher for Inline {
    async fn hash(&self, password: &Password) -> Result<String, HashError> {
        self.0.hash(password)
    }
    async fn verify(&self, password: &Password, phc: &str) -> Result<Verified, HashError> {
        Ok(self.0.verify(password, phc))
    }
    async fn verify_dummy(&self, password: &Password) -> Result<(), HashError> {
        self.0.verify_dummy(password);
        Ok(())
    }
}

/// Renders the link and records every context's client and link.
#[derive(Default)]
struct Recorder(Mutex<Vec<(Option<String>, Option<String>)>>);

impl Renderer for Recorder {
    fn render(&self, ctx: &MessageContext<'_>) -> Result<Rendered, String> {
        self.0.lock().unwrap().push((
            ctx.client.map(|c| c.to_string()),
            ctx.link.map(str::to_owned),
        ));
        Ok(Rendered {
            subject: "s".into(),
            text: ctx.link.unwrap_or("changed").into(),
            html: None,
            sender_name: None,
        })
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    service: Service,
    renderer: Arc<Recorder>,
    tenant: TenantId,
}

const GOOD: &str = "violet tangerine orbit 7";
const GOOD2: &str = "quiet harbour lantern 42";

async fn fixture(cooldown_secs: i64) -> Fixture {
    fixture_with(cooldown_secs, Arc::new(SystemClock)).await
}

async fn fixture_with(cooldown_secs: i64, clock: Arc<dyn Clock>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("resetd.db")).unwrap();
    store.migrate().await.unwrap();
    let store: Arc<dyn Store> = Arc::new(store);
    let renderer = Arc::new(Recorder::default());
    let hasher = Argon2id::new(HashParams {
        m_cost: 1024,
        t_cost: 1,
        p_cost: 1,
    })
    .unwrap();
    let service = Service::new(
        store.clone(),
        Arc::new(Inline(hasher)),
        renderer.clone(),
        clock,
        ServiceConfig {
            public_url: "http://resetd.test".into(),
            message_id_domain: "resetd.test".into(),
            notice_retry_secs: resetd_core::service::DEFAULT_NOTICE_RETRY_SECS,
        },
    );
    let tenant = TenantId::parse("acme").unwrap();
    let settings = TenantSettings {
        cooldown_secs,
        ..Default::default()
    };
    service
        .create_tenant(tenant.clone(), settings)
        .await
        .unwrap();
    for (name, prefix) in [
        ("portal", "https://portal.example.com/reset"),
        ("admin", "https://admin.example.com/"),
    ] {
        service
            .register_client(
                &tenant,
                ClientName::parse(name).unwrap(),
                LinkTemplate::parse("https://x.example.com/{token}").unwrap(),
                vec![prefix.into()],
                &Actor::Cli,
            )
            .await
            .unwrap();
    }
    Fixture {
        _dir: dir,
        store,
        service,
        renderer,
        tenant,
    }
}

impl Fixture {
    async fn person(&self, login: &str) -> resetd_core::model::Person {
        self.service
            .create_person(
                &self.tenant,
                NewPersonInput {
                    login: Login::parse(login).unwrap(),
                    email: Email::parse(&format!("{login}@example.com")).unwrap(),
                    display_name: None,
                    locale: None,
                    enabled: true,
                    verified: false,
                    roles: vec![],
                    attributes: json!({}),
                    password: Some(Password::parse(GOOD).unwrap()),
                },
                &Actor::Cli,
            )
            .await
            .unwrap()
    }

    async fn send(
        &self,
        lookup: &Lookup,
        url: &str,
        only: Option<&str>,
    ) -> Result<resetd_core::model::Person, CoreError> {
        let only = only.map(|c| ClientName::parse(c).unwrap());
        self.service
            .send_reset_link(
                &self.tenant,
                lookup,
                &ResetPageUrl::parse(url).unwrap(),
                "tokenId",
                only.as_ref(),
                &Actor::ApiKey("k1".into()),
                Some("192.0.2.9"),
            )
            .await
    }

    async fn outbox_len(&self) -> usize {
        self.store
            .list_outbox(Some(&self.tenant), None, 100)
            .await
            .unwrap()
            .len()
    }

    async fn audit_kinds(&self) -> Vec<String> {
        self.service
            .audit_log(&self.tenant, None, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect()
    }

    /// The secret of the last link rendered.
    fn last_secret(&self) -> ResetSecret {
        let links = self.renderer.0.lock().unwrap();
        let link = links.last().unwrap().1.clone().unwrap();
        ResetSecret::parse(link.rsplit("tokenId=").next().unwrap()).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_url_stores_and_sends_nothing() {
    let f = fixture(0).await;
    let p = f.person("alice").await;
    let by_oid = Lookup::object_id(&ObjectId::of(&p.id));
    let before = f.audit_kinds().await;
    for (url, only) in [
        ("https://evil.example.com/reset", None),
        ("https://portal.example.com/resetx", None),
        // Allowed by `admin`, but only `portal` may be used.
        ("https://admin.example.com/reset", Some("portal")),
    ] {
        assert_eq!(
            f.send(&by_oid, url, only).await,
            Err(CoreError::LinkNotAllowed),
            "{url}"
        );
    }
    // Refused before the person is looked up: an unknown person gets the same answer.
    let nobody = Lookup::ObjectId("000000000000000000000000".into());
    assert_eq!(
        f.send(&nobody, "https://evil.example.com/", None).await,
        Err(CoreError::LinkNotAllowed)
    );
    assert_eq!(f.outbox_len().await, 0);
    assert!(f.renderer.0.lock().unwrap().is_empty(), "nothing rendered");
    assert_eq!(f.audit_kinds().await, before, "nothing recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_are_built_from_the_allowed_url_and_tokens_supersede() {
    let f = fixture(0).await;
    let p = f.person("alice").await;
    let by_oid = Lookup::object_id(&ObjectId::of(&p.id));

    let got = f
        .send(&by_oid, "https://portal.example.com/reset?lang=de", None)
        .await
        .unwrap();
    assert_eq!(got.id, p.id);
    let (client, link) = f.renderer.0.lock().unwrap()[0].clone();
    assert_eq!(
        client.as_deref(),
        Some("portal"),
        "the matching client's templates"
    );
    let first = f.last_secret();
    assert_eq!(
        link.unwrap(),
        format!(
            "https://portal.example.com/reset?lang=de&tokenId={}",
            first.expose()
        )
    );
    // Stored as its hash only; the token info names the person and the issue time.
    let stored = f.store.find_token(first.hash()).await.unwrap().unwrap();
    assert_eq!(stored.client.as_ref().map(|c| c.as_str()), Some("portal"));
    assert_eq!(stored.ip.as_deref(), Some("192.0.2.9"));
    let info = f.service.inspect_token(&f.tenant, &first).await.unwrap();
    assert_eq!(
        (info.person.id.clone(), info.issued_at),
        (p.id.clone(), stored.created_at)
    );
    assert_eq!(f.outbox_len().await, 1);

    // The admin client's prefix also works (any client of the tenant by default).
    f.send(&by_oid, "https://admin.example.com/x", None)
        .await
        .unwrap();
    let second = f.last_secret();
    assert_eq!(
        f.service.inspect_token(&f.tenant, &first).await,
        Err(CoreError::TokenGone),
        "superseded"
    );

    // Completing returns the person as now stored; the token is single use.
    let done = f
        .service
        .complete_reset(&f.tenant, &second, &Password::parse(GOOD2).unwrap(), None)
        .await
        .unwrap();
    assert!(done.password_changed_at.is_some() && done.updated_at >= p.updated_at);
    assert_ne!(done.password_hash, p.password_hash);
    assert_eq!(
        f.service
            .complete_reset(&f.tenant, &second, &Password::parse(GOOD).unwrap(), None)
            .await,
        Err(CoreError::TokenGone)
    );
    let kinds = f.audit_kinds().await;
    assert_eq!(kinds.iter().filter(|k| *k == "reset_requested").count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_disabled_and_cooling_down_people() {
    let f = fixture(60).await;
    let p = f.person("alice").await;
    let url = "https://portal.example.com/reset";
    assert_eq!(
        f.send(
            &Lookup::ObjectId("000000000000000000000000".into()),
            url,
            None
        )
        .await,
        Err(CoreError::NotFound("person"))
    );
    let by_number = Lookup::Number(p.number);
    f.send(&by_number, url, None).await.unwrap();
    match f.send(&by_number, url, None).await {
        Err(CoreError::CoolingDown { until }) => {
            let now = f.service.now();
            assert!(until > now && until.0 <= now.0 + 60_000, "{until:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(f.outbox_len().await, 1, "one email per cool-down");

    let q = f.person("bob").await;
    let patch = resetd_core::service::PersonPatch {
        enabled: Some(false),
        ..Default::default()
    };
    f.service
        .update_person(&f.tenant, &q.id, patch, &Actor::Cli)
        .await
        .unwrap();
    assert_eq!(
        f.send(&Lookup::Number(q.number), url, None).await,
        Err(CoreError::Disabled)
    );
    assert_eq!(f.outbox_len().await, 1);
}

/// A clock the test sets.
struct ManualClock(AtomicI64);

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[tokio::test]
async fn a_cool_down_of_zero_never_refuses() {
    let clock = Arc::new(ManualClock(AtomicI64::new(1_000_000)));
    let f = fixture_with(0, clock.clone()).await;
    let p = f.person("carol").await;
    let url = "https://portal.example.com/reset";
    f.send(&Lookup::Number(p.number), url, None).await.unwrap();
    // A concurrent request that read the clock a moment before the first token was stored.
    clock.0.store(999_999, Ordering::SeqCst);
    f.send(&Lookup::Number(p.number), url, None).await.unwrap();
    assert_eq!(f.outbox_len().await, 2, "one email per request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_can_be_voided_once() {
    let f = fixture(0).await;
    let p = f.person("alice").await;
    f.send(
        &Lookup::Number(p.number),
        "https://portal.example.com/reset",
        None,
    )
    .await
    .unwrap();
    let secret = f.last_secret();
    let actor = Actor::ApiKey("k1".into());
    assert!(f
        .service
        .void_token(&f.tenant, &secret, &actor, None)
        .await
        .unwrap());
    assert!(!f
        .service
        .void_token(&f.tenant, &secret, &actor, None)
        .await
        .unwrap());
    assert!(!f
        .service
        .void_token(&f.tenant, &ResetSecret::generate(), &actor, None)
        .await
        .unwrap());
    assert_eq!(
        f.service.inspect_token(&f.tenant, &secret).await,
        Err(CoreError::TokenGone)
    );
    let other = TenantId::parse("beta").unwrap();
    f.service
        .create_tenant(other.clone(), TenantSettings::default())
        .await
        .unwrap();
    f.send(
        &Lookup::Number(p.number),
        "https://portal.example.com/reset",
        None,
    )
    .await
    .unwrap();
    let live = f.last_secret();
    assert!(
        !f.service
            .void_token(&other, &live, &actor, None)
            .await
            .unwrap(),
        "another tenant cannot void it"
    );
    assert!(f.service.inspect_token(&f.tenant, &live).await.is_ok());
    let kinds = f.audit_kinds().await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "reset_token_voided").count(),
        1
    );
}

/// A token minted for a purpose other than a reset (here by a newer version sharing the
/// database) sets no password and tells its holder nothing: every reset call refuses it exactly
/// as it refuses an unknown token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_minted_for_another_purpose_is_refused_like_an_unknown_one() {
    let f = fixture(0).await;
    let p = f.person("alice").await;
    f.send(
        &Lookup::login(&p.login),
        "https://portal.example.com/reset",
        None,
    )
    .await
    .unwrap();
    let secret = f.last_secret();
    f.service.inspect_token(&f.tenant, &secret).await.unwrap();
    let db = rusqlite::Connection::open(f._dir.path().join("resetd.db")).unwrap();
    db.execute("UPDATE reset_token SET purpose = 'email_verification'", [])
        .unwrap();

    let new = Password::parse(GOOD2).unwrap();
    let mut answers = Vec::new();
    for s in [&secret, &ResetSecret::generate()] {
        answers.push((
            f.service.inspect_token(&f.tenant, s).await.map(|_| ()),
            f.service
                .check_reset_password(&f.tenant, s, &new)
                .await
                .map(|_| ()),
            f.service
                .complete_reset(&f.tenant, s, &new, None)
                .await
                .map(|_| ()),
            f.service.void_token(&f.tenant, s, &Actor::Cli, None).await,
        ));
    }
    let gone = Err(CoreError::TokenGone);
    assert_eq!(
        answers[0],
        (gone.clone(), gone.clone(), gone.clone(), Ok(false))
    );
    assert_eq!(answers[0], answers[1], "the same as an unknown token");

    // Nothing changed: as a reset token again, it still sets the password.
    db.execute("UPDATE reset_token SET purpose = 'reset'", [])
        .unwrap();
    f.service
        .complete_reset(&f.tenant, &secret, &new, None)
        .await
        .unwrap();
}
