//! Fault: PostgreSQL restarted under load, against the real binary. resetd runs on a private
//! PostgreSQL cluster (initdb'd into a temporary directory, on a port of its own, fsync on) while
//! six clients keep requesting resets, completing resets, creating people and logging in. The
//! cluster is stopped with requests in flight (once with a fast shutdown, once with an immediate
//! one, i.e. a crash followed by WAL recovery), kept down for three seconds and started again.
//! Proven:
//! - during the outage every answer is the operation's success or a clean 503 problem with
//!   Retry-After, within seconds: never a hang, a dropped connection or a panic;
//! - resetd recovers on its own (no restart): a probe of each kind of request succeeds within
//!   seconds of PostgreSQL being back, and from
//!   then on every request succeeds;
//! - every 202, 201 and 204 the clients saw still holds afterwards (the reset email arrives with
//!   a working link, the person exists, the new password works and the old one does not), and a
//!   reset cut off by the outage happened entirely or not at all (password, token, email).
//!
//! The shared test server is never restarted. Needs PostgreSQL's server binaries (`initdb`,
//! `pg_ctl`): without them the tests print a SKIPPED notice, except with `CI=true`, where they
//! fail. As root (initdb refuses root) the cluster runs as the `postgres` user.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unimplemented
)]

mod cluster;
mod load;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::helpers::config::TestConfig;
use crate::helpers::{token_from_mail, Server};
use cluster::{text, PgCluster};
use load::{client, histogram, Answer, Kind, Load};
use resetd_core::model::{MessageKind, OutboxMessage, OutboxStatus};
use resetd_core::store::Outbox;
use resetd_store::PostgresStore;
use serde_json::{json, Value};

/// People who ask for a reset during the load, and people who complete one (with a token got
/// before the load), each once. One more of each (the last) is the recovery probe's.
const REQUESTERS: usize = 100;
const COMPLETERS: usize = 100;
/// Requesters and completers kept back until PostgreSQL is up again, however many the outage
/// used up, so the recovered service still gets every kind of request.
const RESERVE: usize = 30;
/// Concurrent clients.
const CLIENTS: usize = 6;
/// How long PostgreSQL stays down.
const OUTAGE: Duration = Duration::from_secs(3);
/// The slowest answer accepted: anything slower counts as a hang.
const MAX_ANSWER: Duration = Duration::from_secs(10);
/// How soon after PostgreSQL is back every kind of request must succeed again.
const MAX_RECOVERY: Duration = Duration::from_secs(15);

const OLD: &str = "violet tangerine orbit 7";

fn new_password(i: usize) -> String {
    format!("quiet harbour lantern {i:03}")
}

/// Runs `f` on this thread without stalling the runtime's other tasks (the load).
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Creates people in `default` with up to 16 requests at once.
async fn add_people(s: &Server, people: Vec<Value>) {
    let limit = Arc::new(tokio::sync::Semaphore::new(16));
    let mut jobs = tokio::task::JoinSet::new();
    for body in people {
        let (http, url, key, limit) = (
            s.http.clone(),
            s.url("/v1/default/people"),
            s.key.clone(),
            limit.clone(),
        );
        jobs.spawn(async move {
            let _permit = limit.acquire_owned().await.unwrap();
            let res = http
                .post(url)
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
        });
    }
    while let Some(done) = jobs.join_next().await {
        done.expect("create person");
    }
}

