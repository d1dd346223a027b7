//! A signed HTTP credential sink: the new password's hash goes to an application's endpoint,
//! signed the Standard Webhooks way (<https://www.standardwebhooks.com>, spec 1.0.0), and the
//! completion waits for the application's 2xx. The people stay in resetd (`holds_people` false),
//! which keeps its own hash too and checks passwords itself (`verifies_passwords` false).
//!
//! The request: `POST <url>` with `content-type: application/json`, the headers `webhook-id`
//! (the change id: the same on a repeat of the same change, so the receiver can drop it),
//! `webhook-timestamp` (Unix seconds of this attempt) and `webhook-signature`
//! (`v1,` + base64 of HMAC-SHA256 over `id.timestamp.body` with the decoded `whsec_` secret), and
//! the body
//!
//! ```json
//! {"type":"password.changed","timestamp":"2026-12-01T16:00:00Z",
//!  "data":{"person_id":"…","login":"ada","password_hash":"$argon2id$v=19$…"}}
//! ```
//!
//! with `data.password` (the plaintext) only when the operator set `include_plaintext = true`.
//! Answers: 2xx accepted; 401/403 (the receiver rejects resetd itself) a configuration failure;
//! 408, 425, 429 and 5xx unavailable; any other 4xx the application's refusal, its reason taken
//! from a JSON `message` or a plain-text body; a timeout after sending is indeterminate.

use std::sync::Arc;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use reqwest::{StatusCode, Url};
use resetd_core::hash::{Argon2id, HashParams};
use resetd_core::ports::{
    AccountQuery, Capabilities, ExternalAccount, ExternalCredentials, ExternalError,
};
use resetd_core::secret::random_bytes;
use resetd_core::types::Password;
use serde::Deserialize;
use sha2::Sha256;

use crate::config::{self, Secret};
use crate::http::{self, Call};

const WHAT: &str = "the application's webhook";
/// The event type of the payload (Standard Webhooks: full-stop delimited).
pub const EVENT_TYPE: &str = "password.changed";
const SECRET_PREFIX: &str = "whsec_";

/// How the payload's `password_hash` is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HashKind {
    /// `$argon2id$v=19$m=…,t=…,p=…$salt$hash`, with the section's `argon2` costs.
    Argon2id,
    /// `$2b$<cost>$…`, with `bcrypt_cost`. bcrypt reads at most 72 bytes: a longer password is
    /// refused rather than silently cut.
    Bcrypt,
}

/// The `[credentials.<tenant>]` section for `kind = "webhook"`.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// The application's endpoint.
    pub url: Url,
    secret: Secret,
    /// The hash format the application verifies.
    pub hash: HashKind,
    /// Argon2id costs (defaults: OWASP's minimum, as resetd's own).
    pub argon2: HashParams,
    /// bcrypt cost (default 12).
    pub bcrypt_cost: u32,
    /// Sends the plaintext too (`data.password`): only when the operator says so.
    pub include_plaintext: bool,
    /// The bound on the call (default 15 s, the low end of the spec's 15-30 s).
    pub timeout: std::time::Duration,
    /// An extra CA certificate bundle (PEM).
    pub ca_file: Option<std::path::PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    url: String,
    hash: Option<HashKind>,
    argon2: Option<HashParams>,
    bcrypt_cost: Option<u32>,
    #[serde(default)]
    include_plaintext: bool,
    timeout_secs: Option<u64>,
    ca_file: Option<std::path::PathBuf>,
}

impl WebhookConfig {
    /// Reads and checks the section; the error names the key and never the secret.
    pub fn from_table(table: &toml::Table) -> Result<Self, String> {
        let wrap = |e: String| format!("credentials (webhook): {e}");
        let mut table = table.clone();
        let secret = config::take_secret(&mut table, "secret", "secret_file").map_err(wrap)?;
        signing_key(&secret).map_err(wrap)?;
        let keys: Keys = config::rest(table).map_err(wrap)?;
        let argon2 = keys.argon2.unwrap_or_default();
        Argon2id::new(argon2).map_err(|e| wrap(format!("`argon2`: {e}")))?;
        let bcrypt_cost = keys.bcrypt_cost.unwrap_or(12);
        if !(4..=31).contains(&bcrypt_cost) {
            return Err(wrap("`bcrypt_cost` must be between 4 and 31".to_owned()));
        }
        Ok(Self {
            url: config::endpoint("url", &keys.url, true).map_err(wrap)?,
            secret,
            hash: keys.hash.unwrap_or(HashKind::Argon2id),
            argon2,
            bcrypt_cost,
            include_plaintext: keys.include_plaintext,
            timeout: config::timeout("timeout_secs", keys.timeout_secs, 15).map_err(wrap)?,
            ca_file: keys.ca_file,
        })
    }
}

