//! [`SmtpTransport`]: delivery over real SMTP with lettre's async SMTP client — pooled
//! connections, plain, STARTTLS or implicit TLS (rustls with the `ring` provider and the Mozilla
//! roots, plus an optional CA file), optional AUTH, and a time limit per message. Failures are
//! sorted into transient and permanent ones for the outbox worker.

use std::fmt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use lettre::address::{Address, Envelope};
use lettre::message::Mailbox;
use lettre::transport::smtp;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use resetd_core::model::OutboxMessage;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::transport::{build_mime, SendError, Transport};

mod implicit_tls;

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
    /// A file holding the AUTH password instead (or `RESETD_SMTP_PASSWORD_FILE`); read by the
    /// binary at start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// Time limit, in seconds, for delivering one message: connecting (when no pooled connection
    /// is free), TLS, EHLO, AUTH, MAIL, RCPT and DATA together.
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
            password_file: None,
            timeout_secs: 20,
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
        let ca = match &self.ca_file {
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("mail.smtp.ca_file {}: {e}", path.display()))?;
                if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
                    return Err(format!(
                        "mail.smtp.ca_file {}: holds no PEM certificate",
                        path.display()
                    ));
                }
                Some(pem)
            }
            None => None,
        };
        let security = match self.tls {
            SmtpTls::None => Security::Plain,
            SmtpTls::Starttls => {
                let mut params = TlsParameters::builder(host.to_owned());
                if let Some(pem) = &ca {
                    let cert = Certificate::from_pem(pem)
                        .map_err(|e| format!("mail.smtp.ca_file: {e}"))?;
                    params = params.add_root_certificate(cert);
                }
                Security::StartTls(
                    params
                        .build_rustls()
                        .map_err(|e| format!("mail.smtp TLS settings: {e}"))?,
                )
            }
            SmtpTls::Tls => Security::Implicit(implicit_tls::Connector::new(host, ca.as_deref())?),
        };
        Ok(Parts {
            sender,
            host: host.to_owned(),
            credentials,
            hello,
            security,
        })
    }
}

struct Parts {
    sender: Mailbox,
    host: String,
    credentials: Option<Credentials>,
    hello: ClientId,
    security: Security,
}

/// How a session is secured, ready to use.
enum Security {
    Plain,
    /// Required STARTTLS, with lettre's TLS settings.
    StartTls(TlsParameters),
    /// TLS from the first byte.
    Implicit(implicit_tls::Connector),
}

/// A pooled connection waiting for its next message.
struct Idle {
    conn: AsyncSmtpConnection,
    since: Instant,
}

/// Sends outbox messages to an SMTP server (a relay or submission server). At most `pool_size`
/// connections are open at once; a connection that delivered a message is kept for the next one
/// (checked with `NOOP` first) until it has been idle for `idle_timeout_secs`.
///
/// resetd opens the TCP connections and keeps its own small pool instead of lettre's: lettre's
/// async client limits only the time to connect, its pool would put a connection whose exchange
/// was cut off by a time limit back into use, out of step with the server, and its connections
/// keep Nagle's algorithm on. Here each message's whole exchange runs under `timeout_secs`, a
/// connection that did not finish cleanly is closed, never reused, and `TCP_NODELAY` is set.
pub struct SmtpTransport {
    host: String,
    port: u16,
    security: Security,
    hello: ClientId,
    credentials: Option<Credentials>,
    timeout: Duration,
    idle_timeout: Duration,
    idle: Mutex<Vec<Idle>>,
    slots: Semaphore,
    from: String,
    sender: Address,
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

/// Where in the exchange a failure happened.
enum Stage {
    /// Connecting, TLS, EHLO, AUTH: about the server or resetd's settings, never the message.
    Session,
    /// MAIL, RCPT, DATA: the server's verdict on this message.
    Message,
}

impl SmtpTransport {
    /// A transport for `config`, sending as `from` (an address, optionally with a display name).
    /// Fails on invalid settings; does not connect (the first message does).
    pub fn new(config: &SmtpConfig, from: &str) -> Result<Self, String> {
        let parts = config.build_parts(from)?;
        let port = config.effective_port();
        Ok(Self {
            endpoint: format!("{}:{port} ({})", parts.host, config.tls.as_str()),
            host: parts.host,
            port,
            security: parts.security,
            hello: parts.hello,
            credentials: parts.credentials,
            timeout: Duration::from_secs(config.timeout_secs),
            idle_timeout: Duration::from_secs(config.idle_timeout_secs),
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(config.pool_size as usize),
            from: from.to_owned(),
            sender: parts.sender.email,
        })
    }

    /// `host:port (tls mode)`, for logs.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A TCP connection to the server (the first address that answers), with Nagle's algorithm
    /// off: lettre writes a message's body and its final `.` separately and then waits for the
    /// reply, which with Nagle and delayed ACKs costs ~40 ms per message.
    async fn open_tcp(&self) -> Result<TcpStream, SendError> {
        let unreachable = |why: String| {
            SendError::Transient(format!(
                "cannot reach the SMTP server {}: {why}",
                self.endpoint
            ))
        };
        let addrs = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|e| unreachable(format!("cannot resolve {}: {e}", self.host)))?;
        let mut last = format!("{} has no address", self.host);
        for addr in addrs {
            match tokio::time::timeout(self.timeout, TcpStream::connect(addr)).await {
                Ok(Ok(tcp)) => {
                    let _ = tcp.set_nodelay(true);
                    return Ok(tcp);
                }
                Ok(Err(e)) => last = format!("{addr}: {e}"),
                Err(_) => last = format!("{addr}: connecting timed out"),
            }
        }
        Err(unreachable(last))
    }

