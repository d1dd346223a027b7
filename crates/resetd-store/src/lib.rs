//! Implementations of [`resetd_core::store::Store`].
//!
//! - [`SqliteStore`]: the embedded default. One writer thread commits in groups (see
//!   [`sqlite`]), reads use a small pool of connections.
//! - [`PostgresStore`] (cargo feature `postgres`, on by default): for several instances sharing
//!   one database (see [`postgres`]).
//! - `conformance` (cargo feature `conformance`, off by default): the backend-agnostic test suite
//!   every store must pass, one module per port; run it from a test file with
//!   `conformance_tests!`.
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unimplemented
    )
)]
#![warn(missing_docs)]

pub mod breached;
mod common;
#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod sealing;
pub mod sqlite;

#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
pub use sealing::OutboxKeys;
pub use sqlite::SqliteStore;
