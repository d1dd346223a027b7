//! Lookups in the breached-password index: builds an index from a generated sorted corpus of
//! `BREACHED_BENCH_LINES` hashes (default 5,000,000) in a temporary directory, then times
//! `BREACHED_BENCH_LOOKUPS` single checks (half hits, half misses), each the whole check a
//! password set adds: SHA-1 of the password, then the index lookup. Prints throughput and the
//! p50/p99/max of one check. `cargo bench -p resetd-store --bench breached`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::time::Instant;

use resetd_core::ports::{password_sha1, BreachedPasswords};
use resetd_core::types::Password;
use resetd_store::breached::{import, BreachIndex, FULL_SUFFIX};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let lines = env("BREACHED_BENCH_LINES", 5_000_000);
    let lookups = env("BREACHED_BENCH_LOOKUPS", 1_000_000) as usize;
    let dir = tempfile::tempdir().unwrap();
    // The hits: the SHA-1 of "hit-N", sorted into an evenly spread filler.
    let hits: Vec<String> = (0..1000).map(|i| format!("hit-{i}")).collect();
    let mut known: Vec<[u8; 20]> = hits
        .iter()
        .map(|p| password_sha1(&Password::parse(p).unwrap()))
        .collect();
    known.sort();
    let corpus = dir.path().join("corpus.txt");
    {
        let mut out =
            std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&corpus).unwrap());
        let step = u128::MAX / u128::from(lines);
        let mut k = known.iter().peekable();
        for i in 0..lines {
            let mut h = [0u8; 20];
            h[..16].copy_from_slice(&(step * u128::from(i)).to_be_bytes());
            h[16..].copy_from_slice(&(i as u32).to_be_bytes());
            while k.peek().is_some_and(|x| **x < h) {
                let x = k.next().unwrap();
                let hex: String = x.iter().map(|b| format!("{b:02X}")).collect();
                write!(out, "{hex}:7\r\n").unwrap();
            }
            let hex: String = h.iter().map(|b| format!("{b:02X}")).collect();
            write!(out, "{hex}:1\r\n").unwrap();
        }
        for x in k {
            let hex: String = x.iter().map(|b| format!("{b:02X}")).collect();
            write!(out, "{hex}:7\r\n").unwrap();
        }
    }
    let idx_path = dir.path().join("breached.idx");
    let t = Instant::now();
    let f = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(&corpus).unwrap());
    let stats = import(f, &idx_path, FULL_SUFFIX, 0, |_| {}).unwrap();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "import: {} lines in {secs:.2} s = {:.0} lines/s; index {} bytes = {:.1} MB per million hashes",
        stats.lines,
        stats.lines as f64 / secs,
        stats.bytes,
        stats.bytes as f64 / 1e6 / (stats.records as f64 / 1e6)
    );
    let index = BreachIndex::open(&idx_path).unwrap();
    let candidates: Vec<Password> = (0..lookups)
        .map(|i| {
            let p = if i % 2 == 0 {
                hits[i % hits.len()].clone()
            } else {
                format!("miss-{i}")
            };
            Password::parse(&p).unwrap()
        })
        .collect();
    let mut times = Vec::with_capacity(lookups);
    let mut found = 0usize;
    let all = Instant::now();
    for pw in &candidates {
        let t = Instant::now();
        let hit = index.count(&password_sha1(pw)).unwrap();
        times.push(t.elapsed().as_nanos() as u64);
        found += usize::from(hit.is_some());
    }
    let total = all.elapsed().as_secs_f64();
    assert_eq!(
        found,
        lookups.div_ceil(2),
        "every hit found, no false positive"
    );
    times.sort_unstable();
    let q = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    println!(
        "check (SHA-1 + lookup), {} records, warm page cache: {lookups} in {total:.2} s = {:.0}/s; p50 {:.2} µs, p99 {:.2} µs, max {:.1} µs",
        index.records(),
        lookups as f64 / total,
        q(0.5) as f64 / 1e3,
        q(0.99) as f64 / 1e3,
        *times.last().unwrap() as f64 / 1e3
    );
}
