//! Configuration: built-in defaults, then a TOML file, then `RESETD_*` environment variables, then
//! command-line flags. `resetd check-config` prints the result (the SMTP password, and the secrets
//! of `[credentials.*]`, as `<redacted>`).

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
    /// `sqlite://PATH`, or `postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?schema=S&pool_size=N]` for
    /// several instances on one database; empty means `sqlite://DATA_DIR/resetd.db`.
    pub database_url: String,
    /// A file holding `database_url` (a container secret or a systemd credential; see
    /// docs/operations.md): the URL may hold the database password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url_file: Option<PathBuf>,
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
    /// The management listener (`/metrics`, `/readyz`, `/healthz`).
    pub management: Management,
    /// Email.
    pub mail: Mail,
    /// The hosted reset page.
    pub page: Page,
    /// Vendor dialects: which are served and on which tenant.
    pub dialects: resetd_server::dialects::DialectsConfig,
    /// The breached-password index (`resetd breached import`).
    pub breached: Breached,
    /// Tenants whose passwords live in an external system: `[credentials.<tenant>]` with
    /// `kind` and the adapter's own keys (see `docs/credentials.md`).
    pub credentials: crate::credentials::Sections,
    /// How long finished records are kept (see `docs/operations.md`, "Retention").
    pub retention: Retention,
}

mod retention;
pub use retention::Retention;

/// Where the breached-password index lives.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Breached {
    /// The index file. Empty: `breached.idx` beside the SQLite file, or in `data_dir` for
    /// PostgreSQL; there, a missing file means no check. A file named here must exist.
    pub index_file: Option<PathBuf>,
}

/// Hosted page settings (product name and support contact are shared with `mail`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Page {
    /// Directory of page template, string and asset overrides (see docs/page.md).
    pub templates_dir: Option<PathBuf>,
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
    /// Anonymous password policy checks (`password/check`, Unleash's `validate-password`) per
    /// IP per minute (0: off).
    pub password_check_per_minute: u32,
    /// Burst of password policy checks per IP.
    pub password_check_burst: u32,
    /// Accepted reset requests that may wait to be resolved, over all surfaces and tenants; past
    /// it request-reset answers 503 + `Retry-After` on every surface, for known and unknown
    /// accounts alike (see docs/performance.md).
    pub reset_queue_cap: u64,
    /// Claimed reset requests the worker resolves at once (1..=256).
    pub reset_worker_concurrency: usize,
}

/// The management listener: metrics, readiness and liveness on an address of their own, never
/// on the public one (the metrics move with account activity, see docs/security.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Management {
    /// Whether to serve it at all.
    pub enabled: bool,
    /// Its address; loopback by default, so only this host (a local Prometheus or agent) reaches it.
    pub listen: SocketAddr,
}

impl Default for Management {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 9180)),
        }
    }
}

/// Email settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mail {
    /// `file` (the demo default: .eml files under DATA_DIR/mail) or `smtp` (see `[mail.smtp]`).
    pub transport: String,
    /// From address, optionally with a display name. Unset: [`DEFAULT_FROM`], and an email that
    /// speaks for a vendor product (a dialect's) is sent in that product's name; a display name
    /// set here is kept on every email.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Directory of template overrides.
    pub templates_dir: Option<PathBuf>,
    /// A support contact line shown in emails.
    pub support_contact: Option<String>,
    /// Product name shown in emails and on the hosted page. Unset: `resetd`, and an email that
    /// speaks for a vendor product names that product; a name set here is shown everywhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_name: Option<String>,
    /// The SMTP server, for `transport = "smtp"`.
    pub smtp: resetd_mail::SmtpConfig,
    /// The outbox worker (`[mail.worker]`: batch, lease_secs, backoff, concurrency,
    /// notice_retry_secs).
    pub worker: resetd_mail::WorkerConfig,
    /// The key file that seals queued email bodies in the database (created with mode 0600 at
    /// first start). Empty: `outbox.key` beside the SQLite file, or in `data_dir` for PostgreSQL.
    /// Every instance on one database needs the same file.
    pub outbox_key_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            database_url: String::new(),
            database_url_file: None,
            public_url: String::new(),
            message_id_domain: "resetd.localhost".into(),
            bootstrap_tenant: "default".into(),
            argon2: HashParams::default(),
            hashing: Hashing::default(),
            http: Http::default(),
            management: Management::default(),
            mail: Mail::default(),
            page: Page::default(),
            dialects: Default::default(),
            breached: Breached::default(),
            credentials: Default::default(),
            retention: Retention::default(),
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
            password_check_per_minute: d.password_check_per_minute,
            password_check_burst: d.password_check_burst,
            reset_queue_cap: resetd_core::service::DEFAULT_RESET_QUEUE_CAP,
            reset_worker_concurrency: resetd_core::service::DEFAULT_RESOLVE_CONCURRENCY,
        }
    }
}

