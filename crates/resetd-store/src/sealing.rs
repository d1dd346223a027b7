//! Outbox bodies at rest (docs/decisions.md, "Outbox bodies are sealed at rest").
//!
//! A reset email's body carries the raw token, so the database must never hold it readable.
//! Both stores seal a message's text and HTML with XChaCha20-Poly1305 under an [`OutboxKeys`]
//! key that lives outside the database (the binary keeps it in a key file), open them only in
//! [`Outbox::claim_outbox`](resetd_core::ports::Outbox::claim_outbox) for the worker, and erase
//! them (`text = ''`, `html = NULL`) once the message is sent or dead.
//!
//! Stored form, in the `text` column (`html` stays NULL):
//! `resetd-sealed:v1:<key id>:<base64url(nonce ‖ ciphertext)>`. The plaintext is the JSON
//! `{"text": …, "html": …}`, with `"sender_name"` when the message names its own sender; the
//! associated data binds it to the row's tenant, kind, recipient, subject and Message-ID, so a
//! body copied onto another row (another recipient) does not open.
//! The key id is the first 8 hex digits of SHA-256 of the key: it names which key of the file
//! sealed a row, so keys can be rotated (see [`OutboxKeys::parse`]).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use resetd_core::model::{NewMessage, OutboxMessage};
use resetd_core::store::{PasswordChange, Resolution, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a sealed body starts with.
const PREFIX: &str = "resetd-sealed:v1:";
/// Key length in bytes (256 bits).
const KEY_LEN: usize = 32;
/// XChaCha20 nonce length: random nonces of 192 bits never repeat in practice.
const NONCE_LEN: usize = 24;

/// One key: its id and its cipher (the raw key is not kept).
struct Key {
    id: String,
    cipher: XChaCha20Poly1305,
}

/// The keys that seal and open outbox bodies: the first seals, all of them open.
pub struct OutboxKeys {
    keys: Vec<Key>,
}

impl std::fmt::Debug for OutboxKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Ids only: they name keys without revealing them.
        f.debug_struct("OutboxKeys")
            .field("ids", &self.ids())
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
struct Body {
    text: String,
    html: Option<String>,
    /// Kept with the body because the row has no column for it; absent in bodies sealed before
    /// it existed (and skipped when `None`, so those bodies are unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sender_name: Option<String>,
}

fn key_id(key: &[u8]) -> String {
    let digest = Sha256::digest(key);
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_key(line: &str) -> Option<[u8; KEY_LEN]> {
    if line.len() != KEY_LEN * 2 || !line.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut key = [0u8; KEY_LEN];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&line[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(key)
}

fn random_bytes<const N: usize>() -> Result<[u8; N], String> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| format!("the OS random source failed: {e}"))?;
    Ok(bytes)
}

/// The associated data: the row's facts that the body belongs to.
fn aad(id: &str, m: &NewMessage) -> Vec<u8> {
    // Each field ends with NUL, which none of them can hold (ids, addresses, headers).
    let mut out = Vec::with_capacity(128);
    for part in [
        "resetd outbox v1",
        id,
        m.tenant.as_str(),
        m.kind.as_str(),
        m.recipient.as_str(),
        m.subject.as_str(),
        m.message_id.as_str(),
    ] {
        out.extend_from_slice(part.as_bytes());
        out.push(0);
    }
    out
}

impl OutboxKeys {
    /// Parses a key file: one key per line as 64 hex digits (256 bits); blank lines and lines
    /// starting with `#` are ignored. The first key seals new messages; the others only open
    /// messages sealed earlier, so a key is rotated by adding a new first line and keeping the
    /// old one below it until no pending message uses it. Errors name the line, never a key.
    pub fn parse(text: &str) -> Result<OutboxKeys, String> {
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let key = hex_key(line).ok_or_else(|| {
                format!(
                    "line {} is not a key (64 hexadecimal digits, 256 bits)",
                    n + 1
                )
            })?;
            let id = key_id(&key);
            if keys.iter().any(|k: &Key| k.id == id) {
                return Err(format!("line {} repeats key {id}", n + 1));
            }
            keys.push(Key {
                id,
                cipher: XChaCha20Poly1305::new(&key.into()),
            });
        }
        if keys.is_empty() {
            return Err("it holds no key (a line of 64 hexadecimal digits)".into());
        }
        Ok(OutboxKeys { keys })
    }

    /// The text of a new key file with one fresh random key.
    pub fn generate_file() -> Result<String, String> {
        let key: [u8; KEY_LEN] = random_bytes()?;
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        Ok(format!(
            "# resetd outbox key (docs/configuration.md, mail.outbox_key_file). Keep it secret and\n\
             # out of database backups. To rotate: put a new key on a line above this one.\n{hex}\n"
        ))
    }

    /// A key that lives only in this process: messages it seals cannot be sent by another
    /// process or after a restart. For tests and tools; the binary always passes its key file.
    #[allow(
        clippy::panic,
        reason = "tests and tools only; an OS random source failure is not recoverable"
    )]
    pub fn ephemeral() -> OutboxKeys {
        // The OS random source failing here is not recoverable and not expected.
        let key: [u8; KEY_LEN] = random_bytes().unwrap_or_else(|e| panic!("{e}"));
        OutboxKeys {
            keys: vec![Key {
                id: key_id(&key),
                cipher: XChaCha20Poly1305::new(&key.into()),
            }],
        }
    }

    /// The ids of the keys, the sealing one first.
    pub fn ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }

    /// Whether the key `id` is here.
    pub fn has(&self, id: &str) -> bool {
        self.keys.iter().any(|k| k.id == id)
    }

    /// The id of the key that sealed a stored body (`text` as the store keeps it), or `None` for
    /// a body that is not sealed (erased, or written by a version before sealing).
    pub fn sealed_with(stored_text: &str) -> Option<&str> {
        stored_text.strip_prefix(PREFIX)?.split(':').next()
    }

    /// Replaces `m`'s text and HTML by their sealed form (HTML `None`).
    pub(crate) fn seal(&self, m: &mut NewMessage) -> Result<(), StoreError> {
        let key = &self.keys[0];
        let body = serde_json::to_vec(&Body {
            text: std::mem::take(&mut m.text),
            html: m.html.take(),
            sender_name: m.sender_name.take(),
        })
        .map_err(|e| StoreError::Backend(format!("encoding a message body: {e}")))?;
        let nonce: [u8; NONCE_LEN] = random_bytes().map_err(StoreError::Backend)?;
        let sealed = key
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &body,
                    aad: &aad(&key.id, m),
                },
            )
            .map_err(|_| StoreError::Backend("sealing a message body failed".into()))?;
        let mut blob = Vec::with_capacity(NONCE_LEN + sealed.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&sealed);
        m.text = format!("{PREFIX}{}:{}", key.id, URL_SAFE_NO_PAD.encode(blob));
        Ok(())
    }

    /// Opens `m`'s body in place. A body that was never sealed (queued by a version before
    /// sealing) is left as it is. The error is a reason for the outbox's `last_error`: it names
    /// the key, never the body.
    pub(crate) fn open(&self, m: &mut NewMessage) -> Result<(), String> {
        let Some(rest) = m.text.strip_prefix(PREFIX) else {
            if m.text.is_empty() {
                return Err("the message body was erased; it cannot be sent".into());
            }
            return Ok(());
        };
        let (id, data) = rest
            .split_once(':')
            .ok_or("the sealed message body is malformed")?;
        let key = self.keys.iter().find(|k| k.id == id).ok_or_else(|| {
            format!(
                "the message body is sealed with outbox key {id}, which is not in this instance's \
                 key file (mail.outbox_key_file); it cannot be sent"
            )
        })?;
        let blob = URL_SAFE_NO_PAD
            .decode(data)
            .map_err(|_| "the sealed message body is malformed".to_owned())?;
        if blob.len() < NONCE_LEN {
            return Err("the sealed message body is malformed".into());
        }
        let (nonce, sealed) = blob.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce)
            .map_err(|_| "the sealed message body is malformed".to_owned())?;
        let body = key
            .cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: sealed,
                    aad: &aad(id, m),
                },
            )
            .map_err(|_| {
                format!(
                    "the message body does not open with outbox key {id} (altered, or not \
                     written for this message); it cannot be sent"
                )
            })?;
        let body: Body = serde_json::from_slice(&body)
            .map_err(|_| "the opened message body is malformed".to_owned())?;
        m.text = body.text;
        m.html = body.html;
        m.sender_name = body.sender_name;
        Ok(())
    }
}

