//! The mail side of the binary: choosing the transport from the configuration (the `resetd
//! outbox` commands are in `cli/outbox.rs`).

use std::sync::Arc;

use resetd_mail::{FileTransport, SmtpTransport, Transport};

use crate::config::Config;

/// The configured transport and a line saying where mail goes. Call inside the runtime.
pub fn transport(config: &Config) -> Result<(Arc<dyn Transport>, String), String> {
    match config.mail.transport.as_str() {
        "smtp" => {
            let smtp = &config.mail.smtp;
            let t = SmtpTransport::new(smtp, config.mail.sender())
                .map_err(|e| format!("mail.smtp: {e}"))?;
            if smtp.username.is_some() && smtp.tls == resetd_mail::SmtpTls::None {
                tracing::warn!(
                    "mail.smtp: AUTH over a connection without TLS sends the password in clear text; use tls = \"starttls\" or \"tls\" unless the server is on this host"
                );
            }
            let place = format!("mail via SMTP {}", t.endpoint());
            Ok((Arc::new(t), place))
        }
        _ => {
            let dir = config.mail_dir();
            let place = format!("mail in {}", dir.display());
            Ok((
                Arc::new(FileTransport::new(dir, config.mail.sender())),
                place,
            ))
        }
    }
}
