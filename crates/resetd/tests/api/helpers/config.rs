//! A server's config built in code rather than by joining TOML strings in each test.
//!
//! Keys are gathered per table, so two calls that touch `[http]` (say `no_limits()` and
//! `request_timeout_secs(2)`) write one `[http]` table, and top-level keys always come before the
//! first table, as TOML requires. The text is written in call order otherwise, so
//! `TestConfig::new().fast_argon().no_limits()` is exactly `format!("{FAST_ARGON}{NO_LIMITS}")`
//! (`super::FAST_ARGON`, `super::NO_LIMITS`).

/// The Alfresco Share page the suite's `share` client points at.
pub const SHARE_PAGE: &str = "https://share.example.com/share/page/reset-password";
/// The Unleash UI the suite's Unleash dialect links to.
pub const UNLEASH_UI: &str = "https://unleash.example.com/";

/// A TOML value as the config file spells it.
pub trait ToToml {
    fn to_toml(&self) -> String;
}

impl ToToml for str {
    fn to_toml(&self) -> String {
        let mut out = String::from("\"");
        for c in self.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }
}

impl ToToml for String {
    fn to_toml(&self) -> String {
        self.as_str().to_toml()
    }
}

impl ToToml for bool {
    fn to_toml(&self) -> String {
        self.to_string()
    }
}

