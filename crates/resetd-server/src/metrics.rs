//! Prometheus metrics, kept by hand: request counts and latency per route, and the service's own
//! counters. Labels are route templates, never raw paths (which may hold tokens).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// The process's metrics.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    /// Requests refused by a rate limit, by surface and limit. Never by key or address: those are
    /// unbounded, and a key id in a scrape would tie traffic to a customer.
    limited: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// Reset requests accepted.
    pub resets_requested: AtomicU64,
    /// Resets completed with a token.
    pub resets_completed: AtomicU64,
    /// Successful logins.
    pub logins_ok: AtomicU64,
    /// Failed logins.
    pub logins_failed: AtomicU64,
}

impl Metrics {
    /// Records one HTTP request.
    pub fn observe(&self, route: &str, method: &str, status: u16, took: Duration) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((route.to_owned(), method.to_owned(), status))
            .or_default() += 1;
        let secs = took.as_secs_f64();
        let mut lat = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        let h = lat.entry(route.to_owned()).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }

    /// Counts one request refused by `limit` on `surface`.
    pub fn limited(&self, surface: &'static str, limit: &'static str) {
        *self
            .limited
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((surface, limit))
            .or_default() += 1;
    }

    /// Renders the text exposition format; `extra` lines (gauges from other parts) are appended.
    pub fn render(&self, extra: &str) -> String {
        let mut s = String::new();
        s.push_str("# HELP resetd_http_requests_total HTTP requests by route, method and status.\n# TYPE resetd_http_requests_total counter\n");
        for ((route, method, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(s, "resetd_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}");
        }
        s.push_str("# HELP resetd_http_request_duration_seconds HTTP request latency by route.\n# TYPE resetd_http_request_duration_seconds histogram\n");
        for (route, h) in self
            .latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(s, "resetd_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {}", h.counts[i]);
            }
            let _ = writeln!(
                s,
                "resetd_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                s,
                "resetd_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                s,
                "resetd_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        s.push_str("# HELP resetd_rate_limited_total Requests refused by a rate limit, by surface and limit.\n# TYPE resetd_rate_limited_total counter\n");
        for ((surface, limit), n) in self
            .limited
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                s,
                "resetd_rate_limited_total{{surface=\"{surface}\",limit=\"{limit}\"}} {n}"
            );
        }
        let counters = [
            (
                "resetd_resets_requested_total",
                "Password reset requests accepted.",
                &self.resets_requested,
            ),
            (
                "resetd_resets_completed_total",
                "Password resets completed with a token.",
                &self.resets_completed,
            ),
            (
                "resetd_logins_succeeded_total",
                "Successful authentications.",
                &self.logins_ok,
            ),
            (
                "resetd_logins_failed_total",
                "Failed authentications.",
                &self.logins_failed,
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(
                s,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
        s.push_str(extra);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_buckets() {
        let m = Metrics::default();
        m.observe(
            "/v1/{tenant}/recovery",
            "POST",
            202,
            Duration::from_millis(3),
        );
        m.resets_requested.fetch_add(1, Ordering::Relaxed);
        m.limited("payabli", "key");
        m.limited("payabli", "key");
        let out = m.render("");
        assert!(out.contains("resetd_rate_limited_total{surface=\"payabli\",limit=\"key\"} 2"));
        assert!(out.contains("resetd_http_requests_total{route=\"/v1/{tenant}/recovery\",method=\"POST\",status=\"202\"} 1"));
        assert!(out.contains("resetd_http_request_duration_seconds_bucket{route=\"/v1/{tenant}/recovery\",le=\"0.005\"} 1"));
        assert!(out.contains("resetd_http_request_duration_seconds_bucket{route=\"/v1/{tenant}/recovery\",le=\"0.0025\"} 0"));
        assert!(out.contains("resetd_resets_requested_total 1"));
    }
}
