//! Password hashes imported from the products resetd replaces. A [`ForeignHash`] is recognised by
//! its form, bounded in work when it is parsed (at import, so an absurd cost is a rejected row,
//! not a slow login), normalised to one stored text form, and verified with its own algorithm.
//! A successful login replaces it with Argon2id (`Verified::needs_rehash`).
//!
//! Stored forms (see docs/import.md):
//! - bcrypt `$2a$`/`$2b$`/`$2y$`: kept as given (Alfresco's `bcrypt10` is this form).
//! - SHA-crypt `$5$`/`$6$` (with optional `rounds=N$`): kept as given.
//! - Argon2 i/d/id PHC: kept as given.
//! - PBKDF2-SHA256/SHA512 (PHC `i=` form, passlib's `$pbkdf2-sha256$N$` form, Django's
//!   `pbkdf2_sha256$N$salt$hash`, Keycloak's credential JSON): stored as the PHC form
//!   `$pbkdf2-sha256$i=N,l=LEN$SALT$HASH` with unpadded standard base64 of the salt bytes.
//! - scrypt (`$scrypt$ln=..,r=..,p=..$SALT$HASH`, passlib's form): kept as given, the salt is
//!   the base64-decoded bytes as passlib does.
//! - Alfresco's salted SHA-256 (`alfresco-sha256$SALT$HEX`, Acegi's `ShaPasswordEncoder` rule:
//!   hex SHA-256 of `password{salt}`): kept as given.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use subtle::ConstantTimeEq;

use crate::hash::StoredHash;
use crate::types::Password;

/// Highest bcrypt cost accepted (2^14 rounds, about a second); higher is a rejected row.
pub const MAX_BCRYPT_COST: u32 = 14;
/// Highest PBKDF2 iteration count accepted.
pub const MAX_PBKDF2_ITERATIONS: u32 = 2_000_000;
/// Highest SHA-crypt rounds accepted.
pub const MAX_SHA_CRYPT_ROUNDS: usize = 1_000_000;
/// Highest scrypt memory accepted, as 128 * r * 2^ln bytes (256 MiB).
pub const MAX_SCRYPT_BYTES: u64 = 1 << 28;

/// Why an imported hash was refused (the text names the problem, never the hash).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HashRejected(pub String);

fn reject<T>(why: &str) -> Result<T, HashRejected> {
    Err(HashRejected(why.to_owned()))
}

