//! Scale-out: THREE `resetd serve` processes on different loopback ports share one PostgreSQL
//! schema, as N instances behind a load balancer would. Each test proves one guarantee that must
//! hold across instances because it lives in the database, not in any process:
//! - a reset token completed on all three at once (50 attempts) succeeds exactly once;
//! - the outbox is split between the three workers (claims with FOR UPDATE SKIP LOCKED and a
//!   lease): 1,000 messages are each sent exactly once while all are healthy, and none is lost
//!   when one instance is killed with SIGKILL in the middle of sending;
//! - the per-account cool-down and the lockout counter are global;
//! - three instances starting at once on an empty schema migrate it safely.
//!
//! Needs PostgreSQL (`RESETD_TEST_DATABASE_URL`, default postgres://postgres@127.0.0.1:5432/test);
//! without it the tests print a SKIPPED notice, except with `CI=true`, where they fail. Each test
//! uses its own schema, dropped at the end.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unimplemented
)]

use crate::helpers;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::helpers::config::TestConfig;
use crate::helpers::{token_from_mail, Server};
use resetd_core::model::{
    Clock, MessageKind, NewAudit, NewMessage, OutboxMessage, OutboxStatus, SystemClock,
};
use resetd_core::store::{Audit, Credentials, Directory, Outbox, PasswordChange};
use resetd_core::types::{Email, PersonId, TenantId};
use resetd_store::postgres::testing::{self, TestSchema};
use resetd_store::PostgresStore;
use serde_json::{json, Value};
use tokio::sync::{Barrier, Semaphore};
use tokio::task::JoinSet;

/// Connections per instance: three instances plus the test's own store stay far below the
/// server's default limit of 100 connections, even with other suites running alongside.
const POOL: &str = "pool_size=4";

/// Three instances on one fresh schema, and a store on it for looking at the rows.
struct Cluster {
    servers: Vec<Server>,
    store: PostgresStore,
    // Dropped last, after the servers are gone: drops the schema.
    schema: TestSchema,
}

impl Cluster {
    /// Starts three instances on a new schema with `config` and the log filter `log`, or returns
    /// `None` when PostgreSQL is unavailable (see the module doc). The first instance migrates
    /// the schema and prints the bootstrap key; the other two then start at the same time.
    async fn start(config: &TestConfig, log: &str) -> Option<Cluster> {
        let server = testing::server_url().await?;
        let schema = TestSchema::new(&server);
        let url = format!("{}&{POOL}", schema.url);
        let first = start_blocking(&url, config, log).await;
        assert!(!first.key.is_empty(), "the first instance bootstraps");
        let (second, third) = tokio::join!(
            start_blocking(&url, config, log),
            start_blocking(&url, config, log)
        );
        let mut servers = vec![first, second, third];
        let key = servers[0].key.clone();
        for s in &mut servers[1..] {
            assert!(
                s.key.is_empty(),
                "only one instance creates the bootstrap key"
            );
            s.key = key.clone();
        }
        let store = PostgresStore::connect(&url).await.expect("connect");
        Some(Cluster {
            servers,
            store,
            schema,
        })
    }

    /// Every outbox row.
    async fn outbox(&self) -> Vec<OutboxMessage> {
        self.store
            .list_outbox(None, None, 100_000)
            .await
            .expect("list outbox")
    }

    /// The audit events of `default`, oldest first.
    async fn audit(&self) -> Vec<(String, Value)> {
        let mut events = self
            .store
            .list_audit(&TenantId::parse("default").unwrap(), None, 10_000)
            .await
            .expect("audit");
        events.reverse();
        events.into_iter().map(|e| (e.kind, e.detail)).collect()
    }
}

async fn start_blocking(url: &str, config: &TestConfig, log: &str) -> Server {
    let (url, config, log) = (url.to_owned(), config.clone(), log.to_owned());
    tokio::task::spawn_blocking(move || Server::start_on(&url, config.toml(), &log))
        .await
        .expect("start resetd")
}

