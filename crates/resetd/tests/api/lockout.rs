//! The login lockout under parallel guessing (issue 13, item 3): an attempt is reserved in the
//! database before its password is verified, so however many guesses arrive at once, at most
//! `lockout_threshold` of them are evaluated per lockout window — on one instance (SQLite) and on
//! three instances sharing one PostgreSQL schema.
//!
//! "Evaluated" is told black-box by the answers: a guess whose password was checked answers `401`,
//! one refused by the lock answers `423` (and pays a dummy hash, so the two cost the same). The
//! audit log must hold exactly one `locked` event. Per-IP limits are off (`NO_LIMITS`), as
//! docs/deployment.md recommends behind a load balancer, so nothing else stops the guesses.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unimplemented
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::helpers::config::TestConfig;
use crate::helpers::{cli, Server};
use resetd_store::postgres::testing::{self, TestSchema};
use serde_json::{json, Value};
use tokio::sync::Barrier;
use tokio::task::JoinSet;

const GOOD: &str = "violet tangerine orbit 7";
const GOOD2: &str = "quiet harbour lantern 42";
const THRESHOLD: usize = 10;
const GUESSES: usize = 100;
/// Fast Argon2, no per-IP limits, and room for every guess in each instance's hashing queue: a
/// 503 would hide what was evaluated.
fn config() -> TestConfig {
    TestConfig::fast().hashing(None, 512)
}

/// Sends `GUESSES` wrong passwords for `login` at once, spread round-robin over `bases`, each on
/// its own connection, and returns the count of each status.
async fn parallel_guesses(bases: &[String], login: &str) -> std::collections::BTreeMap<u16, usize> {
    let barrier = Arc::new(Barrier::new(GUESSES));
    let mut tasks = JoinSet::new();
    for i in 0..GUESSES {
        let url = format!("{}/v1/default/authenticate", bases[i % bases.len()]);
        let (barrier, login) = (barrier.clone(), login.to_owned());
        tasks.spawn(async move {
            let http = reqwest::Client::new();
            let req = http
                .post(url)
                .json(&json!({"login": login, "password": format!("wrong guess number {i}")}));
            barrier.wait().await;
            req.send().await.expect("send").status().as_u16()
        });
    }
    let mut counts = std::collections::BTreeMap::new();
    while let Some(status) = tasks.join_next().await {
        *counts.entry(status.expect("task")).or_insert(0) += 1;
    }
    counts
}

/// The `locked` audit events of `default`, through the admin API.
async fn lock_events(s: &Server) -> Vec<Value> {
    s.audit_items("?limit=1000")
        .await
        .into_iter()
        .filter(|e| e["kind"] == "locked")
        .collect()
}