/// The PBKDF2 digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prf {
    Sha256,
    Sha512,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Form {
    Bcrypt,
    Argon2,
    ShaCrypt {
        sha512: bool,
        rounds: Option<usize>,
        salt: String,
        hash: String,
    },
    Pbkdf2 {
        prf: Prf,
        iterations: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    AlfrescoSha256 {
        salt: String,
        hash: Vec<u8>,
    },
    Scrypt {
        log_n: u8,
        r: u32,
        p: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
}

/// An accepted foreign (or Argon2) password hash in its stored text form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignHash {
    text: String,
    form: Form,
}

impl ForeignHash {
    /// Recognises `input` by its form; the error says why the row is refused.
    pub fn parse(input: &str) -> Result<Self, HashRejected> {
        let s = input.trim();
        if s.is_empty() {
            return reject("empty password hash");
        }
        if s.starts_with('{') {
            return keycloak(s);
        }
        if let Some(rest) = s.strip_prefix("pbkdf2_sha256$") {
            return django(Prf::Sha256, rest);
        }
        if s.starts_with("pbkdf2_") {
            return reject("unsupported Django hasher (only pbkdf2_sha256)");
        }
        if let Some(rest) = s.strip_prefix("alfresco-sha256$") {
            return alfresco_sha256(s, rest);
        }
        if let Some(rest) = s.strip_prefix("bcrypt10:") {
            return bcrypt(rest);
        }
        let Some(id) = s.strip_prefix('$').and_then(|r| r.split('$').next()) else {
            return reject("unrecognised password hash form");
        };
        match id {
            "2a" | "2b" | "2y" => bcrypt(s),
            "5" | "6" => sha_crypt(s),
            "argon2id" | "argon2i" | "argon2d" => match StoredHash::parse(s) {
                Some(_) => Ok(Self {
                    text: s.to_owned(),
                    form: Form::Argon2,
                }),
                None => reject("malformed argon2 hash or parameters beyond m=262144,t=64,p=16"),
            },
            "pbkdf2-sha256" => pbkdf2_phc(Prf::Sha256, s),
            "pbkdf2-sha512" => pbkdf2_phc(Prf::Sha512, s),
            "scrypt" => scrypt(s),
            _ => reject("unsupported password hash algorithm"),
        }
    }

    /// The text to store.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The stored text.
    pub fn into_string(self) -> String {
        self.text
    }

    /// Whether this is already an Argon2 hash (verified by the Argon2 hasher itself).
    pub fn is_argon2(&self) -> bool {
        matches!(self.form, Form::Argon2)
    }

    /// Checks `password` against this hash (Argon2 forms are checked by `Argon2id::verify`).
    pub fn verify(&self, password: &Password) -> bool {
        let pw = password.expose().as_bytes();
        match &self.form {
            Form::Bcrypt => bcrypt::verify(pw, &self.text).unwrap_or(false),
            Form::Argon2 => false,
            Form::ShaCrypt {
                sha512,
                rounds,
                salt,
                hash,
            } => {
                let rounds = rounds.unwrap_or(5000);
                let got = if *sha512 {
                    sha_crypt::Sha512Params::new(rounds)
                        .ok()
                        .and_then(|p| sha_crypt::sha512_crypt_b64(pw, salt.as_bytes(), &p).ok())
                } else {
                    sha_crypt::Sha256Params::new(rounds)
                        .ok()
                        .and_then(|p| sha_crypt::sha256_crypt_b64(pw, salt.as_bytes(), &p).ok())
                };
                got.is_some_and(|g| bool::from(g.as_bytes().ct_eq(hash.as_bytes())))
            }
            Form::Pbkdf2 {
                prf,
                iterations,
                salt,
                hash,
            } => {
                let mut out = vec![0u8; hash.len()];
                match prf {
                    Prf::Sha256 => {
                        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(pw, salt, *iterations, &mut out)
                    }
                    Prf::Sha512 => {
                        pbkdf2::pbkdf2_hmac::<sha2::Sha512>(pw, salt, *iterations, &mut out)
                    }
                }
                bool::from(out.ct_eq(hash))
            }
            Form::AlfrescoSha256 { salt, hash } => {
                use sha2::Digest as _;
                let mut d = sha2::Sha256::new();
                d.update(pw);
                d.update(b"{");
                d.update(salt.as_bytes());
                d.update(b"}");
                bool::from(d.finalize().as_slice().ct_eq(hash))
            }
            Form::Scrypt {
                log_n,
                r,
                p,
                salt,
                hash,
            } => {
                let Ok(params) = scrypt::Params::new(*log_n, *r, *p, hash.len()) else {
                    return false;
                };
                let mut out = vec![0u8; hash.len()];
                scrypt::scrypt(pw, salt, &params, &mut out).is_ok() && bool::from(out.ct_eq(hash))
            }
        }
    }
}

fn bcrypt(s: &str) -> Result<ForeignHash, HashRejected> {
    // $2b$10$ + 22 salt chars + 31 hash chars.
    let parts: Vec<&str> = s.split('$').collect();
    if parts.len() != 4 || parts[3].len() != 53 {
        return reject("malformed bcrypt hash");
    }
    let Ok(cost) = parts[2].parse::<u32>() else {
        return reject("malformed bcrypt cost");
    };
    if !(4..=MAX_BCRYPT_COST).contains(&cost) {
        return reject("bcrypt cost out of range 4..=14");
    }
    let alphabet = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '/';
    if !parts[3].chars().all(alphabet) {
        return reject("malformed bcrypt hash");
    }
    Ok(ForeignHash {
        text: s.to_owned(),
        form: Form::Bcrypt,
    })
}

fn sha_crypt(s: &str) -> Result<ForeignHash, HashRejected> {
    let parts: Vec<&str> = s.split('$').collect();
    let sha512 = parts[1] == "6";
    let (rounds, salt, hash) = match parts.as_slice() {
        [_, _, r, salt, hash] if r.starts_with("rounds=") => {
            let Ok(n) = r["rounds=".len()..].parse::<usize>() else {
                return reject("malformed SHA-crypt rounds");
            };
            if !(1000..=MAX_SHA_CRYPT_ROUNDS).contains(&n) {
                return reject("SHA-crypt rounds out of range 1000..=1000000");
            }
            (Some(n), *salt, *hash)
        }
        [_, _, salt, hash] => (None, *salt, *hash),
        _ => return reject("malformed SHA-crypt hash"),
    };
    let want = if sha512 { 86 } else { 43 };
    let alphabet = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '/';
    if salt.len() > 16 || hash.len() != want || !hash.chars().all(alphabet) {
        return reject("malformed SHA-crypt hash");
    }
    Ok(ForeignHash {
        text: s.to_owned(),
        form: Form::ShaCrypt {
            sha512,
            rounds,
            salt: salt.to_owned(),
            hash: hash.to_owned(),
        },
    })
}

/// Unpadded standard base64, also accepting padding and passlib's `.` for `+`.
fn b64(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=').replace('.', "+");
    STANDARD_NO_PAD.decode(s).ok()
}

fn pbkdf2(
    prf: Prf,
    iterations: u32,
    salt: Vec<u8>,
    hash: Vec<u8>,
) -> Result<ForeignHash, HashRejected> {
    if !(1000..=MAX_PBKDF2_ITERATIONS).contains(&iterations) {
        return reject("PBKDF2 iterations out of range 1000..=2000000");
    }
    if salt.is_empty() || salt.len() > 256 || !(16..=128).contains(&hash.len()) {
        return reject("malformed PBKDF2 salt or hash length");
    }
    let name = match prf {
        Prf::Sha256 => "pbkdf2-sha256",
        Prf::Sha512 => "pbkdf2-sha512",
    };
    let text = format!(
        "${name}$i={iterations},l={}${}${}",
        hash.len(),
        STANDARD_NO_PAD.encode(&salt),
        STANDARD_NO_PAD.encode(&hash)
    );
    Ok(ForeignHash {
        text,
        form: Form::Pbkdf2 {
            prf,
            iterations,
            salt,
            hash,
        },
    })
}

/// `$pbkdf2-sha256$i=N[,l=L]$salt$hash` (PHC) or `$pbkdf2-sha256$N$salt$hash` (passlib).
fn pbkdf2_phc(prf: Prf, s: &str) -> Result<ForeignHash, HashRejected> {
    let parts: Vec<&str> = s.split('$').collect();
    let [_, _, params, salt, hash] = parts.as_slice() else {
        return reject("malformed PBKDF2 hash");
    };
    let iterations = params
        .split(',')
        .find_map(|kv| kv.strip_prefix("i="))
        .unwrap_or(params)
        .parse::<u32>();
    let (Ok(iterations), Some(salt), Some(hash)) = (iterations, b64(salt), b64(hash)) else {
        return reject("malformed PBKDF2 hash");
    };
    pbkdf2(prf, iterations, salt, hash)
}

/// Django's `pbkdf2_sha256$N$salt$base64hash` (the salt is used as text).
fn django(prf: Prf, rest: &str) -> Result<ForeignHash, HashRejected> {
    let parts: Vec<&str> = rest.split('$').collect();
    let [n, salt, hash] = parts.as_slice() else {
        return reject("malformed Django PBKDF2 hash");
    };
    let (Ok(n), Ok(hash)) = (n.parse::<u32>(), STANDARD.decode(hash)) else {
        return reject("malformed Django PBKDF2 hash");
    };
    pbkdf2(prf, n, salt.as_bytes().to_vec(), hash)
}

/// Keycloak's PBKDF2 credential: `{"secretData": {"value", "salt"}, "credentialData":
/// {"hashIterations", "algorithm"}}` (each part as an object or as the JSON text Keycloak stores),
/// or the same keys flat in one object.
fn keycloak(s: &str) -> Result<ForeignHash, HashRejected> {
    use serde_json::Value;
    let Ok(Value::Object(top)) = serde_json::from_str::<Value>(s) else {
        return reject("malformed Keycloak credential JSON");
    };
    let part = |name: &str| -> Value {
        match top.get(name) {
            Some(Value::String(t)) => serde_json::from_str(t).unwrap_or(Value::Null),
            Some(v) => v.clone(),
            None => Value::Object(top.clone()),
        }
    };
    let (secret, data) = (part("secretData"), part("credentialData"));
    let prf = match data.get("algorithm").and_then(Value::as_str) {
        Some("pbkdf2-sha256") => Prf::Sha256,
        Some("pbkdf2-sha512") => Prf::Sha512,
        _ => return reject("unsupported Keycloak credential algorithm"),
    };
    let iterations = data
        .get("hashIterations")
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok());
    let salt = secret.get("salt").and_then(Value::as_str).and_then(b64);
    let hash = secret.get("value").and_then(Value::as_str).and_then(b64);
    let (Some(iterations), Some(salt), Some(hash)) = (iterations, salt, hash) else {
        return reject("malformed Keycloak credential JSON");
    };
    pbkdf2(prf, iterations, salt, hash)
}

