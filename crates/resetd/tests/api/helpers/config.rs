//! A server's config built in code rather than by joining TOML strings in each test.

use super::{FAST_ARGON, NO_LIMITS};

/// Sections are appended in call order, so `TestConfig::new().fast_argon().no_limits()` is the
/// text `format!("{FAST_ARGON}{NO_LIMITS}")` gave, and a test that needs more adds it with
/// `section` until a typed method exists for it.
#[derive(Clone, Debug, Default)]
pub struct TestConfig {
    toml: String,
}

impl TestConfig {
    pub fn new() -> Self {
        Self::default()
    }

    /// Cheap Argon2 parameters so the suite runs quickly.
    pub fn fast_argon(self) -> Self {
        self.section(FAST_ARGON)
    }

    pub fn argon2(self, m_cost: u32, t_cost: u32, p_cost: u32) -> Self {
        self.section(&format!(
            "[argon2]\nm_cost = {m_cost}\nt_cost = {t_cost}\np_cost = {p_cost}\n"
        ))
    }

    /// Lifts the per-IP limits, since every test request comes from 127.0.0.1.
    pub fn no_limits(self) -> Self {
        self.section(NO_LIMITS)
    }

    pub fn section(mut self, toml: &str) -> Self {
        self.toml.push_str(toml);
        self
    }

    pub fn toml(&self) -> &str {
        &self.toml
    }
}
