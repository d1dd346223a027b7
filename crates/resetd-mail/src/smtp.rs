//! [`SmtpTransport`]: delivery over real SMTP with lettre — pooled connections, plain, STARTTLS or
//! implicit TLS (rustls with the `ring` provider and the Mozilla roots, plus an optional CA file),
//! optional AUTH, and timeouts. Replies are sorted into transient and permanent failures for the
//! outbox worker.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use lettre::address::{Address, Envelope};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::{AsyncSmtpTransport, PoolConfig};
use lettre::{AsyncTransport, Tokio1Executor};
use resetd_core::model::OutboxMessage;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio::sync::Semaphore;

use crate::transport::{build_mime, SendError, Transport};

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text throughout (a trusted relay on the same host or network only).
    None,
    /// Plain text, then `STARTTLS`, which is required: a server that does not offer it is an
    /// error, never a silent fallback to plain text.
    #[default]
    Starttls,
    /// TLS from the first byte ("implicit TLS", SMTPS, usually port 465).
    Tls,
}

impl SmtpTls {
    /// The usual port for this mode: 25, 587 or 465.
    pub fn default_port(self) -> u16 {
        match self {
            Self::None => 25,
            Self::Starttls => 587,
            Self::Tls => 465,
        }
    }

    /// The configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Starttls => "starttls",
            Self::Tls => "tls",
        }
    }
}

/// A secret read from configuration. It never shows in `Debug` output, and serialises as
/// `"<redacted>"` (so `resetd check-config` can print the configuration).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ConfigSecret(String);

impl ConfigSecret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ConfigSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for ConfigSecret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

impl<'de> Deserialize<'de> for ConfigSecret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self)
    }
}

/// The `[mail.smtp]` settings. Every field has a default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    /// Server host name or IP address (also the name its TLS certificate is checked against).
    pub host: String,
    /// Server port; unset means the usual port for `tls` (25, 587 or 465).
    pub port: Option<u16>,
    /// `none`, `starttls` (required, the default) or `tls` (implicit).
    pub tls: SmtpTls,
    /// AUTH user name; AUTH is used only when it is set.
    pub username: Option<String>,
    /// AUTH password (or the environment variable `RESETD_SMTP_PASSWORD`).
    pub password: Option<ConfigSecret>,
    /// Time limit for connecting and for each SMTP command, in seconds.
    pub timeout_secs: u64,
    /// Connections open at once (and kept open between messages for reuse).
    pub pool_size: u32,
    /// Seconds an unused pooled connection stays open.
    pub idle_timeout_secs: u64,
    /// The name sent in EHLO; unset means this machine's host name.
    pub helo_name: Option<String>,
    /// A PEM file of extra CA certificates to trust (a private CA), besides the Mozilla roots.
    pub ca_file: Option<PathBuf>,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: "localhost".into(),
            port: None,
            tls: SmtpTls::default(),
            username: None,
            password: None,
            timeout_secs: 15,
            pool_size: 4,
            idle_timeout_secs: 60,
            helo_name: None,
            ca_file: None,
        }
    }
}

impl SmtpConfig {
    /// The port to connect to.
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or_else(|| self.tls.default_port())
    }

    /// Checks the settings without connecting (and reads `ca_file`); `from` is the sender.
    pub fn validate(&self, from: &str) -> Result<(), String> {
        self.build_parts(from).map(|_| ())
    }

    fn build_parts(&self, from: &str) -> Result<Parts, String> {
        let sender: Mailbox = from
            .parse()
            .map_err(|e| format!("mail.from {from:?} is not a valid address: {e}"))?;
        let host = self.host.trim();
        if host.is_empty() || host.len() > 253 || host.contains(char::is_whitespace) {
            return Err(format!("mail.smtp.host {:?} is not a host name", self.host));
        }
        if self.port == Some(0) {
            return Err("mail.smtp.port must not be 0".into());
        }
        if !(1..=600).contains(&self.timeout_secs) {
            return Err("mail.smtp.timeout_secs must be between 1 and 600".into());
        }
        if !(1..=256).contains(&self.pool_size) {
            return Err("mail.smtp.pool_size must be between 1 and 256".into());
        }
        let credentials = match (&self.username, &self.password) {
            (Some(u), Some(p)) if !u.is_empty() => {
                Some(Credentials::new(u.clone(), p.expose().to_owned()))
            }
            (Some(u), None) if !u.is_empty() => {
                return Err("mail.smtp.username is set but no password is (set mail.smtp.password or RESETD_SMTP_PASSWORD)".into())
            }
            (None, Some(_)) => {
                return Err("mail.smtp.password is set but mail.smtp.username is not".into())
            }
            _ => None,
        };
        let hello = match &self.helo_name {
            Some(name) if name.is_empty() || name.contains(char::is_whitespace) => {
                return Err(format!("mail.smtp.helo_name {name:?} is not a host name"))
            }
            Some(name) => ClientId::Domain(name.clone()),
            None => ClientId::default(),
        };
        let tls = match self.tls {
            SmtpTls::None => Tls::None,
            mode => {
                let mut params = TlsParameters::builder(host.to_owned());
                if let Some(path) = &self.ca_file {
                    let pem = std::fs::read(path)
                        .map_err(|e| format!("mail.smtp.ca_file {}: {e}", path.display()))?;
                    if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
                        return Err(format!(
                            "mail.smtp.ca_file {}: holds no PEM certificate",
                            path.display()
                        ));
                    }
                    let cert = Certificate::from_pem(&pem)
                        .map_err(|e| format!("mail.smtp.ca_file {}: {e}", path.display()))?;
                    params = params.add_root_certificate(cert);
                }
                let params = params
                    .build_rustls()
                    .map_err(|e| format!("mail.smtp TLS settings: {e}"))?;
                match mode {
                    SmtpTls::Tls => Tls::Wrapper(params),
                    _ => Tls::Required(params),
                }
            }
        };
        Ok(Parts {
            sender,
            host: host.to_owned(),
            credentials,
            hello,
            tls,
        })
    }
}

