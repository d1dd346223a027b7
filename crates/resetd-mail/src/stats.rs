//! The mail side's own metrics: delivery outcome counters and the send-latency histogram, in the
//! Prometheus text format. (The outbox gauges by status come from the store.)

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the send-latency buckets, in seconds.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0,
];

/// A cumulative latency histogram.
#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, took: Duration) {
        let secs = took.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }
}

/// Counters of the worker's outcomes since start, for `/metrics`. Each counter counts messages
/// whose new state the store accepted.
#[derive(Debug, Default)]
pub struct MailStats {
    /// Messages delivered to the transport and marked sent.
    pub sent: AtomicU64,
    /// Failed attempts that were scheduled for a retry.
    pub failed: AtomicU64,
    /// Messages given up on (permanent failure or too many attempts).
    pub dead: AtomicU64,
    /// How long each call to the transport took: `[accepted, refused or failed]`.
    latency: Mutex<[Histogram; 2]>,
}

impl MailStats {
    /// Records how long one delivery attempt took and whether the transport accepted it.
    pub fn observe_send(&self, took: Duration, accepted: bool) {
        let mut h = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        h[usize::from(!accepted)].observe(took);
    }

    /// The figures in the Prometheus text format: the counters `resetd_mail_sent_total`,
    /// `resetd_mail_failed_total`, `resetd_mail_dead_total`, and the histogram
    /// `resetd_mail_send_duration_seconds{outcome="sent"|"failed"}`.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for (name, help, v) in [
            (
                "resetd_mail_sent_total",
                "Emails delivered to the transport.",
                &self.sent,
            ),
            (
                "resetd_mail_failed_total",
                "Failed delivery attempts scheduled for a retry.",
                &self.failed,
            ),
            (
                "resetd_mail_dead_total",
                "Emails given up on (permanent failure or too many attempts).",
                &self.dead,
            ),
        ] {
            let _ = write!(
                s,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                v.load(Ordering::Relaxed)
            );
        }
        let name = "resetd_mail_send_duration_seconds";
        let _ = write!(
            s,
            "# HELP {name} Time one delivery attempt took in the transport, by outcome.\n# TYPE {name} histogram\n"
        );
        let latency = self
            .latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for (outcome, h) in ["sent", "failed"].iter().zip(latency.iter()) {
            for (b, n) in BUCKETS.iter().zip(h.counts.iter()) {
                let _ = writeln!(s, "{name}_bucket{{outcome=\"{outcome}\",le=\"{b}\"}} {n}");
            }
            let _ = writeln!(
                s,
                "{name}_bucket{{outcome=\"{outcome}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(s, "{name}_sum{{outcome=\"{outcome}\"}} {}", h.sum);
            let _ = writeln!(s, "{name}_count{{outcome=\"{outcome}\"}} {}", h.count);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_render_as_prometheus_counters_and_a_histogram() {
        let stats = MailStats::default();
        stats.sent.fetch_add(3, Ordering::Relaxed);
        stats.dead.fetch_add(1, Ordering::Relaxed);
        stats.observe_send(Duration::from_millis(30), true);
        stats.observe_send(Duration::from_millis(3), true);
        stats.observe_send(Duration::from_secs(20), false);
        let text = stats.render();
        assert!(
            text.contains("# TYPE resetd_mail_sent_total counter\nresetd_mail_sent_total 3\n"),
            "{text}"
        );
        assert!(text.contains("\nresetd_mail_failed_total 0\n"));
        assert!(text.contains("\nresetd_mail_dead_total 1\n"));
        assert!(text.contains("# TYPE resetd_mail_send_duration_seconds histogram\n"));
        for line in [
            "resetd_mail_send_duration_seconds_bucket{outcome=\"sent\",le=\"0.005\"} 1",
            "resetd_mail_send_duration_seconds_bucket{outcome=\"sent\",le=\"0.025\"} 1",
            "resetd_mail_send_duration_seconds_bucket{outcome=\"sent\",le=\"0.05\"} 2",
            "resetd_mail_send_duration_seconds_bucket{outcome=\"sent\",le=\"+Inf\"} 2",
            "resetd_mail_send_duration_seconds_count{outcome=\"sent\"} 2",
            "resetd_mail_send_duration_seconds_bucket{outcome=\"failed\",le=\"15\"} 0",
            "resetd_mail_send_duration_seconds_bucket{outcome=\"failed\",le=\"+Inf\"} 1",
            "resetd_mail_send_duration_seconds_sum{outcome=\"failed\"} 20",
        ] {
            assert!(
                text.contains(&format!("{line}\n")),
                "{line} missing in\n{text}"
            );
        }
    }
}