/// The sender when `mail.from` is not set.
pub const DEFAULT_FROM: &str = "resetd <no-reply@resetd.localhost>";

/// The product name when `mail.product_name` is not set.
pub const DEFAULT_PRODUCT_NAME: &str = "resetd";

impl Mail {
    /// The configured sender, or [`DEFAULT_FROM`].
    pub fn sender(&self) -> &str {
        self.from.as_deref().unwrap_or(DEFAULT_FROM)
    }

    /// The configured product name, or [`DEFAULT_PRODUCT_NAME`].
    pub fn product_name(&self) -> &str {
        self.product_name.as_deref().unwrap_or(DEFAULT_PRODUCT_NAME)
    }
}

impl Default for Mail {
    fn default() -> Self {
        Self {
            transport: "file".into(),
            from: None,
            templates_dir: None,
            support_contact: None,
            product_name: None,
            smtp: resetd_mail::SmtpConfig::default(),
            worker: resetd_mail::WorkerConfig::default(),
            outbox_key_file: None,
        }
    }
}

/// Where the data lives.
#[derive(Debug, Clone)]
pub enum Database {
    /// An SQLite file (one instance, or several processes on one machine).
    Sqlite(PathBuf),
    /// A PostgreSQL database shared by any number of instances.
    Postgres(Box<resetd_store::postgres::PgOptions>),
}

impl Database {
    /// For logs: the file, or the server without the password.
    pub fn describe(&self) -> String {
        match self {
            Database::Sqlite(p) => p.display().to_string(),
            Database::Postgres(o) => o.describe(),
        }
    }
}

