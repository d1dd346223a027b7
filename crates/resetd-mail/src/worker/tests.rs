//! The outbox worker against the core's in-memory outbox and manual clock, and a scripted
//! transport.

use std::sync::atomic::{AtomicU32, AtomicUsize};

#[test]
fn error_pauses_double_from_a_quarter_second_up_to_five() {
    let pauses: Vec<u64> = (1..=7).map(|n| error_pause(n).as_millis() as u64).collect();
    assert_eq!(pauses, [250, 500, 1000, 2000, 4000, 5000, 5000]);
    assert_eq!(error_pause(u32::MAX), MAX_ERROR_PAUSE);
}

use async_trait::async_trait;
use resetd_core::model::{MessageKind, OutboxMessage, OutboxStatus};
use resetd_core::testing::{ManualClock, MemoryStore};

use super::*;
use crate::transport::tests::outbox_message;

/// An outbox holding `msgs`, each due at its `next_attempt_at` under its `id` (ids from 1, in
/// order).
fn store_with(msgs: Vec<OutboxMessage>) -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new());
    for m in msgs {
        let id = queue(&store, m.clone());
        assert_eq!(id, m.id, "ids are given in order from 1");
    }
    store
}

/// Queues `m` due at its `next_attempt_at` and returns its id.
fn queue(store: &MemoryStore, m: OutboxMessage) -> i64 {
    // A queued message is due at its creation time.
    let mut message = m.message;
    message.created_at = m.next_attempt_at;
    store.queue_message(&message)
}

async fn stored(store: &MemoryStore, id: i64) -> OutboxMessage {
    store
        .list_outbox(None, None, 1000)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.id == id)
        .unwrap()
}

/// How many times the worker recorded a failed attempt.
fn failures_recorded(store: &MemoryStore) -> usize {
    store
        .calls()
        .iter()
        .filter(|c| **c == "mark_failed")
        .count()
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
    store: Arc<MemoryStore>,
    transport: Arc<FakeTransport>,
    config: WorkerConfig,
) -> (OutboxWorker, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::at(Timestamp(T0)));
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
    let store = store_with(vec![pending(1)]);
    let transport = FakeTransport::new(2, SendError::Transient("421 try later".into()));
    let config = WorkerConfig::default();
    let (w, clock) = worker(store.clone(), transport.clone(), config.clone());

    assert_eq!(w.run_once().await.unwrap(), 0);
    let row = stored(&store, 1).await;
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
    let row = stored(&store, 1).await;
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
    let store = store_with(vec![pending(1)]);
    let transport = FakeTransport::new(u32::MAX, SendError::Permanent("550 no such user".into()));
    let (w, _) = worker(store.clone(), transport.clone(), WorkerConfig::default());
    assert_eq!(w.run_once().await.unwrap(), 0);
    let row = stored(&store, 1).await;
    assert_eq!((row.status, row.attempts), (OutboxStatus::Dead, 1));
    assert_eq!(failures_recorded(&store), 1, "recorded once, as dead");
    assert_eq!(w.stats().dead.load(Ordering::Relaxed), 1);
    assert_eq!(transport.calls.load(Ordering::SeqCst), 1);
}

/// Runs rounds `step_ms` apart until the message is dead or `limit_ms` passed; returns the
/// clock's offset from T0 when it died, and the retry time scheduled by each failed attempt
/// before.
async fn run_until_dead(
    w: &OutboxWorker,
    clock: &ManualClock,
    store: &MemoryStore,
    step_ms: i64,
    limit_ms: i64,
) -> (Option<i64>, Vec<Timestamp>) {
    let mut retries = Vec::new();
    while clock.now().0 - T0 <= limit_ms {
        let recorded = failures_recorded(store);
        w.run_once().await.unwrap();
        let m = stored(store, 1).await;
        if m.status == OutboxStatus::Dead {
            return (Some(clock.now().0 - T0), retries);
        }
        if failures_recorded(store) > recorded {
            retries.push(m.next_attempt_at);
        }
        clock.advance_ms(step_ms);
    }
    (None, retries)
}

