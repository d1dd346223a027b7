//! resetd's email side: templates ([`TemplateRenderer`], the core's `Renderer`, with the vendor
//! products' own wording chosen by [`Branding`]), transports
//! ([`Transport`], [`FileTransport`], [`SmtpTransport`], and [`build_mime`] for every transport), the durable
//! outbox worker ([`OutboxWorker`]) that delivers queued messages with retries and backoff, and its
//! metrics ([`MailStats`]).
#![warn(missing_docs)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unimplemented
    )
)]

pub mod brand;
pub mod render;
pub mod smtp;
pub mod stats;
pub mod transport;
pub mod worker;

pub use brand::{names_a_sender, Brand, Branding, Clients};
pub use render::{TemplateError, TemplateRenderer};
pub use smtp::{ConfigSecret, SmtpConfig, SmtpTls, SmtpTransport};
pub use stats::MailStats;
pub use transport::{build_mime, FileTransport, SendError, Transport};
pub use worker::{OutboxWorker, WorkerConfig};
