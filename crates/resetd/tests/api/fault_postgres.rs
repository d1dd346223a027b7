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

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::helpers::{token_from_mail, Server, FAST_ARGON, NO_LIMITS};
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

/// A private PostgreSQL cluster in a temporary directory; stopped (immediately) when dropped,
/// also when the test fails, and then deleted with the directory.
struct PgCluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    /// initdb and the server refuse to run as root: then every command runs as `postgres`.
    as_postgres: bool,
    // Dropped after `drop` has stopped the server.
    dir: tempfile::TempDir,
}

/// The directory holding `initdb` and `pg_ctl`: the newest /usr/lib/postgresql/*/bin, else the
/// first directory on PATH that has both.
fn pg_bin_dir() -> Option<PathBuf> {
    let has_both = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, d)| has_both(d))
        .collect();
    versioned.sort();
    versioned
        .pop()
        .map(|(_, d)| d)
        .or_else(|| std::env::split_paths(&std::env::var_os("PATH")?).find(|d| has_both(d)))
}

/// A free loopback port (free when asked; the cluster start retries on a clash).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

impl PgCluster {
    /// Creates and starts a cluster, or returns `None` after printing why the test is skipped
    /// (no PostgreSQL binaries). Panics instead when `CI=true`.
    fn start() -> Option<PgCluster> {
        let Some(bin) = pg_bin_dir() else {
            let why = "PostgreSQL's server binaries (initdb, pg_ctl) are not installed";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("PostgreSQL is required on CI (CI=true) but {why}");
            }
            eprintln!("SKIPPED (PostgreSQL restart test): {why}. With CI=true this is a failure.");
            return None;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        // The directory belongs to whoever runs the test: root means running as `postgres`.
        let as_postgres = std::fs::metadata(dir.path()).expect("stat tempdir").uid() == 0;
        if as_postgres {
            let ok = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                ok,
                "running as root, but cannot hand the cluster directory to the postgres user"
            );
        }
        let mut cluster = PgCluster {
            data: dir.path().join("data"),
            bin,
            port: 0,
            as_postgres,
            dir,
        };
        let out = cluster.run(
            "initdb",
            &[
                "-D".as_ref(),
                cluster.data.as_os_str(),
                "-A".as_ref(),
                "trust".as_ref(),
                "-U".as_ref(),
                "postgres".as_ref(),
            ],
        );
        assert!(out.status.success(), "initdb failed: {}", text(&out));
        // A port taken between free_port() and the start fails the start: try another one.
        for attempt in 1..=3 {
            cluster.port = free_port();
            let out = cluster.pg_ctl_start();
            if out.status.success() {
                return Some(cluster);
            }
            assert!(
                attempt < 3,
                "the private PostgreSQL did not start: {}\n{}",
                text(&out),
                cluster.log()
            );
        }
        unreachable!()
    }

    /// Runs one of the PostgreSQL binaries (as `postgres` when we are root).
    fn run(&self, program: &str, args: &[&std::ffi::OsStr]) -> Output {
        let exe = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        // A working directory the postgres user may enter (the test's own may not be).
        cmd.args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
    }

    /// `pg_ctl start`, waiting (up to 30 s) until the server accepts connections. Small
    /// shared buffers keep it light; fsync stays on (the default), as durability is under test.
    fn pg_ctl_start(&self) -> Output {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c shared_buffers=16MB -c max_connections=40",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("postgres.log");
        self.run(
            "pg_ctl",
            &[
                "start".as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                "30".as_ref(),
                "-D".as_ref(),
                self.data.as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-o".as_ref(),
                options.as_ref(),
            ],
        )
    }

    /// Starts the server again after [`PgCluster::stop`]; panics if it does not come up.
    fn start_again(&self) {
        let out = self.pg_ctl_start();
        assert!(
            out.status.success(),
            "PostgreSQL did not start again: {}\n{}",
            text(&out),
            self.log()
        );
    }

    /// `pg_ctl stop -m <mode>` and waits until the server is down: `fast` ends every session
    /// (rolling back open transactions) and writes a checkpoint; `immediate` kills everything at
    /// once, like a crash, so the next start replays the WAL.
    fn stop(&self, mode: &str) -> Output {
        self.run(
            "pg_ctl",
            &[
                "stop".as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                "30".as_ref(),
                "-m".as_ref(),
                mode.as_ref(),
                "-D".as_ref(),
                self.data.as_os_str(),
            ],
        )
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The server's own log.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // Already stopped is fine; nothing else to do if it fails.
        let _ = self.stop("immediate");
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The kinds of request in the load, with the status that means success.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// Requester `i` asks for a reset: 202.
    Request,
    /// Completer `i` sets a new password with their token: 204.
    Complete,
    /// A new person `c{i}` is created: 201.
    Create,
    /// The reader logs in with the right password: 200.
    Login,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Request, Kind::Complete, Kind::Create, Kind::Login];

    fn success(self) -> u16 {
        match self {
            Kind::Request => 202,
            Kind::Complete => 204,
            Kind::Create => 201,
            Kind::Login => 200,
        }
    }
}

/// One answered (or failed) request of the load.
#[derive(Debug)]
struct Answer {
    kind: Kind,
    who: usize,
    /// The status, or the transport error (a dropped connection or a client time-out).
    status: Result<u16, String>,
    retry_after: Option<String>,
    content_type: Option<String>,
    started: Instant,
    ended: Instant,
}

impl Answer {
    fn ok(&self) -> bool {
        self.status == Ok(self.kind.success())
    }
}