struct Parts {
    sender: Mailbox,
    host: String,
    credentials: Option<Credentials>,
    hello: ClientId,
    tls: Tls,
}

/// Sends outbox messages to an SMTP server (a relay or submission server). Connections are pooled
/// and reused; at most `pool_size` are open at once.
pub struct SmtpTransport {
    mailer: AsyncSmtpTransport<Tokio1Executor>,
    from: String,
    sender: Address,
    slots: Semaphore,
    endpoint: String,
}

impl fmt::Debug for SmtpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpTransport")
            .field("endpoint", &self.endpoint)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl SmtpTransport {
    /// A transport for `config`, sending as `from` (an address, optionally with a display name).
    /// Fails on invalid settings; does not connect (the first message does). Must be called
    /// inside a Tokio runtime (the pool starts its cleanup task).
    pub fn new(config: &SmtpConfig, from: &str) -> Result<Self, String> {
        let parts = config.build_parts(from)?;
        let port = config.effective_port();
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&parts.host)
            .port(port)
            .tls(parts.tls)
            .hello_name(parts.hello)
            .timeout(Some(Duration::from_secs(config.timeout_secs)))
            .pool_config(
                PoolConfig::new()
                    .max_size(config.pool_size)
                    .idle_timeout(Duration::from_secs(config.idle_timeout_secs.max(1))),
            );
        if let Some(credentials) = parts.credentials {
            builder = builder.credentials(credentials);
        }
        Ok(Self {
            mailer: builder.build(),
            from: from.to_owned(),
            sender: parts.sender.email,
            slots: Semaphore::new(config.pool_size as usize),
            endpoint: format!("{}:{port} ({})", parts.host, config.tls.as_str()),
        })
    }

    /// `host:port (tls mode)`, for logs.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

#[async_trait]
impl Transport for SmtpTransport {
    async fn send(&self, msg: &OutboxMessage) -> Result<(), SendError> {
        let bytes = build_mime(msg, &self.from)?;
        let to: Address = msg.message.recipient.as_str().parse().map_err(|e| {
            SendError::Permanent(format!("the recipient address is malformed: {e}"))
        })?;
        let envelope = Envelope::new(Some(self.sender.clone()), vec![to])
            .map_err(|e| SendError::Permanent(format!("the envelope cannot be built: {e}")))?;
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| SendError::Transient("the SMTP transport is shutting down".into()))?;
        match self.mailer.send_raw(&envelope, &bytes).await {
            Ok(reply) => {
                tracing::debug!(
                    outbox_id = msg.id,
                    kind = msg.message.kind.as_str(),
                    message_id = %msg.message.message_id,
                    reply = %reply.code(),
                    "email accepted by the SMTP server"
                );
                Ok(())
            }
            Err(e) => Err(classify(&e, &self.endpoint)),
        }
    }
}

