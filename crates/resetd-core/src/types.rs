//! Domain newtypes. Each one is built only through a checked constructor, so a value of the type is
//! always valid and handlers never pass raw strings to the core.

use std::fmt;

use serde::{Serialize, Serializer};
use unicode_normalization::UnicodeNormalization;

/// Why an input was refused by a constructor; `field` names the input, `reason` is safe to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidInput {
    /// The name of the offending field as the caller spelled it.
    pub field: &'static str,
    /// A human-readable reason that never contains the value itself.
    pub reason: String,
}

impl InvalidInput {
    /// A refusal of `field` for `reason`.
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

fn check_len(field: &'static str, s: &str, min: usize, max: usize) -> Result<(), InvalidInput> {
    let n = s.chars().count();
    if n < min {
        return Err(InvalidInput::new(
            field,
            format!("must be at least {min} characters"),
        ));
    }
    if n > max {
        return Err(InvalidInput::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(())
}

fn no_controls(field: &'static str, s: &str) -> Result<(), InvalidInput> {
    if s.chars().any(char::is_control) {
        return Err(InvalidInput::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

macro_rules! string_newtype {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The validated value.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
    };
}

string_newtype!(
    /// A tenant's name, which is also its id in URLs: 1..=63 of `[a-z0-9-]`, not starting with `-`.
    TenantId
);
string_newtype!(
    /// A login name: 1..=256 characters, NFKC-normalised, no control characters, no surrounding space.
    Login
);
string_newtype!(
    /// An email address, syntactically checked, at most 254 characters; the domain is lower-cased.
    Email
);
string_newtype!(
    /// A person's opaque, stable id: 32 lower-case hex characters.
    PersonId
);
string_newtype!(
    /// A registered client's name: 1..=64 of `[A-Za-z0-9._-]`.
    ClientName
);
string_newtype!(
    /// A BCP 47-ish locale tag such as `en` or `de-CH`: 2..=35 of `[A-Za-z0-9-]`.
    Locale
);
string_newtype!(
    /// A display name: 0..=256 characters without control characters.
    DisplayName
);
string_newtype!(
    /// A person's id in the 24-hex-digit form of a MongoDB ObjectId, as Crafter Profile addresses
    /// profiles. It is derived from the [`PersonId`] (its first 24 hex digits), so it needs no
    /// storage and never changes.
    ObjectId
);

impl TenantId {
    /// Parses a tenant name.
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let ok = !s.is_empty()
            && s.len() <= 63
            && !s.starts_with('-')
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidInput::new(
                "tenant",
                "must be 1 to 63 of a-z, 0-9 and '-', not starting with '-'",
            ))
        }
    }
}

impl Login {
    /// Parses a login; it is NFKC-normalised so visually equal logins compare equal.
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        if s.len() > 1024 {
            return Err(InvalidInput::new("login", "must be at most 256 characters"));
        }
        let n: String = s.nfkc().collect();
        check_len("login", &n, 1, 256)?;
        no_controls("login", &n)?;
        if n.trim() != n {
            return Err(InvalidInput::new(
                "login",
                "must not start or end with white space",
            ));
        }
        Ok(Self(n))
    }
}

impl Email {
    /// Parses an address of the form `local@domain` (RFC 5321 lengths; no display names, no quoting).
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let field = "email";
        if s.len() > 254 {
            return Err(InvalidInput::new(field, "must be at most 254 characters"));
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return Err(InvalidInput::new(
                field,
                "must be an address like name@example.com",
            ));
        };
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && domain.len() <= 253
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if !local_ok || !domain_ok {
            return Err(InvalidInput::new(
                field,
                "must be an address like name@example.com",
            ));
        }
        Ok(Self(format!("{local}@{}", domain.to_lowercase())))
    }

    /// The part before the `@`, used by the password policy's personal-information rule.
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map(|(l, _)| l).unwrap_or(&self.0)
    }
}

impl PersonId {
    /// Parses an id as produced by [`PersonId::generate`].
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        if s.len() == 32
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidInput::new("id", "is not a person id"))
        }
    }

    /// A fresh random id.
    pub fn generate() -> Self {
        Self(crate::secret::hex(&crate::secret::random_bytes::<16>()))
    }

    /// The id of 16 bytes derived elsewhere (a shadow row's, from its external stable id), in
    /// the same form as a generated one.
    pub fn from_bytes(bytes: &[u8; 16]) -> Self {
        Self(crate::secret::hex(bytes))
    }
}

impl ObjectId {
    /// Parses 24 hex digits of either case (as MongoDB does); the value is kept lower-case.
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        if s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(s.to_ascii_lowercase()))
        } else {
            Err(InvalidInput::new("id", "is not a 24-digit hexadecimal id"))
        }
    }

    /// The ObjectId form of a person id.
    pub fn of(id: &PersonId) -> Self {
        Self(id.as_str()[..24].to_owned())
    }
}

impl ClientName {
    /// Parses a client name.
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidInput::new(
                "client",
                "must be 1 to 64 of A-Z, a-z, 0-9, '.', '_' and '-'",
            ))
        }
    }
}

