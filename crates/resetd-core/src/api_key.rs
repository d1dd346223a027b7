//! API keys: what a key may do (its scopes), its record, and the checked inputs of its lifecycle
//! (an id as a caller names it, an expiry, a rotation's overlap). See `docs/api-keys.md`.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::model::Timestamp;
use crate::types::{InvalidInput, TenantId};

/// What an API key may do. A key holds one or more; [`Scope::grants`] says which calls each opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Everything in its tenant, on the native API and on every dialect mounted on the tenant.
    Admin,
    /// Reading the tenant's audit log and outbox on the native API, nothing else.
    Read,
    /// Calling the Crafter Profile dialect mounted on the tenant (`accessTokenId`), nothing else.
    Crafter,
    /// Calling the EmpowerID dialect mounted on the tenant (either of its two keys), nothing else.
    Empowerid,
    /// Calling the Payabli dialect mounted on the tenant (`requestToken`), nothing else.
    Payabli,
}

impl Scope {
    /// Every scope, in the order the docs and the CLI list them.
    pub const ALL: [Scope; 5] = [
        Scope::Admin,
        Scope::Read,
        Scope::Crafter,
        Scope::Empowerid,
        Scope::Payabli,
    ];

    /// The scope's name on the wire and in the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::Read => "read",
            Scope::Crafter => "crafter",
            Scope::Empowerid => "empowerid",
            Scope::Payabli => "payabli",
        }
    }

    /// The scope named `s`.
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        Scope::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                InvalidInput::new(
                    "scopes",
                    "each must be admin, read, crafter, empowerid or payabli",
                )
            })
    }

    /// Whether a key holding `self` may make a call that needs `need`. `admin` keeps opening
    /// every dialect, as it did before the narrower scopes existed, so existing keys keep working.
    pub fn grants(self, need: Scope) -> bool {
        self == need || self == Scope::Admin
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An API key's record (its secret is stored only as a hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Public id, safe to log.
    pub id: String,
    /// The tenant it acts in.
    pub tenant: TenantId,
    /// A label.
    pub name: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// Created.
    pub created_at: Timestamp,
    /// Revoked keys are refused.
    pub revoked_at: Option<Timestamp>,
    /// From then on the key is refused; `None`: it does not expire.
    pub expires_at: Option<Timestamp>,
    /// The last time a call used it, to within [`LAST_USED_RESOLUTION_SECS`].
    pub last_used_at: Option<Timestamp>,
    /// After a rotation, until when the secret it replaced still works.
    pub previous_until: Option<Timestamp>,
}

/// Where a key stands at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// It opens what its scopes grant.
    Active,
    /// Revoked: refused like an unknown key.
    Revoked,
    /// Past its expiry: refused like an unknown key.
    Expired,
}

impl KeyState {
    /// The state's name in listings.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Active => "active",
            KeyState::Revoked => "revoked",
            KeyState::Expired => "expired",
        }
    }
}

impl ApiKey {
    /// The key's state at `now`.
    pub fn state(&self, now: Timestamp) -> KeyState {
        if self.revoked_at.is_some() {
            KeyState::Revoked
        } else if self.expires_at.is_some_and(|e| e <= now) {
            KeyState::Expired
        } else {
            KeyState::Active
        }
    }

    /// Whether one of the key's scopes grants `need`.
    pub fn permits(&self, need: Scope) -> bool {
        self.scopes.iter().any(|s| s.grants(need))
    }
}

/// `last_used_at` is written at most once per this many seconds per key (and per process), so a
/// busy key costs one write a minute, not one per request.
pub const LAST_USED_RESOLUTION_SECS: i64 = 60;

/// A key id as a caller names it: 16 lower-case hex characters (what `create` draws).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ApiKeyId(String);

impl ApiKeyId {
    /// Parses an id; anything else names no key.
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        if s.len() == 16
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidInput::new("id", "is not an API key id"))
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeyId({:?})", self.0)
    }
}

/// How long the replaced secret keeps working after a rotation, so the callers holding it can
/// switch: 0 (it stops at once) to [`Overlap::MAX_SECS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overlap(i64);

