//! Bearer secrets (reset tokens and API keys): 256 bits from the OS CSPRNG, shown once, stored only
//! as their SHA-256, compared in constant time.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::types::InvalidInput;

/// `N` bytes from the operating system's CSPRNG.
#[allow(
    clippy::expect_used,
    reason = "without the OS CSPRNG no token can be issued safely; stopping is the only safe answer"
)]
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // The OS generator failing is not a condition the service can run through.
    getrandom::fill(&mut b).expect("the OS random number generator failed");
    b
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// The SHA-256 of a secret, the only form in which secrets are stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecretHash(pub [u8; 32]);

impl SecretHash {
    /// Hashes `secret`.
    pub fn of(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    /// Constant-time equality, for comparing a stored hash with a presented one.
    pub fn ct_eq(&self, other: &SecretHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    /// Rebuilds a hash read back from storage.
    pub fn from_slice(b: &[u8]) -> Option<Self> {
        b.try_into().ok().map(Self)
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretHash({}…)", &hex(&self.0[..4]))
    }
}

/// A short public number derived from a reset token (48 bits of a domain-separated SHA-256, so
/// it tells nothing about the stored hash). Some dialects' links carry an id next to the secret
/// (Alfresco's `id=activiti$<n>`); this number fills that place and lets such a dialect check that
/// the id and the key it is given belong together. It proves nothing without the token.
pub fn public_number(token: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(b"resetd public token number\0");
    h.update(token.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 8];
    b[2..].copy_from_slice(&d[..6]);
    u64::from_be_bytes(b)
}

const SECRET_B64_LEN: usize = 43; // 32 bytes, base64url without padding

fn parse_b64_secret(field: &'static str, s: &str) -> Result<(), InvalidInput> {
    let ok = s.len() == SECRET_B64_LEN
        && URL_SAFE_NO_PAD
            .decode(s)
            .map(|b| b.len() == 32)
            .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(InvalidInput::new(field, "is not a valid token"))
    }
}

/// A password-reset secret as it travels in a link. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ResetSecret(String);

impl ResetSecret {
    /// A fresh secret of 256 random bits.
    pub fn generate() -> Self {
        Self(URL_SAFE_NO_PAD.encode(random_bytes::<32>()))
    }

    /// Parses a presented secret; anything that could not have been issued is refused early.
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        parse_b64_secret("token", s)?;
        Ok(Self(s.to_owned()))
    }

    /// The hash under which the secret is stored.
    pub fn hash(&self) -> SecretHash {
        SecretHash::of(&self.0)
    }

    /// The secret itself, for putting into the emailed link only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The secret's public number ([`public_number`]).
    pub fn public_number(&self) -> u64 {
        public_number(&self.0)
    }
}

impl fmt::Debug for ResetSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResetSecret(<redacted>)")
    }
}

/// The prefix of every API key, so leaked keys are easy to recognise and scan for.
pub const API_KEY_PREFIX: &str = "rsd_";

/// An API key as presented by a caller (`rsd_` + 43 base64url characters). `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeySecret(String);

impl ApiKeySecret {
    /// A fresh key of 256 random bits.
    pub fn generate() -> Self {
        Self(format!(
            "{API_KEY_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(random_bytes::<32>())
        ))
    }

    /// Parses a presented key.
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let body = s
            .strip_prefix(API_KEY_PREFIX)
            .ok_or_else(|| InvalidInput::new("api_key", "is not a valid API key"))?;
        parse_b64_secret("api_key", body)
            .map_err(|_| InvalidInput::new("api_key", "is not a valid API key"))?;
        Ok(Self(s.to_owned()))
    }

    /// The hash under which the key is stored.
    pub fn hash(&self) -> SecretHash {
        SecretHash::of(&self.0)
    }

    /// The key itself, to show once to its creator.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeySecret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_secrets_are_256_bit_unique_and_parse_back() {
        let a = ResetSecret::generate();
        let b = ResetSecret::generate();
        assert_ne!(a, b);
        assert_eq!(URL_SAFE_NO_PAD.decode(a.expose()).unwrap().len(), 32);
        assert_eq!(ResetSecret::parse(a.expose()).unwrap(), a);
        assert!(ResetSecret::parse("short").is_err());
        assert!(ResetSecret::parse(&"!".repeat(43)).is_err());
        assert_eq!(format!("{a:?}"), "ResetSecret(<redacted>)");
    }

    #[test]
    fn stored_form_is_sha256_not_the_secret() {
        let s = ResetSecret::generate();
        let h = s.hash();
        assert_eq!(h, SecretHash(Sha256::digest(s.expose().as_bytes()).into()));
        assert!(!hex(&h.0).contains(s.expose()));
        assert!(h.ct_eq(&ResetSecret::parse(s.expose()).unwrap().hash()));
        assert!(!h.ct_eq(&ResetSecret::generate().hash()));
    }

    #[test]
    fn api_keys() {
        let k = ApiKeySecret::generate();
        assert!(k.expose().starts_with("rsd_"));
        assert_eq!(ApiKeySecret::parse(k.expose()).unwrap(), k);
        assert!(ApiKeySecret::parse(&k.expose()[4..]).is_err());
        assert!(ApiKeySecret::parse("rsd_x").is_err());
        assert_eq!(format!("{k:?}"), "ApiKeySecret(<redacted>)");
    }

    #[test]
    fn public_numbers_are_stable_small_and_unrelated_to_the_stored_hash() {
        let s = ResetSecret::generate();
        let n = s.public_number();
        assert_eq!(n, ResetSecret::parse(s.expose()).unwrap().public_number());
        assert!(n < 1 << 48, "fits a JavaScript number exactly");
        assert_ne!(n, ResetSecret::generate().public_number());
        let stored = s.hash().0;
        let mut prefix = [0u8; 8];
        prefix[2..].copy_from_slice(&stored[..6]);
        assert_ne!(n, u64::from_be_bytes(prefix));
    }

    #[test]
    fn hex_encodes() {
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }
}
