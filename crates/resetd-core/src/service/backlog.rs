//! The bound on accepted "forgot password" requests that wait to be resolved.
//!
//! A request is answered before its account is looked up, so under a flood the answers can run
//! ahead of the resolution without limit: the queue (a table) grows and real people's requests
//! wait behind an attacker's. The backlog counts what waits; past its cap a new request is
//! refused at once with `Overloaded` (503 + `Retry-After` on every surface). The refusal is made
//! before anything depends on the account, so it is the same for known and unknown accounts.
//!
//! The count is this process's estimate: the worker sets it from the store (which sees every
//! instance's requests) whenever it has drained what it claimed, arrivals add to it and
//! resolutions take from it in between. Several instances on one database each hold the cap
//! against the shared queue, to within the arrivals of one worker round.

use std::sync::atomic::{AtomicU64, Ordering};

/// The default cap: at the measured resolution rate (thousands a second) a full queue drains in
/// well under a minute, and a row is a few hundred bytes, so the table stays in the tens of MB.
pub const DEFAULT_RESET_QUEUE_CAP: u64 = 100_000;

/// The waiting-request count, its cap, and how many requests the cap refused.
#[derive(Debug)]
pub struct ResetBacklog {
    cap: u64,
    depth: AtomicU64,
    refused: AtomicU64,
}

impl ResetBacklog {
    /// An empty backlog that admits up to `cap` waiting requests (at least one).
    pub fn new(cap: u64) -> Self {
        Self {
            cap: cap.max(1),
            depth: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// Takes a place for one new request; `false` (and counted as refused) when the queue is full.
    pub(super) fn admit(&self) -> bool {
        let admitted = self
            .depth
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| {
                (d < self.cap).then_some(d + 1)
            })
            .is_ok();
        if !admitted {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        admitted
    }

    /// Gives back `n` places: requests resolved, or an admitted one that was never stored.
    pub(super) fn release(&self, n: u64) {
        let _ = self
            .depth
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| {
                Some(d.saturating_sub(n))
            });
    }

    /// Sets the count to what the store holds (every instance's waiting requests).
    pub(super) fn measured(&self, waiting: u64) {
        self.depth.store(waiting, Ordering::Relaxed);
    }

    /// The requests waiting, as far as this process knows.
    pub fn depth(&self) -> u64 {
        self.depth.load(Ordering::Relaxed)
    }

    /// The cap.
    pub fn cap(&self) -> u64 {
        self.cap
    }

    /// Requests refused because the queue was full, since start.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

impl Default for ResetBacklog {
    fn default() -> Self {
        Self::new(DEFAULT_RESET_QUEUE_CAP)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_admits_exactly_its_size_and_counts_the_rest() {
        let b = ResetBacklog::new(3);
        assert!((0..3).all(|_| b.admit()));
        assert!(!b.admit());
        assert!(!b.admit());
        assert_eq!((b.depth(), b.refused()), (3, 2));
        b.release(2);
        assert!(b.admit());
        assert_eq!(b.depth(), 2);
        b.release(10);
        assert_eq!(b.depth(), 0, "never below zero");
        b.measured(3);
        assert!(!b.admit(), "the store's count replaces the estimate");
    }

    #[test]
    fn parallel_arrivals_never_overshoot_the_cap() {
        let b = std::sync::Arc::new(ResetBacklog::new(1000));
        let admitted: u64 = (0..8)
            .map(|_| {
                let b = b.clone();
                std::thread::spawn(move || (0..500).filter(|_| b.admit()).count() as u64)
            })
            .map(|t| t.join().unwrap())
            .sum();
        assert_eq!(admitted, 1000);
        assert_eq!(b.refused(), 3000);
    }
}
