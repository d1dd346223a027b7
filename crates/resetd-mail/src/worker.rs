//! The outbox worker: claims due messages, hands them to a [`Transport`], and records the outcome,
//! retrying transient failures with capped exponential backoff and full jitter.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use resetd_core::model::{Clock, Timestamp};
use resetd_core::store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinSet;

use crate::stats::MailStats;
use crate::transport::{SendError, Transport};

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
    /// Attempts before a message is marked dead.
    pub max_attempts: u32,
    /// Backoff ceiling after the first failure; it doubles with each further failure.
    pub base_backoff_ms: u64,
    /// The backoff ceiling never exceeds this.
    pub max_backoff_ms: u64,
    /// Messages sent at the same time.
    pub concurrency: usize,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            batch: 64,
            lease_secs: 60,
            max_attempts: 8,
            base_backoff_ms: 1000,
            max_backoff_ms: 15 * 60 * 1000,
            concurrency: 8,
        }
    }
}

impl WorkerConfig {
    /// Checks the settings; the message names the offending `mail.worker` field.
    pub fn validate(&self) -> Result<(), String> {
        if self.batch == 0 || self.concurrency == 0 || self.max_attempts == 0 {
            return Err(
                "mail.worker.batch, concurrency and max_attempts must be at least 1".into(),
            );
        }
        if !(2..=86_400).contains(&self.lease_secs) {
            return Err("mail.worker.lease_secs must be between 2 and 86400".into());
        }
        if self.base_backoff_ms == 0 || self.base_backoff_ms > self.max_backoff_ms {
            return Err(
                "mail.worker.base_backoff_ms must be at least 1 and at most max_backoff_ms".into(),
            );
        }
        Ok(())
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
}

/// Delivers the outbox. Run one per process; several processes may share one store, as messages
/// are leased when claimed.
pub struct OutboxWorker {
    store: Arc<dyn Store>,
    transport: Arc<dyn Transport>,
    clock: Arc<dyn Clock>,
    config: WorkerConfig,
    stats: Arc<MailStats>,
}

impl OutboxWorker {
    /// A worker over `store`, sending with `transport`, counting into `stats` (share the `Arc` with
    /// the metrics endpoint).
    pub fn new(
        store: Arc<dyn Store>,
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
        let mut claimed: HashMap<tokio::task::Id, (i64, u32)> = HashMap::with_capacity(batch.len());
        for msg in batch {
            let (id, attempts) = (msg.id, msg.attempts);
            let transport = Arc::clone(&self.transport);
            let clock = Arc::clone(&self.clock);
            let limit = Arc::clone(&limit);
            let stats = Arc::clone(&self.stats);
            let handle = tasks.spawn(async move {
                let _permit = limit.acquire_owned().await;
                if clock.now() >= start_deadline {
                    return Outcome::Skipped;
                }
                let started = std::time::Instant::now();
                let outcome = match tokio::time::timeout(send_timeout, transport.send(&msg)).await {
                    Ok(Ok(())) => Outcome::Sent,
                    Ok(Err(e)) => Outcome::Failed(e),
                    Err(_) => Outcome::Failed(SendError::Transient(format!(
                        "the transport did not finish within {} s",
                        send_timeout.as_secs()
                    ))),
                };
                stats.observe_send(started.elapsed(), matches!(outcome, Outcome::Sent));
                outcome
            });
            claimed.insert(handle.id(), (id, attempts));
        }

        let mut sent = 0;
        let mut first_error = None;
        while let Some(joined) = tasks.join_next_with_id().await {
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
            let Some(&(id, attempts)) = claimed.get(&task) else {
                continue;
            };
            match self.record(id, attempts, outcome).await {
                Ok(true) => sent += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(outbox_id = id, error = %e, "recording a delivery outcome failed");
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(sent),
        }
    }

    /// Stores one outcome; `Ok(true)` when the message was marked sent.
    async fn record(&self, id: i64, attempts: u32, outcome: Outcome) -> Result<bool, StoreError> {
        let error = match outcome {
            Outcome::Skipped => {
                tracing::debug!(outbox_id = id, "not sent: the lease was running out");
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
        let attempt = attempts.max(1);
        let reason = truncate(error.reason(), MAX_ERROR_CHARS);
        let give_up = !error.is_transient() || attempt >= self.config.max_attempts;
        if give_up {
            self.store.mark_failed(id, &reason, None).await?;
            self.stats.dead.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(outbox_id = id, attempt, error = %error, "message is dead: not retrying");
        } else {
            let delay = self.config.backoff_ms(attempt, jitter_random());
            let retry_at = Timestamp(
                self.clock
                    .now()
                    .0
                    .saturating_add(delay.min(i64::MAX as u64) as i64),
            );
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
mod tests {
    use std::sync::atomic::{AtomicI64, AtomicU32, AtomicUsize};
    use std::sync::Mutex;

    #[test]
    fn error_pauses_double_from_a_quarter_second_up_to_five() {
        let pauses: Vec<u64> = (1..=7).map(|n| error_pause(n).as_millis() as u64).collect();
        assert_eq!(pauses, [250, 500, 1000, 2000, 4000, 5000, 5000]);
        assert_eq!(error_pause(u32::MAX), MAX_ERROR_PAUSE);
    }

    use async_trait::async_trait;
    use resetd_core::model::{
        ApiKey, AuditEvent, Client, Lookup, MessageKind, NewAudit, NewResetRequest, OutboxMessage,
        OutboxStatus, Person, ResetRequest, ResetToken, Tenant, TenantSettings,
    };
    use resetd_core::secret::SecretHash;
    use resetd_core::store::{IssueToken, LoginStart, PasswordChange, Resolution, Resolved};
    use resetd_core::types::{ClientName, Login, PersonId, TenantId};

    use super::*;
    use crate::transport::tests::outbox_message;

    struct FakeClock(AtomicI64);
    impl Clock for FakeClock {
        fn now(&self) -> Timestamp {
            Timestamp(self.0.load(Ordering::SeqCst))
        }
    }
    impl FakeClock {
        fn advance_ms(&self, ms: i64) {
            self.0.fetch_add(ms, Ordering::SeqCst);
        }
    }

    /// An in-memory outbox; everything else is unused by the worker.
    #[derive(Default)]
    struct FakeStore {
        rows: Mutex<Vec<OutboxMessage>>,
        /// (id, retry_at) of every mark_failed call.
        failures: Mutex<Vec<(i64, Option<Timestamp>)>>,
        fail_claims: std::sync::atomic::AtomicBool,
    }

    impl FakeStore {
        fn with(msgs: Vec<OutboxMessage>) -> Arc<Self> {
            Arc::new(Self {
                rows: Mutex::new(msgs),
                ..Default::default()
            })
        }
        fn row(&self, id: i64) -> OutboxMessage {
            self.rows
                .lock()
                .unwrap()
                .iter()
                .find(|m| m.id == id)
                .unwrap()
                .clone()
        }
        fn push(&self, m: OutboxMessage) {
            self.rows.lock().unwrap().push(m);
        }
    }

    #[async_trait]
    impl Store for FakeStore {
        async fn claim_outbox(
            &self,
            now: Timestamp,
            lease_until: Timestamp,
            limit: u32,
        ) -> Result<Vec<OutboxMessage>, StoreError> {
            if self.fail_claims.load(Ordering::SeqCst) {
                return Err(StoreError::Backend("down".into()));
            }
            let mut rows = self.rows.lock().unwrap();
            let mut out = Vec::new();
            for m in rows.iter_mut() {
                if out.len() < limit as usize
                    && m.status == OutboxStatus::Pending
                    && m.next_attempt_at <= now
                {
                    m.next_attempt_at = lease_until;
                    m.attempts += 1;
                    out.push(m.clone());
                }
            }
            Ok(out)
        }
        async fn mark_sent(&self, id: i64, at: Timestamp) -> Result<(), StoreError> {
            let mut rows = self.rows.lock().unwrap();
            let m = rows
                .iter_mut()
                .find(|m| m.id == id)
                .ok_or(StoreError::NotFound)?;
            m.status = OutboxStatus::Sent;
            m.sent_at = Some(at);
            Ok(())
        }
        async fn mark_failed(
            &self,
            id: i64,
            error: &str,
            retry_at: Option<Timestamp>,
        ) -> Result<(), StoreError> {
            let mut rows = self.rows.lock().unwrap();
            let m = rows
                .iter_mut()
                .find(|m| m.id == id)
                .ok_or(StoreError::NotFound)?;
            m.last_error = Some(error.to_owned());
            match retry_at {
                Some(t) => m.next_attempt_at = t,
                None => m.status = OutboxStatus::Dead,
            }
            self.failures.lock().unwrap().push((id, retry_at));
            Ok(())
        }

        async fn migrate(&self) -> Result<(), StoreError> {
            unimplemented!()
        }
        async fn ping(&self) -> Result<(), StoreError> {
            unimplemented!()
        }
        async fn create_tenant(&self, _: &Tenant) -> Result<(), StoreError> {
            unimplemented!()
        }
        async fn get_tenant(&self, _: &TenantId) -> Result<Option<Tenant>, StoreError> {
            unimplemented!()
        }
        async fn update_tenant_settings(
            &self,
            _: &TenantId,
            _: &TenantSettings,
        ) -> Result<(), StoreError> {
            unimplemented!()
        }
        async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
            unimplemented!()
        }
        async fn insert_person(&self, _: &Person, _: NewAudit) -> Result<i64, StoreError> {
            unimplemented!()
        }
        async fn get_person(
            &self,
            _: &TenantId,
            _: &PersonId,
        ) -> Result<Option<Person>, StoreError> {
            unimplemented!()
        }
        async fn find_person(
            &self,
            _: &TenantId,
            _: &Lookup,
        ) -> Result<Option<Person>, StoreError> {
            unimplemented!()
        }
        async fn update_person(&self, _: &Person, _: NewAudit) -> Result<(), StoreError> {
            unimplemented!()
        }
        async fn upsert_people(&self, _: &[Person], _: NewAudit) -> Result<Vec<bool>, StoreError> {
            unimplemented!()
        }
        async fn insert_api_key(
            &self,
            _: &ApiKey,
            _: SecretHash,
            _: Option<NewAudit>,
        ) -> Result<(), StoreError> {
            unimplemented!()
        }
        async fn find_api_key(&self, _: SecretHash) -> Result<Option<ApiKey>, StoreError> {
            unimplemented!()
        }
        async fn upsert_client(&self, _: &Client, _: NewAudit) -> Result<(), StoreError> {
            unimplemented!()
        }
        async fn get_client(
            &self,
            _: &TenantId,
            _: &ClientName,
        ) -> Result<Option<Client>, StoreError> {
            unimplemented!()
        }
        async fn list_clients(&self, _: &TenantId) -> Result<Vec<Client>, StoreError> {
            unimplemented!()
        }
        async fn insert_reset_request(&self, _: &NewResetRequest) -> Result<i64, StoreError> {
            unimplemented!()
        }
        async fn claim_reset_requests(
            &self,
            _: Timestamp,
            _: Timestamp,
            _: u32,
        ) -> Result<Vec<ResetRequest>, StoreError> {
            unimplemented!()
        }
        async fn resolve_reset_request(
            &self,
            _: i64,
            _: Resolution,
        ) -> Result<Resolved, StoreError> {
            unimplemented!()
        }
        async fn issue_token(&self, _: IssueToken) -> Result<Resolved, StoreError> {
            unimplemented!()
        }
        async fn void_token(
            &self,
            _: &TenantId,
            _: SecretHash,
            _: Timestamp,
            _: NewAudit,
        ) -> Result<bool, StoreError> {
            unimplemented!()
        }
        async fn find_token(&self, _: SecretHash) -> Result<Option<ResetToken>, StoreError> {
            unimplemented!()
        }
        async fn change_password(&self, _: PasswordChange) -> Result<(), StoreError> {
            unimplemented!()
        }
        async fn password_history(
            &self,
            _: &TenantId,
            _: &PersonId,
            _: u32,
        ) -> Result<Vec<String>, StoreError> {
            unimplemented!()
        }
        async fn begin_login(
            &self,
            _: &TenantId,
            _: &Login,
            _: u32,
            _: Timestamp,
            _: Timestamp,
        ) -> Result<LoginStart, StoreError> {
            unimplemented!()
        }
        async fn record_login_success(
            &self,
            _: &TenantId,
            _: &Login,
            _: &PersonId,
            _: Option<String>,
        ) -> Result<(), StoreError> {
            unimplemented!()
        }
        async fn unlock(&self, _: &TenantId, _: &PersonId, _: NewAudit) -> Result<(), StoreError> {
            unimplemented!()
        }
        async fn append_audit(&self, _: NewAudit) -> Result<(), StoreError> {
            unimplemented!()
        }
        async fn list_audit(
            &self,
            _: &TenantId,
            _: Option<i64>,
            _: u32,
        ) -> Result<Vec<AuditEvent>, StoreError> {
            unimplemented!()
        }
        async fn list_outbox(
            &self,
            _: Option<&TenantId>,
            _: Option<OutboxStatus>,
            _: u32,
        ) -> Result<Vec<OutboxMessage>, StoreError> {
            unimplemented!()
        }
        async fn retry_outbox(
            &self,
            _: Option<&TenantId>,
            _: i64,
            _: Timestamp,
        ) -> Result<TenantId, StoreError> {
            unimplemented!()
        }
        async fn outbox_counts(&self) -> Result<Vec<(OutboxStatus, u64)>, StoreError> {
            unimplemented!()
        }
    }

    /// Fails the first `failures` calls with `error`, then succeeds; tracks calls and concurrency.
    struct FakeTransport {
        failures: u32,
        error: SendError,
        calls: AtomicU32,
        in_flight: AtomicUsize,
        max_in_flight: AtomicUsize,
        panic: bool,
    }

    impl FakeTransport {
        fn new(failures: u32, error: SendError) -> Arc<Self> {
            Arc::new(Self {
                failures,
                error,
                calls: AtomicU32::new(0),
                in_flight: AtomicUsize::new(0),
                max_in_flight: AtomicUsize::new(0),
                panic: false,
            })
        }
        fn ok() -> Arc<Self> {
            Self::new(0, SendError::Transient(String::new()))
        }
    }

    #[async_trait]
    impl Transport for FakeTransport {
        async fn send(&self, _msg: &OutboxMessage) -> Result<(), SendError> {
            if self.panic {
                panic!("fake transport panics on purpose");
            }
            let n = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(n, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(5)).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            let call = self.calls.fetch_add(1, Ordering::SeqCst);
            if call < self.failures {
                Err(self.error.clone())
            } else {
                Ok(())
            }
        }
    }

    const T0: i64 = 1_700_000_000_000;

    fn worker(
        store: Arc<FakeStore>,
        transport: Arc<FakeTransport>,
        config: WorkerConfig,
    ) -> (OutboxWorker, Arc<FakeClock>) {
        let clock = Arc::new(FakeClock(AtomicI64::new(T0)));
        (
            OutboxWorker::new(
                store,
                transport,
                clock.clone(),
                config,
                Arc::new(MailStats::default()),
            ),
            clock,
        )
    }

    fn pending(id: i64) -> OutboxMessage {
        let mut m = outbox_message(id, MessageKind::ResetLink);
        m.next_attempt_at = Timestamp(T0 - 1);
        m
    }

    #[tokio::test]
    async fn transient_failures_then_success_is_sent() {
        let store = FakeStore::with(vec![pending(1)]);
        let transport = FakeTransport::new(2, SendError::Transient("421 try later".into()));
        let config = WorkerConfig::default();
        let (w, clock) = worker(store.clone(), transport.clone(), config.clone());

        assert_eq!(w.run_once().await.unwrap(), 0);
        let row = store.row(1);
        assert_eq!((row.status, row.attempts), (OutboxStatus::Pending, 1));
        assert_eq!(row.last_error.as_deref(), Some("421 try later"));
        let first_retry = row.next_attempt_at.0 - T0;
        assert!(
            (0..=config.backoff_ceiling_ms(1) as i64).contains(&first_retry),
            "{first_retry}"
        );
        // Not due again before its retry time.
        assert_eq!(w.run_once().await.unwrap(), 0);
        assert_eq!(
            transport.calls.load(Ordering::SeqCst),
            1 + u32::from(first_retry == 0)
        );

        for _ in 0..5 {
            clock.advance_ms(config.max_backoff_ms as i64 + 1);
            w.run_once().await.unwrap();
        }
        let row = store.row(1);
        assert_eq!(row.status, OutboxStatus::Sent);
        assert_eq!(
            row.attempts, 3,
            "every leased attempt counts, the successful one too"
        );
        assert!(row.sent_at.is_some());
        assert_eq!(transport.calls.load(Ordering::SeqCst), 3);
        let stats = w.stats();
        assert_eq!(stats.sent.load(Ordering::Relaxed), 1);
        assert_eq!(stats.failed.load(Ordering::Relaxed), 2);
        assert_eq!(stats.dead.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn permanent_failure_is_dead_at_once() {
        let store = FakeStore::with(vec![pending(1)]);
        let transport =
            FakeTransport::new(u32::MAX, SendError::Permanent("550 no such user".into()));
        let (w, _) = worker(store.clone(), transport.clone(), WorkerConfig::default());
        assert_eq!(w.run_once().await.unwrap(), 0);
        let row = store.row(1);
        assert_eq!((row.status, row.attempts), (OutboxStatus::Dead, 1));
        assert_eq!(*store.failures.lock().unwrap(), vec![(1, None)]);
        assert_eq!(w.stats().dead.load(Ordering::Relaxed), 1);
        assert_eq!(transport.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn always_transient_is_dead_after_max_attempts_and_backoff_grows_capped() {
        let store = FakeStore::with(vec![pending(1)]);
        let transport =
            FakeTransport::new(u32::MAX, SendError::Transient("connection refused".into()));
        let config = WorkerConfig {
            max_attempts: 6,
            base_backoff_ms: 1000,
            max_backoff_ms: 5000,
            ..Default::default()
        };
        let (w, clock) = worker(store.clone(), transport.clone(), config.clone());
        for _ in 0..10 {
            w.run_once().await.unwrap();
            clock.advance_ms(config.max_backoff_ms as i64 + 1);
        }
        assert_eq!(transport.calls.load(Ordering::SeqCst), 6);
        let row = store.row(1);
        assert_eq!((row.status, row.attempts), (OutboxStatus::Dead, 6));
        let failures = store.failures.lock().unwrap().clone();
        assert_eq!(failures.len(), 6);
        assert!(failures[..5].iter().all(|(_, r)| r.is_some()));
        assert_eq!(failures[5].1, None);
        let stats = w.stats();
        assert_eq!(
            (
                stats.failed.load(Ordering::Relaxed),
                stats.dead.load(Ordering::Relaxed)
            ),
            (5, 1)
        );
    }

    #[test]
    fn backoff_grows_exponentially_and_is_capped() {
        let c = WorkerConfig {
            base_backoff_ms: 1000,
            max_backoff_ms: 10_000,
            ..Default::default()
        };
        let ceilings: Vec<u64> = (1..=7).map(|a| c.backoff_ceiling_ms(a)).collect();
        assert_eq!(
            ceilings,
            vec![1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]
        );
        assert_eq!(c.backoff_ceiling_ms(0), 1000);
        assert_eq!(c.backoff_ceiling_ms(u32::MAX), 10_000);
        // Full jitter: anywhere from 0 to the ceiling, never above.
        assert_eq!(c.backoff_ms(3, 0), 0);
        assert_eq!(c.backoff_ms(3, 4000), 4000);
        assert_eq!(c.backoff_ms(3, 4001), 0);
        for _ in 0..1000 {
            let d = c.backoff_ms(4, jitter_random());
            assert!(d <= 8000);
        }
        let spread: std::collections::HashSet<u64> =
            (0..100).map(|_| c.backoff_ms(7, jitter_random())).collect();
        assert!(spread.len() > 50, "jitter should spread retries");
        let defaults = WorkerConfig::default();
        assert_eq!(defaults.backoff_ceiling_ms(1), 1000);
        assert_eq!(defaults.backoff_ceiling_ms(30), 15 * 60 * 1000);
    }

    #[tokio::test]
    async fn a_batch_is_sent_with_bounded_concurrency() {
        let store = FakeStore::with((1..=20).map(pending).collect());
        let transport = FakeTransport::ok();
        let config = WorkerConfig {
            batch: 16,
            concurrency: 4,
            ..Default::default()
        };
        let (w, _) = worker(store.clone(), transport.clone(), config);
        assert_eq!(w.run_once().await.unwrap(), 16);
        assert_eq!(w.run_once().await.unwrap(), 4);
        assert_eq!(w.run_once().await.unwrap(), 0);
        let max = transport.max_in_flight.load(Ordering::SeqCst);
        assert!((2..=4).contains(&max), "{max}");
    }

    #[tokio::test]
    async fn a_panicking_transport_counts_as_a_transient_failure() {
        let store = FakeStore::with(vec![pending(1)]);
        let mut t = FakeTransport::new(0, SendError::Transient(String::new()));
        Arc::get_mut(&mut t).unwrap().panic = true;
        let (w, _) = worker(store.clone(), t, WorkerConfig::default());
        assert_eq!(w.run_once().await.unwrap(), 0);
        let row = store.row(1);
        assert_eq!((row.status, row.attempts), (OutboxStatus::Pending, 1));
        assert_eq!(row.last_error.as_deref(), Some("the transport panicked"));
    }

    #[tokio::test]
    async fn store_errors_are_returned() {
        let store = FakeStore::with(vec![pending(1)]);
        store.fail_claims.store(true, Ordering::SeqCst);
        let (w, _) = worker(store, FakeTransport::ok(), WorkerConfig::default());
        assert!(matches!(w.run_once().await, Err(StoreError::Backend(_))));
    }

    #[tokio::test]
    async fn run_wakes_on_notify_and_stops_on_shutdown() {
        let store = FakeStore::with(vec![]);
        let transport = FakeTransport::ok();
        let (w, _) = worker(store.clone(), transport.clone(), WorkerConfig::default());
        let stats = w.stats();
        let notify = Arc::new(Notify::new());
        let (stop, stopped) = watch::channel(false);
        let handle = tokio::spawn(w.run(notify.clone(), stopped));

        tokio::time::sleep(Duration::from_millis(50)).await;
        store.push(pending(9));
        notify.notify_one();
        let deadline = std::time::Instant::now() + Duration::from_millis(800);
        while stats.sent.load(Ordering::Relaxed) == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "a notified worker should send well before its tick"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(store.row(9).status, OutboxStatus::Sent);

        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(2), handle)
            .await
            .expect("the worker stops")
            .unwrap();
    }

    #[tokio::test]
    async fn run_survives_store_errors() {
        let store = FakeStore::with(vec![]);
        store.fail_claims.store(true, Ordering::SeqCst);
        let (w, _) = worker(store, FakeTransport::ok(), WorkerConfig::default());
        let (stop, stopped) = watch::channel(false);
        let handle = tokio::spawn(w.run(Arc::new(Notify::new()), stopped));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!handle.is_finished());
        drop(stop);
        tokio::time::timeout(Duration::from_secs(2), handle)
            .await
            .expect("the worker stops")
            .unwrap();
    }

    #[test]
    fn long_errors_are_truncated() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("äbcdef", 3), "äbc…");
    }
}
