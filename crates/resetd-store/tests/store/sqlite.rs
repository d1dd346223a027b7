//! The store conformance suite against SQLite, plus SQLite-specific behaviour: files, WAL,
//! two processes on one file, reopening, corrupt rows.

use std::path::Path;
use std::sync::Arc;

use resetd_core::model::{
    Lookup, NewResetRequest, Tenant, TenantSettings, Timestamp, TokenPurpose,
};
use resetd_core::secret::SecretHash;
use resetd_core::store::{Directory, Recovery, Schema, Store, StoreError};
use resetd_core::types::{PersonId, TenantId};
use resetd_store::SqliteStore;
use rusqlite::Connection;

/// A freshly migrated store in its own temporary directory (kept alive by the guard).
async fn fresh() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("resetd.db")).expect("open");
    store.migrate().await.expect("migrate");
    (Arc::new(store), dir)
}

resetd_store::conformance_tests!(fresh);

fn tenant(name: &str) -> Tenant {
    Tenant {
        id: TenantId::parse(name).unwrap(),
        settings: TenantSettings::default(),
        created_at: Timestamp(1),
    }
}

fn request(tenant: &str, i: i64) -> NewResetRequest {
    NewResetRequest {
        tenant: TenantId::parse(tenant).unwrap(),
        lookup: Lookup::Login(format!("user{i}")),
        client: None,
        locale: None,
        ip: None,
        created_at: Timestamp(i),
    }
}

fn raw(path: &Path) -> Connection {
    let c = Connection::open(path).unwrap();
    c.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_creates_the_directory_and_does_not_migrate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/resetd.db");
    let store = SqliteStore::open(&path).unwrap();
    assert!(path.exists());
    assert_eq!(store.path(), path);
    assert_eq!(store.schema_version().await.unwrap(), 0);
    assert!(
        matches!(store.list_tenants().await, Err(StoreError::Backend(_))),
        "no schema yet"
    );
    store.migrate().await.unwrap();
    assert_eq!(
        store.schema_version().await.unwrap(),
        SqliteStore::latest_schema_version()
    );

    let c = raw(&path);
    let mode: String = c
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_on_one_file_migrate_and_write_concurrently() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let a = Arc::new(SqliteStore::open(&path).unwrap());
    let b = Arc::new(SqliteStore::open(&path).unwrap());
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    ra.unwrap();
    rb.unwrap();
    assert_eq!(
        a.schema_version().await.unwrap(),
        SqliteStore::latest_schema_version()
    );
    a.migrate().await.unwrap();

    a.create_tenant(&tenant("acme")).await.unwrap();
    assert_eq!(
        b.create_tenant(&tenant("acme")).await,
        Err(StoreError::Conflict("tenant".into()))
    );

    // Both "processes" write at once; the file lock and busy timeout serialise their batches.
    let mut tasks = Vec::new();
    for i in 0..400 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            s.insert_reset_request(&request("acme", i)).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    // Both claim from the one queue: together they get each request once.
    let (now, lease) = (Timestamp(10_000), Timestamp(70_000));
    let from_a = a.claim_reset_requests(now, lease, 250).await.unwrap();
    let from_b = b.claim_reset_requests(now, lease, 1_000).await.unwrap();
    assert_eq!((from_a.len(), from_b.len()), (250, 150));
    let ids: std::collections::HashSet<i64> = from_a.iter().chain(&from_b).map(|r| r.id).collect();
    assert_eq!(ids.len(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("resetd.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        store.migrate().await.unwrap();
        store.create_tenant(&tenant("acme")).await.unwrap();
        store
            .insert_reset_request(&request("acme", 1))
            .await
            .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    store.migrate().await.unwrap();
    assert_eq!(
        store
            .get_tenant(&TenantId::parse("acme").unwrap())
            .await
            .unwrap(),
        Some(tenant("acme"))
    );
    assert_eq!(
        store
            .claim_reset_requests(Timestamp(10), Timestamp(20), 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_rows_are_errors_not_panics() {
    let (store, dir) = fresh().await;
    store.create_tenant(&tenant("acme")).await.unwrap();
    store
        .insert_reset_request(&request("acme", 1))
        .await
        .unwrap();
    let c = raw(&dir.path().join("resetd.db"));
    c.execute("UPDATE tenant SET settings = '{\"nonsense\": 1}'", [])
        .unwrap();
    c.execute(
        "UPDATE reset_request SET lookup = 'not json', created_at = 'yesterday'",
        [],
    )
    .unwrap();
    assert!(matches!(
        store.get_tenant(&TenantId::parse("acme").unwrap()).await,
        Err(StoreError::Backend(_))
    ));
    assert!(matches!(
        store.list_tenants().await,
        Err(StoreError::Backend(_))
    ));
    assert!(matches!(
        store
            .claim_reset_requests(Timestamp(10), Timestamp(20), 10)
            .await,
        Err(StoreError::Backend(_))
    ));
    // The store keeps working.
    store.create_tenant(&tenant("beta")).await.unwrap();
    store.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused() {
    let (store, dir) = fresh().await;
    let c = raw(&dir.path().join("resetd.db"));
    c.execute_batch(&format!(
        "PRAGMA user_version = {}",
        SqliteStore::latest_schema_version() + 1
    ))
    .unwrap();
    assert!(matches!(store.migrate().await, Err(StoreError::Backend(m)) if m.contains("version")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_of_a_purpose_this_build_does_not_know_is_no_token() {
    let (store, dir) = fresh().await;
    store.create_tenant(&tenant("acme")).await.unwrap();
    let person = PersonId::generate();
    let c = raw(&dir.path().join("resetd.db"));
    c.execute(
        "INSERT INTO person (id, tenant, number, login, email, created_at, updated_at) \
         VALUES (?1, 'acme', 1, 'alice', 'alice@example.com', 0, 0)",
        [person.as_str()],
    )
    .unwrap();
    // As a newer version sharing the file would write them.
    let (known, newer) = (SecretHash::of("known"), SecretHash::of("newer"));
    for (hash, purpose) in [(&known, "reset"), (&newer, "one_time_code")] {
        c.execute(
            "INSERT INTO reset_token (hash, tenant, person, created_at, expires_at, purpose) \
             VALUES (?1, 'acme', ?2, 0, 9000000000000, ?3)",
            rusqlite::params![&hash.0[..], person.as_str(), purpose],
        )
        .unwrap();
    }
    assert_eq!(
        store.find_token(known).await.unwrap().map(|t| t.purpose),
        Some(TokenPurpose::Reset)
    );
    assert_eq!(store.find_token(newer).await.unwrap(), None);
}
