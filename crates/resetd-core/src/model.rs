//! The records the service keeps per tenant (design.md section 2).

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::policy::{PasswordPolicy, PolicyMode};
use crate::secret::SecretHash;
use crate::types::{
    ClientName, DisplayName, Email, InvalidInput, Locale, Login, ObjectId, PersonId, TenantId,
};

/// A point in time as Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// `secs` seconds later (earlier when negative).
    pub fn plus_secs(self, secs: i64) -> Self {
        Self(self.0.saturating_add(secs.saturating_mul(1000)))
    }

    /// RFC 3339 in UTC with millisecond precision, e.g. `2026-11-23T09:00:00.123Z`.
    pub fn rfc3339(self) -> String {
        OffsetDateTime::from_unix_timestamp_nanos(self.0 as i128 * 1_000_000)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_default()
    }

    /// Whole seconds from `self` until `later`, at least 0, rounded up.
    pub fn secs_until(self, later: Timestamp) -> i64 {
        ((later.0 - self.0).max(0) + 999) / 1000
    }
}

/// A source of the current time, so rules can be tested at fixed instants.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(d.as_millis() as i64)
    }
}

/// Per-tenant settings. Every field has a default, so stored settings stay readable as fields are added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantSettings {
    /// Minimum password length in characters.
    pub min_password_length: usize,
    /// How long a reset link stays valid.
    pub token_ttl_secs: i64,
    /// At most one reset email per account within this many seconds.
    pub cooldown_secs: i64,
    /// Login attempts (counted per login, known or not, before the password is checked) that
    /// lock the login.
    pub lockout_threshold: u32,
    /// How long a lock lasts, and how long a count is kept after its latest attempt.
    pub lockout_secs: i64,
    /// How many previous passwords may not be reused (0: the rule is off; each one costs a hash).
    pub password_history: u32,
    /// Whether completing a reset also clears a lockout.
    pub reset_unlocks: bool,
    /// The locale of emails when neither the person nor the request has one.
    pub default_locale: String,
    /// A password seen at least this many times in the breach corpus is refused (`breached`);
    /// 0 turns the check off. Applies only where an index is configured (`[breached]`).
    pub breached_min_count: u32,
    /// Who may call `GET /v1/{tenant}/breached/range/{prefix}`.
    pub breached_range: BreachedRange,
    /// Whether a successful login also checks the password against the breach corpus: a hit
    /// (at least `breached_min_count` sightings) makes the person change it (NIST SP 800-63B: force
    /// a change on evidence of compromise) and is audited as `breached_at_login`.
    pub breached_check_at_login: bool,
}

/// Who may use a tenant's breached-password range endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreachedRange {
    /// Nobody: the endpoint answers 404.
    Off,
    /// Callers with an admin API key of the tenant (the default).
    #[default]
    ApiKey,
    /// Anyone (rate-limited per IP), as Have I Been Pwned's own API is.
    Public,
}

impl Default for TenantSettings {
    fn default() -> Self {
        Self {
            min_password_length: 8,
            token_ttl_secs: 30 * 60,
            cooldown_secs: 60,
            lockout_threshold: 10,
            lockout_secs: 15 * 60,
            password_history: 0,
            reset_unlocks: true,
            default_locale: "en".into(),
            // Any sighting: NIST SP 800-63B asks for no breached value at all.
            breached_min_count: 1,
            breached_range: BreachedRange::ApiKey,
            breached_check_at_login: false,
        }
    }
}

impl TenantSettings {
    /// Checks the settings' ranges.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        if !(1..=256).contains(&self.min_password_length) {
            return Err(InvalidInput::new("min_password_length", "must be 1 to 256"));
        }
        if !(1..=7 * 86400).contains(&self.token_ttl_secs) {
            return Err(InvalidInput::new(
                "token_ttl_secs",
                "must be 1 second to 7 days",
            ));
        }
        if !(0..=86400).contains(&self.cooldown_secs)
            || !(1..=86400 * 30).contains(&self.lockout_secs)
        {
            return Err(InvalidInput::new(
                "cooldown_secs",
                "cool-down must be 0 to 86400, lockout 1 to 2592000",
            ));
        }
        if self.lockout_threshold == 0 || self.password_history > 24 {
            return Err(InvalidInput::new(
                "lockout_threshold",
                "threshold must be >= 1, history <= 24",
            ));
        }
        Locale::parse(&self.default_locale)?;
        Ok(())
    }

    /// The tenant's password policy.
    pub fn policy(&self) -> PasswordPolicy {
        PasswordPolicy {
            min_length: self.min_password_length,
            mode: PolicyMode::Nist,
        }
    }
}