/// The load's shared state: what to do next and everything answered so far.
struct Load {
    base: String,
    key: String,
    tokens: Vec<String>,
    next_job: AtomicUsize,
    next_request: AtomicUsize,
    next_complete: AtomicUsize,
    next_create: AtomicUsize,
    /// Set once PostgreSQL is up again: the reserve may be used.
    back: AtomicBool,
    stop: AtomicBool,
    answers: Mutex<Vec<Answer>>,
}

impl Load {
    /// The next request: the four kinds in turn; a login once requesters or completers run out
    /// (those of the reserve only count once PostgreSQL is back).
    fn pick(&self) -> (Kind, usize) {
        let kept = if self.back.load(Ordering::SeqCst) {
            0
        } else {
            RESERVE
        };
        let take = |counter: &AtomicUsize, limit: usize| {
            counter
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |i| {
                    (i + kept < limit).then_some(i + 1)
                })
                .ok()
        };
        let kind = Kind::ALL[self.next_job.fetch_add(1, Ordering::SeqCst) % 4];
        let who = match kind {
            Kind::Request => take(&self.next_request, REQUESTERS),
            Kind::Complete => take(&self.next_complete, COMPLETERS),
            Kind::Create => take(&self.next_create, usize::MAX),
            Kind::Login => Some(0),
        };
        who.map_or((Kind::Login, 0), |i| (kind, i))
    }

    async fn send(&self, http: &reqwest::Client, kind: Kind, who: usize) -> Answer {
        let base = &self.base;
        let req = match kind {
            Kind::Request => http
                .post(format!("{base}/v1/default/recovery"))
                .json(&json!({"login": format!("a{who}")})),
            Kind::Complete => http
                .post(format!("{base}/v1/default/recovery/{}", self.tokens[who]))
                .json(&json!({"password": new_password(who)})),
            Kind::Create => http
                .post(format!("{base}/v1/default/people"))
                .bearer_auth(&self.key)
                .json(&json!({"login": format!("c{who}"), "email": format!("c{who}@example.com")})),
            Kind::Login => http
                .post(format!("{base}/v1/default/authenticate"))
                .json(&json!({"login": "reader", "password": OLD})),
        };
        let started = Instant::now();
        let res = req.send().await;
        let ended = Instant::now();
        let header = |r: &reqwest::Response, h: &str| {
            r.headers()
                .get(h)
                .map(|v| v.to_str().unwrap_or("<not text>").to_owned())
        };
        Answer {
            kind,
            who,
            retry_after: res.as_ref().ok().and_then(|r| header(r, "retry-after")),
            content_type: res.as_ref().ok().and_then(|r| header(r, "content-type")),
            status: res.map(|r| r.status().as_u16()).map_err(|e| e.to_string()),
            started,
            ended,
        }
    }
}

/// One client: requests back to back until told to stop. After a failure it pauses briefly,
/// so the outage does not use up the requesters and completers.
async fn client(load: Arc<Load>) {
    let http = reqwest::Client::builder()
        // Far above MAX_ANSWER: a request this slow is reported as a hang, not waited for.
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    while !load.stop.load(Ordering::SeqCst) {
        let (kind, who) = load.pick();
        let answer = load.send(&http, kind, who).await;
        let ok = answer.ok();
        load.answers.lock().unwrap().push(answer);
        if !ok {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Per kind, how many answers had each status (or error), for failure messages.
fn histogram<'a>(answers: impl Iterator<Item = &'a Answer>) -> BTreeMap<String, usize> {
    let mut h = BTreeMap::new();
    for a in answers {
        let status = match &a.status {
            Ok(s) => s.to_string(),
            Err(_) => "error".into(),
        };
        *h.entry(format!("{:?} {status}", a.kind)).or_insert(0) += 1;
    }
    h
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
    let config = format!("{FAST_ARGON}{NO_LIMITS}[mail.worker]\nlease_secs = 4\n");
    let url = cluster.url();
    let s = blocking(|| Server::start_on(&url, &config, "info"));
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
        let res = s
            .post("/v1/default/recovery", json!({"login": format!("b{i}")}))
            .await;
        assert_eq!(res.status(), 202);
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
        let res = status_of(s.http.get(s.url(&format!("/v1/default/recovery/{token}")))).await;
        assert_eq!(res, 200, "the emailed link for {addr} does not work");
    }
    // Each 201: the person exists.
    for a in answers.iter().filter(|a| a.kind == Kind::Create && a.ok()) {
        let list: Value = s
            .http
            .get(s.url(&format!("/v1/default/people?login=c{}", a.who)))
            .bearer_auth(&s.key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
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
    // whether a failed one was in flight when PostgreSQL was stopped. Only such a request may
    // have committed without being told: its commit may have reached the WAL just before the
    // server went away.
    let mut tried: HashMap<usize, (bool, bool)> = HashMap::new();
    for a in answers.iter().filter(|a| a.kind == Kind::Complete) {
        let (ok, cut) = tried.entry(a.who).or_default();
        *ok |= a.ok();
        *cut |= !a.ok() && a.started < stopping;
    }
    let (mut cut_done, mut cut_undone) = (0, 0);
    for (i, token) in tokens.iter().enumerate() {
        let login = format!("b{i}");
        let auth = |password: String| {
            status_of(
                s.http
                    .post(s.url("/v1/default/authenticate"))
                    .json(&json!({"login": login, "password": password})),
            )
        };
        let new = auth(new_password(i)).await;
        let old = auth(OLD.to_owned()).await;
        let token = status_of(s.http.get(s.url(&format!("/v1/default/recovery/{token}")))).await;
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
                     not in flight when PostgreSQL stopped"
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