/// `url` with the password of its `user:password@` part replaced by `***`.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
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
        c.resolve_secrets()?;
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
        if let Some(v) = get("RESETD_MANAGEMENT_LISTEN") {
            self.management.listen = v
                .parse()
                .map_err(|e| format!("RESETD_MANAGEMENT_LISTEN: {e}"))?;
        }
        if let Some(v) = get("RESETD_DATA_DIR") {
            self.data_dir = v.into();
        }
        if let Some(v) = get("RESETD_DATABASE_URL") {
            self.database_url = v;
        }
        if let Some(v) = get("RESETD_DATABASE_URL_FILE") {
            self.database_url_file = Some(v.into());
        }
        if let Some(v) = get("RESETD_PUBLIC_URL") {
            self.public_url = v;
        }
        if let Some(v) = get("RESETD_MAIL_TRANSPORT") {
            self.mail.transport = v;
        }
        if let Some(v) = get("RESETD_MAIL_FROM") {
            self.mail.from = Some(v);
        }
        if let Some(v) = get("RESETD_OUTBOX_KEY_FILE") {
            self.mail.outbox_key_file = Some(v.into());
        }
        if let Some(v) = get("RESETD_BREACHED_INDEX_FILE") {
            self.breached.index_file = Some(v.into());
        }
        if let Some(v) = get("RESETD_SMTP_HOST") {
            self.mail.smtp.host = v;
        }
        if let Some(v) = get("RESETD_SMTP_PORT") {
            self.mail.smtp.port = Some(v.parse().map_err(|e| format!("RESETD_SMTP_PORT: {e}"))?);
        }
        if let Some(v) = get("RESETD_SMTP_USERNAME") {
            self.mail.smtp.username = Some(v);
        }
        if let Some(v) = get("RESETD_SMTP_PASSWORD") {
            self.mail.smtp.password = Some(resetd_mail::ConfigSecret::new(v));
        }
        if let Some(v) = get("RESETD_SMTP_PASSWORD_FILE") {
            self.mail.smtp.password_file = Some(v.into());
        }
        Ok(())
    }

    /// Reads the secret settings given as files (see `crate::secrets`).
    fn resolve_secrets(&mut self) -> Result<(), String> {
        use crate::secrets::resolve_secret;
        let url = std::mem::take(&mut self.database_url);
        self.database_url =
            resolve_secret("database_url", Some(url), self.database_url_file.as_deref())?
                .unwrap_or_default();
        let smtp = &mut self.mail.smtp;
        let inline = smtp.password.take().map(|p| p.expose().to_owned());
        smtp.password =
            resolve_secret("mail.smtp.password", inline, smtp.password_file.as_deref())?
                .map(resetd_mail::ConfigSecret::new);
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
        match self.mail.transport.as_str() {
            "file" => {}
            "smtp" => {
                self.mail.smtp.validate(self.mail.sender())?;
                // The worker gives one send half the lease; the SMTP limit must fit inside it.
                if self.mail.smtp.timeout_secs * 2 > self.mail.worker.lease_secs {
                    return Err(format!(
                        "mail.smtp.timeout_secs ({}) must be at most half of mail.worker.lease_secs ({})",
                        self.mail.smtp.timeout_secs, self.mail.worker.lease_secs
                    ));
                }
            }
            other => {
                return Err(format!(
                    "mail.transport: unknown transport {other:?} (known: file, smtp)"
                ))
            }
        }
        self.mail.worker.validate()?;
        for warning in self.mail.worker.deprecations() {
            eprintln!("warning: {warning}");
        }
        if self.http.body_limit < 1024 || self.http.request_timeout_secs == 0 {
            return Err(
                "http.body_limit must be >= 1024 and http.request_timeout_secs >= 1".into(),
            );
        }
        if self.http.reset_queue_cap == 0 {
            return Err("http.reset_queue_cap must be >= 1".into());
        }
        if !(1..=256).contains(&self.http.reset_worker_concurrency) {
            return Err("http.reset_worker_concurrency must be between 1 and 256".into());
        }
        self.retention.validate()?;
        if self.management.enabled {
            let m = self.management.listen;
            if m == self.listen && m.port() != 0 {
                return Err(format!(
                    "management.listen ({m}) must differ from listen: metrics are never served on the public address"
                ));
            }
            if !m.ip().is_loopback() {
                eprintln!(
                    "warning: management.listen ({m}) is not a loopback address: /metrics tells \
                     whoever reaches it which accounts get email; keep it on a private network"
                );
            }
        }
        resetd_core::types::TenantId::parse(&self.bootstrap_tenant)
            .map_err(|e| format!("bootstrap_tenant: {e}"))?;
        self.database()?;
        self.dialects.validate()?;
        for warning in crate::branding::branding(&self.dialects, &self.mail).conflicts() {
            eprintln!("warning: {warning}");
        }
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

    /// The database to use, from `database_url`.
    pub fn database(&self) -> Result<Database, String> {
        if self.database_url.is_empty() {
            return Ok(Database::Sqlite(self.data_dir.join("resetd.db")));
        }
        if let Some(p) = self.database_url.strip_prefix("sqlite://") {
            if !p.is_empty() {
                return Ok(Database::Sqlite(PathBuf::from(p)));
            }
        }
        if resetd_store::postgres::is_postgres_url(&self.database_url) {
            let options = resetd_store::postgres::PgOptions::parse(&self.database_url)
                .map_err(|e| format!("database_url: {e}"))?;
            return Ok(Database::Postgres(Box::new(options)));
        }
        // Never echo the URL: it may hold a password.
        Err("database_url: expected sqlite://PATH or postgres://USER@HOST/DATABASE".into())
    }

    /// The configuration as `check-config` prints it: the password in `database_url` masked.
    pub fn redacted(&self) -> Config {
        let mut c = self.clone();
        c.database_url = redact_url(&c.database_url);
        c.credentials = crate::credentials::redacted(&c.credentials);
        c
    }

    /// The hosted page options.
    pub fn page_options(&self) -> resetd_server::page::PageOptions {
        resetd_server::page::PageOptions {
            templates_dir: self.page.templates_dir.clone(),
            product_name: self.mail.product_name().to_owned(),
            support_contact: self.mail.support_contact.clone(),
        }
    }

    /// The outbox key file: `mail.outbox_key_file`, else `outbox.key` beside the SQLite file
    /// (the data it protects), else in `data_dir`.
    pub fn outbox_key_file(&self) -> Result<PathBuf, String> {
        if let Some(p) = self
            .mail
            .outbox_key_file
            .as_ref()
            .filter(|p| !p.as_os_str().is_empty())
        {
            return Ok(p.clone());
        }
        // systemd: `LoadCredential=outbox.key:/etc/resetd/outbox.key`.
        let credentials = crate::secrets::credentials_dir();
        if let Some(c) = crate::secrets::credential(credentials.as_deref(), "outbox.key") {
            return Ok(c);
        }
        Ok(match self.database()? {
            Database::Sqlite(db) => match db.parent().filter(|d| !d.as_os_str().is_empty()) {
                Some(dir) => dir.join("outbox.key"),
                None => PathBuf::from("outbox.key"),
            },
            Database::Postgres(_) => self.data_dir.join("outbox.key"),
        })
    }

    /// The breached-password index file, and whether it was named (then it must exist).
    pub fn breached_index_file(&self) -> Result<(PathBuf, bool), String> {
        if let Some(p) = self
            .breached
            .index_file
            .as_ref()
            .filter(|p| !p.as_os_str().is_empty())
        {
            return Ok((p.clone(), true));
        }
        let file = match self.database()? {
            Database::Sqlite(db) => match db.parent().filter(|d| !d.as_os_str().is_empty()) {
                Some(dir) => dir.join("breached.idx"),
                None => PathBuf::from("breached.idx"),
            },
            Database::Postgres(_) => self.data_dir.join("breached.idx"),
        };
        Ok((file, false))
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
            password_check_per_minute: self.http.password_check_per_minute,
            password_check_burst: self.http.password_check_burst,
            // The body deadline is a constant (resetd_server::body::BODY_READ_TIMEOUT).
            ..resetd_server::HttpConfig::default()
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
        assert!(
            matches!(c.database().unwrap(), Database::Sqlite(p) if p == std::path::Path::new("data/resetd.db"))
        );
    }

    #[test]
    fn the_outbox_key_file_sits_beside_the_data_unless_configured() {
        let mut c = Config::default();
        assert_eq!(c.outbox_key_file().unwrap(), Path::new("data/outbox.key"));
        c.database_url = "sqlite:///var/lib/resetd/main.db".into();
        assert_eq!(
            c.outbox_key_file().unwrap(),
            Path::new("/var/lib/resetd/outbox.key")
        );
        c.database_url = "postgres://app@db/resetd".into();
        assert_eq!(c.outbox_key_file().unwrap(), Path::new("data/outbox.key"));
        c.apply_env(|k| (k == "RESETD_OUTBOX_KEY_FILE").then(|| "/etc/resetd/k".to_string()))
            .unwrap();
        assert_eq!(c.outbox_key_file().unwrap(), Path::new("/etc/resetd/k"));
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
    fn smtp_settings_load_from_toml_and_env_and_the_password_is_never_printed() {
        let mut c: Config = toml::from_str(
            "[mail]\ntransport = \"smtp\"\nfrom = \"Acme <noreply@acme.example>\"\n\
             [mail.smtp]\nhost = \"mx.acme.example\"\ntls = \"tls\"\nusername = \"mailer\"\n\
             [mail.worker]\nnotice_retry_secs = 3600\nbase_backoff_ms = 50\n",
        )
        .unwrap();
        c.apply_env(|k| (k == "RESETD_SMTP_PASSWORD").then(|| "s3cret-from-env".to_string()))
            .unwrap();
        c.validate().unwrap();
        assert_eq!(c.mail.smtp.effective_port(), 465);
        assert_eq!(c.mail.worker.notice_retry_secs, 3600);
        assert_eq!(
            c.mail.smtp.password.as_ref().map(|p| p.expose()),
            Some("s3cret-from-env")
        );
        let printed = toml::to_string_pretty(&c).unwrap();
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(!format!("{c:?}").contains("s3cret"));

        // Without a password, AUTH cannot work: refused at start, not at the first email.
        c.mail.smtp.password = None;
        assert!(c.validate().unwrap_err().contains("password"));
        let c = Config {
            mail: Mail {
                transport: "carrier-pigeon".into(),
                ..Mail::default()
            },
            ..Config::default()
        };
        assert!(c.validate().unwrap_err().contains("known: file, smtp"));
        let bad_worker: Result<Config, _> = toml::from_str("[mail.worker]\nmax_atempts = 3\n");
        assert!(bad_worker.is_err());
        let mut c = Config::default();
        c.mail.worker.notice_retry_secs = 10;
        assert!(c.validate().unwrap_err().contains("notice_retry_secs"));
        // The removed count still loads (older files) and is reported as ignored.
        let old: Config = toml::from_str("[mail.worker]\nmax_attempts = 8\n").unwrap();
        old.validate().unwrap();
        assert_eq!(old.mail.worker.deprecations().len(), 1);
    }

    #[test]
    fn dialects_are_configured_per_tenant_and_checked() {
        let c: Config = toml::from_str(
            "[dialects.crafter]\nenabled = true\ntenant = \"acme\"\nclient = \"portal\"\n\
             [dialects.empowerid]\nenabled = true\ntenant = \"acme\"\n",
        )
        .unwrap();
        c.validate().unwrap();
        let crafter = c.dialects.crafter.as_ref().unwrap();
        assert_eq!(
            (crafter.tenant.as_str(), crafter.base_path.as_str()),
            ("acme", "/crafter-profile")
        );
        assert!(c.dialects.empowerid.as_ref().unwrap().enabled);
        let printed = toml::to_string_pretty(&c).unwrap();
        assert_eq!(
            toml::from_str::<Config>(&printed).unwrap().dialects,
            c.dialects
        );
        assert!(toml::from_str::<Config>("[dialects.crafter]\nenabeld = true\n").is_err());
        assert!(toml::from_str::<Config>("[dialects.nope]\n").is_err());
        let bad: Config =
            toml::from_str("[dialects.empowerid]\nenabled = true\ntenant = \"Bad Tenant\"\n")
                .unwrap();
        assert!(bad.validate().is_err());
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
        let c = Config {
            database_url: "postgres://app:s3cret@db/resetd?schema=Bad".into(),
            ..Config::default()
        };
        let e = c.validate().unwrap_err();
        assert!(e.contains("schema") && !e.contains("s3cret"), "{e}");
    }

    #[test]
    fn postgres_urls_select_postgres_and_passwords_are_masked() {
        let c = Config {
            database_url: "postgres://app:s3cret@db.internal:5432/resetd?schema=prod".into(),
            ..Config::default()
        };
        c.validate().unwrap();
        let db = c.database().unwrap();
        assert!(matches!(db, Database::Postgres(_)));
        assert_eq!(
            db.describe(),
            "postgres://app@db.internal:5432/resetd (schema prod)"
        );
        assert_eq!(
            c.redacted().database_url,
            "postgres://app:***@db.internal:5432/resetd?schema=prod"
        );
        assert_eq!(redact_url("postgres://app@db/x"), "postgres://app@db/x");
        assert_eq!(
            redact_url("sqlite:///var/lib/resetd.db"),
            "sqlite:///var/lib/resetd.db"
        );
        assert_eq!(redact_url("postgres://a:b:c@h/d"), "postgres://a:***@h/d");
    }

    #[test]
    fn the_management_listener_is_loopback_by_default_configurable_and_never_the_public_one() {
        let c = Config::default();
        assert!(c.management.enabled);
        assert!(c.management.listen.ip().is_loopback());
        assert_ne!(c.management.listen, c.listen);
        let mut c: Config =
            toml::from_str("[management]\nenabled = false\nlisten = \"127.0.0.1:8080\"\n").unwrap();
        c.validate().unwrap();
        c.management.enabled = true;
        assert!(c.validate().unwrap_err().contains("management.listen"));
        c.apply_env(|k| (k == "RESETD_MANAGEMENT_LISTEN").then(|| "127.0.0.1:0".to_string()))
            .unwrap();
        assert_eq!(c.management.listen.port(), 0);
        c.validate().unwrap();
        assert!(toml::from_str::<Config>("[management]\nlisen = \"x\"\n").is_err());
        let c: Config = toml::from_str("[http]\npassword_check_per_minute = 0\n").unwrap();
        assert_eq!(c.http_config().password_check_per_minute, 0);
        assert_eq!(c.http_config().password_check_burst, 20);
    }

    #[test]
    fn the_outbox_worker_is_configurable() {
        let c: Config = toml::from_str("[mail.worker]\nlease_secs = 5\nbatch = 16\n").unwrap();
        assert_eq!((c.mail.worker.lease_secs, c.mail.worker.batch), (5, 16));
        assert_eq!(
            c.mail.worker.notice_retry_secs,
            resetd_mail::WorkerConfig::default().notice_retry_secs
        );
        assert!(toml::from_str::<Config>("[mail.worker]\nleas_secs = 5\n").is_err());
    }
}
