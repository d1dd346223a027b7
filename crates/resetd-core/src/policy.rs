//! The password policy (NIST SP 800-63B): a length range, a check against common and breached
//! passwords, and a check against the person's own login, email and name. No composition rules.

use serde::Serialize;
use zxcvbn::matching::patterns::MatchPattern;
use zxcvbn::Score;

use crate::types::{Password, PASSWORD_MAX_CHARS};

/// One rule a password breaks; `code` is stable for machines, `message` is for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Stable identifier: `too_short`, `too_long`, `common`, `personal`.
    pub code: &'static str,
    /// An English explanation that never repeats the password.
    pub message: String,
}

/// The policy's verdict on a candidate password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Every rule broken, all at once; empty when the password is acceptable.
    pub violations: Vec<Violation>,
    /// Strength estimate from 0 (trivial) to 4 (very strong), after zxcvbn.
    pub score: u8,
}

impl Verdict {
    /// Whether the password may be set.
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty()
    }
}

/// A tenant's password rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Minimum length in characters (after NFKC); at least 8 unless the tenant lowers it on purpose.
    pub min_length: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self { min_length: 8 }
    }
}

/// What the policy knows about the person, so that their own details are refused as passwords.
#[derive(Debug, Default, Clone)]
pub struct PersonalContext<'a> {
    /// Words the password must not contain (login, email, its local part, display name).
    pub words: Vec<&'a str>,
}

impl PasswordPolicy {
    /// Checks `password` and reports every violation.
    pub fn check(&self, password: &Password, ctx: &PersonalContext<'_>) -> Verdict {
        let pw = password.expose();
        let chars = pw.chars().count();
        let mut violations = Vec::new();
        if chars < self.min_length {
            violations.push(Violation {
                code: "too_short",
                message: format!("Use at least {} characters.", self.min_length),
            });
        }
        if chars > PASSWORD_MAX_CHARS {
            violations.push(Violation {
                code: "too_long",
                message: format!("Use at most {PASSWORD_MAX_CHARS} characters."),
            });
        }
        if chars == 0 {
            return Verdict {
                violations,
                score: 0,
            };
        }
        // zxcvbn's cost grows with length; its verdict on the first 100 characters is the same for
        // any longer password in practice, and this bounds the work per request.
        let probe: String = pw.chars().take(100).collect();
        let inputs: Vec<&str> = ctx
            .words
            .iter()
            .copied()
            .filter(|w| w.chars().count() >= 3)
            .collect();
        let entropy = zxcvbn::zxcvbn(&probe, &inputs);
        let whole_common = entropy.sequence().len() == 1
            && matches!(&entropy.sequence()[0].pattern,
                MatchPattern::Dictionary(d) if is_password_list(d));
        if whole_common || entropy.score() == Score::Zero {
            violations.push(Violation {
                code: "common",
                message: "This password is too common or too easy to guess.".into(),
            });
        }
        let lower = pw.to_lowercase();
        if inputs.iter().any(|w| lower.contains(&w.to_lowercase())) {
            violations.push(Violation {
                code: "personal",
                message: "Do not use your login, email address or name in your password.".into(),
            });
        }
        let score = if violations.is_empty() {
            u8::from(entropy.score())
        } else {
            u8::from(entropy.score()).min(1)
        };
        Verdict { violations, score }
    }
}

// zxcvbn does not export its dictionary enum, only its Debug form.
fn is_password_list(d: &zxcvbn::matching::patterns::DictionaryPattern) -> bool {
    format!("{:?}", d.dictionary_name) == "Passwords"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pw: &str, words: &[&str]) -> Verdict {
        PasswordPolicy::default().check(
            &Password::parse(pw).unwrap(),
            &PersonalContext {
                words: words.to_vec(),
            },
        )
    }

    fn codes(v: &Verdict) -> Vec<&'static str> {
        v.violations.iter().map(|v| v.code).collect()
    }

    #[test]
    fn a_good_passphrase_passes_with_a_high_score() {
        let v = check("correct horse battery staple 42", &[]);
        assert!(v.is_ok(), "{v:?}");
        assert!(v.score >= 3);
    }

    #[test]
    fn short_common_and_personal_are_all_reported_at_once() {
        let v = check("qwerty", &["qwerty", "qwerty@example.com"]);
        assert_eq!(codes(&v), ["too_short", "common", "personal"]);
    }

    #[test]
    fn common_passwords_are_refused() {
        for pw in [
            "password",
            "password123",
            "qwertyuiop",
            "iloveyou",
            "123456789",
            "aaaaaaaaaa",
        ] {
            assert!(codes(&check(pw, &[])).contains(&"common"), "{pw}");
        }
    }

    #[test]
    fn personal_details_are_refused_case_insensitively() {
        let v = check(
            "Margaret-Hamilton-Apollo-11",
            &["margaret", "mh@example.com"],
        );
        assert_eq!(codes(&v), ["personal"]);
    }

    #[test]
    fn no_composition_rules() {
        // All lower case, no digits, no symbols: fine when long and uncommon.
        assert!(check("purple elephants juggle quietly", &[]).is_ok());
    }

    #[test]
    fn minimum_is_per_tenant_and_counts_characters_not_bytes() {
        let p = PasswordPolicy { min_length: 12 };
        let v = p.check(
            &Password::parse("ünïcödé-wörd").unwrap(),
            &PersonalContext::default(),
        );
        assert!(!codes(&v).contains(&"too_short"), "{v:?}");
        let v = p.check(
            &Password::parse("x7#Kq!9z").unwrap(),
            &PersonalContext::default(),
        );
        assert!(codes(&v).contains(&"too_short"));
    }
}