#[tokio::test]
async fn a_reset_email_is_retried_until_its_link_expires_then_dead_with_that_reason() {
    // A ten-minute link, SMTP refusing all along: far more than the old 8 attempts, every
    // retry due by the deadline, dead at the deadline with the reason, never sent after it.
    let mut msg = pending(1);
    msg.message.deliver_by = Timestamp(T0 + 600_000);
    let store = store_with(vec![msg]);
    let transport = FakeTransport::new(u32::MAX, SendError::Transient("connection refused".into()));
    let config = WorkerConfig {
        base_backoff_ms: 1000,
        max_backoff_ms: 5000,
        ..Default::default()
    };
    let (w, clock) = worker(store.clone(), transport.clone(), config.clone());
    let (died, retries) = run_until_dead(&w, &clock, &store, 1000, 700_000).await;
    let died = died.expect("dead once the link expired");
    assert!((600_000..=601_000).contains(&died), "dead at +{died} ms");
    let row = stored(&store, 1).await;
    assert_eq!(
        row.last_error.as_deref(),
        Some("link expired; last error: connection refused")
    );
    let calls = transport.calls.load(Ordering::SeqCst);
    assert!(calls >= 100, "retried all along: {calls} attempts");
    assert!(retries.iter().all(|r| r.0 <= T0 + 600_000));
    assert_eq!(
        failures_recorded(&store),
        retries.len() + 1,
        "every failure but the last scheduled a retry; the last marked it dead"
    );
    // Dead stays dead: no attempt later.
    for _ in 0..5 {
        clock.advance_ms(60_000);
        w.run_once().await.unwrap();
    }
    assert_eq!(transport.calls.load(Ordering::SeqCst), calls);
    let stats = w.stats();
    assert_eq!(
        (
            stats.failed.load(Ordering::Relaxed) as u32,
            stats.dead.load(Ordering::Relaxed)
        ),
        (calls, 1)
    );
}

#[tokio::test]
async fn a_notice_is_retried_for_its_whole_window() {
    let mut msg = outbox_message(1, MessageKind::PasswordChanged);
    msg.next_attempt_at = Timestamp(T0 - 1);
    msg.message.deliver_by = Timestamp(T0 + 24 * 3_600_000);
    let store = store_with(vec![msg]);
    let transport = FakeTransport::new(u32::MAX, SendError::Transient("421 busy".into()));
    let config = WorkerConfig {
        max_backoff_ms: 15 * 60_000,
        ..Default::default()
    };
    let (w, clock) = worker(store.clone(), transport.clone(), config);
    let (died, _) = run_until_dead(&w, &clock, &store, 15 * 60_000, 25 * 3_600_000).await;
    let died = died.expect("dead after its window");
    assert!(died >= 24 * 3_600_000, "dead at +{died} ms, before 24 h");
    let reason = stored(&store, 1).await.last_error.unwrap();
    assert_eq!(
        reason,
        "retry window over (mail.worker.notice_retry_secs); last error: 421 busy"
    );
    assert!(transport.calls.load(Ordering::SeqCst) >= 90);
}

