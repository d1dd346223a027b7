//! Real counterparts for tests of this crate and of the binary (a dev-dependency with the
//! `testing` feature): an unleash-server 8.2.0 and the Standard Webhooks receiver
//! (`tests/webhook/receiver.py`), each on a free loopback port and stopped by its PID.
//!
//! When one cannot run here (no `npm ci`, no PostgreSQL, no python3 or its modules), `start`
//! prints a visible notice and returns `None` so the test can skip, unless `CI=true`, where it
//! panics: a missing service fails the run (`scripts/test.sh` installs them).

#![allow(
    clippy::panic,
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test support: a missing or broken service fails the test that needs it"
)]

pub mod receiver;
pub mod unleash;

/// `None` after a notice, or a panic with `CI=true`.
fn unavailable<T>(what: &str, why: &str) -> Option<T> {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{what} cannot run: {why}; CI=true, so this is a failure");
    }
    eprintln!("SKIPPED: {what} cannot run: {why}");
    None
}
