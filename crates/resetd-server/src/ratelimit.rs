//! Per-IP token buckets, kept in this instance's memory (per-account limits live in the database).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// A limiter allowing `burst` requests at once and `per_minute` sustained, per client address.
pub struct RateLimiter {
    per_sec: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

/// The most addresses tracked; past it, full buckets are dropped (they carry no state anyway).
const MAX_TRACKED: usize = 100_000;

impl RateLimiter {
    /// A limiter; `per_minute == 0` disables it.
    pub fn new(per_minute: u32, burst: u32) -> Self {
        Self {
            per_sec: per_minute as f64 / 60.0,
            burst: burst.max(1) as f64,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `ip`; `Err(seconds)` says when the next one is due.
    pub fn check(&self, ip: IpAddr) -> Result<(), i64> {
        if self.per_sec == 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_TRACKED {
            let (per_sec, burst) = (self.per_sec, self.burst);
            map.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * per_sec < burst
            });
        }
        let (tokens, at) = map.entry(ip).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_sec).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.per_sec).ceil().max(1.0) as i64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_burst_then_refuses_with_a_retry_time_per_address() {
        let l = RateLimiter::new(60, 3);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert!(l.check(a).is_ok());
        }
        assert_eq!(l.check(a), Err(1));
        assert!(l.check(b).is_ok());
    }

    #[test]
    fn zero_disables() {
        let l = RateLimiter::new(0, 1);
        for _ in 0..100 {
            assert!(l.check("::1".parse().unwrap()).is_ok());
        }
    }
}
