//! The outbox worker: claims due messages, hands them to a [`Transport`], and records the outcome,
//! retrying transient failures with capped exponential backoff and full jitter.
//!
//! The retry budget is a time, not a number of attempts: a message is retried until its
//! `deliver_by` (a reset link's expiry, or the end of a notice's retry window, set when it was
//! queued), so an SMTP outage shorter than that loses nothing, and an email whose link has expired
//! is marked dead instead of being sent. Only a permanent refusal (5xx) ends it sooner.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use resetd_core::model::{Clock, MessageKind, OutboxMessage, Timestamp};
use resetd_core::ports::{Outbox, StoreError};
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinSet;

use crate::stats::MailStats;
use crate::transport::{SendError, Transport};
use tracing::Instrument;

/// How long an idle worker waits for a notification before looking again.
const IDLE_TICK: Duration = Duration::from_secs(1);
/// The worker's pause after a first store error; it doubles with each further one in a row.
const FIRST_ERROR_PAUSE: Duration = Duration::from_millis(250);
/// The longest pause after store errors.
const MAX_ERROR_PAUSE: Duration = Duration::from_secs(5);

/// The pause after `failures` store errors in a row (1 or more): short at first, so that mail
/// queued before a brief database outage goes out soon after it ends, then up to 5 s.
fn error_pause(failures: u32) -> Duration {
    let doubled = FIRST_ERROR_PAUSE.saturating_mul(1 << failures.saturating_sub(1).min(8));
    doubled.min(MAX_ERROR_PAUSE)
}
/// The longest failure reason stored in the outbox.
const MAX_ERROR_CHARS: usize = 500;

/// Tuning of the outbox worker. Every field has a default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    /// Messages claimed per round.
    pub batch: u32,
    /// How long a claimed message stays reserved for this worker. A send is started only while at
    /// least half of the lease is left, and is given at most half the lease to finish.
    pub lease_secs: u64,
    /// Backoff ceiling after the first failure; it doubles with each further failure.
    pub base_backoff_ms: u64,
    /// The backoff ceiling never exceeds this. It bounds how long mail waits after an outage
    /// ends: every waiting message is retried within this time of SMTP coming back.
    pub max_backoff_ms: u64,
    /// Messages sent at the same time.
    pub concurrency: usize,
    /// How long a "password changed" notice is retried before it is dead, in seconds (a reset
    /// email is retried until its link expires). Applied when a notice is queued.
    pub notice_retry_secs: u64,
    /// Removed: the retry budget is now a time (see `notice_retry_secs`). Still read so that
    /// older configuration files load; [`WorkerConfig::deprecations`] says it is ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
}

/// The default backoff cap: a minute, so mail goes out within about a minute of an outage ending.
pub const DEFAULT_MAX_BACKOFF_MS: u64 = 60 * 1000;

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            batch: 64,
            lease_secs: 60,
            base_backoff_ms: 1000,
            max_backoff_ms: DEFAULT_MAX_BACKOFF_MS,
            concurrency: 8,
            notice_retry_secs: 24 * 3600,
            max_attempts: None,
        }
    }
}

impl WorkerConfig {
    /// Checks the settings; the message names the offending `mail.worker` field.
    pub fn validate(&self) -> Result<(), String> {
        if self.batch == 0 || self.concurrency == 0 {
            return Err("mail.worker.batch and concurrency must be at least 1".into());
        }
        if !(2..=86_400).contains(&self.lease_secs) {
            return Err("mail.worker.lease_secs must be between 2 and 86400".into());
        }
        if self.base_backoff_ms == 0 || self.base_backoff_ms > self.max_backoff_ms {
            return Err(
                "mail.worker.base_backoff_ms must be at least 1 and at most max_backoff_ms".into(),
            );
        }
        if self.max_backoff_ms > 3_600_000 {
            return Err("mail.worker.max_backoff_ms must be at most 3600000 (an hour)".into());
        }
        if !(60..=30 * 86_400).contains(&self.notice_retry_secs) {
            return Err(
                "mail.worker.notice_retry_secs must be between 60 and 2592000 (30 days)".into(),
            );
        }
        Ok(())
    }

    /// Warnings about settings that are accepted but no longer do anything.
    pub fn deprecations(&self) -> Vec<String> {
        self.max_attempts
            .map(|n| {
                format!(
                    "mail.worker.max_attempts = {n} is ignored and can be removed: a message is now \
                     retried until its deadline (a reset email until its link expires, a notice \
                     for mail.worker.notice_retry_secs), not a number of times"
                )
            })
            .into_iter()
            .collect()
    }

    /// The backoff ceiling after failed attempt number `attempt` (1 for the first):
    /// `base_backoff_ms * 2^(attempt-1)`, capped at `max_backoff_ms`.
    pub fn backoff_ceiling_ms(&self, attempt: u32) -> u64 {
        let exp = attempt.saturating_sub(1).min(63);
        self.base_backoff_ms
            .saturating_mul(1u64 << exp)
            .min(self.max_backoff_ms)
    }

