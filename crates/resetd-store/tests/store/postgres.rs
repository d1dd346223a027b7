//! The store conformance suite against PostgreSQL (each check in its own fresh schema), plus
//! PostgreSQL-specific behaviour: concurrent migrations from separate stores, schema versions,
//! corrupt rows, a dropped connection.
//!
//! Needs a server: `RESETD_TEST_DATABASE_URL` or postgres://postgres@127.0.0.1:5432/test. Without
//! one every test prints a SKIPPED notice and passes, except with `CI=true`, where it fails.

use std::sync::Arc;

use resetd_core::model::{
    Lookup, NewResetRequest, Tenant, TenantSettings, Timestamp, TokenPurpose,
};
use resetd_core::secret::SecretHash;
use resetd_core::store::{Directory, Schema, Store, StoreError};
use resetd_core::types::{PersonId, TenantId};
use resetd_store::postgres::testing::{self, TestSchema};
use resetd_store::PostgresStore;

/// A store on a new, migrated, empty schema, or `None` when the test is to be skipped.
async fn try_fresh() -> Option<(Arc<dyn Store>, TestSchema)> {
    let server = testing::server_url().await?;
    let schema = TestSchema::new(&server);
    let store = PostgresStore::connect(&schema.url).await.expect("connect");
    store.migrate().await.expect("migrate");
    Some((Arc::new(store), schema))
}

resetd_store::conformance_tests!(try_fresh);

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

/// A raw client on the server (for poking at rows behind the store's back).
async fn raw(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("raw connect");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn separate_stores_migrate_one_schema_at_once() {
    let Some(server) = testing::server_url().await else {
        return;
    };
    let schema = TestSchema::new(&server);
    // Eight processes' worth of stores, each with its own connections, migrating a schema that
    // does not exist yet: the advisory lock makes them take turns; exactly one creates it.
    let mut stores = Vec::new();
    for _ in 0..8 {
        stores.push(Arc::new(
            PostgresStore::connect(&schema.url).await.expect("connect"),
        ));
    }
    assert_eq!(stores[0].schema_version().await.unwrap(), 0);
    let runs: Vec<_> = stores
        .iter()
        .map(|s| {
            let s = s.clone();
            tokio::spawn(async move { s.migrate().await })
        })
        .collect();
    for r in runs {
        r.await.expect("task").expect("concurrent migrate");
    }
    for s in &stores {
        assert_eq!(
            s.schema_version().await.unwrap(),
            PostgresStore::latest_schema_version()
        );
    }
    let c = raw(&server).await;
    let applied: i64 = c
        .query_one(
            &format!(
                "SELECT COUNT(*) FROM {}.resetd_schema_migrations",
                schema.name
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(applied, PostgresStore::latest_schema_version());

    stores[0].create_tenant(&tenant("acme")).await.unwrap();
    assert_eq!(
        stores[1].create_tenant(&tenant("acme")).await,
        Err(StoreError::Conflict("tenant".into()))
    );
}

async fn schema_exists(c: &tokio_postgres::Client, name: &str) -> bool {
    c.query_one(
        "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
        &[&name],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_drops_its_schema() {
    let Some(server) = testing::server_url().await else {
        return;
    };
    let schema = TestSchema::new(&server);
    let name = schema.name.clone();
    let c = raw(&server).await;
    assert!(!schema_exists(&c, &name).await);
    let store = PostgresStore::connect(&schema.url).await.unwrap();
    store.migrate().await.unwrap();
    assert!(schema_exists(&c, &name).await, "the migration creates it");
    drop(store);
    drop(schema);
    assert!(!schema_exists(&c, &name).await, "the guard dropped it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_does_not_migrate_and_a_newer_schema_is_refused() {
    let Some(server) = testing::server_url().await else {
        return;
    };
    let schema = TestSchema::new(&server);
    let store = PostgresStore::connect(&schema.url).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), 0);
    assert!(
        matches!(store.list_tenants().await, Err(StoreError::Backend(_))),
        "no schema yet"
    );
    store.migrate().await.unwrap();
    let c = raw(&server).await;
    c.batch_execute(&format!(
        "INSERT INTO {}.resetd_schema_migrations (version) VALUES ({})",
        schema.name,
        PostgresStore::latest_schema_version() + 1
    ))
    .await
    .unwrap();
    assert!(matches!(store.migrate().await, Err(StoreError::Backend(m)) if m.contains("version")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_rows_are_errors_not_panics() {
    let Some((store, schema)) = try_fresh().await else {
        return;
    };
    store.create_tenant(&tenant("acme")).await.unwrap();
    store
        .insert_reset_request(&request("acme", 1))
        .await
        .unwrap();
    let c = raw(&testing::server_url().await.unwrap()).await;
    c.batch_execute(&format!(
        "UPDATE {s}.tenant SET settings = '{{\"nonsense\": 1}}'; \
         UPDATE {s}.reset_request SET lookup = 'not json';",
        s = schema.name
    ))
    .await
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
async fn killed_connections_are_replaced() {
    let Some(server) = testing::server_url().await else {
        return;
    };
    let schema = TestSchema::new(&server);
    // Its own application_name, so that only this store's connections are cut below.
    let url = format!("{}&application_name={}", schema.url, schema.name);
    let store = PostgresStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    store.create_tenant(&tenant("acme")).await.unwrap();
    // The server ends every connection of this store (as a restart or a network cut would).
    let c = raw(&server).await;
    let killed: i64 = c
        .query_one(
            "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = $1) t",
            &[&schema.name],
        )
        .await
        .unwrap()
        .get(0);
    assert!(killed >= 1, "the store had an idle connection");
    // Wait until the server has really ended them, plus a moment for the client side to read the
    // goodbye, as after any real outage.
    for _ in 0..100 {
        let left: i64 = c
            .query_one(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = $1",
                &[&schema.name],
            )
            .await
            .unwrap()
            .get(0);
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    // Dead connections are noticed at checkout and replaced: no caller sees an error.
    for _ in 0..3 {
        assert_eq!(
            store
                .get_tenant(&TenantId::parse("acme").unwrap())
                .await
                .unwrap()
                .map(|t| t.id.to_string()),
            Some("acme".into())
        );
    }
    store.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_of_a_purpose_this_build_does_not_know_is_no_token() {
    let Some((store, schema)) = try_fresh().await else {
        return;
    };
    store.create_tenant(&tenant("acme")).await.unwrap();
    let person = PersonId::generate();
    let c = raw(&testing::server_url().await.unwrap()).await;
    c.execute(
        &format!(
            "INSERT INTO {}.person (id, tenant, number, login, email, created_at, updated_at) \
             VALUES ($1, 'acme', 1, 'alice', 'alice@example.com', 0, 0)",
            schema.name
        ),
        &[&person.as_str()],
    )
    .await
    .unwrap();
    // As a newer version sharing the database would write them.
    let (known, newer) = (SecretHash::of("known"), SecretHash::of("newer"));
    for (hash, purpose) in [(&known, "reset"), (&newer, "one_time_code")] {
        c.execute(
            &format!(
                "INSERT INTO {}.reset_token (hash, tenant, person, created_at, expires_at, purpose) \
                 VALUES ($1, 'acme', $2, 0, 9000000000000, $3)",
                schema.name
            ),
            &[&&hash.0[..], &person.as_str(), &purpose],
        )
        .await
        .unwrap();
    }
    assert_eq!(
        store.find_token(known).await.unwrap().map(|t| t.purpose),
        Some(TokenPurpose::Reset)
    );
    assert_eq!(store.find_token(newer).await.unwrap(), None);
}