macro_rules! integer_to_toml {
    ($($t:ty),*) => {$(
        impl ToToml for $t {
            fn to_toml(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
integer_to_toml!(u16, u32, u64, i64, usize);

impl<T: ToToml> ToToml for [T] {
    fn to_toml(&self) -> String {
        let items: Vec<String> = self.iter().map(ToToml::to_toml).collect();
        format!("[{}]", items.join(", "))
    }
}

impl<T: ToToml, const N: usize> ToToml for [T; N] {
    fn to_toml(&self) -> String {
        self.as_slice().to_toml()
    }
}

impl<T: ToToml + ?Sized> ToToml for &T {
    fn to_toml(&self) -> String {
        (**self).to_toml()
    }
}

#[derive(Clone, Debug)]
enum Part {
    /// `[name]` and its `key = value` lines; later keys for the same table join it.
    Table(String, Vec<String>),
    /// `[[name]]`: every call is a new element.
    ArrayTable(String, Vec<String>),
    /// Text written as given (for a setting no method covers yet).
    Raw(String),
}

/// Sections are written in call order, top-level keys first.
#[derive(Clone, Debug, Default)]
pub struct TestConfig {
    top: Vec<String>,
    parts: Vec<Part>,
    /// `top` and `parts` as TOML, written again after every change.
    text: String,
}

impl TestConfig {
    pub fn new() -> Self {
        Self::default()
    }

    /// What most tests start from: cheap Argon2 and no per-IP limits.
    pub fn fast() -> Self {
        Self::new().fast_argon().no_limits()
    }

    /// Cheap Argon2 parameters so the suite runs quickly.
    pub fn fast_argon(self) -> Self {
        self.argon2(1024, 1, 1)
    }

    pub fn argon2(self, m_cost: u32, t_cost: u32, p_cost: u32) -> Self {
        self.set("argon2", "m_cost", m_cost)
            .set("argon2", "t_cost", t_cost)
            .set("argon2", "p_cost", p_cost)
    }

    /// Lifts the per-IP limits, since every test request comes from 127.0.0.1.
    pub fn no_limits(self) -> Self {
        self.http("recovery_per_minute", 0u32)
            .http("auth_per_minute", 0u32)
            .http("password_check_per_minute", 0u32)
    }

    // ---- top level

    /// `public_url`: the base of every emailed link and of the page's cookies.
    pub fn public_url(self, url: &str) -> Self {
        self.top("public_url", url)
    }

    /// `database_url`, e.g. `sqlite:///path/resetd.db` (PostgreSQL servers: `Server::spawn_on`).
    pub fn database_url(self, url: &str) -> Self {
        self.top("database_url", url)
    }

    /// A top-level key.
    pub fn top(mut self, key: &str, value: impl ToToml) -> Self {
        self.top.push(format!("{key} = {}", value.to_toml()));
        self.render()
    }

    // ---- [http]

    /// An `[http]` setting.
    pub fn http(self, key: &str, value: impl ToToml) -> Self {
        self.set("http", key, value)
    }

    /// The per-IP limit of the request-reset endpoints (every surface shares it).
    pub fn recovery_limit(self, per_minute: u32, burst: u32) -> Self {
        self.http("recovery_per_minute", per_minute)
            .http("recovery_burst", burst)
    }

    /// The per-IP limit of the anonymous password checks.
    pub fn password_check_limit(self, per_minute: u32, burst: u32) -> Self {
        self.http("password_check_per_minute", per_minute)
            .http("password_check_burst", burst)
    }

    pub fn request_timeout_secs(self, secs: u64) -> Self {
        self.http("request_timeout_secs", secs)
    }

    // ---- [hashing], [management], [page]

    /// The Argon2 pool: `workers` threads (`None`: the default) and `queue` waiting.
    pub fn hashing(self, workers: Option<u32>, queue: u32) -> Self {
        let c = match workers {
            Some(w) => self.set("hashing", "workers", w),
            None => self,
        };
        c.set("hashing", "queue", queue)
    }

    pub fn management_disabled(self) -> Self {
        self.set("management", "enabled", false)
    }

    pub fn page_templates_dir(self, dir: &str) -> Self {
        self.set("page", "templates_dir", dir)
    }

    // ---- [mail]

    /// Mail over SMTP to `127.0.0.1:port` from `from` (the `[mail.smtp]` rest is for `smtp`).
    pub fn smtp(self, port: u16, from: &str) -> Self {
        self.mail("transport", "smtp")
            .mail("from", from)
            .smtp_set("host", "127.0.0.1")
            .smtp_set("port", port)
    }

    /// A `[mail]` setting.
    pub fn mail(self, key: &str, value: impl ToToml) -> Self {
        self.set("mail", key, value)
    }

    /// A `[mail.smtp]` setting (`tls`, `timeout_secs`, `username`, `ca_file`, `pool_size`...).
    pub fn smtp_set(self, key: &str, value: impl ToToml) -> Self {
        self.set("mail.smtp", key, value)
    }

    /// A `[mail.worker]` setting.
    pub fn worker(self, key: &str, value: impl ToToml) -> Self {
        self.set("mail.worker", key, value)
    }

    /// Backoff from 100 ms to 1 s, so a retry comes soon.
    pub fn quick_retries(self, lease_secs: u64) -> Self {
        self.worker("base_backoff_ms", 100u64)
            .worker("max_backoff_ms", 1000u64)
            .lease_secs(lease_secs)
    }

    /// How long a claimed reset request or email stays reserved for the instance that took it.
    pub fn lease_secs(self, secs: u64) -> Self {
        self.worker("lease_secs", secs)
    }

    // ---- [dialects.*]

    /// A setting of `[dialects.<name>]` (`name` may go deeper, e.g. `alfresco.clients.share`).
    pub fn dialect(self, name: &str, key: &str, value: impl ToToml) -> Self {
        self.set(&format!("dialects.{name}"), key, value)
    }

    /// `[dialects.<name>]` enabled on `tenant`.
    pub fn dialect_on(self, name: &str, tenant: &str) -> Self {
        self.dialect(name, "enabled", true)
            .dialect(name, "tenant", tenant)
    }

    /// Alfresco on `default` (network `-default-`) with the client `share` linking to `page`.
    pub fn alfresco(self, page: &str) -> Self {
        self.dialect_on("alfresco", "default")
            .dialect("alfresco", "network", "-default-")
            .dialect("alfresco.clients.share", "reset_password_page_url", page)
    }

    /// Unleash on `default`, linking to the UI at `ui`.
    pub fn unleash(self, ui: &str) -> Self {
        self.dialect_on("unleash", "default")
            .dialect("unleash", "unleash_url", ui)
    }

    /// Payabli on `default`, taking the API keys with the ids `request_tokens`.
    pub fn payabli(self, request_tokens: &[&str]) -> Self {
        self.dialect_on("payabli", "default")
            .dialect("payabli", "request_tokens", request_tokens)
    }

    /// One `[[dialects.payabli.entries]]`: an entry point mapped to `tenant`.
    pub fn payabli_entry(mut self, entry: &str, entry_type: u32, tenant: &str) -> Self {
        self.parts.push(Part::ArrayTable(
            "dialects.payabli.entries".into(),
            vec![
                format!("entry = {}", entry.to_toml()),
                format!("entry_type = {entry_type}"),
                format!("tenant = {}", tenant.to_toml()),
            ],
        ));
        self.render()
    }

    /// The dialects with an anonymous request step, on `default`: Alfresco (client `share`),
    /// Unleash and Payabli (taking the key with the id `payabli_key_id`).
    pub fn anonymous_dialects(self, payabli_key_id: &str) -> Self {
        self.alfresco(SHARE_PAGE)
            .unleash(UNLEASH_UI)
            .payabli(&[payabli_key_id])
    }

    /// All five dialects on `default`: [`TestConfig::anonymous_dialects`], Crafter and EmpowerID.
    pub fn every_dialect(self, payabli_key_id: &str) -> Self {
        self.anonymous_dialects(payabli_key_id)
            .dialect_on("crafter", "default")
            .dialect_on("empowerid", "default")
    }

    // ---- anything else

    /// `key = value` in `[table]`, joining the table if it was started already.
    pub fn set(mut self, table: &str, key: &str, value: impl ToToml) -> Self {
        let line = format!("{key} = {}", value.to_toml());
        let existing = self.parts.iter_mut().find_map(|p| match p {
            Part::Table(name, lines) if name == table => Some(lines),
            _ => None,
        });
        match existing {
            Some(lines) => lines.push(line),
            None => self.parts.push(Part::Table(table.to_owned(), vec![line])),
        }
        self.render()
    }

    /// TOML text appended as it is, for a setting that has no method yet.
    pub fn section(mut self, toml: &str) -> Self {
        self.parts.push(Part::Raw(toml.to_owned()));
        self.render()
    }

    /// The config file's text.
    pub fn toml(&self) -> &str {
        &self.text
    }

    fn render(mut self) -> Self {
        let mut out = String::new();
        for line in &self.top {
            out.push_str(line);
            out.push('\n');
        }
        for part in &self.parts {
            let (head, lines) = match part {
                Part::Table(name, lines) => (format!("[{name}]"), lines),
                Part::ArrayTable(name, lines) => (format!("[[{name}]]"), lines),
                Part::Raw(text) => {
                    out.push_str(text);
                    continue;
                }
            };
            out.push_str(&head);
            out.push('\n');
            for line in lines {
                out.push_str(line);
                out.push('\n');
            }
        }
        self.text = out;
        self
    }
}
