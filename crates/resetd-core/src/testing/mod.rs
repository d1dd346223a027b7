//! Test support for the use cases (the `testing` feature, off by default; always on in this
//! crate's own tests): an in-memory implementation of every port and doubles for the others, so
//! that a rule of a flow is tested in microseconds, without a database, a thread pool or a
//! template.
//!
//! - [`MemoryStore`]: all six ports with the SQL stores' semantics (single-use tokens, the
//!   cool-down, the login counter, leases, erased bodies...), failures on demand
//!   ([`MemoryStore::fail_all`], [`MemoryStore::fail`]) and a log of the calls.
//! - [`ManualClock`], [`InlineHasher`] (cheap Argon2id that counts its calls and can be
//!   overloaded), [`RecordingRenderer`] (records every email, can fail).
//! - [`MemoryExternal`]: an external credential system (accounts and passwords in memory) with
//!   failures injected per call and a call log, for tenants whose passwords live elsewhere.
//! - [`Harness`]: a [`Service`] wired to all of them.
//!
//! Another crate uses it as a dev-dependency:
//! `resetd-core = { path = "../resetd-core", features = ["testing"] }`. It adds no dependency:
//! the doubles are plain `std` (the tests bring their own executor).

mod api_keys;
mod credentials;
mod directory;
mod doubles;
mod external;
mod lifecycle;
mod outbox;
mod recovery;
mod retention;
mod store;

use std::sync::Arc;

pub use self::doubles::{
    HashCounts, InlineHasher, ManualClock, RecordingRenderer, RenderedMessage, CHEAP_PARAMS, T0,
};
pub use self::external::{ExternalCall, LoggedCall, MemoryExternal};
pub use self::outbox::MAX_ERROR_CHARS;
pub use self::store::MemoryStore;

use crate::hash::HashError;
use crate::service::{Service, ServiceConfig, DEFAULT_NOTICE_RETRY_SECS};

/// The public URL of a [`Harness`]'s service: hosted-page links start with it.
pub const PUBLIC_URL: &str = "https://resetd.test";

/// A [`Service`] over a fresh [`MemoryStore`], a [`ManualClock`] at [`T0`], an
/// [`InlineHasher`] and a [`RecordingRenderer`], each kept here for the test to drive and
/// inspect. No tenant exists yet.
pub struct Harness {
    pub service: Service,
    pub store: Arc<MemoryStore>,
    pub clock: Arc<ManualClock>,
    pub hasher: Arc<InlineHasher>,
    pub renderer: Arc<RecordingRenderer>,
}

impl Harness {
    /// A harness with the service configured for [`PUBLIC_URL`].
    pub fn new() -> Result<Self, HashError> {
        let store = Arc::new(MemoryStore::new());
        let clock = Arc::new(ManualClock::default());
        let hasher = Arc::new(InlineHasher::new()?);
        let renderer = Arc::new(RecordingRenderer::new());
        let service = Service::new(
            store.clone(),
            hasher.clone(),
            renderer.clone(),
            clock.clone(),
            ServiceConfig {
                public_url: PUBLIC_URL.into(),
                message_id_domain: "resetd.test".into(),
                notice_retry_secs: DEFAULT_NOTICE_RETRY_SECS,
            },
        );
        Ok(Self {
            service,
            store,
            clock,
            hasher,
            renderer,
        })
    }
}

impl Harness {
    /// The same harness with `tenant`'s passwords in `backend` ([`Service::with_external`]).
    pub fn with_external(
        self,
        tenant: crate::types::TenantId,
        backend: Arc<dyn crate::ports::ExternalCredentials>,
    ) -> Self {
        Self {
            service: self.service.with_external(tenant, backend),
            ..self
        }
    }
}

#[cfg(test)]
mod tests;
