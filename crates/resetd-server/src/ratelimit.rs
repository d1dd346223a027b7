//! Token buckets, kept in this instance's memory (per-account limits live in the database).
//!
//! Anonymous callers are counted per client network, one bucket per surface: an IPv4 address, or
//! an IPv6 /64. A /64 is the smallest block an ISP or a cloud hands to one customer (and each of
//! its 2^64 addresses is one `ip addr add` away), so counting IPv6 addresses one by one would make
//! the limits meaningless for anyone with IPv6. Authenticated server-to-server callers (a vendor's
//! back end calling for all its users from one address) are counted per API key instead, by the
//! key's public id, never its secret.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::Instant;

/// A limiter allowing `burst` requests at once and `per_minute` sustained, per key `K` (by
/// default a client network, [`limit_key`]).
pub struct RateLimiter<K = IpAddr> {
    per_sec: f64,
    burst: f64,
    buckets: Mutex<HashMap<K, (f64, Instant)>>,
}

/// The network whose bucket `ip` draws from: an IPv4 address as it is (also when it arrives as an
/// IPv4-mapped IPv6 address `::ffff:a.b.c.d`, as on a dual-stack listener), an IPv6 address with
/// its last 64 bits cleared.
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(
                u128::from(v6) & 0xffff_ffff_ffff_ffff_0000_0000_0000_0000,
            )),
        },
    }
}

/// The most keys tracked; past it, full buckets are dropped (they carry no state anyway).
const MAX_TRACKED: usize = 100_000;

impl<K: Hash + Eq> RateLimiter<K> {
    /// A limiter; `per_minute == 0` disables it.
    pub fn new(per_minute: u32, burst: u32) -> Self {
        Self {
            per_sec: per_minute as f64 / 60.0,
            burst: burst.max(1) as f64,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token from `key`'s bucket; `Err(seconds)` says when the next one is due.
    pub fn take(&self, key: K) -> Result<(), i64> {
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
        let (tokens, at) = map.entry(key).or_insert((self.burst, now));
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

impl RateLimiter<IpAddr> {
    /// Takes one token for `ip`'s network ([`limit_key`]).
    pub fn check(&self, ip: IpAddr) -> Result<(), i64> {
        self.take(limit_key(ip))
    }
}

/// A per-surface per-IP limiter: the surface's name and the caller's network.
pub type SurfaceLimiter = RateLimiter<(&'static str, IpAddr)>;

impl SurfaceLimiter {
    /// Takes one token for `ip`'s network on `surface`.
    pub fn check_on(&self, surface: &'static str, ip: IpAddr) -> Result<(), i64> {
        self.take((surface, limit_key(ip)))
    }
}

/// One bucket per API key, for a dialect's authenticated callers (its section's `key_per_minute`
/// and `key_burst`).
pub struct KeyLimiter(RateLimiter<String>);

impl KeyLimiter {
    /// A limiter; `per_minute == 0` disables it.
    pub fn new(per_minute: u32, burst: u32) -> Self {
        Self(RateLimiter::new(per_minute, burst))
    }

    /// Takes one token for the API key with the public id `key_id`.
    pub fn check(&self, key_id: &str) -> Result<(), i64> {
        self.0.take(key_id.to_owned())
    }
}

/// The default sustained rate per API key of a server-to-server caller: a vendor's back end asks
/// for all its users, so this is a service's rate, not a person's.
pub const DEFAULT_KEY_PER_MINUTE: u32 = 600;

/// The default burst per API key.
pub const DEFAULT_KEY_BURST: u32 = 100;

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
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let key = |s: &str| limit_key(s.parse().unwrap()).to_string();
        assert_eq!(key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::");
        assert_eq!(key("2001:db8:1:2::1"), "2001:db8:1:2::");
        assert_eq!(key("2001:db8:1:3::1"), "2001:db8:1:3::");
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_eq!(key("::1"), "::");
        assert_eq!(key("fe80::1:2:3:4"), "fe80::");

        let l = RateLimiter::new(60, 3);
        for i in 0..3u16 {
            let ip = format!("2001:db8:1:2:{i:x}:{:x}::{:x}", i * 3, i + 9);
            assert!(l.check(ip.parse().unwrap()).is_ok());
        }
        // Any other address of that /64 is the same client.
        assert_eq!(
            l.check("2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap()),
            Err(1)
        );
        assert!(l.check("2001:db8:1:3::".parse().unwrap()).is_ok());
        for _ in 0..3 {
            assert!(l.check("192.0.2.7".parse().unwrap()).is_ok());
        }
        assert_eq!(l.check("::ffff:192.0.2.7".parse().unwrap()), Err(1));
        assert!(l.check("::ffff:192.0.2.8".parse().unwrap()).is_ok());
    }

    #[test]
    fn surfaces_and_keys_have_their_own_buckets() {
        let l = SurfaceLimiter::new(60, 2);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        assert!(l.check_on("page", ip).is_ok());
        assert!(l.check_on("page", ip).is_ok());
        assert_eq!(l.check_on("page", ip), Err(1));
        assert!(l.check_on("unleash", ip).is_ok());
        // The /64 rule holds per surface too.
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(l.check_on("page", v6("2001:db8::1")).is_ok());
        assert!(l.check_on("page", v6("2001:db8::2")).is_ok());
        assert_eq!(l.check_on("page", v6("2001:db8::3")), Err(1));

        let k = KeyLimiter::new(60, 2);
        assert!(k.check("0123456789abcdef").is_ok());
        assert!(k.check("0123456789abcdef").is_ok());
        assert_eq!(k.check("0123456789abcdef"), Err(1));
        assert!(k.check("fedcba9876543210").is_ok());
        let off = KeyLimiter::new(0, 1);
        for _ in 0..100 {
            assert!(off.check("0123456789abcdef").is_ok());
        }
    }

    #[test]
    fn zero_disables() {
        let l = RateLimiter::new(0, 1);
        for _ in 0..100 {
            assert!(l.check("::1".parse().unwrap()).is_ok());
        }
    }
}