/// Waits (up to `secs`) until `pending` finds nothing missing, re-evaluating `probe` every
/// 100 ms; on time-out it panics with what was still missing.
async fn wait_until<T, F, Fut>(
    secs: u64,
    what: &str,
    mut probe: F,
    pending: impl Fn(&T) -> Option<String>,
) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let v = probe().await;
        let Some(missing) = pending(&v) else {
            return v;
        };
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}: {missing}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `None` when every row is sent, else a summary.
fn unsent(rows: &[OutboxMessage], expected: usize) -> Option<String> {
    let sent = rows
        .iter()
        .filter(|m| m.status == OutboxStatus::Sent)
        .count();
    (rows.len() != expected || sent != expected)
        .then(|| format!("{} rows, {sent} sent, {expected} expected", rows.len()))
}

/// `None` when every id in `ids` has a send logged, else how many have none.
fn unlogged(sends: &HashMap<i64, Vec<usize>>, ids: &HashSet<i64>) -> Option<String> {
    let missing = ids.iter().filter(|id| !sends.contains_key(id)).count();
    (missing > 0).then(|| format!("{missing} messages without a send line"))
}

/// The `.eml` files of every instance: (instance, file name, contents).
fn mails(servers: &[Server]) -> Vec<(usize, String, String)> {
    let mut out = Vec::new();
    for (i, s) in servers.iter().enumerate() {
        out.extend(s.mails().into_iter().map(|(name, body)| (i, name, body)));
    }
    out
}

/// Which instances wrote a message, per outbox id, from the `{id}-{kind}.eml` file names.
fn files_by_id(servers: &[Server]) -> HashMap<i64, Vec<usize>> {
    let mut by_id: HashMap<i64, Vec<usize>> = HashMap::new();
    for (i, name, _) in mails(servers) {
        if let Some(id) = name.split('-').next().and_then(|n| n.parse().ok()) {
            by_id.entry(id).or_default().push(i);
        }
    }
    by_id
}

/// Every delivery each instance logged, per outbox id. The file transport logs one line per
/// message it has written ("reset email written ..." at info, "email written ..." at debug), so
/// unlike the files (a second delivery overwrites the first), the lines count every delivery.
fn sends_by_id(servers: &[Server]) -> HashMap<i64, Vec<usize>> {
    let mut by_id: HashMap<i64, Vec<usize>> = HashMap::new();
    for (i, s) in servers.iter().enumerate() {
        for line in s.log().lines().filter(|l| l.contains("email written")) {
            let id = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("outbox_id="))
                .and_then(|n| n.parse::<i64>().ok())
                .unwrap_or_else(|| panic!("a send line without an outbox id: {line}"));
            by_id.entry(id).or_default().push(i);
        }
    }
    by_id
}

