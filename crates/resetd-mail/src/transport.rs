//! Delivering outbox messages: the [`Transport`] trait, the MIME builder every transport shares, and
//! [`FileTransport`], which writes `.eml` files for the demo and for tests.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::Message;
use resetd_core::model::{MessageKind, OutboxMessage};

/// Why a delivery attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Worth retrying later (connection refused, 4xx reply, disk full…).
    Transient(String),
    /// Will never succeed (malformed address, 5xx reply); the message is marked dead at once.
    Permanent(String),
}

impl SendError {
    /// The reason, for logs and the outbox's `last_error`.
    pub fn reason(&self) -> &str {
        match self {
            Self::Transient(r) | Self::Permanent(r) => r,
        }
    }

    /// Whether a later attempt may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transient(r) => write!(f, "transient: {r}"),
            Self::Permanent(r) => write!(f, "permanent: {r}"),
        }
    }
}

impl std::error::Error for SendError {}

/// Delivers one outbox message. Implementations must be safe to call again with the same message
/// (the outbox guarantees at-least-once delivery; the stable Message-ID lets receivers dedupe).
#[async_trait]
pub trait Transport: Send + Sync {
    /// Sends `msg`; the error says whether to retry.
    async fn send(&self, msg: &OutboxMessage) -> Result<(), SendError>;
}

/// Builds the RFC 5322 form of `msg` sent from `from` (an address, optionally with a display name:
/// `resetd <noreply@example.com>`; the message's own sender name replaces that name): `multipart/alternative` with the text and HTML parts (plain text
/// only when there is no HTML), headers From, To, Subject, Date (when the message was queued) and
/// Message-ID (the stored one, so every attempt carries the same id).
///
/// A malformed sender, recipient or Message-ID is a [`SendError::Permanent`].
pub fn build_mime(msg: &OutboxMessage, from: &str) -> Result<Vec<u8>, SendError> {
    let m = &msg.message;
    let mut from: Mailbox = from.parse().map_err(|e| {
        SendError::Permanent(format!("the sender address {from:?} is malformed: {e}"))
    })?;
    // A message that speaks for a vendor product names its sender after it; the address (and so
    // the envelope sender, SPF and DKIM) stays the configured one.
    if let Some(name) = &m.sender_name {
        from.name = Some(name.chars().filter(|c| !c.is_control()).collect());
    }
    let to: Mailbox =
        m.recipient.as_str().parse().map_err(|e| {
            SendError::Permanent(format!("the recipient address is malformed: {e}"))
        })?;
    let id = &m.message_id;
    if id.is_empty() || id.len() > 900 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(SendError::Permanent(
            "the stored Message-ID is malformed".into(),
        ));
    }
    // The subject was flattened when rendered; flatten again in case a row was written otherwise.
    let subject: String = m
        .subject
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let date = UNIX_EPOCH + Duration::from_millis(m.created_at.0.max(0) as u64);
    let builder = Message::builder()
        .from(from)
        .to(to)
        .subject(subject.trim())
        .date(date)
        .message_id(Some(id.clone()));
    let message = match &m.html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(
            m.text.clone(),
            html.clone(),
        )),
        None => builder.singlepart(SinglePart::plain(m.text.clone())),
    }
    .map_err(|e| SendError::Permanent(format!("the message cannot be built: {e}")))?;
    Ok(message.formatted())
}

/// The first `http://` or `https://` URL in `text`, without trailing punctuation.
pub(crate) fn first_url(text: &str) -> Option<&str> {
    let start = [text.find("https://"), text.find("http://")]
        .into_iter()
        .flatten()
        .min()?;
    let rest = &text[start..];
    let end = rest
        .find(|c: char| c.is_whitespace() || "<>\"'".contains(c))
        .unwrap_or(rest.len());
    let url = rest[..end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']']);
    Some(url)
}

