//! Test support for suites that need a real PostgreSQL server (this crate's and the binary's).
//!
//! - The server is `RESETD_TEST_DATABASE_URL`, or [`DEFAULT_TEST_URL`] (a local server with trust
//!   authentication and a database `test`).
//! - When it does not answer, [`server_url`] prints a visible notice and returns `None` so the test
//!   can skip — unless `CI=true`, where a missing server must fail the run: it panics.
//! - Each test works in its own throw-away schema ([`TestSchema`]), dropped when the guard is.

#![allow(
    clippy::panic,
    reason = "test support: a missing server on CI fails the test (to move behind a feature, issue 14)"
)]

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_postgres::NoTls;

use super::{describe, PgOptions};

/// The environment variable naming the test server.
pub const TEST_URL_VAR: &str = "RESETD_TEST_DATABASE_URL";

/// The test server when the variable is unset.
pub const DEFAULT_TEST_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The test server's URL (without a schema), or `None` after printing why the test is skipped.
/// Panics instead when `CI=true`.
pub async fn server_url() -> Option<String> {
    let url = std::env::var(TEST_URL_VAR).unwrap_or_else(|_| DEFAULT_TEST_URL.to_owned());
    let shown = PgOptions::parse(&url)
        .map(|o| o.describe())
        .unwrap_or_else(|e| panic!("{TEST_URL_VAR} is not a usable PostgreSQL URL: {e}"));
    match probe(&url).await {
        Ok(()) => Some(url),
        Err(why) => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true");
            if ci {
                panic!("PostgreSQL is required on CI (CI=true) but {shown} is unreachable: {why}");
            }
            // Straight to the process's stderr, past the test harness's output capture, so the
            // skip is visible in a normal `cargo test` run.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED (PostgreSQL test): {shown} is unreachable ({why}); start PostgreSQL or set \
                 {TEST_URL_VAR}. With CI=true this is a failure."
            );
            None
        }
    }
}

async fn probe(url: &str) -> Result<(), String> {
    let options = PgOptions::parse(url)?;
    let mut config = options.config.clone();
    config.connect_timeout(Duration::from_secs(3));
    let (client, conn) = config.connect(NoTls).await.map_err(|e| describe(&e))?;
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    let result = client
        .simple_query("SELECT 1")
        .await
        .map(|_| ())
        .map_err(|e| describe(&e));
    drop(client);
    let _ = task.await;
    result
}

/// A fresh schema name, unique per process and call: `resetd_test_<pid>_<n>_<time>`.
pub fn unique_schema() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
        % 1_000_000_000_000;
    format!(
        "resetd_test_{}_{}_{nanos}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// `url` with resetd's `schema` parameter added.
pub fn with_schema(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}schema={schema}")
}

/// A throw-away schema on the test server; its URL selects it. Dropping the guard drops the
/// schema and everything in it (also when the test panicked).
#[derive(Debug)]
pub struct TestSchema {
    /// The URL with `schema=` set: hand it to the store or the resetd under test.
    pub url: String,
    /// The schema's name.
    pub name: String,
    server: String,
}

impl TestSchema {
    /// A new schema name on the server at `server_url` (the schema itself is created by the
    /// first migration).
    pub fn new(server_url: &str) -> TestSchema {
        let name = unique_schema();
        TestSchema {
            url: with_schema(server_url, &name),
            name,
            server: server_url.to_owned(),
        }
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // A runtime of its own on a thread of its own: Drop may run inside or outside one.
        let done = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let Ok(options) = PgOptions::parse(&server) else {
                    return;
                };
                let Ok((client, conn)) = options.config.connect(NoTls).await else {
                    return;
                };
                let task = tokio::spawn(async move {
                    let _ = conn.await;
                });
                // The name was generated by unique_schema(): a plain identifier.
                let _ = client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                    .await;
                drop(client);
                let _ = task.await;
            });
        });
        let _ = done.join();
    }
}
