//! Configuration: built-in defaults, then a TOML file, then `RESETD_*` environment variables, then
//! command-line flags. `resetd check-config` prints the result (without secrets; it has none).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use resetd_core::hash::HashParams;
use serde::{Deserialize, Serialize};

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Where the SQLite database and demo mail live.
    pub data_dir: PathBuf,
    /// `sqlite://PATH`; empty means `DATA_DIR/resetd.db`.
    pub database_url: String,
    /// Base URL of this service as users reach it, for links to the hosted page; empty means
    /// `http://LISTEN`. Never taken from a request's Host header.
    pub public_url: String,
    /// Domain part of Message-IDs.
    pub message_id_domain: String,
    /// The tenant created on first start, with a bootstrap admin key.
    pub bootstrap_tenant: String,
    /// Argon2id cost.
    pub argon2: HashParams,
    /// Hashing pool.
    pub hashing: Hashing,
    /// HTTP limits.
    pub http: Http,
    /// Email.
    pub mail: Mail,
    /// The vendor dialects (`[dialects.alfresco]`, `[dialects.unleash]`, `[dialects.payabli]`).
    pub dialects: resetd_server::dialects::DialectsConfig,
}

/// The Argon2 pool size.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Hashing {
    /// Hashes running at once; 0 means the number of CPUs.
    pub workers: usize,
    /// Hashes waiting; past that requests get 503 + Retry-After.
    pub queue: usize,
}

/// HTTP limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Http {
    /// Largest body in bytes.
    pub body_limit: usize,
    /// Per-request time limit in seconds.
    pub request_timeout_secs: u64,
    /// Reset requests per IP per minute (0: off).
    pub recovery_per_minute: u32,
    /// Burst of reset requests per IP.
    pub recovery_burst: u32,
    /// Logins and reset completions per IP per minute (0: off).
    pub auth_per_minute: u32,
    /// Burst of logins per IP.
    pub auth_burst: u32,
}

/// Email settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mail {
    /// `file` (the demo default: .eml files under DATA_DIR/mail).
    pub transport: String,
    /// From address.
    pub from: String,
    /// Directory of template overrides.
    pub templates_dir: Option<PathBuf>,
    /// A support contact line shown in emails.
    pub support_contact: Option<String>,
    /// Product name shown in emails.
    pub product_name: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".parse().expect("valid address"),
            data_dir: PathBuf::from("data"),
            database_url: String::new(),
            public_url: String::new(),
            message_id_domain: "resetd.localhost".into(),
            bootstrap_tenant: "default".into(),
            argon2: HashParams::default(),
            hashing: Hashing::default(),
            http: Http::default(),
            mail: Mail::default(),
            dialects: Default::default(),
        }
    }
}

impl Default for Hashing {
    fn default() -> Self {
        Self {
            workers: 0,
            queue: 64,
        }
    }
}

impl Default for Http {
    fn default() -> Self {
        let d = resetd_server::HttpConfig::default();
        Self {
            body_limit: d.body_limit,
            request_timeout_secs: d.request_timeout.as_secs(),
            recovery_per_minute: d.recovery_per_minute,
            recovery_burst: d.recovery_burst,
            auth_per_minute: d.auth_per_minute,
            auth_burst: d.auth_burst,
        }
    }
}

impl Default for Mail {
    fn default() -> Self {
        Self {
            transport: "file".into(),
            from: "resetd <no-reply@resetd.localhost>".into(),
            templates_dir: None,
            support_contact: None,
            product_name: "resetd".into(),
        }
    }
}

/// Command-line overrides.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
}