/// Writes each message as `{dir}/{id}-{kind}.eml` (for the demo and tests), atomically: to a
/// temporary name first, then renamed. Logs the link of reset emails at info level so a demo user
/// can click it — the only place resetd ever logs a reset link.
#[derive(Debug, Clone)]
pub struct FileTransport {
    dir: PathBuf,
    from: String,
}

impl FileTransport {
    /// A transport writing into `dir` (created on first send) with `from` as the sender.
    pub fn new(dir: impl Into<PathBuf>, from: impl Into<String>) -> Self {
        Self {
            dir: dir.into(),
            from: from.into(),
        }
    }

    /// The directory messages are written to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file a message is written to.
    pub fn path_for(&self, msg: &OutboxMessage) -> PathBuf {
        self.dir
            .join(format!("{}-{}.eml", msg.id, msg.message.kind.as_str()))
    }
}

#[async_trait]
impl Transport for FileTransport {
    async fn send(&self, msg: &OutboxMessage) -> Result<(), SendError> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let bytes = build_mime(msg, &self.from)?;
        let io = |what: &str, e: std::io::Error| {
            SendError::Transient(format!("{what} {}: {e}", self.dir.display()))
        };
        let path = self.path_for(msg);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        let tmp = self.dir.join(format!(
            ".{}-{}.{}.{}.{nanos}.tmp",
            msg.id,
            msg.message.kind.as_str(),
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        // One trip to the blocking pool for the whole write (each tokio::fs call is one).
        let (dir, target) = (self.dir.clone(), path.clone());
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir).map_err(|e| ("cannot create", e))?;
            let written = std::fs::write(&tmp, &bytes)
                .map_err(|e| ("cannot write into", e))
                .and_then(|()| {
                    std::fs::rename(&tmp, &target).map_err(|e| ("cannot rename into", e))
                });
            if written.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            written
        })
        .await
        .map_err(|e| SendError::Transient(format!("the file write did not finish: {e}")))?
        .map_err(|(what, e)| io(what, e))?;
        if msg.message.kind == MessageKind::ResetLink {
            match first_url(&msg.message.text) {
                Some(link) => tracing::info!(
                    outbox_id = msg.id,
                    recipient = %msg.message.recipient,
                    file = %path.display(),
                    link,
                    "reset email written (file transport, demo): open the link to reset the password"
                ),
                None => tracing::info!(
                    outbox_id = msg.id,
                    recipient = %msg.message.recipient,
                    file = %path.display(),
                    "reset email written (file transport, demo); no link found in its text"
                ),
            }
        } else {
            tracing::debug!(outbox_id = msg.id, kind = msg.message.kind.as_str(), file = %path.display(), "email written");
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use resetd_core::model::{NewMessage, OutboxStatus, Timestamp};
    use resetd_core::types::{Email, TenantId};

    pub(crate) fn outbox_message(id: i64, kind: MessageKind) -> OutboxMessage {
        OutboxMessage {
            id,
            message: NewMessage {
                tenant: TenantId::parse("default").unwrap(),
                kind,
                recipient: Email::parse("jane@example.com").unwrap(),
                subject: "Reset your password".into(),
                text:
                    "Hello,\n\nopen https://id.example.com/reset/default?token=abc_DEF-1.\n\nBye\n"
                        .into(),
                html: Some("<p>Hello <b>Jane</b></p>".into()),
                sender_name: None,
                message_id: "<0123abcd@resetd.example.com>".into(),
                created_at: Timestamp(1_700_000_000_000),
                deliver_by: Timestamp(1_700_000_000_000 + 1_800_000),
            },
            attempts: 0,
            next_attempt_at: Timestamp(0),
            status: OutboxStatus::Pending,
            last_error: None,
            sent_at: None,
        }
    }

    /// A small RFC 5322 / MIME reader, enough to check what we write: unfolded headers and body.
    pub(crate) struct Parsed {
        pub headers: Vec<(String, String)>,
        pub body: String,
    }

    impl Parsed {
        pub fn parse(raw: &str) -> Parsed {
            let (head, body) = raw
                .split_once("\r\n\r\n")
                .expect("a blank line after the headers");
            let mut headers: Vec<(String, String)> = Vec::new();
            for line in head.split("\r\n") {
                if line.starts_with([' ', '\t']) {
                    let last = headers.last_mut().expect("a continuation after a header");
                    last.1.push(' ');
                    last.1.push_str(line.trim());
                } else {
                    let (k, v) = line.split_once(':').expect("a header line");
                    headers.push((k.to_ascii_lowercase(), v.trim().to_owned()));
                }
            }
            Parsed {
                headers,
                body: body.to_owned(),
            }
        }

        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k == &name.to_ascii_lowercase())
                .map(|(_, v)| v.as_str())
        }

        /// The parts of a multipart body.
        pub fn parts(&self) -> Vec<Parsed> {
            let ct = self.header("content-type").unwrap();
            let boundary = ct.split("boundary=").nth(1).unwrap().trim_matches('"');
            let delim = format!("--{boundary}");
            let mut parts = Vec::new();
            for chunk in self.body.split(&delim).skip(1) {
                if chunk.starts_with("--") {
                    break;
                }
                parts.push(Parsed::parse(chunk.trim_start_matches("\r\n")));
            }
            parts
        }

        /// The body with its transfer encoding undone (7bit or quoted-printable).
        pub fn decoded(&self) -> String {
            match self.header("content-transfer-encoding") {
                Some(e) if e.eq_ignore_ascii_case("quoted-printable") => {
                    let soft = self.body.replace("=\r\n", "");
                    let mut out = Vec::new();
                    let b = soft.as_bytes();
                    let mut i = 0;
                    while i < b.len() {
                        if b[i] == b'=' && i + 2 < b.len() {
                            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
                            out.push(u8::from_str_radix(hex, 16).unwrap());
                            i += 3;
                        } else {
                            out.push(b[i]);
                            i += 1;
                        }
                    }
                    String::from_utf8(out).unwrap()
                }
                _ => self.body.clone(),
            }
        }
    }

    #[test]
    fn a_message_with_its_own_sender_name_keeps_the_configured_address() {
        let mut msg = outbox_message(8, MessageKind::ResetLink);
        msg.message.sender_name = Some("Unleash".into());
        for from in [
            "resetd <noreply@resetd.example.com>",
            "noreply@resetd.example.com",
        ] {
            let raw = build_mime(&msg, from).unwrap();
            let p = Parsed::parse(std::str::from_utf8(&raw).unwrap());
            assert_eq!(
                p.header("from"),
                Some("Unleash <noreply@resetd.example.com>"),
                "{from}"
            );
        }
        // A name is never a way into the headers.
        msg.message.sender_name = Some("Evil\r\nBcc: x@evil.example".into());
        let raw = build_mime(&msg, "noreply@resetd.example.com").unwrap();
        let text = std::str::from_utf8(&raw).unwrap();
        assert!(!text.to_ascii_lowercase().contains("\nbcc:"), "{text}");
    }

    #[test]
    fn build_mime_makes_multipart_alternative_with_the_stable_message_id() {
        let msg = outbox_message(7, MessageKind::ResetLink);
        let a = build_mime(&msg, "resetd <noreply@resetd.example.com>").unwrap();
        let b = build_mime(&msg, "resetd <noreply@resetd.example.com>").unwrap();
        for raw in [&a, &b] {
            let p = Parsed::parse(std::str::from_utf8(raw).unwrap());
            assert_eq!(
                p.header("message-id"),
                Some("<0123abcd@resetd.example.com>")
            );
        }
        let p = Parsed::parse(std::str::from_utf8(&a).unwrap());
        assert_eq!(
            p.header("from"),
            Some("resetd <noreply@resetd.example.com>")
        );
        assert_eq!(p.header("to"), Some("jane@example.com"));
        assert_eq!(p.header("subject"), Some("Reset your password"));
        assert_eq!(p.header("date"), Some("Tue, 14 Nov 2023 22:13:20 +0000"));
        assert_eq!(p.header("mime-version"), Some("1.0"));
        assert!(p
            .header("content-type")
            .unwrap()
            .starts_with("multipart/alternative"));
        let parts = p.parts();
        assert_eq!(parts.len(), 2);
        assert!(parts[0]
            .header("content-type")
            .unwrap()
            .starts_with("text/plain"));
        assert!(parts[0]
            .decoded()
            .contains("https://id.example.com/reset/default?token=abc_DEF-1"));
        assert!(parts[1]
            .header("content-type")
            .unwrap()
            .starts_with("text/html"));
        assert!(parts[1].decoded().contains("<b>Jane</b>"));
    }

    #[test]
    fn build_mime_without_html_is_plain_text() {
        let mut msg = outbox_message(7, MessageKind::PasswordChanged);
        msg.message.html = None;
        let raw = build_mime(&msg, "noreply@resetd.example.com").unwrap();
        let p = Parsed::parse(std::str::from_utf8(&raw).unwrap());
        assert!(p.header("content-type").unwrap().starts_with("text/plain"));
    }

    #[test]
    fn build_mime_refuses_bad_addresses_and_ids_permanently() {
        let msg = outbox_message(1, MessageKind::ResetLink);
        let e = build_mime(&msg, "not an address").unwrap_err();
        assert!(
            matches!(&e, SendError::Permanent(r) if r.contains("sender")),
            "{e}"
        );
        let mut bad_id = msg.clone();
        bad_id.message.message_id = "<a b>\r\nBcc: x@y.com".into();
        assert!(matches!(
            build_mime(&bad_id, "a@b.com"),
            Err(SendError::Permanent(_))
        ));
    }

    #[test]
    fn build_mime_keeps_newlines_out_of_the_subject() {
        let mut msg = outbox_message(1, MessageKind::ResetLink);
        msg.message.subject = "Hi\r\nBcc: evil@example.com".into();
        let raw = String::from_utf8(build_mime(&msg, "a@b.com").unwrap()).unwrap();
        let p = Parsed::parse(&raw);
        assert!(p.header("bcc").is_none());
        assert_eq!(p.header("subject"), Some("Hi  Bcc: evil@example.com"));
    }

    #[test]
    fn first_url_finds_the_link() {
        assert_eq!(
            first_url("go to https://x.example/r?t=a_b-c. now"),
            Some("https://x.example/r?t=a_b-c")
        );
        assert_eq!(
            first_url("<http://x.example/r>"),
            Some("http://x.example/r")
        );
        assert_eq!(first_url("no link here"), None);
    }

    #[tokio::test]
    async fn file_transport_writes_a_parseable_eml_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let t = FileTransport::new(
            dir.path().join("mail"),
            "resetd <noreply@resetd.example.com>",
        );
        let msg = outbox_message(42, MessageKind::ResetLink);
        t.send(&msg).await.unwrap();
        t.send(&msg).await.unwrap(); // a retry overwrites the same file
        let names: Vec<String> = std::fs::read_dir(t.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["42-reset_link.eml".to_owned()]);
        let raw = std::fs::read_to_string(t.path_for(&msg)).unwrap();
        let p = Parsed::parse(&raw);
        assert_eq!(
            p.header("message-id"),
            Some("<0123abcd@resetd.example.com>")
        );
        assert_eq!(p.parts().len(), 2);

        let mut bad = outbox_message(43, MessageKind::PasswordChanged);
        bad.message.message_id = String::new();
        assert!(matches!(t.send(&bad).await, Err(SendError::Permanent(_))));
    }

    #[tokio::test]
    async fn file_transport_reports_io_failures_as_transient() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, "x").unwrap();
        let t = FileTransport::new(&file, "a@b.com");
        let e = t
            .send(&outbox_message(1, MessageKind::ResetLink))
            .await
            .unwrap_err();
        assert!(e.is_transient(), "{e}");
    }
}
