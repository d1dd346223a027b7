//! Implementations of [`resetd_core::store::Store`].
//!
//! - [`SqliteStore`]: the embedded default. One writer thread commits in groups (see
//!   [`sqlite`]), reads use a small pool of connections.
//! - [`conformance`]: the backend-agnostic test suite every store must pass; run it from a test
//!   file with [`conformance_tests!`].

#![warn(missing_docs)]

pub mod conformance;
pub mod sqlite;

pub use sqlite::SqliteStore;
