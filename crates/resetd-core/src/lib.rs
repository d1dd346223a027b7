//! resetd's domain: types, rules and use cases, with no I/O. Storage, hashing threads, email
//! rendering and the clock come in through small traits.
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unimplemented
    )
)]

pub mod api_key;
pub mod error;
pub mod foreign;
pub mod hash;
pub mod import;
pub mod model;
pub mod policy;
pub mod ports;
pub mod render;
pub mod reset_page;
pub mod secret;
pub mod service;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod types;

pub use error::CoreError;
pub use service::{Service, ServiceConfig};