/// The helpers both stores use around their SQL.
impl OutboxKeys {
    /// Seals the email a resolution would queue.
    pub(crate) fn seal_resolution(&self, r: &mut Resolution) -> Result<(), StoreError> {
        match r {
            Resolution::Discard(_) => Ok(()),
            Resolution::Issue(issue) => self.seal(&mut issue.message),
        }
    }

    /// Seals the "password changed" email of a change, if any.
    pub(crate) fn seal_change(&self, change: &mut PasswordChange) -> Result<(), StoreError> {
        match &mut change.message {
            Some(m) => self.seal(m),
            None => Ok(()),
        }
    }

    /// Opens every claimed message: those that open, and for the others their id and why not
    /// (the store marks them dead with that reason: a worker must never send a sealed body).
    pub(crate) fn open_claimed(
        &self,
        claimed: Vec<OutboxMessage>,
    ) -> (Vec<OutboxMessage>, Vec<(i64, String)>) {
        let mut opened = Vec::with_capacity(claimed.len());
        let mut unreadable = Vec::new();
        for mut m in claimed {
            match self.open(&mut m.message) {
                Ok(()) => opened.push(m),
                Err(why) => {
                    tracing::error!(outbox_id = m.id, reason = %why, "an outbox message cannot be opened; marking it dead");
                    unreadable.push((m.id, why));
                }
            }
        }
        (opened, unreadable)
    }
}

