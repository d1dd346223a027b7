//! The other ports' doubles: a clock the test sets, a cheap hasher that counts its work, and a
//! renderer that records what it rendered.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::hash::{Argon2id, HashError, HashParams, PasswordHasher, Verified};
use crate::model::{Clock, MessageKind, Timestamp};
use crate::policy::{PasswordPolicy, PersonalContext, Verdict};
use crate::render::{MessageContext, Rendered, Renderer};
use crate::secret::ResetSecret;
use crate::types::{ClientName, Locale, Password, TenantId};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The instant a [`ManualClock`] starts at by default (2023-11-14T22:13:20Z), the same as the
/// store conformance suite's.
pub const T0: Timestamp = Timestamp(1_700_000_000_000);

/// A clock that only moves when the test moves it.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl Default for ManualClock {
    fn default() -> Self {
        Self::at(T0)
    }
}

impl ManualClock {
    /// A clock showing `t`.
    pub fn at(t: Timestamp) -> Self {
        Self(AtomicI64::new(t.0))
    }

    /// Sets the time.
    pub fn set(&self, t: Timestamp) {
        self.0.store(t.0, Ordering::SeqCst);
    }

    /// Moves the time by `ms` milliseconds (back when negative).
    pub fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }

    /// Moves the time by `secs` seconds (back when negative).
    pub fn advance_secs(&self, secs: i64) {
        self.advance_ms(secs.saturating_mul(1000));
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

/// How many times each [`InlineHasher`] method ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HashCounts {
    pub hashes: u32,
    /// Verifications against a stored hash.
    pub verifies: u32,
    /// Verifications against the dummy hash (unknown, disabled or locked logins).
    pub dummies: u32,
    pub policy_checks: u32,
}

/// Argon2id at its smallest cost (8 KiB, one pass), run on the calling thread: real PHC strings
/// that verify like the production ones (imported foreign hashes too), in microseconds. It
/// counts its calls, so a test can pin rules such as "exactly one verification per login", and
/// can be made to answer `Overloaded` ([`InlineHasher::set_overloaded`]).
#[derive(Debug)]
pub struct InlineHasher {
    argon: Argon2id,
    overloaded: AtomicBool,
    hashes: AtomicU32,
    verifies: AtomicU32,
    dummies: AtomicU32,
    policy_checks: AtomicU32,
}

/// The cost [`InlineHasher`] hashes at.
pub const CHEAP_PARAMS: HashParams = HashParams {
    m_cost: 8,
    t_cost: 1,
    p_cost: 1,
};

impl InlineHasher {
    /// A hasher at [`CHEAP_PARAMS`].
    pub fn new() -> Result<Self, HashError> {
        Ok(Self {
            argon: Argon2id::new(CHEAP_PARAMS)?,
            overloaded: AtomicBool::new(false),
            hashes: AtomicU32::new(0),
            verifies: AtomicU32::new(0),
            dummies: AtomicU32::new(0),
            policy_checks: AtomicU32::new(0),
        })
    }

    /// While `true`, every call answers `HashError::Overloaded` (a saturated hashing pool).
    pub fn set_overloaded(&self, overloaded: bool) {
        self.overloaded.store(overloaded, Ordering::SeqCst);
    }

    /// The calls so far.
    pub fn counts(&self) -> HashCounts {
        HashCounts {
            hashes: self.hashes.load(Ordering::SeqCst),
            verifies: self.verifies.load(Ordering::SeqCst),
            dummies: self.dummies.load(Ordering::SeqCst),
            policy_checks: self.policy_checks.load(Ordering::SeqCst),
        }
    }

    /// Counts a call of `counter`, or refuses it while overloaded.
    fn start(&self, counter: &AtomicU32) -> Result<(), HashError> {
        if self.overloaded.load(Ordering::SeqCst) {
            return Err(HashError::Overloaded);
        }
        counter.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[async_trait]
impl PasswordHasher for InlineHasher {
    async fn hash(&self, password: &Password) -> Result<String, HashError> {
        self.start(&self.hashes)?;
        self.argon.hash(password)
    }

    async fn verify(&self, password: &Password, phc: &str) -> Result<Verified, HashError> {
        self.start(&self.verifies)?;
        Ok(self.argon.verify(password, phc))
    }

    async fn verify_dummy(&self, password: &Password) -> Result<(), HashError> {
        self.start(&self.dummies)?;
        self.argon.verify_dummy(password);
        Ok(())
    }

    async fn check_policy(
        &self,
        policy: &PasswordPolicy,
        password: &Password,
        words: &[&str],
    ) -> Result<Verdict, HashError> {
        self.start(&self.policy_checks)?;
        Ok(policy.check(
            password,
            &PersonalContext {
                words: words.to_vec(),
            },
        ))
    }
}

/// One message a [`RecordingRenderer`] rendered: its [`MessageContext`], owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMessage {
    pub tenant: TenantId,
    pub kind: MessageKind,
    pub client: Option<ClientName>,
    pub locale: Locale,
    pub name: String,
    pub login: String,
    pub link: Option<String>,
    pub expires_in_minutes: i64,
}

impl RenderedMessage {
    /// The reset secret in the link, wherever the link format put it: the one run of 43
    /// base64url characters that parses as a secret.
    pub fn secret(&self) -> Option<ResetSecret> {
        self.link
            .as_deref()?
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .find_map(|part| ResetSecret::parse(part).ok())
    }
}

/// Renders every message as its kind (the subject) and its link (the text), and records each
/// context. Can be made to fail ([`RecordingRenderer::fail_with`]).
#[derive(Debug, Default)]
pub struct RecordingRenderer {
    rendered: Mutex<Vec<RenderedMessage>>,
    failure: Mutex<Option<String>>,
}

impl RecordingRenderer {
    /// A renderer that has rendered nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every message rendered so far, oldest first.
    pub fn rendered(&self) -> Vec<RenderedMessage> {
        lock(&self.rendered).clone()
    }

    /// The latest message rendered.
    pub fn last(&self) -> Option<RenderedMessage> {
        lock(&self.rendered).last().cloned()
    }

    /// The secret of the latest reset link rendered.
    pub fn last_secret(&self) -> Option<ResetSecret> {
        lock(&self.rendered)
            .iter()
            .rev()
            .find(|m| m.kind == MessageKind::ResetLink)
            .and_then(RenderedMessage::secret)
    }

    /// While `Some`, rendering fails with that text (a broken template); nothing is recorded.
    pub fn fail_with(&self, error: Option<&str>) {
        *lock(&self.failure) = error.map(str::to_owned);
    }
}

impl Renderer for RecordingRenderer {
    fn render(&self, ctx: &MessageContext<'_>) -> Result<Rendered, String> {
        if let Some(e) = lock(&self.failure).clone() {
            return Err(e);
        }
        lock(&self.rendered).push(RenderedMessage {
            tenant: ctx.tenant.clone(),
            kind: ctx.kind,
            client: ctx.client.cloned(),
            locale: ctx.locale.clone(),
            name: ctx.name.to_owned(),
            login: ctx.login.to_owned(),
            link: ctx.link.map(str::to_owned),
            expires_in_minutes: ctx.expires_in_minutes,
        });
        Ok(Rendered {
            subject: ctx.kind.as_str().to_owned(),
            text: match ctx.link {
                Some(link) => format!("Hello {}, reset your password: {link}", ctx.name),
                None => format!("Hello {}, your password was changed.", ctx.name),
            },
            html: None,
            sender_name: None,
        })
    }
}