    /// The delay before retrying after failed attempt `attempt`, with full jitter: uniform in
    /// `0..=backoff_ceiling_ms(attempt)`, chosen by `random`.
    pub fn backoff_ms(&self, attempt: u32, random: u64) -> u64 {
        let ceiling = self.backoff_ceiling_ms(attempt);
        random % ceiling.saturating_add(1)
    }
}

/// What happened to one claimed message.
enum Outcome {
    Sent,
    Failed(SendError),
    /// Not attempted because the lease was running out; it is claimed again when the lease ends.
    Skipped,
    /// Not attempted because its `deliver_by` has passed.
    Expired,
}

/// Why a message whose deadline passed is dead, with the last failure when there was one.
fn expiry_reason(msg: &OutboxMessage) -> String {
    let what = match msg.message.kind {
        MessageKind::ResetLink => "link expired",
        MessageKind::PasswordChanged => "retry window over (mail.worker.notice_retry_secs)",
    };
    match &msg.last_error {
        Some(e) => format!("{what}; last error: {e}"),
        None => format!("{what} before it could be sent"),
    }
}

/// What the worker keeps of a claimed message while it is being sent.
struct Claimed {
    id: i64,
    attempts: u32,
    deliver_by: Timestamp,
    /// The reason recorded if it turns out to be past its deadline.
    expired: String,
}

/// Delivers the outbox. Run one per process; several processes may share one store, as messages
/// are leased when claimed.
pub struct OutboxWorker {
    store: Arc<dyn Outbox>,
    transport: Arc<dyn Transport>,
    clock: Arc<dyn Clock>,
    config: WorkerConfig,
    stats: Arc<MailStats>,
}

impl OutboxWorker {
    /// A worker over the outbox in `store`, sending with `transport`, counting into `stats` (share the `Arc` with
    /// the metrics endpoint).
    pub fn new(
        store: Arc<dyn Outbox>,
        transport: Arc<dyn Transport>,
        clock: Arc<dyn Clock>,
        config: WorkerConfig,
        stats: Arc<MailStats>,
    ) -> Self {
        Self {
            store,
            transport,
            clock,
            config,
            stats,
        }
    }

    /// The worker's counters.
    pub fn stats(&self) -> Arc<MailStats> {
        Arc::clone(&self.stats)
    }

    /// The worker's configuration.
    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    /// One round: claims up to `batch` due messages, sends them (up to `concurrency` at once) and
    /// records each outcome. Returns how many were sent. Fails only when the claim fails or when
    /// recording an outcome failed (the other outcomes are still recorded; an unrecorded send is
    /// sent again after its lease, an unrecorded failure retried).
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let lease_secs = self.config.lease_secs.clamp(2, 86_400);
        let lease_until = now.plus_secs(lease_secs as i64);
        let send_timeout = Duration::from_secs(lease_secs / 2);
        let start_deadline = lease_until.plus_secs(-((lease_secs / 2) as i64));
        let batch = self
            .store
            .claim_outbox(now, lease_until, self.config.batch.max(1))
            .await?;
        if batch.is_empty() {
            return Ok(0);
        }
        tracing::debug!(claimed = batch.len(), "outbox batch claimed");

        let limit = Arc::new(Semaphore::new(self.config.concurrency.max(1)));
        let mut tasks = JoinSet::new();
        let mut claimed: HashMap<tokio::task::Id, Claimed> = HashMap::with_capacity(batch.len());
        for msg in batch {
            let facts = Claimed {
                id: msg.id,
                attempts: msg.attempts,
                deliver_by: msg.message.deliver_by,
                expired: expiry_reason(&msg),
            };
            let transport = Arc::clone(&self.transport);
            let clock = Arc::clone(&self.clock);
            let limit = Arc::clone(&limit);
            let stats = Arc::clone(&self.stats);
            // The trace of one delivery (DEBUG: built only when traces are on); the SMTP
            // exchange is its child.
            let span = tracing::debug_span!(
                "outbox.deliver",
                outbox.id = msg.id,
                email.kind = msg.message.kind.as_str(),
            );
            let handle = tasks.spawn(
                async move {
                    let _permit = limit.acquire_owned().await;
                    let now = clock.now();
                    if now >= msg.message.deliver_by {
                        return Outcome::Expired;
                    }
                    if now >= start_deadline {
                        return Outcome::Skipped;
                    }
                    let started = std::time::Instant::now();
                    let outcome =
                        match tokio::time::timeout(send_timeout, transport.send(&msg)).await {
                            Ok(Ok(())) => Outcome::Sent,
                            Ok(Err(e)) => Outcome::Failed(e),
                            Err(_) => Outcome::Failed(SendError::Transient(format!(
                                "the transport did not finish within {} s",
                                send_timeout.as_secs()
                            ))),
                        };
                    stats.observe_send(started.elapsed(), matches!(outcome, Outcome::Sent));
                    outcome
                }
                .instrument(span),
            );
            claimed.insert(handle.id(), facts);
        }