/// A tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Its name, also its id.
    pub id: TenantId,
    /// Its settings.
    pub settings: TenantSettings,
    /// When it was created.
    pub created_at: Timestamp,
}

/// A person and their credential.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    /// Opaque stable id.
    pub id: PersonId,
    /// A small integer id, unique per tenant, for dialects that address people by number.
    pub number: i64,
    /// The tenant the person belongs to.
    pub tenant: TenantId,
    /// Login name, unique per tenant.
    pub login: Login,
    /// Email address (not necessarily unique).
    pub email: Email,
    /// Display name.
    pub display_name: DisplayName,
    /// Preferred locale.
    pub locale: Option<Locale>,
    /// Disabled people cannot log in or reset.
    pub enabled: bool,
    /// Whether the email address was confirmed (set by administrators; shown by dialects such as
    /// Crafter Profile).
    pub verified: bool,
    /// Free-form roles.
    pub roles: Vec<String>,
    /// Free-form attributes (a JSON object).
    pub attributes: serde_json::Value,
    /// PHC string of the password hash; `None` when no password was ever set.
    pub password_hash: Option<String>,
    /// When the password last changed; tokens issued before it are void.
    pub password_changed_at: Option<Timestamp>,
    /// The next login must change the password.
    pub must_change_password: bool,
    /// Failed logins counted against the person's login in its current window (read from the
    /// login's counter, which exists whether or not anyone has the login; stores ignore this
    /// field on writes).
    pub failed_logins: u32,
    /// The login is locked until this instant (read like `failed_logins`; ignored on writes).
    pub locked_until: Option<Timestamp>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// How a reset request names the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", content = "value", rename_all = "snake_case")]
pub enum Lookup {
    /// By login name.
    Login(String),
    /// By email address.
    Email(String),
    /// By person id.
    Id(String),
    /// By the per-tenant person number (EmpowerID's PersonID, Unleash's user id).
    Number(i64),
    /// By the ObjectId form of the person id (Crafter Profile's profile id).
    ObjectId(String),
    /// By login name ignoring letter case, as Alfresco matches user names by default: the
    /// person whose login is exactly this one, else the one person whose login folds
    /// ([`fold_login`]) like it. Several people folding alike and none exact is no match, since
    /// picking one would mail a stranger. The value is the login as given; the fold is
    /// computed from it here, never by the caller or the store.
    LoginAnyCase(String),
}

/// The case-insensitive form of a login: Unicode simple lowercase, code point by code point.
///
/// Simple (one code point to one) rather than full lowercase so that a fold never changes a
/// login's length and needs no context (no final-sigma rule): it is what Java's
/// `Character.toLowerCase(int)` does, the same answer wherever it is computed. Stores keep it
/// in an indexed column, written by this function only (never by SQL `lower()`, which is
/// ASCII-only in SQLite and locale-dependent in PostgreSQL). It follows the Unicode tables of the
/// Rust release resetd is built with; a release that cases new letters refolds nothing, so
/// logins using letters cased only by a newer Unicode may stop matching across case until
/// re-saved.
pub fn fold_login(login: &str) -> String {
    login
        .chars()
        .map(|c| {
            let mut lower = c.to_lowercase();
            match (lower.next(), lower.next()) {
                (Some(l), None) => l,
                // Only U+0130 (capital I with dot above) lowercases to more than one code point
                // (`i` + combining dot); its simple lowercase is `i`.
                _ if c == '\u{130}' => 'i',
                _ => c,
            }
        })
        .collect()
}

