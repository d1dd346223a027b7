//! Measures the raw Argon2id hash rate of this machine: `threads` threads hashing for `seconds`,
//! with the same code and parameters the service uses. The bench harness prints the service's
//! complete-reset and authenticate rates as a ratio of this figure.
//!
//! `cargo run --release -p resetd-core --example hash_rate -- M_KIB T P THREADS SECONDS`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unimplemented
)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use resetd_core::hash::{Argon2id, HashParams, Scratch};
use resetd_core::types::Password;

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers"))
        .collect();
    let [m, t, p, threads, seconds] = args[..] else {
        eprintln!("usage: hash_rate M_KIB T P THREADS SECONDS");
        std::process::exit(2);
    };
    let argon = Argon2id::new(HashParams {
        m_cost: m as u32,
        t_cost: t as u32,
        p_cost: p as u32,
    })
    .expect("valid parameters");
    let password = Password::parse("bench passphrase orbit 7").expect("valid");
    let done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                // Memory reused across hashes, as the server's hashing threads do: the fastest
                // this code can hash, so the ratio the harness prints is not flattered.
                let mut scratch = Scratch::default();
                while !stop.load(Ordering::Relaxed) {
                    argon.hash_with(&password, &mut scratch).expect("hash");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        std::thread::sleep(Duration::from_secs(seconds));
        stop.store(true, Ordering::Relaxed);
    });
    let rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    println!("{rate:.2}");
}
