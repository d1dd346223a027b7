//! The store's tests, one binary: every conformance check against each backend, each backend's
//! own behaviour, and core use cases run over the real SQLite store.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unimplemented
)]

mod memory;
#[cfg(feature = "postgres")]
mod postgres;
mod sqlite;
mod transient_failures;
mod use_cases;