/// Sorts an SMTP failure: a 5xx reply about the message is permanent; everything else — 4xx
/// replies, connection, TLS and time-outs, and 5xx replies that are about resetd's own
/// configuration (authentication) rather than the message — is worth retrying.
fn classify(e: &lettre::transport::smtp::Error, endpoint: &str) -> SendError {
    let text = flatten(&e.to_string());
    match e.status() {
        Some(code) if e.is_permanent() => {
            let code = code.to_string();
            if ["530", "534", "535", "538"].contains(&code.as_str()) {
                SendError::Transient(format!(
                    "the SMTP server {endpoint} refused authentication (check mail.smtp.username and the password): {text}"
                ))
            } else {
                SendError::Permanent(format!(
                    "the SMTP server {endpoint} refused the message: {text}"
                ))
            }
        }
        Some(_) => SendError::Transient(format!(
            "the SMTP server {endpoint} deferred the message: {text}"
        )),
        None if e.is_client() => {
            SendError::Permanent(format!("the message cannot be sent: {text}"))
        }
        None if e.is_timeout() => {
            SendError::Transient(format!("the SMTP server {endpoint} timed out: {text}"))
        }
        None => SendError::Transient(format!("cannot reach the SMTP server {endpoint}: {text}")),
    }
}

/// One line, for logs and the outbox's `last_error`.
fn flatten(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_never_shows() {
        let c = SmtpConfig {
            username: Some("mailer".into()),
            password: Some(ConfigSecret::new("hunter2-secret")),
            ..Default::default()
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        let json = serde_json::to_string(&c).unwrap();
        assert!(!json.contains("hunter2"), "{json}");
        assert!(json.contains("<redacted>"));
    }

    #[test]
    fn settings_parse_with_defaults() {
        let c: SmtpConfig = serde_json::from_str(
            r#"{"host":"mx.example.com","tls":"tls","password":"p","username":"u"}"#,
        )
        .unwrap();
        assert_eq!(c.effective_port(), 465);
        assert_eq!(c.password.as_ref().unwrap().expose(), "p");
        assert_eq!(SmtpConfig::default().effective_port(), 587);
        assert!(serde_json::from_str::<SmtpConfig>(r#"{"tls":"ssl"}"#).is_err());
        assert!(serde_json::from_str::<SmtpConfig>(r#"{"hots":"x"}"#).is_err());
    }

    #[test]
    fn invalid_settings_are_refused_with_the_field_named() {
        let ok = SmtpConfig::default();
        ok.validate("resetd <noreply@example.com>").unwrap();
        let e = ok.validate("not an address").unwrap_err();
        assert!(e.contains("mail.from"), "{e}");
        for (c, field) in [
            (
                SmtpConfig {
                    host: String::new(),
                    ..Default::default()
                },
                "host",
            ),
            (
                SmtpConfig {
                    port: Some(0),
                    ..Default::default()
                },
                "port",
            ),
            (
                SmtpConfig {
                    timeout_secs: 0,
                    ..Default::default()
                },
                "timeout_secs",
            ),
            (
                SmtpConfig {
                    pool_size: 0,
                    ..Default::default()
                },
                "pool_size",
            ),
            (
                SmtpConfig {
                    username: Some("u".into()),
                    ..Default::default()
                },
                "username",
            ),
            (
                SmtpConfig {
                    password: Some(ConfigSecret::new("p")),
                    ..Default::default()
                },
                "password",
            ),
            (
                SmtpConfig {
                    helo_name: Some("a b".into()),
                    ..Default::default()
                },
                "helo_name",
            ),
            (
                SmtpConfig {
                    ca_file: Some("/nonexistent/ca.pem".into()),
                    ..Default::default()
                },
                "ca_file",
            ),
        ] {
            let e = c.validate("a@example.com").unwrap_err();
            assert!(e.contains(field), "{field}: {e}");
            assert!(!e.contains("hunter"), "{e}");
        }
    }

    #[test]
    fn a_ca_file_that_is_not_pem_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        let c = SmtpConfig {
            ca_file: Some(path),
            ..Default::default()
        };
        let e = c.validate("a@example.com").unwrap_err();
        assert!(e.contains("ca_file"), "{e}");
    }

    #[tokio::test]
    async fn nothing_listening_is_a_transient_failure() {
        // A port that was free a moment ago: connecting is refused.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let t = SmtpTransport::new(
            &SmtpConfig {
                host: "127.0.0.1".into(),
                port: Some(port),
                tls: SmtpTls::None,
                timeout_secs: 2,
                ..Default::default()
            },
            "resetd <noreply@example.com>",
        )
        .unwrap();
        let msg =
            crate::transport::tests::outbox_message(1, resetd_core::model::MessageKind::ResetLink);
        let e = t.send(&msg).await.unwrap_err();
        assert!(e.is_transient(), "{e}");
        assert!(e.reason().contains(&format!("127.0.0.1:{port}")), "{e}");
    }
}