fn strong_password(i: usize) -> String {
    format!("violet kumquat harbour {i} glides west")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_completed_on_three_instances_at_once_succeeds_exactly_once() {
    let Some(cluster) = Cluster::start(&TestConfig::fast(), "info").await else {
        return;
    };
    let s = &cluster.servers;
    s[0].add_person("alice", "alice@example.com", None).await;
    let res = s[1].request_reset("alice").await;
    assert_eq!(res.status(), 202);
    let mail = wait_until(
        20,
        "the reset email",
        || async { mails(s) },
        |m| {
            (!m.iter().any(|(_, name, _)| name.contains("reset_link")))
                .then(|| "no reset_link mail yet".to_owned())
        },
    )
    .await
    .into_iter()
    .find(|(_, name, _)| name.contains("reset_link"))
    .unwrap()
    .2;
    let token = token_from_mail(&mail);

    // 50 completions with 50 different passwords, spread over the three instances and released
    // together.
    let barrier = Arc::new(Barrier::new(50));
    let mut attempts = JoinSet::new();
    for i in 0..50 {
        let http = reqwest::Client::new();
        let url = s[i % 3].url(&format!("/v1/default/recovery/{token}"));
        let barrier = barrier.clone();
        attempts.spawn(async move {
            let body = json!({"password": strong_password(i)});
            barrier.wait().await;
            let res = http.post(url).json(&body).send().await.expect("send");
            (i, res.status().as_u16())
        });
    }
    let mut outcomes = BTreeMap::new();
    let mut winners = Vec::new();
    while let Some(done) = attempts.join_next().await {
        let (i, status) = done.expect("task");
        *outcomes.entry(status).or_insert(0) += 1;
        if status == 204 {
            winners.push(i);
        }
    }
    assert_eq!(
        outcomes,
        BTreeMap::from([(204, 1), (410, 49)]),
        "exactly one completion wins, the others find the token used"
    );

    // The winner's password is the password, on every instance; no loser's is.
    let winner = winners[0];
    let loser = (winner + 1) % 50;
    for server in s {
        let ok = server.authenticate("alice", &strong_password(winner)).await;
        assert_eq!(ok.status(), 200);
        let bad = server.authenticate("alice", &strong_password(loser)).await;
        assert_eq!(bad.status(), 401);
    }
    let changed = cluster
        .outbox()
        .await
        .into_iter()
        .filter(|m| m.message.kind == MessageKind::PasswordChanged)
        .count();
    assert_eq!(changed, 1, "one 'password changed' email");
    let completed = cluster
        .audit()
        .await
        .iter()
        .filter(|(k, _)| k == "reset_completed")
        .count();
    assert_eq!(completed, 1, "one reset_completed audit event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_outbox_is_split_between_instances_and_survives_a_killed_one() {
    // A short lease, so the killed instance's claims come back within seconds; debug logs of
    // the mail crate, so every delivery (not only reset links) is logged with its outbox id.
    let config = TestConfig::fast().lease_secs(6);
    let Some(mut cluster) = Cluster::start(&config, "info,resetd_mail=debug").await else {
        return;
    };

    // ---- Phase 1: all healthy. 1,000 people each ask for a reset, spread over the instances.
    let limit = Arc::new(Semaphore::new(32));
    let mut jobs = JoinSet::new();
    for i in 0..1000usize {
        let (http, key) = (reqwest::Client::new(), cluster.servers[0].key.clone());
        let base = cluster.servers[i % 3].url("");
        let limit = limit.clone();
        jobs.spawn(async move {
            let _permit = limit.acquire_owned().await.unwrap();
            let res = http
                .post(format!("{base}/v1/default/people"))
                .bearer_auth(&key)
                .json(&json!({"login": format!("p{i}"), "email": format!("p{i}@example.com")}))
                .send()
                .await
                .expect("create person");
            assert_eq!(res.status(), 201);
            let body: Value = res.json().await.unwrap();
            let res = http
                .post(format!("{base}/v1/default/recovery"))
                .json(&json!({"login": format!("p{i}")}))
                .send()
                .await
                .expect("request reset");
            assert_eq!(res.status(), 202);
            body["id"].as_str().unwrap().to_owned()
        });
    }
    let mut person_ids = Vec::new();
    while let Some(done) = jobs.join_next().await {
        person_ids.push(done.expect("task"));
    }
    let phase1 = wait_until(
        120,
        "1,000 reset emails sent",
        || cluster.outbox(),
        |rows| unsent(rows, 1000),
    )
    .await;
    let phase1_ids: HashSet<i64> = phase1.iter().map(|m| m.id).collect();
    let recipients: HashSet<&str> = phase1
        .iter()
        .map(|m| m.message.recipient.as_str())
        .collect();
    assert_eq!(recipients.len(), 1000, "one email per person, none twice");
    assert!(phase1
        .iter()
        .all(|m| m.message.kind == MessageKind::ResetLink));
    // The log lines are written before a message is marked sent; give the pipes a moment.
    let sends = wait_until(
        10,
        "the send log lines",
        || async { sends_by_id(&cluster.servers) },
        |s| unlogged(s, &phase1_ids),
    )
    .await;
    let files = files_by_id(&cluster.servers);
    let mut per_instance = [0usize; 3];
    for m in &phase1 {
        let who = &sends[&m.id];
        assert_eq!(who.len(), 1, "message {} sent {} times", m.id, who.len());
        assert_eq!(
            files.get(&m.id),
            Some(who),
            "message {} written by the instance that logged it, once",
            m.id
        );
        assert_eq!(m.attempts, 1, "message {} claimed once", m.id);
        per_instance[who[0]] += 1;
    }
    assert!(
        per_instance.iter().all(|n| *n > 0),
        "every instance's worker took part: {per_instance:?}"
    );
    eprintln!("phase 1: 1,000 messages, each sent once; per instance {per_instance:?}");

    // ---- Phase 2: 1,000 messages become due at the same instant (queued straight into the
    // store, due a few seconds from now, so each claim takes a full batch), and instance 2 is
    // killed with SIGKILL right after it has delivered its first one.
    let person = PersonId::parse(&person_ids[0]).unwrap();
    let tenant = TenantId::parse("default").unwrap();
    let due = SystemClock.now().plus_secs(10);
    let url = format!("{}&{POOL}", cluster.schema.url);
    // With the instances' outbox key, so that they can open what it queues.
    let store = Arc::new(
        PostgresStore::connect(&url)
            .await
            .unwrap()
            .with_outbox_keys(helpers::shared_outbox_keys(&url)),
    );
    let mut jobs = JoinSet::new();
    for i in 0..1000usize {
        let (store, person, tenant, limit) =
            (store.clone(), person.clone(), tenant.clone(), limit.clone());
        jobs.spawn(async move {
            let _permit = limit.acquire_owned().await.unwrap();
            let message = NewMessage {
                tenant: tenant.clone(),
                kind: MessageKind::PasswordChanged,
                recipient: Email::parse(&format!("q{i}@example.com")).unwrap(),
                subject: format!("phase 2 message {i}"),
                text: format!("phase 2 message {i}"),
                html: None,
                sender_name: None,
                message_id: format!("<scaleout-q{i}@resetd.test>"),
                created_at: due,
                deliver_by: due.plus_secs(86_400),
            };
            let audit = NewAudit {
                tenant: tenant.clone(),
                person: Some(person.clone()),
                kind: "password_set",
                actor: "cli".into(),
                ip: None,
                at: due,
                detail: json!({}),
            };
            store
                .change_password(PasswordChange {
                    tenant,
                    person,
                    token: None,
                    claim: None,
                    new_hash: Some("$argon2id$scaleout".into()),
                    must_change_password: false,
                    unlock: false,
                    keep_history: 0,
                    at: SystemClock.now(),
                    message: Some(message),
                    audit,
                })
                .await
                .expect("enqueue");
        });
    }
    while let Some(done) = jobs.join_next().await {
        done.expect("task");
    }
    assert!(
        SystemClock.now() < due,
        "queueing took longer than the 10 s head start; the phase would not start with a full queue"
    );

    // The victim is whichever instance delivers a phase-2 message first: it then holds a claimed
    // batch. (Waiting for one chosen instance is racy on a loaded machine, where another instance
    // may drain the whole queue before the chosen one's next poll.)
    let seen_before: Vec<usize> = cluster.servers.iter().map(|s| s.log().len()).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let victim = loop {
        let first =
            cluster.servers.iter().enumerate().position(|(i, srv)| {
                srv.log()[seen_before[i]..].contains("kind=\"password_changed\"")
            });
        if let Some(i) = first {
            break i;
        }
        if Instant::now() > deadline {
            panic!(
                "no instance delivered a phase-2 message; outbox {:?}",
                cluster.store.outbox_counts().await
            );
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    cluster.servers[victim].kill();
    let at_kill: Vec<OutboxMessage> = cluster
        .outbox()
        .await
        .into_iter()
        .filter(|m| m.message.kind == MessageKind::PasswordChanged)
        .collect();
    let sent_at_kill = at_kill
        .iter()
        .filter(|m| m.status == OutboxStatus::Sent)
        .count();
    let leased_at_kill = at_kill
        .iter()
        .filter(|m| m.status == OutboxStatus::Pending && m.attempts > 0)
        .count();
    assert_eq!(at_kill.len(), 1000);
    assert!(
        sent_at_kill < 1000,
        "the kill happened in the middle of the run ({sent_at_kill} of 1,000 sent)"
    );

    let phase2 = wait_until(
        90,
        "the 1,000 phase-2 messages sent by the surviving instances",
        || async {
            cluster
                .outbox()
                .await
                .into_iter()
                .filter(|m| m.message.kind == MessageKind::PasswordChanged)
                .collect::<Vec<_>>()
        },
        |rows| unsent(rows, 1000),
    )
    .await;
    let phase2_ids: HashSet<i64> = phase2.iter().map(|m| m.id).collect();
    let sends = wait_until(
        10,
        "the send log lines",
        || async { sends_by_id(&cluster.servers) },
        |s| unlogged(s, &phase2_ids),
    )
    .await;
    let files = files_by_id(&cluster.servers);
    let (mut twice, mut reclaimed) = (0, 0);
    for m in &phase2 {
        let who = &sends[&m.id];
        assert!(
            files.get(&m.id).is_some_and(|f| !f.is_empty()),
            "message {} was delivered (its file exists)",
            m.id
        );
        let written_by = files.get(&m.id).map_or(0, Vec::len);
        if who.len() > 1 || written_by > 1 {
            twice += 1;
            // At-least-once: only a message the killed instance had in hand may go out twice.
            assert!(
                who.contains(&victim) || files[&m.id].contains(&victim),
                "message {} sent {} times by {who:?}",
                m.id,
                who.len()
            );
        }
        if m.attempts > 1 {
            reclaimed += 1;
        }
    }
    assert!(
        reclaimed > 0,
        "some of the killed instance's claims ran out and were taken over"
    );
    // Phase 1 stays as it was: nothing re-sent.
    for id in &phase1_ids {
        assert_eq!(sends[id].len(), 1);
    }
    eprintln!(
        "phase 2: killed instance {victim} with {sent_at_kill} of 1,000 sent and {leased_at_kill} \
         leased; all 1,000 delivered; {reclaimed} re-claimed after the lease, {twice} delivered twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cool_down_and_lockout_hold_across_instances() {
    let Some(cluster) = Cluster::start(&TestConfig::fast(), "info").await else {
        return;
    };
    let s = &cluster.servers;
    s[0].add_person("alice", "alice@example.com", None).await;
    let bob = s[0]
        .add_person(
            "bob",
            "bob@example.com",
            Some("a long and memorable passphrase"),
        )
        .await;

    // Cool-down (60 s by default): 30 requests for one account, 10 on each instance, at once.
    let barrier = Arc::new(Barrier::new(30));
    let mut requests = JoinSet::new();
    for i in 0..30 {
        let http = reqwest::Client::new();
        let url = s[i % 3].url("/v1/default/recovery");
        let barrier = barrier.clone();
        requests.spawn(async move {
            barrier.wait().await;
            http.post(url)
                .json(&json!({"login": "alice"}))
                .send()
                .await
                .expect("send")
                .status()
                .as_u16()
        });
    }
    while let Some(status) = requests.join_next().await {
        assert_eq!(status.expect("task"), 202);
    }
    let outcomes = wait_until(
        30,
        "30 resolved reset requests",
        || async {
            cluster
                .audit()
                .await
                .into_iter()
                .filter(|(k, _)| k == "reset_requested")
                .map(|(_, d)| d["outcome"].as_str().unwrap_or("").to_owned())
                .collect::<Vec<_>>()
        },
        |o| (o.len() != 30).then(|| format!("{} of 30", o.len())),
    )
    .await;
    let issued = outcomes.iter().filter(|o| *o == "token_issued").count();
    let cooling = outcomes.iter().filter(|o| *o == "cooling_down").count();
    assert_eq!((issued, cooling), (1, 29), "{outcomes:?}");
    let links: Vec<_> = cluster
        .outbox()
        .await
        .into_iter()
        .filter(|m| m.message.recipient.as_str() == "alice@example.com")
        .collect();
    assert_eq!(links.len(), 1, "one reset email within the cool-down");

    // Lockout (10 failures by default): 9 wrong passwords at once, 3 on each instance. A
    // per-instance counter would stand at 3; the shared one stands at 9 on every instance.
    let wrong = |i: usize| {
        let http = reqwest::Client::new();
        let url = s[i % 3].url("/v1/default/authenticate");
        async move {
            http.post(url)
                .json(&json!({"login": "bob", "password": format!("wrong password {i}")}))
                .send()
                .await
                .expect("send")
                .status()
                .as_u16()
        }
    };
    let mut failures = JoinSet::new();
    for i in 0..9 {
        failures.spawn(wrong(i));
    }
    while let Some(status) = failures.join_next().await {
        assert_eq!(status.expect("task"), 401);
    }
    for server in s {
        let p = server.person_json(&bob).await;
        assert_eq!(
            (p["failed_logins"].as_u64(), p["locked"].as_bool()),
            (Some(9), Some(false)),
            "{p}"
        );
    }
    // The tenth failure, on yet another instance, locks the account everywhere.
    assert_eq!(wrong(10).await, 401);
    for server in s {
        let res = server
            .authenticate("bob", "a long and memorable passphrase")
            .await;
        assert_eq!(res.status(), 423, "locked on every instance");
        assert!(res.headers().contains_key("retry-after"));
    }
    let locks = cluster
        .audit()
        .await
        .into_iter()
        .filter(|(k, _)| k == "locked")
        .collect::<Vec<_>>();
    assert_eq!(locks.len(), 1, "{locks:?}");
    assert_eq!(locks[0].1["failures"], 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_starting_at_once_migrate_one_empty_schema() {
    let Some(server) = testing::server_url().await else {
        return;
    };
    let schema = TestSchema::new(&server);
    let url = format!("{}&{POOL}", schema.url);
    let config = TestConfig::fast();
    let started = Instant::now();
    let (a, b, c) = tokio::join!(
        start_blocking(&url, &config, "info"),
        start_blocking(&url, &config, "info"),
        start_blocking(&url, &config, "info")
    );
    let mut servers = vec![a, b, c];
    eprintln!("three instances up in {:?}", started.elapsed());
    let keys: Vec<String> = servers
        .iter()
        .map(|s| s.key.clone())
        .filter(|k| !k.is_empty())
        .collect();
    assert_eq!(
        keys.len(),
        1,
        "exactly one instance created the bootstrap tenant and key"
    );
    for s in &mut servers {
        s.key = keys[0].clone();
    }
    let store = PostgresStore::connect(&url).await.unwrap();
    assert_eq!(
        store.schema_version().await.unwrap(),
        PostgresStore::latest_schema_version()
    );
    assert_eq!(store.list_tenants().await.unwrap().len(), 1);
    // Every instance serves, with the one schema: a person created on one is seen by the others.
    for s in &servers {
        assert_eq!(s.mgmt_get("/readyz").await.status(), 200);
    }
    let id = servers[0]
        .add_person("carol", "carol@example.com", None)
        .await;
    for s in &servers {
        assert_eq!(s.person(&id).await.status(), 200);
    }
    // `resetd migrate`, run three times at once against the live schema, changes nothing.
    let runs: Vec<_> = (0..3)
        .map(|_| {
            let cfg = servers[0].config_path();
            let dir = servers[0].dir.path().to_owned();
            std::thread::spawn(move || helpers::cli(&dir, Some(&cfg), &["migrate"], None))
        })
        .collect();
    for r in runs {
        let out = r.join().expect("migrate");
        assert!(out.contains("is up to date"), "{out}");
        assert!(!out.contains("s3cret"));
    }
    assert_eq!(
        store.schema_version().await.unwrap(),
        PostgresStore::latest_schema_version()
    );
    drop(servers);
    drop(store);
    drop(schema);
}