/// Waits (up to `secs`) until every address in `to` has a reset-link email, and returns each
/// one's token.
async fn reset_tokens(s: &Server, to: &[String], secs: u64) -> HashMap<String, String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let mut found = HashMap::new();
        for (name, body) in s.mails() {
            if !name.contains("reset_link") {
                continue;
            }
            if let Some(addr) = to.iter().find(|a| body.contains(&format!("To: {a}"))) {
                found.insert(addr.clone(), token_from_mail(&body));
            }
        }
        if found.len() == to.len() {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "after {secs} s, {} of {} reset emails; missing e.g. {:?}",
            found.len(),
            to.len(),
            to.iter().find(|a| !found.contains_key(*a))
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn status_of(req: reqwest::RequestBuilder) -> u16 {
    req.send().await.expect("send").status().as_u16()
}

/// The whole scenario, with PostgreSQL stopped in `mode` (`fast` or `immediate`).
async fn restart_mid_load(mode: &str) {
    let Some(cluster) = blocking(PgCluster::start) else {
        return;
    };
    // Short leases, so work claimed just before the outage is taken up again soon after it.
    let config = TestConfig::fast().lease_secs(4);
    let url = cluster.url();
    let s = blocking(|| Server::spawn_on(&url, &config));
    assert!(!s.key.is_empty(), "the fresh database was bootstrapped");

    // ---- Setup: requesters a*, completers b* (with a token each) and the reader.
    let mut people =
        vec![json!({"login": "reader", "email": "reader@example.com", "password": OLD})];
    for i in 0..=REQUESTERS {
        people.push(json!({"login": format!("a{i}"), "email": format!("a{i}@example.com")}));
    }
    for i in 0..=COMPLETERS {
        people.push(
            json!({"login": format!("b{i}"), "email": format!("b{i}@example.com"), "password": OLD}),
        );
    }
    add_people(&s, people).await;
    let b_addrs: Vec<String> = (0..=COMPLETERS)
        .map(|i| format!("b{i}@example.com"))
        .collect();
    for i in 0..=COMPLETERS {
        assert_eq!(s.request_reset(&format!("b{i}")).await.status(), 202);
    }
    let by_addr = reset_tokens(&s, &b_addrs, 30).await;
    let tokens: Vec<String> = b_addrs.iter().map(|a| by_addr[a].clone()).collect();

    // ---- The load, and the restart in the middle of it.
    let load = Arc::new(Load {
        base: s.base.clone(),
        key: s.key.clone(),
        tokens: tokens.clone(),
        next_job: AtomicUsize::new(0),
        next_request: AtomicUsize::new(0),
        next_complete: AtomicUsize::new(0),
        next_create: AtomicUsize::new(0),
        back: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        answers: Mutex::new(Vec::new()),
    });
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| tokio::spawn(client(load.clone())))
        .collect();
    let answered = || load.answers.lock().unwrap().len();
    let deadline = Instant::now() + Duration::from_secs(30);
    while answered() < 40 {
        assert!(Instant::now() < deadline, "the load does not get answers");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let stopping = Instant::now();
    let out = blocking(|| cluster.stop(mode));
    assert!(
        out.status.success(),
        "pg_ctl stop -m {mode}: {}",
        text(&out)
    );
    let down = Instant::now();

    // While it is down: liveness stays up, readiness says the database is gone; both at once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = Instant::now();
    assert_eq!(status_of(s.http.get(s.url("/healthz"))).await, 200);
    assert_eq!(status_of(s.http.get(s.mgmt_url("/readyz"))).await, 503);
    assert!(
        t.elapsed() < MAX_ANSWER,
        "health checks took {:?}",
        t.elapsed()
    );
    tokio::time::sleep(OUTAGE.saturating_sub(down.elapsed())).await;

    blocking(|| cluster.start_again());
    let up = Instant::now();

    load.back.store(true, Ordering::SeqCst);

    // Recovered once a probe of every kind, sent after `up`, has succeeded: the kinds in turn,
    // each retried every 100 ms. The probe has a requester and a completer of its own (the last
    // ones), so it can retry on the same one after a 503.
    let probe = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut recovered = up;
    for kind in Kind::ALL {
        loop {
            let who = match kind {
                Kind::Request => REQUESTERS,
                Kind::Complete => COMPLETERS,
                Kind::Create => load.next_create.fetch_add(1, Ordering::SeqCst),
                Kind::Login => 0,
            };
            let answer = load.send(&probe, kind, who).await;
            let (ok, ended) = (answer.ok(), answer.ended);
            load.answers.lock().unwrap().push(answer);
            if ok {
                recovered = recovered.max(ended);
                break;
            }
            if Instant::now() > up + MAX_RECOVERY {
                let since = histogram(
                    load.answers
                        .lock()
                        .unwrap()
                        .iter()
                        .filter(|a| a.started >= up),
                );
                panic!(
                    "resetd did not recover within {MAX_RECOVERY:?} of PostgreSQL being back \
                     ({kind:?} still failing): since then {since:?}\nserver log:\n{}\n\
                     PostgreSQL log:\n{}",
                    s.log(),
                    cluster.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Some more load on the recovered service, then stop.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    load.stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.expect("client task");
    }
    let answers = std::mem::take(&mut *load.answers.lock().unwrap());

    let before: Vec<&Answer> = answers.iter().filter(|a| a.ended < stopping).collect();
    let in_flight = answers
        .iter()
        .filter(|a| a.started < stopping && a.ended > stopping)
        .count();
    let during: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.ended >= stopping && a.started < recovered)
        .collect();
    let after: Vec<&Answer> = answers.iter().filter(|a| a.started >= recovered).collect();
    println!(
        "PostgreSQL {mode} restart: {} answers; {} before the stop, {in_flight} in flight at it; \
         during the outage {:?}; recovered {:?} after PostgreSQL was back; {} after that",
        answers.len(),
        before.len(),
        histogram(during.iter().copied()),
        recovered.saturating_duration_since(up),
        after.len()
    );

    // ---- The answers.
    for a in &answers {
        let took = a.ended - a.started;
        assert!(took < MAX_ANSWER, "{a:?} took {took:?}: a hang");
        let status = a
            .status
            .as_ref()
            .unwrap_or_else(|e| panic!("{a:?}: no HTTP answer ({e})"));
        if a.ok() {
            continue;
        }
        // Not the success: only a clean "try again later" is acceptable.
        assert_eq!(
            *status,
            503,
            "{:?} {} got {status}; during the outage {:?}",
            a.kind,
            a.who,
            histogram(during.iter().copied())
        );
        let retry = a
            .retry_after
            .as_deref()
            .unwrap_or_else(|| panic!("{a:?}: a 503 without Retry-After"));
        assert!(
            retry.parse::<u64>().is_ok_and(|s| s >= 1),
            "{a:?}: Retry-After is not a number of seconds"
        );
        assert_eq!(
            a.content_type.as_deref(),
            Some("application/problem+json"),
            "{a:?}"
        );
    }
    assert!(
        before.iter().all(|a| a.ok()),
        "failures before the stop: {:?}",
        histogram(before.iter().copied())
    );
    assert!(
        in_flight > 0,
        "no request was in flight when PostgreSQL was stopped"
    );
    assert!(
        during.iter().any(|a| !a.ok()),
        "the outage was not felt: {:?}",
        histogram(during.iter().copied())
    );
    assert!(
        !after.is_empty() && after.iter().all(|a| a.ok()),
        "failures after recovery: {:?}",
        histogram(after.iter().copied())
    );
    assert_eq!(status_of(s.http.get(s.mgmt_url("/readyz"))).await, 200);

    // ---- What the answers promised, and nothing half-written.
    // Each 202: the reset email comes (the request may have been claimed just before the stop,
    // and is then taken up again after its lease), and its link works.
    let promised: Vec<String> = answers
        .iter()
        .filter(|a| a.kind == Kind::Request && a.ok())
        .map(|a| format!("a{}@example.com", a.who))
        .collect();
    assert!(!promised.is_empty());
    let links = reset_tokens(&s, &promised, 40).await;
    for (addr, token) in &links {
        let res = s.token_info(token).await.status();
        assert_eq!(res, 200, "the emailed link for {addr} does not work");
    }
    // Each 201: the person exists.
    for a in answers.iter().filter(|a| a.kind == Kind::Create && a.ok()) {
        let list = s.find_people(&format!("c{}", a.who)).await;
        assert_eq!(
            list["items"].as_array().map(Vec::len),
            Some(1),
            "c{} got 201 but does not exist",
            a.who
        );
    }
    // Every message queued is delivered: none stays pending (the outbox worker survived the
    // outage) and none is dead.
    let store = PostgresStore::connect(&url).await.expect("connect");
    let deadline = Instant::now() + Duration::from_secs(30);
    let outbox: Vec<OutboxMessage> = loop {
        let rows = store
            .list_outbox(None, None, 100_000)
            .await
            .expect("outbox");
        if rows.iter().all(|m| m.status == OutboxStatus::Sent) {
            break rows;
        }
        assert!(
            Instant::now() < deadline,
            "outbox not delivered: {:?}",
            store.outbox_counts().await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Each completer: the 204 held; a completion cut off by the outage happened entirely (new
    // password, token used, one "password changed" email) or not at all.
    // Per completer tried: whether one of its tries (the probe's retries included) got 204, and
    // whether a failed one was in flight when PostgreSQL went away: started before `pg_ctl stop`
    // returned (the server is down then), not only before it was called, since a request that
    // starts while the stop is under way can still commit and then lose its answer (seen once
    // with `-m immediate`). Only such a request may have committed without being told: its
    // commit may have reached the WAL just before the server went away.
    let mut tried: HashMap<usize, (bool, bool)> = HashMap::new();
    for a in answers.iter().filter(|a| a.kind == Kind::Complete) {
        let (ok, cut) = tried.entry(a.who).or_default();
        *ok |= a.ok();
        *cut |= !a.ok() && a.started < down;
    }
    let (mut cut_done, mut cut_undone) = (0, 0);
    for (i, token) in tokens.iter().enumerate() {
        let login = format!("b{i}");
        let new = s.auth_status(&login, &new_password(i)).await;
        let old = s.auth_status(&login, OLD).await;
        let token = s.token_info(token).await.status().as_u16();
        let emails = outbox
            .iter()
            .filter(|m| {
                m.message.kind == MessageKind::PasswordChanged
                    && m.message.recipient.as_str() == format!("{login}@example.com")
            })
            .count();
        let state = (new, old, token, emails);
        let changed = (200, 401, 410, 1);
        let unchanged = (401, 200, 200, 0);
        match tried.get(&i) {
            Some((true, _)) => assert_eq!(state, changed, "{login}: the 204 did not hold"),
            Some((false, cut)) if state == changed => {
                assert!(
                    cut,
                    "{login}: answered 503 though the password was changed, and the request was \
                     not in flight when PostgreSQL went down"
                );
                cut_done += 1;
            }
            Some((false, _)) => {
                assert_eq!(state, unchanged, "{login}: a cut-off reset is half done");
                cut_undone += 1;
            }
            None => assert_eq!(state, unchanged, "{login}: never tried, yet changed"),
        }
    }
    println!(
        "{} reset emails promised and delivered; completions cut off: {cut_done} done, \
         {cut_undone} not done",
        links.len()
    );
    let log = s.log();
    assert!(!log.contains("panicked"), "resetd panicked:\n{log}");
    drop(s);
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_fast_shutdown_and_restart_mid_load_keeps_every_promise() {
    restart_mid_load("fast").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_crash_and_restart_mid_load_keeps_every_promise() {
    restart_mid_load("immediate").await;
}