        // Each outcome is recorded as soon as its send ends, and the records run concurrently: the
        // store then commits a batch's outcomes together (SQLite's writer puts concurrent writes
        // in one transaction) instead of one commit after another.
        let mut records = FuturesUnordered::new();
        let mut sent = 0;
        let mut first_error = None;
        loop {
            tokio::select! {
                Some(joined) = tasks.join_next_with_id() => {
                    let (task, outcome) = match joined {
                        Ok((task, outcome)) => (task, outcome),
                        Err(e) => {
                            let reason = if e.is_panic() {
                                "the transport panicked"
                            } else {
                                "the send was cancelled"
                            };
                            (e.id(), Outcome::Failed(SendError::Transient(reason.into())))
                        }
                    };
                    if let Some(facts) = claimed.remove(&task) {
                        records.push(self.record(facts, outcome));
                    }
                }
                Some((id, recorded)) = records.next() => match recorded {
                    Ok(true) => sent += 1,
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!(outbox_id = id, error = %e, "recording a delivery outcome failed");
                        first_error.get_or_insert(e);
                    }
                },
                else => break,
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(sent),
        }
    }

    /// Stores one outcome; `Ok(true)` when the message was marked sent. Returns the message's id
    /// beside the result.
    async fn record(&self, facts: Claimed, outcome: Outcome) -> (i64, Result<bool, StoreError>) {
        (facts.id, self.record_outcome(&facts, outcome).await)
    }

    async fn record_outcome(&self, facts: &Claimed, outcome: Outcome) -> Result<bool, StoreError> {
        let id = facts.id;
        let error = match outcome {
            Outcome::Skipped => {
                tracing::debug!(outbox_id = id, "not sent: the lease was running out");
                return Ok(false);
            }
            Outcome::Expired => {
                let reason = truncate(&facts.expired, MAX_ERROR_CHARS);
                self.store.mark_failed(id, &reason, None).await?;
                self.stats.dead.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(outbox_id = id, reason = %reason, "message is dead: its delivery deadline passed");
                return Ok(false);
            }
            Outcome::Sent => {
                self.store.mark_sent(id, self.clock.now()).await?;
                self.stats.sent.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(outbox_id = id, "message sent");
                return Ok(true);
            }
            Outcome::Failed(e) => e,
        };
        // The store counts an attempt when it leases the message (so a worker that crashes while
        // sending still uses one up): `attempts` already includes this one.
        let attempt = facts.attempts.max(1);
        let reason = truncate(error.reason(), MAX_ERROR_CHARS);
        if !error.is_transient() {
            self.store.mark_failed(id, &reason, None).await?;
            self.stats.dead.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(outbox_id = id, attempt, error = %error, "message is dead: not retrying");
        } else {
            let delay = self.config.backoff_ms(attempt, jitter_random());
            // Never later than the deadline: the claim then finds it expired and marks it dead,
            // so a message dies when its link does, not up to a backoff later.
            let retry_at = Timestamp(
                self.clock
                    .now()
                    .0
                    .saturating_add(delay.min(i64::MAX as u64) as i64),
            )
            .min(facts.deliver_by);
            self.store.mark_failed(id, &reason, Some(retry_at)).await?;
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(outbox_id = id, attempt, retry_in_ms = delay, error = %error, "sending failed; will retry");
        }
        Ok(false)
    }

    /// Runs until `shutdown` becomes `true` (or its sender is dropped): a round whenever messages
    /// may be due, and when a round sent nothing, waits for `notify` (poke it after queueing a
    /// message), a one-second tick or shutdown. Store errors are logged and retried after a pause.
    pub async fn run(self, notify: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        tracing::info!(
            batch = self.config.batch,
            concurrency = self.config.concurrency,
            "outbox worker started"
        );
        let mut failures = 0;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let (pause, wake_on_notify) = match self.run_once().await {
                Ok(0) => {
                    failures = 0;
                    (IDLE_TICK, true)
                }
                Ok(_) => {
                    failures = 0;
                    continue;
                }
                Err(e) => {
                    failures += 1;
                    let pause = error_pause(failures);
                    if matches!(e, StoreError::Unavailable(_)) {
                        tracing::warn!(error = %e, pause_ms = pause.as_millis() as u64, "outbox round failed: database unavailable; pausing");
                    } else {
                        tracing::error!(error = %e, pause_ms = pause.as_millis() as u64, "outbox round failed; pausing");
                    }
                    (pause, false)
                }
            };
            tokio::select! {
                _ = notify.notified(), if wake_on_notify => {}
                _ = tokio::time::sleep(pause) => {}
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
            }
        }
        tracing::info!("outbox worker stopped");
    }
}

/// A random number for jitter (not for secrets): SipHash with a per-process random key over a
/// counter.
fn jitter_random() -> u64 {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(SEQ.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests;