impl Lookup {
    /// By login.
    pub fn login(l: &Login) -> Self {
        Self::Login(l.as_str().to_owned())
    }
    /// By email.
    pub fn email(e: &Email) -> Self {
        Self::Email(e.as_str().to_owned())
    }
    /// By id.
    pub fn id(i: &PersonId) -> Self {
        Self::Id(i.as_str().to_owned())
    }
    /// By ObjectId.
    pub fn object_id(o: &ObjectId) -> Self {
        Self::ObjectId(o.as_str().to_owned())
    }
    /// By login, exactly or else ignoring letter case (see [`Lookup::LoginAnyCase`]).
    pub fn login_any_case(l: &Login) -> Self {
        Self::LoginAnyCase(l.as_str().to_owned())
    }
    /// The kind of lookup, for audit detail (never the value).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Login(_) => "login",
            Self::Email(_) => "email",
            Self::Id(_) => "id",
            Self::Number(_) => "number",
            Self::ObjectId(_) => "object_id",
            Self::LoginAnyCase(_) => "login_any_case",
        }
    }

    /// Whether `person` is the account this lookup names, by the same rules the store uses to
    /// find it (logins exactly or by their fold, email addresses ignoring ASCII case, ids
    /// exactly). For [`Lookup::LoginAnyCase`] this says the person is a candidate; which of
    /// several candidates the store picks is the store's rule.
    pub fn matches(&self, person: &Person) -> bool {
        match self {
            Self::Login(l) => person.login.as_str() == l,
            Self::Email(e) => person.email.as_str().eq_ignore_ascii_case(e),
            Self::Id(i) => person.id.as_str() == i,
            Self::Number(n) => person.number == *n,
            // The ObjectId is the first 24 hex digits of the id.
            Self::ObjectId(o) => o.len() == 24 && person.id.as_str().starts_with(o.as_str()),
            Self::LoginAnyCase(l) => {
                person.login.as_str() == l || fold_login(person.login.as_str()) == fold_login(l)
            }
        }
    }
}

/// A link template: an absolute http(s) URL containing `{token}`. `{tenant}` is also replaced, and
/// `{token_number}` by the token's public number ([`crate::secret::public_number`]), for links that
/// carry an id next to the secret (Alfresco's `?key=…&id=activiti$…`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkTemplate(String);

impl LinkTemplate {
    /// Parses a template.
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let field = "link_template";
        let rest = s
            .strip_prefix("https://")
            .or_else(|| s.strip_prefix("http://"));
        let Some(rest) = rest else {
            return Err(InvalidInput::new(
                field,
                "must start with https:// or http://",
            ));
        };
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        if host.is_empty()
            || s.len() > 2048
            || s.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(InvalidInput::new(
                field,
                "must be an absolute URL of at most 2048 characters",
            ));
        }
        if !s.contains("{token}") || host.contains('{') {
            return Err(InvalidInput::new(
                field,
                "must contain {token} outside the host",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// The link for `token` in `tenant`.
    pub fn render(&self, tenant: &TenantId, token: &str) -> String {
        let mut link = self.0.replace("{tenant}", tenant.as_str());
        if link.contains("{token_number}") {
            link = link.replace(
                "{token_number}",
                &crate::secret::public_number(token).to_string(),
            );
        }
        link.replace("{token}", token)
    }

    /// The template text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub use crate::reset_page::ResetPageUrl;

/// A registered UI that reset links point to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// The tenant.
    pub tenant: TenantId,
    /// Its name as callers give it.
    pub name: ClientName,
    /// How its reset links are built.
    pub link_template: LinkTemplate,
    /// URL prefixes a caller may name as its reset page (Crafter's `resetPasswordUrl`).
    pub allowed_prefixes: Vec<String>,
    /// Registered.
    pub created_at: Timestamp,
}

impl Client {
    /// Whether one of this client's allowed prefixes allows `url`.
    pub fn allows(&self, url: &ResetPageUrl) -> bool {
        self.allowed_prefixes.iter().any(|p| url.allowed_by(p))
    }
}

pub use crate::api_key::{ApiKey, Scope};

/// A recorded, not yet resolved "forgot password" request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetRequest {
    /// Row id.
    pub id: i64,
    /// Tenant.
    pub tenant: TenantId,
    /// How the account was named.
    pub lookup: Lookup,
    /// The client whose link to send.
    pub client: Option<ClientName>,
    /// The locale the request asked for.
    pub locale: Option<Locale>,
    /// The requester's address.
    pub ip: Option<String>,
    /// When it was recorded.
    pub created_at: Timestamp,
}

/// A new reset request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewResetRequest {
    /// Tenant.
    pub tenant: TenantId,
    /// How the account was named.
    pub lookup: Lookup,
    /// Client.
    pub client: Option<ClientName>,
    /// Locale.
    pub locale: Option<Locale>,
    /// Requester's address.
    pub ip: Option<String>,
    /// Now.
    pub created_at: Timestamp,
}