/// Asserts the outcome of one burst: exactly `THRESHOLD` evaluated (401), the rest refused by the
/// lock (423), nothing else.
fn assert_at_most_threshold_evaluated(counts: &std::collections::BTreeMap<u16, usize>, what: &str) {
    let evaluated = counts.get(&401).copied().unwrap_or(0);
    let refused = counts.get(&423).copied().unwrap_or(0);
    assert!(
        evaluated <= THRESHOLD,
        "{what}: {evaluated} of {GUESSES} parallel guesses were evaluated (threshold {THRESHOLD}): {counts:?}"
    );
    assert_eq!(
        (evaluated, refused),
        (THRESHOLD, GUESSES - THRESHOLD),
        "{what}: every reservation up to the threshold is evaluated, the rest refused: {counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_guesses_on_one_instance_evaluate_at_most_the_threshold() {
    let config = config();
    // A short window, set while the server is stopped so no cached settings linger.
    let first = Server::spawn(&config);
    let admin = first.key.clone();
    let dir = first.stop();
    cli(
        dir.path(),
        None,
        &["tenant", "set", "default", "--lockout-secs", "6"],
        None,
    );
    let mut s = Server::spawn_in(dir, &config);
    s.key = admin;
    let id = s.add_person("lou", "lou@example.com", Some(GOOD)).await;

    let started = Instant::now();
    let counts = parallel_guesses(&[s.base.clone()], "lou").await;
    println!(
        "SQLite: {GUESSES} parallel guesses answered {counts:?} in {:?}",
        started.elapsed()
    );
    assert_at_most_threshold_evaluated(&counts, "SQLite");

    // The right password is refused while locked, with the time to wait.
    let res = s.authenticate("lou", GOOD).await;
    assert_eq!(
        res.status(),
        423,
        "the right password is refused while locked"
    );
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=6).contains(&retry), "Retry-After {retry}");
    let events = lock_events(&s).await;
    assert_eq!(events.len(), 1, "one lock: {events:?}");
    assert_eq!(events[0]["detail"]["failures"], THRESHOLD);

    // After the window the right password works, and clears the count.
    tokio::time::sleep(Duration::from_secs(retry + 1)).await;
    assert_eq!(
        s.authenticate("lou", GOOD).await.status(),
        200,
        "after the window"
    );
    for _ in 0..THRESHOLD - 1 {
        assert_eq!(s.authenticate("lou", "wrong again").await.status(), 401);
    }
    assert_eq!(
        s.authenticate("lou", GOOD).await.status(),
        200,
        "the count was cleared"
    );

    // A login nobody has locks the same way: the counter is the login's, not a person's.
    let counts = parallel_guesses(&[s.base.clone()], "nobody-here").await;
    assert_at_most_threshold_evaluated(&counts, "SQLite, unknown login");

    // Completing a reset by email gets a locked-out person back in (reset_unlocks, the default).
    let counts = parallel_guesses(&[s.base.clone()], "lou").await;
    assert_at_most_threshold_evaluated(&counts, "SQLite, second lock");
    assert_eq!(s.authenticate("lou", GOOD).await.status(), 423);
    let token = s.reset_token("lou", "lou@example.com", 1).await;
    let done = s.complete_reset(&token, GOOD2).await;
    assert_eq!(done.status(), 204);
    assert_eq!(
        s.authenticate("lou", GOOD2).await.status(),
        200,
        "the reset cleared the lock"
    );
    let p = s.person_json(&id).await;
    assert_eq!(
        (p["locked"].as_bool(), p["failed_logins"].as_u64()),
        (Some(false), Some(0))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_guesses_on_three_instances_sharing_postgres_evaluate_at_most_the_threshold() {
    let Some(server) = testing::server_url().await else {
        return;
    };
    let schema = TestSchema::new(&server);
    let url = format!("{}&pool_size=4", schema.url);
    let config = config();
    let start = |url: String, config: TestConfig| {
        tokio::task::spawn_blocking(move || Server::spawn_on(&url, &config))
    };
    let first = start(url.clone(), config.clone()).await.unwrap();
    let (b, c) = tokio::join!(
        start(url.clone(), config.clone()),
        start(url.clone(), config.clone())
    );
    let mut servers = vec![first, b.unwrap(), c.unwrap()];
    let key = servers[0].key.clone();
    for s in &mut servers[1..] {
        s.key = key.clone();
    }
    let s = &servers;
    let id = s[0].add_person("lou", "lou@example.com", Some(GOOD)).await;
    let bases: Vec<String> = s.iter().map(|s| s.base.clone()).collect();

    let started = Instant::now();
    let counts = parallel_guesses(&bases, "lou").await;
    println!(
        "PostgreSQL, 3 instances: {GUESSES} parallel guesses answered {counts:?} in {:?}",
        started.elapsed()
    );
    assert_at_most_threshold_evaluated(&counts, "PostgreSQL, three instances");
    for server in s {
        let res = server.authenticate("lou", GOOD).await;
        assert_eq!(res.status(), 423, "refused while locked on every instance");
        assert!(res.headers().contains_key("retry-after"));
    }
    let events = lock_events(&s[1]).await;
    assert_eq!(events.len(), 1, "one lock: {events:?}");
    assert_eq!(events[0]["detail"]["failures"], THRESHOLD);

    // An administrator's unlock (on another instance) lets the right password in everywhere.
    let res = s[2].unlock_person(&id).await;
    assert_eq!(res.status(), 204);
    for server in s {
        assert_eq!(
            server.authenticate("lou", GOOD).await.status(),
            200,
            "unlocked"
        );
    }

    // Again, with a login nobody has: the same lock, the same counts.
    let counts = parallel_guesses(&bases, "nobody-here").await;
    assert_at_most_threshold_evaluated(&counts, "PostgreSQL, unknown login");
    drop(servers);
    drop(schema);
}
