//! Micro-benchmarks of the pure functions on the hot paths: `cargo bench -p resetd-core`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unimplemented
)]

use resetd_core::model::{Lookup, TenantSettings};
use resetd_core::policy::PersonalContext;
use resetd_core::secret::{ResetSecret, SecretHash};
use resetd_core::types::{Email, Login, Password, TenantId};

fn main() {
    divan::main();
}

/// A fresh 256-bit reset secret and the SHA-256 under which it is stored.
#[divan::bench]
fn token_generate_and_hash() -> SecretHash {
    ResetSecret::generate().hash()
}

/// Parsing a presented token and hashing it for the lookup.
#[divan::bench]
fn token_parse_and_hash(b: divan::Bencher) {
    let t = ResetSecret::generate().expose().to_owned();
    b.bench(|| ResetSecret::parse(divan::black_box(&t)).unwrap().hash());
}

/// The full password policy (length, zxcvbn common/guessable, personal words).
#[divan::bench(args = ["correct horse battery staple 42", "password123", "jdoe-was-here-2026"])]
fn policy_check(pw: &str) -> bool {
    let p = Password::parse(pw).unwrap();
    let ctx = PersonalContext {
        words: vec!["jdoe", "jdoe@example.com"],
    };
    TenantSettings::default().policy().check(&p, &ctx).is_ok()
}

/// What the request-reset handler does with a body before the store: JSON, tenant, login, email.
#[divan::bench]
fn request_parsing() -> (TenantId, Lookup, Lookup) {
    #[derive(serde::Deserialize)]
    struct Body {
        login: String,
        email: String,
    }
    let raw = br#"{"login":"jane.doe","email":"Jane.Doe@Example.com"}"#;
    let b: Body = serde_json::from_slice(divan::black_box(raw)).unwrap();
    (
        TenantId::parse("default").unwrap(),
        Lookup::login(&Login::parse(&b.login).unwrap()),
        Lookup::email(&Email::parse(&b.email).unwrap()),
    )
}