/// An issued reset token (the secret itself is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetToken {
    /// SHA-256 of the secret.
    pub hash: SecretHash,
    /// Tenant.
    pub tenant: TenantId,
    /// Whose password it resets.
    pub person: PersonId,
    /// What the token lets its holder do; checked wherever a token is used.
    pub purpose: TokenPurpose,
    /// The client its link pointed to.
    pub client: Option<ClientName>,
    /// Issued.
    pub created_at: Timestamp,
    /// Void from then on.
    pub expires_at: Timestamp,
    /// Consumed.
    pub used_at: Option<Timestamp>,
    /// Superseded by a newer token or voided by a password change.
    pub revoked_at: Option<Timestamp>,
    /// Requester's address.
    pub ip: Option<String>,
    /// Claimed for a password write to an external system, and neither consumed nor released
    /// (the claim's lease running or lapsed): never live.
    pub claimed: bool,
}

/// What a token was minted for. Every use of a token names the purpose it serves and refuses a
/// token minted for another one exactly as it refuses an unknown token, so that a secret sent for
/// one recovery method (a future admin-issued link, email verification or one-time code, each a
/// variant here) never works for another and its holder learns nothing from trying. Stored by
/// its stable name; a stored name this build does not know is no token at all to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenPurpose {
    /// A "forgot password" link: sets a new password once.
    Reset,
}

impl TokenPurpose {
    /// Stable name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reset => "reset",
        }
    }

    /// Parses a stable name; `None` for a purpose this build does not know (written by a newer
    /// version sharing the database).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "reset" => Some(Self::Reset),
            _ => None,
        }
    }
}

/// The kinds of email the service sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// "Reset your password" with a link.
    ResetLink,
    /// "Your password was changed".
    PasswordChanged,
}

impl MessageKind {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ResetLink => "reset_link",
            Self::PasswordChanged => "password_changed",
        }
    }

    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "reset_link" => Some(Self::ResetLink),
            "password_changed" => Some(Self::PasswordChanged),
            _ => None,
        }
    }
}

/// A rendered email ready for the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// Tenant.
    pub tenant: TenantId,
    /// Kind.
    pub kind: MessageKind,
    /// Recipient address.
    pub recipient: Email,
    /// Subject line.
    pub subject: String,
    /// Plain text body.
    pub text: String,
    /// HTML body.
    pub html: Option<String>,
    /// The From display name to use instead of the configured sender's (see
    /// [`crate::render::Rendered::sender_name`]); the address is always the configured one.
    pub sender_name: Option<String>,
    /// Stable Message-ID, the same on every attempt.
    pub message_id: String,
    /// Queued.
    pub created_at: Timestamp,
    /// Retried until then, then dead: a reset link's expiry (a later email is useless), or for a
    /// notice the end of its retry window. The budget is a time, not a number of attempts, so an
    /// SMTP outage shorter than it loses nothing.
    pub deliver_by: Timestamp,
}

/// Delivery state of an outbox message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStatus {
    /// Waiting to be (re)sent.
    Pending,
    /// Delivered to the transport.
    Sent,
    /// Given up: a permanent refusal, or its `deliver_by` passed.
    Dead,
}

impl OutboxStatus {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Dead => "dead",
        }
    }
    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "sent" => Some(Self::Sent),
            "dead" => Some(Self::Dead),
            _ => None,
        }
    }
}

/// A message in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// Row id.
    pub id: i64,
    /// The message.
    pub message: NewMessage,
    /// Attempts so far.
    pub attempts: u32,
    /// Not before.
    pub next_attempt_at: Timestamp,
    /// State.
    pub status: OutboxStatus,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was delivered.
    pub sent_at: Option<Timestamp>,
}

/// One audit event to record. `detail` never holds a secret.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAudit {
    /// Tenant.
    pub tenant: TenantId,
    /// Whom it concerns.
    pub person: Option<PersonId>,
    /// What happened, e.g. `reset_completed`.
    pub kind: &'static str,
    /// Who did it: `api_key:<id>`, `anonymous`, `cli`, `system`.
    pub actor: String,
    /// From where.
    pub ip: Option<String>,
    /// When.
    pub at: Timestamp,
    /// Non-secret detail.
    pub detail: serde_json::Value,
}

