//! Argon2id password hashing in PHC string form. Pure computation: the server decides which
//! threads run it (a bounded blocking pool), see `PasswordHasher`.

use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::policy::{PasswordPolicy, PersonalContext, Verdict};
use crate::secret::random_bytes;
use crate::types::Password;

/// Argon2id cost parameters. The defaults are OWASP's minimum (m=19456 KiB, t=2, p=1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HashParams {
    /// Memory in KiB.
    pub m_cost: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Parallelism.
    pub p_cost: u32,
}

impl Default for HashParams {
    fn default() -> Self {
        Self {
            m_cost: 19456,
            t_cost: 2,
            p_cost: 1,
        }
    }
}

/// Why hashing could not be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// The hashing pool's queue is full; the caller should answer 503 with Retry-After.
    #[error("password hashing is saturated")]
    Overloaded,
    /// The parameters are unusable (a configuration error).
    #[error("argon2: {0}")]
    Argon2(String),
}

/// The result of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// The password matches.
    pub ok: bool,
    /// The stored hash is weaker than the configured parameters (or not Argon2id) and should be
    /// replaced now that the plain password is at hand.
    pub needs_rehash: bool,
}

/// Hashes and verifies passwords; implementations bound how much of this work runs at once.
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    /// A new PHC string for `password`.
    async fn hash(&self, password: &Password) -> Result<String, HashError>;
    /// Checks `password` against `phc`; an unparseable hash is simply a mismatch.
    async fn verify(&self, password: &Password, phc: &str) -> Result<Verified, HashError>;
    /// Spends the same work as a real verification, so unknown accounts take as long as known ones.
    async fn verify_dummy(&self, password: &Password) -> Result<(), HashError>;
    /// `policy`'s verdict on `password`, with `words` as the personal context. zxcvbn costs
    /// milliseconds of CPU per call (more than a cheap hash), so a server runs it where it runs
    /// hashes: bounded, off the async runtime, `Overloaded` when saturated. This default runs it on
    /// the calling thread, for tests and tools.
    async fn check_policy(
        &self,
        policy: &PasswordPolicy,
        password: &Password,
        words: &[&str],
    ) -> Result<Verdict, HashError> {
        Ok(policy.check(
            password,
            &PersonalContext {
                words: words.to_vec(),
            },
        ))
    }
}

/// Argon2id with fixed parameters, run on the calling thread.
#[derive(Debug, Clone)]
pub struct Argon2id {
    params: HashParams,
    dummy: String,
}

impl Argon2id {
    /// A hasher with `params`; fails when the parameters are out of Argon2's range.
    pub fn new(params: HashParams) -> Result<Self, HashError> {
        let mut me = Self {
            params,
            dummy: String::new(),
        };
        me.argon()?;
        me.dummy = me.hash(&Password::parse("dummy password for timing")?)?;
        Ok(me)
    }

    /// The configured parameters.
    pub fn params(&self) -> HashParams {
        self.params
    }

