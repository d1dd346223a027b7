//! resetd's email side: templates ([`TemplateRenderer`], the core's `Renderer`), transports
//! ([`Transport`], [`FileTransport`], and [`build_mime`] for every transport), and the durable
//! outbox worker ([`OutboxWorker`]) that delivers queued messages with retries and backoff.
#![warn(missing_docs)]

pub mod render;
pub mod transport;
pub mod worker;

pub use render::{TemplateError, TemplateRenderer};
pub use transport::{build_mime, FileTransport, SendError, Transport};
pub use worker::{MailStats, OutboxWorker, WorkerConfig};