#[cfg(test)]
mod tests {
    use resetd_core::model::{MessageKind, Timestamp};
    use resetd_core::types::{Email, TenantId};

    use super::*;

    fn message() -> NewMessage {
        NewMessage {
            tenant: TenantId::parse("acme").unwrap(),
            kind: MessageKind::ResetLink,
            recipient: Email::parse("ann@example.com").unwrap(),
            subject: "Reset your password".into(),
            text: "open https://x.example/reset?token=SECRETSECRET".into(),
            html: Some("<a href=\"https://x.example/reset?token=SECRETSECRET\">".into()),
            sender_name: Some("Acme".into()),
            message_id: "<1@resetd.localhost>".into(),
            created_at: Timestamp(1),
            deliver_by: Timestamp(1_800_001),
        }
    }

    #[test]
    fn sealed_bodies_hide_the_text_and_open_with_any_key_of_the_file() {
        let old_file = OutboxKeys::generate_file().unwrap();
        let old = OutboxKeys::parse(&old_file).unwrap();
        let mut m = message();
        old.seal(&mut m).unwrap();
        assert!(!m.text.contains("SECRET") && m.html.is_none(), "{}", m.text);
        assert_eq!(m.sender_name, None, "sealed with the body");
        assert_eq!(OutboxKeys::sealed_with(&m.text), Some(old.ids()[0]));

        // Another key alone does not open it, and says which key it needs.
        let new_file = OutboxKeys::generate_file().unwrap();
        let new = OutboxKeys::parse(&new_file).unwrap();
        assert!(new.open(&mut m.clone()).unwrap_err().contains(old.ids()[0]));
        // Rotated: the new key first, the old one below it still opens what it sealed.
        let rotated = OutboxKeys::parse(&format!("{new_file}{old_file}")).unwrap();
        assert_eq!(rotated.ids(), vec![new.ids()[0], old.ids()[0]]);
        let mut opened = m.clone();
        rotated.open(&mut opened).unwrap();
        assert_eq!(opened, message());
        let mut resealed = message();
        rotated.seal(&mut resealed).unwrap();
        assert_eq!(OutboxKeys::sealed_with(&resealed.text), Some(new.ids()[0]));
        // A message without a sender name of its own opens without one.
        let plain = NewMessage {
            sender_name: None,
            ..message()
        };
        let mut sealed = plain.clone();
        rotated.seal(&mut sealed).unwrap();
        rotated.open(&mut sealed).unwrap();
        assert_eq!(sealed, plain);
    }

    #[test]
    fn a_body_moved_to_another_row_or_altered_does_not_open() {
        let keys = OutboxKeys::ephemeral();
        let mut m = message();
        keys.seal(&mut m).unwrap();
        let mut moved = m.clone();
        moved.recipient = Email::parse("mallory@example.com").unwrap();
        assert!(keys.open(&mut moved).unwrap_err().contains("does not open"));
        let mut altered = m.clone();
        let last = altered.text.pop().unwrap();
        altered.text.push(if last == 'A' { 'B' } else { 'A' });
        assert!(keys.open(&mut altered).is_err());
        let mut erased = m.clone();
        erased.text.clear();
        assert!(keys.open(&mut erased).unwrap_err().contains("erased"));
        // A body from before sealing passes through as it is.
        let mut legacy = message();
        keys.open(&mut legacy).unwrap();
        assert_eq!(legacy, message());
    }

    #[test]
    fn key_files_are_checked_and_never_echoed() {
        let bad = "not-a-key-but-secret-looking";
        let e = OutboxKeys::parse(bad).unwrap_err();
        assert!(e.contains("line 1") && !e.contains(bad), "{e}");
        assert!(OutboxKeys::parse("# only a comment\n").is_err());
        let k = "ab".repeat(32);
        assert!(OutboxKeys::parse(&format!("{k}\n{k}\n"))
            .unwrap_err()
            .contains("repeats"));
        let keys = OutboxKeys::parse(&k).unwrap();
        assert!(!format!("{keys:?}").contains(&k));
    }
}