    fn argon(&self) -> Result<Argon2<'static>, HashError> {
        let p = Params::new(
            self.params.m_cost,
            self.params.t_cost,
            self.params.p_cost,
            None,
        )
        .map_err(|e| HashError::Argon2(e.to_string()))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, p))
    }

    /// Hashes `password` with a fresh 128-bit salt.
    pub fn hash(&self, password: &Password) -> Result<String, HashError> {
        self.hash_with(password, &mut Scratch::default())
    }

    /// [`Argon2id::hash`] in `scratch`'s memory, so a hashing thread allocates nothing per call.
    pub fn hash_with(
        &self,
        password: &Password,
        scratch: &mut Scratch,
    ) -> Result<String, HashError> {
        let err = |e: &dyn std::fmt::Display| HashError::Argon2(e.to_string());
        let p = self.params;
        let params = Params::new(p.m_cost, p.t_cost, p.p_cost, None).map_err(|e| err(&e))?;
        let blocks = params.block_count();
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let salt = random_bytes::<16>();
        let mut out = [0u8; 32];
        argon
            .hash_password_into_with_memory(
                password.expose().as_bytes(),
                &salt,
                &mut out,
                scratch.blocks(blocks),
            )
            .map_err(|e| err(&e))?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| err(&e))?;
        let out = Output::new(&out).map_err(|e| err(&e))?;
        Ok(format!(
            "$argon2id$v=19$m={},t={},p={}${}${out}",
            p.m_cost,
            p.t_cost,
            p.p_cost,
            salt.as_str()
        ))
    }

    /// Verifies `password` against an Argon2 PHC string (any variant and parameters).
    pub fn verify(&self, password: &Password, phc: &str) -> Verified {
        self.verify_with(password, phc, &mut Scratch::default())
    }

    /// [`Argon2id::verify`] in `scratch`'s memory.
    pub fn verify_with(&self, password: &Password, phc: &str, scratch: &mut Scratch) -> Verified {
        let Some(stored) = StoredHash::parse(phc) else {
            // An imported hash of another algorithm: verified by its own rules, replaced by
            // Argon2id on the first successful login.
            let ok = crate::foreign::ForeignHash::parse(phc)
                .is_ok_and(|f| !f.is_argon2() && f.verify(password));
            return Verified {
                ok,
                needs_rehash: ok,
            };
        };
        let ok = stored.matches(password, scratch);
        Verified {
            ok,
            needs_rehash: ok && stored.weaker_than(self.params),
        }
    }

    /// One verification against a fixed hash, for timing equality.
    pub fn verify_dummy(&self, password: &Password) {
        let _ = self.verify(password, &self.dummy);
    }

    /// [`Argon2id::verify_dummy`] in `scratch`'s memory.
    pub fn verify_dummy_with(&self, password: &Password, scratch: &mut Scratch) {
        let _ = self.verify_with(password, &self.dummy, scratch);
    }
}

/// Argon2 working memory owned by one hashing thread and reused across calls, so memory stays at
/// (threads × the largest cost seen) however many requests arrive.
#[derive(Default)]
pub struct Scratch(Vec<Block>);

impl Scratch {
    fn blocks(&mut self, n: usize) -> &mut [Block] {
        if self.0.len() < n {
            self.0.resize(n, Block::new());
        }
        &mut self.0[..n]
    }
}

/// The most memory a stored hash may ask for (256 MiB), so an imported hash cannot make one login
/// cost gigabytes.
pub const MAX_STORED_M_COST: u32 = 1 << 18;

/// A stored Argon2 PHC string whose parameters are within the bounds resetd will compute.
pub struct StoredHash<'a> {
    hash: PasswordHash<'a>,
    params: HashParams,
}

impl<'a> StoredHash<'a> {
    /// Parses `phc`; `None` when it is not an Argon2 PHC string or asks for too much work.
    pub fn parse(phc: &'a str) -> Option<Self> {
        let hash = PasswordHash::new(phc).ok()?;
        if !matches!(hash.algorithm.as_str(), "argon2id" | "argon2i" | "argon2d") {
            return None;
        }
        let get = |name: &str| hash.params.get_decimal(name);
        let params = HashParams {
            m_cost: get("m")?,
            t_cost: get("t")?,
            p_cost: get("p")?,
        };
        if params.m_cost > MAX_STORED_M_COST || params.t_cost > 64 || params.p_cost > 16 {
            return None;
        }
        Some(Self { hash, params })
    }

    /// Recomputes the hash of `password` with the stored salt, variant, version and parameters,
    /// and compares in constant time.
    fn matches(&self, password: &Password, scratch: &mut Scratch) -> bool {
        let algorithm = match self.hash.algorithm.as_str() {
            "argon2id" => Algorithm::Argon2id,
            "argon2i" => Algorithm::Argon2i,
            _ => Algorithm::Argon2d,
        };
        let version = match self.hash.version {
            None | Some(0x13) => Version::V0x13,
            Some(0x10) => Version::V0x10,
            Some(_) => return false,
        };
        let (Some(expected), Some(salt)) = (self.hash.hash, self.hash.salt) else {
            return false;
        };
        let mut salt_buf = [0u8; 64];
        let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
            return false;
        };
        let p = self.params;
        let Ok(params) = Params::new(p.m_cost, p.t_cost, p.p_cost, Some(expected.len())) else {
            return false;
        };
        let blocks = params.block_count();
        let argon = Argon2::new(algorithm, version, params);
        let mut out = [0u8; 64];
        let out = &mut out[..expected.len()];
        if argon
            .hash_password_into_with_memory(
                password.expose().as_bytes(),
                salt,
                out,
                scratch.blocks(blocks),
            )
            .is_err()
        {
            return false;
        }
        Output::new(out).is_ok_and(|o| o == expected) // Output compares in constant time
    }

    /// The stored parameters.
    pub fn params(&self) -> HashParams {
        self.params
    }

    /// Whether this hash is weaker than `current` (or not Argon2id) and should be replaced.
    pub fn weaker_than(&self, current: HashParams) -> bool {
        self.hash.algorithm.as_str() != "argon2id"
            || self.params.m_cost < current.m_cost
            || self.params.t_cost < current.t_cost
            || self.params.p_cost < current.p_cost
    }
}