/// The HMAC key in a `whsec_` secret: base64 (padded or not) of 24 to 64 bytes, as the spec says.
fn signing_key(secret: &Secret) -> Result<Vec<u8>, String> {
    let bad = || {
        format!(
            "`secret` must be `{SECRET_PREFIX}` followed by the base64 of 24 to 64 random bytes"
        )
    };
    let encoded = secret
        .expose()
        .strip_prefix(SECRET_PREFIX)
        .ok_or_else(bad)?;
    let key = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(encoded.trim_end_matches('='))
        .map_err(|_| bad())?;
    if !(24..=64).contains(&key.len()) {
        return Err(bad());
    }
    Ok(key)
}

/// The `webhook-signature` value for one attempt.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length, so this cannot fail; keep the type honest anyway.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
}

/// The sink.
pub struct Webhook {
    client: reqwest::Client,
    url: Url,
    key: Vec<u8>,
    hasher: Arc<Hasher>,
    include_plaintext: bool,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &self.url.as_str())
            .field("include_plaintext", &self.include_plaintext)
            .finish_non_exhaustive()
    }
}

enum Hasher {
    Argon2id(Argon2id),
    Bcrypt(u32),
}

impl Hasher {
    fn hash(&self, password: &Password) -> Result<String, ExternalError> {
        match self {
            Hasher::Argon2id(a) => a
                .hash(password)
                .map_err(|e| ExternalError::Failed(format!("hashing the password: {e}"))),
            Hasher::Bcrypt(cost) => {
                if password.expose().len() > 72 {
                    return Err(ExternalError::Refused(
                        "the application's bcrypt hash uses at most 72 bytes of a password; \
                         choose a shorter one"
                            .to_owned(),
                    ));
                }
                let parts = bcrypt::hash_with_salt(password.expose(), *cost, random_bytes::<16>())
                    .map_err(|e| ExternalError::Failed(format!("hashing the password: {e}")))?;
                Ok(parts.format_for_version(bcrypt::Version::TwoB))
            }
        }
    }
}

impl Webhook {
    /// The sink over `config` (builds the HTTP client; contacts nothing yet).
    pub fn new(config: WebhookConfig) -> Result<Self, String> {
        let wrap = |e: String| format!("credentials (webhook): {e}");
        let hasher = match config.hash {
            HashKind::Argon2id => Hasher::Argon2id(
                Argon2id::new(config.argon2).map_err(|e| wrap(format!("`argon2`: {e}")))?,
            ),
            HashKind::Bcrypt => Hasher::Bcrypt(config.bcrypt_cost),
        };
        Ok(Self {
            client: config::client(config.timeout, config.ca_file.as_ref()).map_err(wrap)?,
            key: signing_key(&config.secret).map_err(wrap)?,
            url: config.url,
            hasher: Arc::new(hasher),
            include_plaintext: config.include_plaintext,
        })
    }

    /// The payload for one change (hashing on the blocking pool: Argon2id takes tens of ms).
    async fn body(
        &self,
        account: &ExternalAccount,
        password: &Password,
        now: time::OffsetDateTime,
    ) -> Result<Vec<u8>, ExternalError> {
        let hasher = self.hasher.clone();
        let pw = password.clone();
        let hash = tokio::task::spawn_blocking(move || hasher.hash(&pw))
            .await
            .map_err(|e| ExternalError::Failed(format!("hashing the password: {e}")))??;
        let timestamp = now
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| ExternalError::Failed(format!("formatting the time: {e}")))?;
        let mut data = serde_json::json!({
            "person_id": account.stable_id,
            "login": account.login,
            "password_hash": hash,
        });
        if self.include_plaintext {
            data["password"] = serde_json::Value::String(password.expose().to_owned());
        }
        let event = serde_json::json!({ "type": EVENT_TYPE, "timestamp": timestamp, "data": data });
        serde_json::to_vec(&event)
            .map_err(|e| ExternalError::Failed(format!("building the payload: {e}")))
    }
}

fn not_supported() -> ExternalError {
    ExternalError::Failed("not supported by a webhook sink (its people live in resetd)".to_owned())
}