/// `alfresco-sha256$salt$hex`.
fn alfresco_sha256(s: &str, rest: &str) -> Result<ForeignHash, HashRejected> {
    let Some((salt, hex)) = rest.split_once('$') else {
        return reject("malformed Alfresco SHA-256 hash");
    };
    let hash: Option<Vec<u8>> = (hex.len() == 64)
        .then(|| {
            (0..32)
                .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
                .collect()
        })
        .flatten();
    let Some(hash) = hash else {
        return reject("malformed Alfresco SHA-256 hash");
    };
    if salt.is_empty() || salt.len() > 128 || salt.contains(['{', '}']) {
        return reject("malformed Alfresco SHA-256 salt");
    }
    Ok(ForeignHash {
        text: s.to_owned(),
        form: Form::AlfrescoSha256 {
            salt: salt.to_owned(),
            hash,
        },
    })
}

/// `$scrypt$ln=16,r=8,p=1$salt$hash` (passlib; the salt is the decoded bytes).
fn scrypt(s: &str) -> Result<ForeignHash, HashRejected> {
    let parts: Vec<&str> = s.split('$').collect();
    let [_, _, params, salt_b64, hash_b64] = parts.as_slice() else {
        return reject("malformed scrypt hash");
    };
    let (mut ln, mut r, mut p) = (None, None, None);
    for kv in params.split(',') {
        match kv.split_once('=') {
            Some(("ln", v)) => ln = v.parse::<u8>().ok(),
            Some(("r", v)) => r = v.parse::<u32>().ok(),
            Some(("p", v)) => p = v.parse::<u32>().ok(),
            _ => return reject("malformed scrypt parameters"),
        }
    }
    let (Some(log_n), Some(r), Some(p), Some(salt), Some(hash)) =
        (ln, r, p, b64(salt_b64), b64(hash_b64))
    else {
        return reject("malformed scrypt hash");
    };
    // Checked in this order so the memory figure cannot overflow (log_n <= 24, r <= 64).
    if log_n == 0
        || log_n > 24
        || r == 0
        || r > 64
        || p == 0
        || p > 16
        || (128 * u64::from(r)) << log_n > MAX_SCRYPT_BYTES
    {
        return reject("scrypt parameters beyond 256 MiB or out of range");
    }
    if !(16..=128).contains(&hash.len()) || salt.is_empty() {
        return reject("malformed scrypt salt or hash length");
    }
    if scrypt::Params::new(log_n, r, p, hash.len()).is_err() {
        return reject("invalid scrypt parameters");
    }
    Ok(ForeignHash {
        text: s.to_owned(),
        form: Form::Scrypt {
            log_n,
            r,
            p,
            salt,
            hash,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(s: &str) -> Password {
        Password::parse(s).unwrap()
    }

    // Produced by passlib 1.7.4 / Django's algorithm for the password "pw".
    const PASSLIB_PBKDF2: &str =
        "$pbkdf2-sha256$29000$H4MQolRKyTlnDOFci3HuXQ$IcAcyL2dYvabWcCEkTP/ZCSh32OcpAhK1kjGCU3OCkA";
    const PASSLIB_SCRYPT: &str =
        "$scrypt$ln=16,r=8,p=1$AcA4RwjhnHMO4VzrXQthDA$LjyawBP2Fis/jn1Fatbm2mUvwQwY/0NQaZb/9LPVVVM";

    #[test]
    fn passlib_pbkdf2_is_normalised_to_phc_and_still_verifies() {
        let h = ForeignHash::parse(PASSLIB_PBKDF2).unwrap();
        assert!(
            h.as_str().starts_with("$pbkdf2-sha256$i=29000,l=32$"),
            "{}",
            h.as_str()
        );
        assert!(h.verify(&pw("pw")));
        assert!(!h.verify(&pw("pW")));
        let again = ForeignHash::parse(h.as_str()).unwrap();
        assert_eq!(again, h);
    }

    #[test]
    fn passlib_scrypt_verifies() {
        let h = ForeignHash::parse(PASSLIB_SCRYPT).unwrap();
        assert!(h.verify(&pw("pw")));
        assert!(!h.verify(&pw("px")));
    }

    #[test]
    fn absurd_costs_and_garbage_are_rejected_with_a_reason() {
        let cases = [
            ("", "empty"),
            ("plaintext", "unrecognised"),
            ("$1$abc$def", "unsupported"),
            ("pbkdf2_sha1$1000$salt$aGFzaA==", "Django"),
            (
                "$2b$31$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyzABCDE",
                "cost",
            ),
            ("$2b$10$short", "malformed"),
            ("$6$rounds=999999999$salt$x", "rounds"),
            ("$scrypt$ln=30,r=8,p=1$c2FsdA$aGFzaA", "scrypt"),
            ("{\"algorithm\":\"md5\"}", "Keycloak"),
        ];
        for (input, why) in cases {
            let e = ForeignHash::parse(input).unwrap_err();
            assert!(e.0.contains(why), "{input}: {e}");
        }
    }

    #[test]
    fn keycloak_credential_json_is_pbkdf2() {
        // PBKDF2-SHA256 of "pw" with salt "saltsaltsaltsalt", 27500 iterations, 64 bytes.
        let mut out = [0u8; 64];
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(b"pw", b"saltsaltsaltsalt", 27500, &mut out);
        let json = serde_json::json!({
            "secretData": serde_json::json!({"value": STANDARD.encode(out), "salt": STANDARD.encode(b"saltsaltsaltsalt"), "additionalParameters": {}}).to_string(),
            "credentialData": serde_json::json!({"hashIterations": 27500, "algorithm": "pbkdf2-sha256", "additionalParameters": {}}).to_string(),
        });
        let h = ForeignHash::parse(&json.to_string()).unwrap();
        assert!(h.as_str().starts_with("$pbkdf2-sha256$i=27500,l=64$"));
        assert!(h.verify(&pw("pw")));
    }
}