impl From<crate::types::InvalidInput> for HashError {
    fn from(e: crate::types::InvalidInput) -> Self {
        HashError::Argon2(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> HashParams {
        HashParams {
            m_cost: 256,
            t_cost: 1,
            p_cost: 1,
        }
    }

    #[test]
    fn hashes_are_argon2id_phc_with_the_configured_parameters() {
        let h = Argon2id::new(HashParams::default()).unwrap();
        let phc = h
            .hash(&Password::parse("a long passphrase").unwrap())
            .unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(
            h.verify(&Password::parse("a long passphrase").unwrap(), &phc)
                .ok
        );
        assert!(
            !h.verify(&Password::parse("a long passphrasE").unwrap(), &phc)
                .ok
        );
    }

    #[test]
    fn scratch_hashing_agrees_with_the_reference_implementation() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let h = Argon2id::new(cheap()).unwrap();
        let p = Password::parse("cross-checked passphrase").unwrap();
        // Ours verifies by the reference code...
        let ours = h.hash(&p).unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(p.expose().as_bytes(), &parsed)
            .is_ok());
        // ...and the reference code's hashes (every variant) verify by ours, reusing one scratch.
        let mut scratch = Scratch::default();
        for alg in [Algorithm::Argon2id, Algorithm::Argon2i, Algorithm::Argon2d] {
            let params = Params::new(512, 2, 2, None).unwrap();
            let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
            let reference = Argon2::new(alg, Version::V0x13, params)
                .hash_password(p.expose().as_bytes(), &salt)
                .unwrap()
                .to_string();
            assert!(
                h.verify_with(&p, &reference, &mut scratch).ok,
                "{reference}"
            );
            let wrong = Password::parse("cross-checked passphrasE").unwrap();
            assert!(!h.verify_with(&wrong, &reference, &mut scratch).ok);
        }
    }

    #[test]
    fn salts_differ() {
        let h = Argon2id::new(cheap()).unwrap();
        let p = Password::parse("same password").unwrap();
        assert_ne!(h.hash(&p).unwrap(), h.hash(&p).unwrap());
    }

    #[test]
    fn weaker_hashes_ask_for_a_rehash_only_when_they_match() {
        let weak = Argon2id::new(cheap()).unwrap();
        let strong = Argon2id::new(HashParams {
            m_cost: 512,
            t_cost: 2,
            p_cost: 1,
        })
        .unwrap();
        let p = Password::parse("pass phrase").unwrap();
        let phc = weak.hash(&p).unwrap();
        assert_eq!(
            strong.verify(&p, &phc),
            Verified {
                ok: true,
                needs_rehash: true
            }
        );
        assert_eq!(
            strong.verify(&Password::parse("other").unwrap(), &phc),
            Verified {
                ok: false,
                needs_rehash: false
            }
        );
        let phc2 = strong.hash(&p).unwrap();
        assert_eq!(
            strong.verify(&p, &phc2),
            Verified {
                ok: true,
                needs_rehash: false
            }
        );
    }

    #[test]
    fn garbage_and_absurd_hashes_do_not_match() {
        let h = Argon2id::new(cheap()).unwrap();
        let p = Password::parse("x").unwrap();
        assert!(!h.verify(&p, "not a hash").ok);
        assert!(
            !h.verify(
                &p,
                "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
            )
            .ok
        );
        let h = |m: u32| format!("$argon2id$v=19$m={m},t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA");
        assert!(StoredHash::parse(&h(MAX_STORED_M_COST + 1)).is_none());
        assert!(StoredHash::parse(&h(MAX_STORED_M_COST)).is_some());
        assert!(StoredHash::parse("$scrypt$ln=16,r=8,p=1$c2FsdA$aGFzaA").is_none());
    }

    #[test]
    fn invalid_parameters_are_refused() {
        assert!(Argon2id::new(HashParams {
            m_cost: 1,
            t_cost: 0,
            p_cost: 0
        })
        .is_err());
    }
}