#[async_trait]
impl ExternalCredentials for Webhook {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            holds_people: false,
            verifies_passwords: false,
        }
    }

    async fn find_account(
        &self,
        _query: &AccountQuery,
    ) -> Result<Option<ExternalAccount>, ExternalError> {
        Err(not_supported())
    }

    async fn set_password(
        &self,
        account: &ExternalAccount,
        password: &Password,
        change_id: &str,
    ) -> Result<(), ExternalError> {
        // The id is signed as `id.timestamp.body`: a full stop in it would make that ambiguous.
        if change_id.is_empty()
            || !change_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(ExternalError::Failed(
                "the change id is not usable as a webhook-id".to_owned(),
            ));
        }
        let now = time::OffsetDateTime::now_utc();
        let body = self.body(account, password, now).await?;
        let stamp = now.unix_timestamp();
        let request = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", change_id)
            .header("webhook-timestamp", stamp.to_string())
            .header(
                "webhook-signature",
                sign(&self.key, change_id, stamp, &body),
            )
            .body(body);
        let answer = http::send(request, Call::Write, WHAT).await?;
        let status = answer.status;
        let code = status.as_u16();
        if status.is_success() {
            return Ok(());
        }
        let reason = http::reason(&answer, Some(password.expose()));
        let with_reason =
            |r: &Option<String>| r.as_ref().map(|r| format!(": {r}")).unwrap_or_default();
        Err(match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ExternalError::Failed(format!(
                "{WHAT} rejected resetd's request (HTTP {code}{}); check the shared `secret`",
                with_reason(&reason)
            )),
            StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_EARLY | StatusCode::TOO_MANY_REQUESTS => {
                ExternalError::Unavailable(format!("{WHAT} answered HTTP {code}"))
            }
            s if s.is_server_error() => ExternalError::Unavailable(format!(
                "{WHAT} answered HTTP {code}{}",
                with_reason(&reason)
            )),
            s if s.is_client_error() => {
                ExternalError::Refused(reason.unwrap_or_else(|| {
                    format!("the application refused the password (HTTP {code})")
                }))
            }
            // 1xx after the body, 3xx (redirects are not followed: the URL should be the final one).
            _ => ExternalError::Failed(format!(
                "{WHAT} answered HTTP {code}; redirects are not followed"
            )),
        })
    }

    async fn verify_password(
        &self,
        _account: &ExternalAccount,
        _password: &Password,
    ) -> Result<bool, ExternalError> {
        Err(not_supported())
    }

    async fn verify_nobody(&self, _password: &Password) -> Result<(), ExternalError> {
        Err(not_supported())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Computed with the reference Python library (`standardwebhooks` 1.1.0):
    //   Webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").sign("msg_p5jXN8AQM9LWM0D4loKWxJek",
    //       datetime.fromtimestamp(1614265330, tz=timezone.utc), '{"test": 2432232314}')
    #[test]
    fn signature_matches_the_reference_implementation() {
        let secret = Secret::for_tests("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let key = signing_key(&secret).unwrap();
        assert_eq!(
            sign(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            REFERENCE_SIGNATURE
        );
    }
    const REFERENCE_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn config_checks_the_secret_without_printing_it() {
        let parse = |s: &str| WebhookConfig::from_table(&s.parse::<toml::Table>().unwrap());
        let good = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let c = parse(&format!(
            "url = \"http://127.0.0.1:1/hook?x=1\"\nsecret = \"{good}\""
        ))
        .unwrap();
        assert_eq!(c.hash, HashKind::Argon2id);
        assert!(!c.include_plaintext, "plaintext stays out unless asked for");
        assert!(!format!("{c:?}").contains("MfKQ"));
        for (extra, wanted) in [
            (
                "secret = \"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"",
                "followed by the base64",
            ),
            ("secret = \"whsec_c2hvcnQ=\"", "24 to 64"),
            (
                "secret = \"whsec_!!!notbase64!!!\"",
                "followed by the base64",
            ),
            (
                &format!("secret = \"{good}\"\nhash = \"md5\""),
                "unknown variant",
            ),
            (
                &format!("secret = \"{good}\"\nbcrypt_cost = 3"),
                "between 4 and 31",
            ),
            (
                &format!("secret = \"{good}\"\nargon2 = {{ m_cost = 1, t_cost = 1, p_cost = 1 }}"),
                "`argon2`",
            ),
            (
                &format!("secret = \"{good}\"\nplaintext = true"),
                "unknown field",
            ),
        ] {
            let e = parse(&format!("url = \"http://127.0.0.1:1/\"\n{extra}")).unwrap_err();
            assert!(e.contains(wanted), "{extra}: {e}");
            assert!(!e.contains("MfKQ") && !e.contains("c2hvcnQ"), "{e}");
        }
    }

    #[test]
    fn bcrypt_refuses_what_it_would_cut() {
        let long = Password::parse(&"a".repeat(73)).unwrap();
        assert!(matches!(
            Hasher::Bcrypt(4).hash(&long),
            Err(ExternalError::Refused(_))
        ));
        let phc = Hasher::Bcrypt(4)
            .hash(&Password::parse("correct horse").unwrap())
            .unwrap();
        assert!(phc.starts_with("$2b$04$"), "{phc}");
        assert!(bcrypt::verify("correct horse", &phc).unwrap());
    }
}