/// A recorded audit event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEvent {
    /// Row id, increasing.
    pub id: i64,
    /// Whom it concerns.
    pub person: Option<String>,
    /// What happened.
    pub kind: String,
    /// Who did it.
    pub actor: String,
    /// From where.
    pub ip: Option<String>,
    /// When (Unix ms).
    pub at: Timestamp,
    /// Non-secret detail.
    pub detail: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_format_as_rfc3339() {
        assert_eq!(Timestamp(0).rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(Timestamp(1_500).secs_until(Timestamp(3_001)), 2);
        assert_eq!(Timestamp(5).secs_until(Timestamp(1)), 0);
    }

    #[test]
    fn link_templates_are_absolute_and_keep_the_token_out_of_the_host() {
        let t = LinkTemplate::parse("https://app.example.com/{tenant}/reset?t={token}").unwrap();
        let tenant = TenantId::parse("acme").unwrap();
        assert_eq!(
            t.render(&tenant, "abc"),
            "https://app.example.com/acme/reset?t=abc"
        );
        for bad in [
            "/reset?t={token}",
            "https://x.com/reset",
            "javascript:alert(1)//{token}",
            "https://{token}.evil.com/",
            "https:///{token}",
            "https://x.com/ {token}",
        ] {
            assert!(LinkTemplate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lookups_name_their_kind_and_round_trip() {
        for (l, kind) in [
            (Lookup::Number(7), "number"),
            (
                Lookup::ObjectId("59284659d4c650213cc2f3fc".into()),
                "object_id",
            ),
        ] {
            assert_eq!(l.kind(), kind);
            let text = serde_json::to_string(&l).unwrap();
            assert_eq!(serde_json::from_str::<Lookup>(&text).unwrap(), l);
        }
    }

    #[test]
    fn link_templates_can_carry_the_tokens_public_number() {
        let t = LinkTemplate::parse(
            "https://share.example.com/page/reset-password?key={token}&id=activiti${token_number}",
        )
        .unwrap();
        let tenant = TenantId::parse("default").unwrap();
        let secret = crate::secret::ResetSecret::generate();
        assert_eq!(
            t.render(&tenant, secret.expose()),
            format!(
                "https://share.example.com/page/reset-password?key={}&id=activiti${}",
                secret.expose(),
                secret.public_number()
            )
        );
    }

    fn person(login: &str, email: &str) -> Person {
        Person {
            id: PersonId::generate(),
            number: 1,
            tenant: TenantId::parse("default").unwrap(),
            login: Login::parse(login).unwrap(),
            email: Email::parse(email).unwrap(),
            display_name: DisplayName::parse("").unwrap(),
            locale: None,
            enabled: true,
            roles: vec![],
            attributes: serde_json::json!({}),
            password_hash: None,
            password_changed_at: None,
            must_change_password: false,
            failed_logins: 0,
            locked_until: None,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
            verified: false,
        }
    }

    #[test]
    fn lookups_match_the_person_they_name() {
        let p = person("jdoe", "Jane.Doe@example.com");
        let other = person("jdoe2", "x@example.com");
        assert!(Lookup::login(&Login::parse("jdoe").unwrap()).matches(&p));
        assert!(!Lookup::login(&Login::parse("JDOE").unwrap()).matches(&p));
        assert!(Lookup::Email("jane.doe@EXAMPLE.com".into()).matches(&p));
        assert!(!Lookup::Email("jane.doe@example.org".into()).matches(&p));
        assert!(Lookup::id(&p.id).matches(&p));
        assert!(!Lookup::id(&p.id).matches(&other));
    }

    #[test]
    fn default_settings_are_valid_and_checked() {
        assert!(TenantSettings::default().validate().is_ok());
        let bad = TenantSettings {
            token_ttl_secs: 0,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
        let parsed: TenantSettings = serde_json::from_str(r#"{"token_ttl_secs": 60}"#).unwrap();
        assert_eq!(parsed.token_ttl_secs, 60);
        assert_eq!(parsed.min_password_length, 8);
    }
}

#[cfg(test)]
mod fold_tests {
    use super::fold_login;

    #[test]
    fn logins_fold_by_simple_lowercase() {
        assert_eq!(fold_login("ALF.Known"), "alf.known");
        assert_eq!(fold_login("ÄÖÜ-Straße"), "äöü-straße");
        // Simple, not full: one code point each, no final-sigma context.
        assert_eq!(fold_login("\u{130}STANBUL"), "istanbul");
        assert_eq!(fold_login("ΟΔΟΣ"), "οδοσ");
        assert_eq!(fold_login("ǅ"), "ǆ");
        for l in ["İİ", "ΣΣ", "Ⅻ", "ǈx"] {
            assert_eq!(fold_login(l).chars().count(), l.chars().count(), "{l}");
            assert_eq!(fold_login(&fold_login(l)), fold_login(l), "{l}");
        }
    }
}