    /// A new session: connected, encrypted as configured, greeted and authenticated.
    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let session = |e: smtp::Error| classify(Stage::Session, &e, &self.endpoint);
        let tcp = self.open_tcp().await?;
        let mut conn = match &self.security {
            Security::Implicit(tls) => {
                let tls = tls.connect(tcp).await.map_err(|e| {
                    SendError::Transient(format!(
                        "TLS with the SMTP server {} failed: {e}",
                        self.endpoint
                    ))
                })?;
                AsyncSmtpConnection::connect_with_transport(Box::new(tls), &self.hello).await
            }
            _ => AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello).await,
        }
        .map_err(session)?;
        if let Security::StartTls(params) = &self.security {
            conn.starttls(params.clone(), &self.hello)
                .await
                .map_err(session)?;
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(session)?;
        }
        Ok(conn)
    }

    /// A pooled session that still answers, if there is one.
    async fn reuse(&self) -> Option<AsyncSmtpConnection> {
        let check = self.timeout.min(Duration::from_secs(5));
        loop {
            let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()?;
            if idle.since.elapsed() > self.idle_timeout {
                continue; // dropped: closed
            }
            let mut conn = idle.conn;
            if let Ok(true) = tokio::time::timeout(check, conn.test_connected()).await {
                return Some(conn);
            }
        }
    }

    /// Delivers one message over a pooled or new session.
    async fn deliver(&self, envelope: &Envelope, bytes: &[u8]) -> Result<(), SendError> {
        let mut conn = match self.reuse().await {
            Some(conn) => conn,
            None => self.connect().await?,
        };
        // On failure lettre has already ended the session; `conn` is dropped (closed) here.
        conn.send(envelope, bytes)
            .await
            .map_err(|e| classify(Stage::Message, &e, &self.endpoint))?;
        if !conn.has_broken() {
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Idle {
                    conn,
                    since: Instant::now(),
                });
        }
        Ok(())
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
        // A cut-off exchange drops its session with the future: it is closed, not reused.
        let exchange = self
            .deliver(&envelope, &bytes)
            .instrument(tracing::debug_span!("smtp.send", otel.kind = "client"));
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(())) => {
                tracing::debug!(
                    outbox_id = msg.id,
                    kind = msg.message.kind.as_str(),
                    message_id = %msg.message.message_id,
                    "email accepted by the SMTP server"
                );
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(SendError::Transient(format!(
                "the SMTP server {} did not finish the exchange within {} s",
                self.endpoint,
                self.timeout.as_secs()
            ))),
        }
    }
}

/// Sorts an SMTP failure. Only the server's verdict on the message itself can be permanent: a
/// 5xx reply to MAIL, RCPT or DATA, or a message this server cannot take (an internationalised
/// address without SMTPUTF8). Everything about the session — connecting, TLS, the greeting,
/// authentication, whatever the reply code — and every 4xx reply or time-out is worth retrying:
/// it concerns the server or resetd's settings, and an operator can fix those.
fn classify(stage: Stage, e: &smtp::Error, endpoint: &str) -> SendError {
    let text = flatten(&e.to_string());
    match stage {
        Stage::Session if e.status().is_some() => SendError::Transient(format!(
            "the SMTP server {endpoint} refused the session (check mail.smtp settings): {text}"
        )),
        Stage::Session if e.is_client() => SendError::Transient(format!(
            "the SMTP server {endpoint} cannot be used as configured: {text}"
        )),
        Stage::Session => {
            SendError::Transient(format!("cannot reach the SMTP server {endpoint}: {text}"))
        }
        Stage::Message if e.is_permanent() => SendError::Permanent(format!(
            "the SMTP server {endpoint} refused the message: {text}"
        )),
        Stage::Message if e.is_transient() => SendError::Transient(format!(
            "the SMTP server {endpoint} deferred the message: {text}"
        )),
        Stage::Message if e.is_client() => {
            SendError::Permanent(format!("the message cannot be sent: {text}"))
        }
        Stage::Message => SendError::Transient(format!(
            "the connection to the SMTP server {endpoint} failed: {text}"
        )),
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
    async fn a_server_that_never_answers_is_cut_off_after_the_time_limit() {
        // Accepts connections and says nothing, not even a greeting.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let _held = std::thread::spawn(move || {
            let conns: Vec<_> = listener.incoming().take(1).collect();
            std::thread::sleep(Duration::from_secs(5));
            drop(conns);
        });
        let t = SmtpTransport::new(
            &SmtpConfig {
                host: "127.0.0.1".into(),
                port: Some(port),
                tls: SmtpTls::None,
                timeout_secs: 1,
                ..Default::default()
            },
            "resetd <noreply@example.com>",
        )
        .unwrap();
        let msg =
            crate::transport::tests::outbox_message(1, resetd_core::model::MessageKind::ResetLink);
        let started = Instant::now();
        let e = t.send(&msg).await.unwrap_err();
        assert!(e.is_transient(), "{e}");
        assert!(e.reason().contains("within 1 s"), "{e}");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
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
