//! The retention worker: the policy applied every interval, a small batch of each kind at a
//! time, paced so that a large backlog of expired rows never holds the store's writer for long.

use std::sync::Arc;
use std::time::{Duration, Instant};

use resetd_core::ports::{Purged, RetentionPolicy};
use resetd_core::Service;
use tokio::sync::watch;

/// Rows of each kind per batch. A batch is one write on the store's writer, which every request
/// that writes waits behind: at 1,000 rows of each kind, a purge of a 10,000,000-row backlog held
/// it for tens of milliseconds a batch and the requests of its first minute reached a p99 of
/// 1.4 s (docs/performance.md, "Third pass").
const BATCH: u32 = 250;

/// After a full batch the worker waits this many times as long as the batch took (and at least
/// [`MIN_PAUSE`]), so it has the writer for at most a fifth of the time while it catches up.
const PAUSE_FACTOR: u32 = 4;
const MIN_PAUSE: Duration = Duration::from_millis(50);

/// How long to wait after a full batch that took `took`.
fn pause_after(took: Duration) -> Duration {
    (took * PAUSE_FACTOR).max(MIN_PAUSE)
}

/// Applies the retention policy every `every`: batches until one is not full, each followed by
/// [`pause_after`] its duration.
pub async fn run_retention_worker(
    service: Arc<Service>,
    policy: RetentionPolicy,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let mut total = Purged::default();
        loop {
            let started = Instant::now();
            match service.purge_expired(&policy, BATCH).await {
                Ok(p) => {
                    let full = p.filled(BATCH);
                    total += p;
                    if !full {
                        break;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "applying the retention policy failed");
                    break;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(pause_after(started.elapsed())) => {}
                _ = shutdown.changed() => return,
            }
        }
        if total.total() > 0 {
            tracing::info!(
                tokens = total.tokens,
                messages = total.messages,
                audit_events = total.audit_events,
                "expired records deleted"
            );
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_batch_is_followed_by_four_times_its_duration_and_a_quick_one_by_the_minimum() {
        assert_eq!(pause_after(Duration::from_millis(1)), MIN_PAUSE);
        assert_eq!(pause_after(Duration::from_millis(12)), MIN_PAUSE);
        assert_eq!(
            pause_after(Duration::from_millis(30)),
            Duration::from_millis(120)
        );
        // The worker's share of the time: a batch, then four times as long idle.
        let took = Duration::from_millis(80);
        let share = took.as_secs_f64() / (took + pause_after(took)).as_secs_f64();
        assert!((share - 0.2).abs() < 1e-9, "{share}");
    }
}