impl Overlap {
    /// The overlap when none is named: five minutes.
    pub const DEFAULT_SECS: i64 = 300;
    /// The longest overlap: a day. Longer would make a rotation after a leak pointless.
    pub const MAX_SECS: i64 = 86_400;

    /// An overlap of `secs` seconds.
    pub fn from_secs(secs: i64) -> Result<Self, InvalidInput> {
        if (0..=Self::MAX_SECS).contains(&secs) {
            Ok(Self(secs))
        } else {
            Err(InvalidInput::new(
                "overlap_secs",
                format!("must be 0 to {} seconds", Self::MAX_SECS),
            ))
        }
    }

    /// Seconds.
    pub fn secs(self) -> i64 {
        self.0
    }
}

impl Default for Overlap {
    fn default() -> Self {
        Self(Self::DEFAULT_SECS)
    }
}

/// What a new key is to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    /// A label (1 to 128 printable characters; checked by the use case).
    pub name: String,
    /// At least one.
    pub scopes: Vec<Scope>,
    /// When it stops working; must be in the future.
    pub expires_at: Option<Timestamp>,
}

impl Timestamp {
    /// An RFC 3339 date-time (`2027-01-01T00:00:00Z`, any offset), to the millisecond.
    pub fn parse_rfc3339(field: &'static str, s: &str) -> Result<Self, InvalidInput> {
        let t = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| {
            InvalidInput::new(
                field,
                "must be an RFC 3339 date-time, e.g. 2027-01-01T00:00:00Z",
            )
        })?;
        i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
            .map(Timestamp)
            .map_err(|_| InvalidInput::new(field, "is out of range"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_grant_themselves_and_admin_grants_all() {
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.as_str()), Ok(s));
            assert!(s.grants(s));
            assert!(Scope::Admin.grants(s));
        }
        assert!(!Scope::Read.grants(Scope::Admin));
        assert!(!Scope::Crafter.grants(Scope::Payabli));
        assert!(!Scope::Payabli.grants(Scope::Read));
        assert!(Scope::parse("root").is_err());
        assert_eq!(
            serde_json::to_string(&Scope::ALL).unwrap(),
            r#"["admin","read","crafter","empowerid","payabli"]"#
        );
    }

    #[test]
    fn ids_overlaps_and_dates_are_checked() {
        assert!(ApiKeyId::parse("0123456789abcdef").is_ok());
        for bad in [
            "",
            "0123456789ABCDEF",
            "0123456789abcde",
            "0123456789abcdeg",
        ] {
            assert!(ApiKeyId::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Overlap::default().secs(), 300);
        assert!(Overlap::from_secs(0).is_ok() && Overlap::from_secs(86_400).is_ok());
        assert!(Overlap::from_secs(-1).is_err() && Overlap::from_secs(86_401).is_err());
        assert_eq!(
            Timestamp::parse_rfc3339("e", "1970-01-01T00:00:01.5Z"),
            Ok(Timestamp(1500))
        );
        assert_eq!(
            Timestamp::parse_rfc3339("e", "1970-01-01T01:00:00+01:00"),
            Ok(Timestamp(0))
        );
        assert!(Timestamp::parse_rfc3339("e", "tomorrow").is_err());
    }

    #[test]
    fn state_follows_revocation_then_expiry() {
        let k = ApiKey {
            id: "k".into(),
            tenant: TenantId::parse("acme").unwrap(),
            name: "n".into(),
            scopes: vec![Scope::Read],
            created_at: Timestamp(0),
            revoked_at: None,
            expires_at: Some(Timestamp(10)),
            last_used_at: None,
            previous_until: None,
        };
        assert_eq!(k.state(Timestamp(9)), KeyState::Active);
        assert_eq!(k.state(Timestamp(10)), KeyState::Expired);
        let r = ApiKey {
            revoked_at: Some(Timestamp(5)),
            ..k.clone()
        };
        assert_eq!(r.state(Timestamp(6)), KeyState::Revoked);
        assert!(k.permits(Scope::Read) && !k.permits(Scope::Admin));
    }
}
