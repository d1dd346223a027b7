//! The load the restart tests keep up: six clients requesting resets, completing resets,
//! creating people and logging in, and every answer they got.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{new_password, COMPLETERS, OLD, REQUESTERS, RESERVE};

/// The kinds of request in the load, with the status that means success.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Kind {
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
    pub(super) const ALL: [Kind; 4] = [Kind::Request, Kind::Complete, Kind::Create, Kind::Login];

    pub(super) fn success(self) -> u16 {
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
pub(super) struct Answer {
    pub(super) kind: Kind,
    pub(super) who: usize,
    /// The status, or the transport error (a dropped connection or a client time-out).
    pub(super) status: Result<u16, String>,
    pub(super) retry_after: Option<String>,
    pub(super) content_type: Option<String>,
    pub(super) started: Instant,
    pub(super) ended: Instant,
}

impl Answer {
    pub(super) fn ok(&self) -> bool {
        self.status == Ok(self.kind.success())
    }
}

/// The load's shared state: what to do next and everything answered so far.
pub(super) struct Load {
    pub(super) base: String,
    pub(super) key: String,
    pub(super) tokens: Vec<String>,
    pub(super) next_job: AtomicUsize,
    pub(super) next_request: AtomicUsize,
    pub(super) next_complete: AtomicUsize,
    pub(super) next_create: AtomicUsize,
    /// Set once PostgreSQL is up again: the reserve may be used.
    pub(super) back: AtomicBool,
    pub(super) stop: AtomicBool,
    pub(super) answers: Mutex<Vec<Answer>>,
}

impl Load {
    /// The next request: the four kinds in turn; a login once requesters or completers run out
    /// (those of the reserve only count once PostgreSQL is back).
    pub(super) fn pick(&self) -> (Kind, usize) {
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

    pub(super) async fn send(&self, http: &reqwest::Client, kind: Kind, who: usize) -> Answer {
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
pub(super) async fn client(load: Arc<Load>) {
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
pub(super) fn histogram<'a>(answers: impl Iterator<Item = &'a Answer>) -> BTreeMap<String, usize> {
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