impl Config {
    /// Loads defaults, then `file`, then the environment, then `over`.
    pub fn load(file: Option<&Path>, over: &Overrides) -> Result<Self, String> {
        let mut c = match file {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| format!("cannot read {}: {e}", p.display()))?;
                toml::from_str::<Config>(&text).map_err(|e| format!("{}: {e}", p.display()))?
            }
            None => Config::default(),
        };
        c.apply_env(|k| std::env::var(k).ok())?;
        if let Some(l) = over.listen {
            c.listen = l;
        }
        if let Some(d) = &over.data_dir {
            c.data_dir = d.clone();
        }
        c.validate()?;
        Ok(c)
    }

    fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), String> {
        if let Some(v) = get("RESETD_LISTEN") {
            self.listen = v.parse().map_err(|e| format!("RESETD_LISTEN: {e}"))?;
        }
        if let Some(v) = get("RESETD_DATA_DIR") {
            self.data_dir = v.into();
        }
        if let Some(v) = get("RESETD_DATABASE_URL") {
            self.database_url = v;
        }
        if let Some(v) = get("RESETD_PUBLIC_URL") {
            self.public_url = v;
        }
        if let Some(v) = get("RESETD_MAIL_TRANSPORT") {
            self.mail.transport = v;
        }
        if let Some(v) = get("RESETD_MAIL_FROM") {
            self.mail.from = v;
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), String> {
        resetd_core::hash::Argon2id::new(self.argon2).map_err(|e| format!("argon2: {e}"))?;
        if self.argon2.m_cost < 19456 || self.argon2.t_cost < 2 {
            eprintln!(
                "warning: argon2 parameters are below the OWASP minimum (m_cost=19456, t_cost=2)"
            );
        }
        let url = self.public_url();
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.ends_with('/') {
            return Err(format!(
                "public_url must be an absolute http(s) URL without a trailing '/': {url}"
            ));
        }
        if self.mail.transport != "file" {
            return Err(format!(
                "mail.transport: unknown transport {:?} (known: file)",
                self.mail.transport
            ));
        }
        if self.http.body_limit < 1024 || self.http.request_timeout_secs == 0 {
            return Err(
                "http.body_limit must be >= 1024 and http.request_timeout_secs >= 1".into(),
            );
        }
        resetd_core::types::TenantId::parse(&self.bootstrap_tenant)
            .map_err(|e| format!("bootstrap_tenant: {e}"))?;
        self.database_path()?;
        self.dialects.validate()?;
        Ok(())
    }

    /// The effective public URL.
    pub fn public_url(&self) -> String {
        if self.public_url.is_empty() {
            format!("http://{}", self.listen)
        } else {
            self.public_url.clone()
        }
    }

    /// The SQLite file to use.
    pub fn database_path(&self) -> Result<PathBuf, String> {
        if self.database_url.is_empty() {
            return Ok(self.data_dir.join("resetd.db"));
        }
        match self.database_url.strip_prefix("sqlite://") {
            Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
            _ => Err(format!(
                "database_url: only sqlite://PATH is supported, got {:?}",
                self.database_url
            )),
        }
    }

    /// The demo mail directory.
    pub fn mail_dir(&self) -> PathBuf {
        self.data_dir.join("mail")
    }

    /// The server's HTTP settings.
    pub fn http_config(&self) -> resetd_server::HttpConfig {
        resetd_server::HttpConfig {
            body_limit: self.http.body_limit,
            request_timeout: Duration::from_secs(self.http.request_timeout_secs),
            recovery_per_minute: self.http.recovery_per_minute,
            recovery_burst: self.http.recovery_burst,
            auth_per_minute: self.http.auth_per_minute,
            auth_burst: self.http.auth_burst,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let c = Config::default();
        c.validate().unwrap();
        assert_eq!(c.public_url(), "http://127.0.0.1:8080");
        assert_eq!(c.database_path().unwrap(), PathBuf::from("data/resetd.db"));
    }

    #[test]
    fn toml_then_env() {
        let mut c: Config = toml::from_str(
            "listen = \"127.0.0.1:9000\"\n[argon2]\nm_cost = 65536\nt_cost = 3\np_cost = 1\n",
        )
        .unwrap();
        assert_eq!(c.argon2.m_cost, 65536);
        c.apply_env(|k| (k == "RESETD_LISTEN").then(|| "0.0.0.0:1234".to_string()))
            .unwrap();
        assert_eq!(c.listen.port(), 1234);
        assert!(c.apply_env(|_| Some("nonsense".into())).is_err());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(toml::from_str::<Config>("lisen = \"x\"").is_err());
        let c = Config {
            public_url: "ftp://x".into(),
            ..Config::default()
        };
        assert!(c.validate().is_err());
        let c = Config {
            database_url: "mysql://x".into(),
            ..Config::default()
        };
        assert!(c.validate().is_err());
    }
}