impl Locale {
    /// English, the fallback when neither the person nor the tenant names a usable locale.
    pub fn en() -> Self {
        Self("en".to_owned())
    }

    /// Parses a locale tag; `_` is accepted as `-`.
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let s = s.replace('_', "-");
        let ok = (2..=35).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && s.as_bytes()[0].is_ascii_alphabetic();
        if ok {
            Ok(Self(s))
        } else {
            Err(InvalidInput::new(
                "locale",
                "must be a language tag such as 'en' or 'de-CH'",
            ))
        }
    }

    /// The primary language subtag, lower-cased (`de` for `de-CH`).
    pub fn language(&self) -> String {
        self.0
            .split('-')
            .next()
            .unwrap_or("en")
            .to_ascii_lowercase()
    }
}

impl DisplayName {
    /// No display name (what `parse("")` gives).
    pub fn empty() -> Self {
        Self(String::new())
    }

    /// Parses a display name.
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        check_len("display_name", s, 0, 256)?;
        no_controls("display_name", s)?;
        Ok(Self(s.trim().to_owned()))
    }
}

/// A candidate password: NFKC-normalised, at most 256 characters (the tenant policy decides the
/// minimum). Its `Debug` never shows the value.
#[derive(Clone)]
pub struct Password(String);

/// The hard upper bound on a password's length, whatever the tenant policy says.
pub const PASSWORD_MAX_CHARS: usize = 256;

impl Password {
    /// Normalises and bounds a password. Length rules below the maximum are the policy's job, so
    /// that every violation can be reported at once.
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        // Bound the normalisation work before doing it: 4 bytes per character at most.
        if s.len() > PASSWORD_MAX_CHARS * 4 {
            return Err(InvalidInput::new(
                "password",
                format!("must be at most {PASSWORD_MAX_CHARS} characters"),
            ));
        }
        let n: String = s.nfkc().collect();
        check_len("password", &n, 0, PASSWORD_MAX_CHARS)?;
        Ok(Self(n))
    }

    /// The normalised password, for hashing and policy checks only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids() {
        assert!(TenantId::parse("default").is_ok());
        assert!(TenantId::parse("acme-2").is_ok());
        for bad in ["", "-x", "Acme", "a b", "a/b", &"x".repeat(64)] {
            assert!(TenantId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse("Jane.Doe@Example.COM").unwrap().as_str(),
            "Jane.Doe@example.com"
        );
        for bad in [
            "",
            "x",
            "@x.com",
            "a@b",
            "a@@b.com",
            "a b@c.com",
            "a@-b.com",
            ".a@b.com",
            "a..b@c.com",
            "a@b.com\r\nBcc: x@y.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Email::parse(&format!("{}@x.com", "a".repeat(65))).is_err());
    }

    #[test]
    fn logins_are_normalised() {
        // U+FB01 LATIN SMALL LIGATURE FI normalises to "fi".
        assert_eq!(Login::parse("\u{FB01}le").unwrap().as_str(), "file");
        assert!(Login::parse(" jdoe").is_err());
        assert!(Login::parse("j\ndoe").is_err());
        assert!(Login::parse("").is_err());
        assert!(Login::parse(&"x".repeat(257)).is_err());
    }

    #[test]
    fn passwords_are_normalised_bounded_and_redacted() {
        let p = Password::parse("Ⅻ-secret").unwrap();
        assert_eq!(p.expose(), "XII-secret");
        assert_eq!(format!("{p:?}"), "Password(<redacted>)");
        assert!(Password::parse(&"x".repeat(257)).is_err());
        assert!(Password::parse(&"x".repeat(256)).is_ok());
        assert!(Password::parse(&"é".repeat(2000)).is_err());
    }

    #[test]
    fn person_ids_round_trip() {
        let id = PersonId::generate();
        assert_eq!(PersonId::parse(id.as_str()).unwrap(), id);
        assert!(PersonId::parse("xyz").is_err());
    }

    #[test]
    fn object_ids_are_the_person_id_prefix() {
        let id = PersonId::generate();
        let oid = ObjectId::of(&id);
        assert_eq!(oid.as_str().len(), 24);
        assert!(id.as_str().starts_with(oid.as_str()));
        assert_eq!(ObjectId::parse(oid.as_str()).unwrap(), oid);
        assert_eq!(
            ObjectId::parse("59284659D4C650213CC2F3FC")
                .unwrap()
                .as_str(),
            "59284659d4c650213cc2f3fc"
        );
        for bad in [
            "",
            "59284659d4c650213cc2f3f",
            "59284659d4c650213cc2f3fcc",
            "59284659d4c650213cc2f3fg",
        ] {
            assert!(ObjectId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn locales() {
        assert_eq!(Locale::parse("de_CH").unwrap().as_str(), "de-CH");
        assert_eq!(Locale::parse("de-CH").unwrap().language(), "de");
        assert!(Locale::parse("1x").is_err());
        assert!(Locale::parse("e").is_err());
    }
}