#[tokio::test]
async fn an_email_claimed_after_its_link_expired_is_dead_and_not_sent() {
    let mut msg = pending(1);
    msg.message.deliver_by = Timestamp(T0 - 1);
    let store = store_with(vec![msg]);
    let transport = FakeTransport::ok();
    let (w, _) = worker(store.clone(), transport.clone(), WorkerConfig::default());
    assert_eq!(w.run_once().await.unwrap(), 0);
    assert_eq!(transport.calls.load(Ordering::SeqCst), 0, "not sent");
    let row = stored(&store, 1).await;
    assert_eq!(row.status, OutboxStatus::Dead);
    assert_eq!(
        row.last_error.as_deref(),
        Some("link expired before it could be sent")
    );
    assert_eq!(w.stats().dead.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn a_retry_is_never_scheduled_after_the_deadline() {
    let mut msg = pending(1);
    msg.message.deliver_by = Timestamp(T0 + 300);
    let store = store_with(vec![msg]);
    let transport = FakeTransport::new(u32::MAX, SendError::Transient("421".into()));
    let config = WorkerConfig {
        base_backoff_ms: 60_000,
        max_backoff_ms: 60_000,
        ..Default::default()
    };
    let (w, _) = worker(store.clone(), transport, config);
    w.run_once().await.unwrap();
    assert_eq!(failures_recorded(&store), 1);
    let m = stored(&store, 1).await;
    assert_eq!(m.status, OutboxStatus::Pending);
    let retry = m.next_attempt_at;
    assert!(retry.0 <= T0 + 300, "retry at +{} ms", retry.0 - T0);
}

#[test]
fn old_max_attempts_is_accepted_but_reported_and_bad_windows_are_refused() {
    let c: WorkerConfig = serde_json::from_str(r#"{"max_attempts": 8}"#).unwrap();
    assert!(c.validate().is_ok());
    let warnings = c.deprecations();
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].contains("max_attempts = 8 is ignored"),
        "{warnings:?}"
    );
    assert!(WorkerConfig::default().deprecations().is_empty());
    for bad in [
        WorkerConfig {
            notice_retry_secs: 59,
            ..Default::default()
        },
        WorkerConfig {
            max_backoff_ms: 3_600_001,
            ..Default::default()
        },
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
    }
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
    assert_eq!(defaults.backoff_ceiling_ms(30), 60 * 1000);
}

#[tokio::test]
async fn a_batch_is_sent_with_bounded_concurrency() {
    let store = store_with((1..=20).map(pending).collect());
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
    let store = store_with(vec![pending(1)]);
    let mut t = FakeTransport::new(0, SendError::Transient(String::new()));
    Arc::get_mut(&mut t).unwrap().panic = true;
    let (w, _) = worker(store.clone(), t, WorkerConfig::default());
    assert_eq!(w.run_once().await.unwrap(), 0);
    let row = stored(&store, 1).await;
    assert_eq!((row.status, row.attempts), (OutboxStatus::Pending, 1));
    assert_eq!(row.last_error.as_deref(), Some("the transport panicked"));
}

#[tokio::test]
async fn store_errors_are_returned() {
    let store = store_with(vec![pending(1)]);
    store.fail("claim_outbox", StoreError::Backend("down".into()));
    let (w, _) = worker(store, FakeTransport::ok(), WorkerConfig::default());
    assert!(matches!(w.run_once().await, Err(StoreError::Backend(_))));
}

#[tokio::test]
async fn run_wakes_on_notify_and_stops_on_shutdown() {
    let store = store_with(vec![]);
    let transport = FakeTransport::ok();
    let (w, _) = worker(store.clone(), transport.clone(), WorkerConfig::default());
    let stats = w.stats();
    let notify = Arc::new(Notify::new());
    let (stop, stopped) = watch::channel(false);
    let handle = tokio::spawn(w.run(notify.clone(), stopped));

    tokio::time::sleep(Duration::from_millis(50)).await;
    let id = queue(&store, pending(9));
    notify.notify_one();
    let deadline = std::time::Instant::now() + Duration::from_millis(800);
    while stats.sent.load(Ordering::Relaxed) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "a notified worker should send well before its tick"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(stored(&store, id).await.status, OutboxStatus::Sent);

    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(2), handle)
        .await
        .expect("the worker stops")
        .unwrap();
}

#[tokio::test]
async fn run_survives_store_errors() {
    let store = store_with(vec![]);
    store.fail("claim_outbox", StoreError::Backend("down".into()));
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
