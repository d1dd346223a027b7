//! The breached-passwords port: a lookup in a local copy of a breach corpus (Have I Been Pwned's
//! Pwned Passwords), keyed by the SHA-1 of the password. It is a read of a file already open,
//! with no network and no database, so it is synchronous.

/// The index could not be read (the text is for logs; it never holds a hash of a password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("breached-password index: {0}")]
pub struct BreachError(pub String);

/// One hash of a range: what the Have I Been Pwned range API lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeEntry {
    /// The whole SHA-1.
    pub sha1: [u8; 20],
    /// How many times the corpus saw it.
    pub count: u32,
}

/// A breach corpus, searchable by SHA-1.
pub trait BreachedPasswords: Send + Sync {
    /// How many times the corpus saw the password whose SHA-1 is `sha1`; `None` if never.
    fn count(&self, sha1: &[u8; 20]) -> Result<Option<u32>, BreachError>;

    /// Every hash whose first 20 bits (5 hex digits) are `prefix`, in hash order; `None` when
    /// the index keeps only truncated hashes and cannot list them.
    fn range(&self, prefix: u32) -> Result<Option<Vec<RangeEntry>>, BreachError>;
}

/// The SHA-1 the corpus is keyed by: of the password's UTF-8 bytes as resetd hashes them (after
/// NFKC; see docs/decisions.md, "Breached passwords").
pub fn password_sha1(password: &crate::types::Password) -> [u8; 20] {
    use sha1::{Digest, Sha1};
    Sha1::digest(password.expose().as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sha1_is_of_the_utf8_bytes() {
        let pw = crate::types::Password::parse("P@ssw0rd").unwrap();
        let hex: String = password_sha1(&pw)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        // Troy Hunt's worked example of the range API.
        assert_eq!(hex, "21bd12dc183f740ee76f27b78eb39c8ad972a757");
    }
}
