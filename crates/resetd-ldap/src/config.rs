//! `[credentials.<tenant>]` with `kind = "ldap"`: the table as written ([`LdapConfig`]) and its
//! checked form ([`Settings`]), built once at start-up so that a bad value stops the start with an
//! error naming the field, and so that nothing later parses a URL or a filter again.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::filter::FilterTemplate;

/// Which directory server the tenant uses. It decides the defaults of the filters and attributes
/// and how a password is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// OpenLDAP (or any RFC directory): `inetOrgPerson`, `uid`, `entryUUID`, `userPassword`.
    #[default]
    Openldap,
    /// Microsoft Active Directory (or Samba's AD DC): `sAMAccountName`, `objectGUID`, the
    /// `unicodePwd` attribute, `userAccountControl`'s disabled bit.
    ActiveDirectory,
}

/// How the new password is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PasswordWrite {
    /// The Password Modify extended operation (RFC 3062): the server hashes the password as
    /// configured and applies its password policy.
    PasswordModify,
    /// A modify that replaces the password attribute (`userPassword`; `unicodePwd` in Active
    /// Directory mode). OpenLDAP hashes it with `ppolicy_hash_cleartext`.
    Replace,
}

/// The table as written, minus `kind`. Every field is documented in `docs/credentials.md`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapConfig {
    /// `ldap://host[:port]` (with `starttls = true` unless the host is a loopback address) or
    /// `ldaps://host[:port]`.
    pub url: String,
    #[serde(default)]
    pub starttls: bool,
    /// The service account resetd binds as to search and to write passwords.
    pub bind_dn: String,
    pub bind_password: Option<String>,
    /// A file holding the service account's password (one trailing newline is ignored).
    pub bind_password_file: Option<PathBuf>,
    /// Where people are searched (subtree).
    pub base_dn: String,
    /// The filter finding a person by login; `{login}` is replaced by the escaped login.
    pub login_filter: Option<String>,
    /// The filter finding a person by email; `{email}` is replaced by the escaped address.
    pub email_filter: Option<String>,
    pub login_attribute: Option<String>,
    pub email_attribute: Option<String>,
    pub name_attribute: Option<String>,
    /// The stable id that survives renames (`entryUUID`; `objectGUID` in AD mode).
    pub id_attribute: Option<String>,
    pub password_write: Option<PasswordWrite>,
    #[serde(default)]
    pub mode: Mode,
    /// The bound on every network step (connect with TLS, bind, search, write), in seconds.
    pub timeout_secs: Option<u64>,
    /// A PEM file of CA certificates for the server's certificate (default: the system's).
    pub tls_ca_file: Option<PathBuf>,
}

impl fmt::Debug for LdapConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LdapConfig")
            .field("url", &self.url)
            .field("starttls", &self.starttls)
            .field("bind_dn", &self.bind_dn)
            .field(
                "bind_password",
                &self.bind_password.as_ref().map(|_| "<redacted>"),
            )
            .field("bind_password_file", &self.bind_password_file)
            .field("base_dn", &self.base_dn)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

pub const DEFAULT_TIMEOUT_SECS: u64 = 5;
const MAX_TIMEOUT_SECS: u64 = 120;

/// The service account's password. Never printed: its `Debug` is redacted and no error text is
/// built from it.
#[derive(Clone)]
pub(crate) struct BindSecret(String);

impl BindSecret {
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BindSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BindSecret(<redacted>)")
    }
}

/// The checked configuration the backend runs on.
#[derive(Debug)]
pub(crate) struct Settings {
    pub url: String,
    pub starttls: bool,
    /// Always our own client configuration, so the crypto provider is ring whatever else the
    /// process links.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub bind_dn: String,
    pub bind_password: BindSecret,
    pub base_dn: String,
    pub login_filter: FilterTemplate,
    pub email_filter: FilterTemplate,
    pub login_attribute: String,
    pub email_attribute: String,
    pub name_attribute: String,
    pub id_attribute: String,
    pub password_write: PasswordWrite,
    pub mode: Mode,
    pub timeout: Duration,
}

/// The defaults each mode gives a field left out.
struct Defaults {
    login_filter: &'static str,
    email_filter: &'static str,
    login_attribute: &'static str,
    email_attribute: &'static str,
    name_attribute: &'static str,
    id_attribute: &'static str,
    password_write: PasswordWrite,
}

impl Mode {
    fn defaults(self) -> Defaults {
        match self {
            Mode::Openldap => Defaults {
                login_filter: "(&(objectClass=inetOrgPerson)(uid={login}))",
                email_filter: "(mail={email})",
                login_attribute: "uid",
                email_attribute: "mail",
                name_attribute: "cn",
                id_attribute: "entryUUID",
                password_write: PasswordWrite::PasswordModify,
            },
            Mode::ActiveDirectory => Defaults {
                login_filter:
                    "(&(objectCategory=person)(objectClass=user)(sAMAccountName={login}))",
                email_filter: "(&(objectCategory=person)(objectClass=user)(mail={email}))",
                login_attribute: "sAMAccountName",
                email_attribute: "mail",
                name_attribute: "displayName",
                id_attribute: "objectGUID",
                password_write: PasswordWrite::Replace,
            },
        }
    }
}

impl LdapConfig {
    /// Reads the table (a `kind` key, if still there, is the frame's and ignored). The error
    /// names the field and never contains the bind password.
    pub fn from_table(table: &toml::Table) -> Result<Self, String> {
        let mut table = table.clone();
        table.remove("kind");
        let secret = table
            .get("bind_password")
            .and_then(toml::Value::as_str)
            .map(str::to_owned);
        // Read from text, so that an error has a place and so the key it is about.
        let text = toml::to_string(&table).map_err(|e| e.to_string())?;
        toml::from_str::<LdapConfig>(&text).map_err(|e| {
            let message = match e.span().and_then(|at| key_at(&text, at.start)) {
                Some(key) if !e.message().starts_with("missing field") => {
                    format!("{key}: {}", e.message())
                }
                _ => e.message().to_owned(),
            };
            redact(&message, secret.as_deref())
        })
    }

    /// Checks every field and resolves the defaults of the mode.
    pub(crate) fn check(self) -> Result<Settings, String> {
        let defaults = self.mode.defaults();
        let (url, tls_wanted) = check_url(&self.url, self.starttls, self.mode)?;
        let tls = if tls_wanted {
            Some(crate::tls::client_config(self.tls_ca_file.as_deref())?)
        } else if self.tls_ca_file.is_some() {
            return Err(
                "tls_ca_file: set, but the connection uses no TLS (use ldaps:// or \
                        starttls = true)"
                    .to_owned(),
            );
        } else {
            None
        };
        let bind_password = bind_secret(self.bind_password, self.bind_password_file)?;
        let password_write = self.password_write.unwrap_or(defaults.password_write);
        if self.mode == Mode::ActiveDirectory && password_write == PasswordWrite::PasswordModify {
            return Err(
                "password_write: Active Directory does not implement the Password Modify \
                        operation; use \"replace\" (it writes unicodePwd)"
                    .to_owned(),
            );
        }
        let timeout_secs = self.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS);
        if timeout_secs == 0 || timeout_secs > MAX_TIMEOUT_SECS {
            return Err(format!(
                "timeout_secs: must be between 1 and {MAX_TIMEOUT_SECS} seconds"
            ));
        }
        Ok(Settings {
            url,
            starttls: self.starttls,
            tls,
            bind_dn: check_dn("bind_dn", self.bind_dn)?,
            bind_password,
            base_dn: check_dn("base_dn", self.base_dn)?,
            login_filter: FilterTemplate::parse(
                "login_filter",
                self.login_filter
                    .as_deref()
                    .unwrap_or(defaults.login_filter),
                "{login}",
            )?,
            email_filter: FilterTemplate::parse(
                "email_filter",
                self.email_filter
                    .as_deref()
                    .unwrap_or(defaults.email_filter),
                "{email}",
            )?,
            login_attribute: check_attribute(
                "login_attribute",
                self.login_attribute,
                defaults.login_attribute,
            )?,
            email_attribute: check_attribute(
                "email_attribute",
                self.email_attribute,
                defaults.email_attribute,
            )?,
            name_attribute: check_attribute(
                "name_attribute",
                self.name_attribute,
                defaults.name_attribute,
            )?,
            id_attribute: check_attribute(
                "id_attribute",
                self.id_attribute,
                defaults.id_attribute,
            )?,
            password_write,
            mode: self.mode,
            timeout: Duration::from_secs(timeout_secs),
        })
    }
}

/// The key of the `key = value` line holding byte `at`.
fn key_at(text: &str, at: usize) -> Option<&str> {
    let start = text.get(..at)?.rfind('\n').map_or(0, |i| i + 1);
    let line = text.get(start..)?.lines().next()?;
    let key = line.split('=').next()?.trim();
    (!key.is_empty() && line.contains('=')).then_some(key)
}

/// Replaces the secret wherever a deserialiser quoted it (a password written in the wrong field).
fn redact(message: &str, secret: Option<&str>) -> String {
    match secret {
        Some(s) if !s.is_empty() => message.replace(s, "<redacted>"),
        _ => message.to_owned(),
    }
}

/// Returns the URL to connect to and whether the connection is encrypted.
fn check_url(raw: &str, starttls: bool, mode: Mode) -> Result<(String, bool), String> {
    let url = url::Url::parse(raw).map_err(|e| format!("url: not a URL ({e})"))?;
    let host = match url.host() {
        // ldap:// is not a special scheme to the URL parser: an IPv4 address stays a name.
        Some(url::Host::Domain(d)) if !d.is_empty() => match d.parse::<IpAddr>() {
            Ok(ip) => Host::Ip(ip),
            Err(_) => Host::Name(d.to_ascii_lowercase()),
        },
        Some(url::Host::Ipv4(a)) => Host::Ip(IpAddr::V4(a)),
        Some(url::Host::Ipv6(a)) => Host::Ip(IpAddr::V6(a)),
        _ => return Err("url: names no host".to_owned()),
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err("url: must not carry credentials (use bind_dn and bind_password)".to_owned());
    }
    if !(url.path().is_empty() || url.path() == "/") || url.query().is_some() {
        return Err("url: only scheme, host and port (the base DN is base_dn)".to_owned());
    }
    let encrypted = match url.scheme() {
        "ldaps" if starttls => {
            return Err("starttls: ldaps:// is already encrypted; remove starttls".to_owned())
        }
        "ldaps" => true,
        "ldap" => starttls,
        other => {
            return Err(format!(
                "url: scheme {other:?} is not supported (ldap:// with starttls, or ldaps://)"
            ))
        }
    };
    if !encrypted {
        if mode == Mode::ActiveDirectory {
            return Err(
                "url: Active Directory accepts unicodePwd only over an encrypted \
                        connection (ldaps://, or starttls = true)"
                    .to_owned(),
            );
        }
        // Passwords cross the connection: in clear only to this machine.
        if !host.is_loopback() {
            return Err(
                "url: plain ldap:// sends passwords in clear; use starttls = true or \
                        ldaps:// (plain ldap:// is accepted for a loopback host only)"
                    .to_owned(),
            );
        }
    }
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let host_part = match &host {
        Host::Name(n) => n.clone(),
        Host::Ip(IpAddr::V4(a)) => a.to_string(),
        Host::Ip(IpAddr::V6(a)) => format!("[{a}]"),
    };
    Ok((format!("{}://{host_part}{port}", url.scheme()), encrypted))
}

enum Host {
    Name(String),
    Ip(IpAddr),
}

impl Host {
    fn is_loopback(&self) -> bool {
        match self {
            Host::Name(n) => n == "localhost",
            Host::Ip(ip) => ip.is_loopback(),
        }
    }
}

fn bind_secret(inline: Option<String>, file: Option<PathBuf>) -> Result<BindSecret, String> {
    let value = match (inline, file) {
        (Some(_), Some(_)) => {
            return Err("bind_password, bind_password_file: set one of them, not both".to_owned())
        }
        (None, None) => {
            return Err("bind_password: missing (or bind_password_file)".to_owned());
        }
        (Some(v), None) => v,
        (None, Some(path)) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("bind_password_file: cannot read {}: {e}", path.display()))?;
            let text = text.strip_suffix('\n').unwrap_or(&text);
            text.strip_suffix('\r').unwrap_or(text).to_owned()
        }
    };
    // An empty password makes a simple bind unauthenticated (RFC 4513 5.1.2): never that.
    if value.is_empty() {
        return Err(
            "bind_password: empty (an empty password is an unauthenticated bind)".to_owned(),
        );
    }
    Ok(BindSecret(value))
}

fn check_dn(field: &str, dn: String) -> Result<String, String> {
    let dn = dn.trim().to_owned();
    if dn.is_empty() || !dn.contains('=') {
        return Err(format!("{field}: not a DN (e.g. \"dc=example,dc=org\")"));
    }
    if dn.chars().any(char::is_control) {
        return Err(format!("{field}: contains control characters"));
    }
    Ok(dn)
}

/// An attribute description (RFC 4512 2.5): a name (letter, then letters, digits, hyphens) or a
/// numeric OID, with optional `;options`.
fn check_attribute(field: &str, value: Option<String>, default: &str) -> Result<String, String> {
    let value = value.unwrap_or_else(|| default.to_owned());
    let mut parts = value.split(';');
    let base = parts.next().unwrap_or_default();
    let name_ok = base.starts_with(|c: char| c.is_ascii_alphabetic())
        && base.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let oid_ok = !base.is_empty()
        && base
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    let options_ok =
        parts.all(|o| !o.is_empty() && o.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    if (name_ok || oid_ok) && options_ok {
        Ok(value)
    } else {
        Err(format!("{field}: {value:?} is not an attribute name"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn table(extra: &str) -> toml::Table {
        let base = "url = \"ldap://127.0.0.1:3890\"\nbind_dn = \"cn=svc,dc=example,dc=org\"\n\
                    bind_password = \"Sekr1t-bind-pw\"\nbase_dn = \"dc=example,dc=org\"\n";
        format!("{base}{extra}").parse().unwrap()
    }

    fn check(extra: &str) -> Result<Settings, String> {
        LdapConfig::from_table(&table(extra))?.check()
    }

    #[test]
    fn defaults_of_openldap() {
        let s = check("kind = \"ldap\"").unwrap();
        assert_eq!(s.login_attribute, "uid");
        assert_eq!(s.id_attribute, "entryUUID");
        assert_eq!(s.password_write, PasswordWrite::PasswordModify);
        assert_eq!(s.timeout, Duration::from_secs(5));
        assert_eq!(s.url, "ldap://127.0.0.1:3890");
        assert!(s.tls.is_none());
    }

    #[test]
    fn unknown_field_is_named() {
        let e = check("bind_pasword = \"x\"").err().unwrap();
        assert!(e.contains("bind_pasword"), "{e}");
    }

    #[test]
    fn a_misplaced_bind_password_is_not_echoed() {
        let t: toml::Table = "url = \"ldap://127.0.0.1\"\nbind_dn = \"cn=a,dc=b\"\n\
                              bind_password = \"Sekr1t-bind-pw\"\nbase_dn = \"dc=b\"\n\
                              timeout_secs = \"Sekr1t-bind-pw\"\n"
            .parse()
            .unwrap();
        let e = LdapConfig::from_table(&t).err().unwrap();
        assert!(e.contains("timeout_secs") || e.contains("u64"), "{e}");
        assert!(!e.contains("Sekr1t"), "{e}");
    }

    #[test]
    fn debug_redacts_the_bind_password() {
        let c = LdapConfig::from_table(&table("")).unwrap();
        assert!(!format!("{c:?}").contains("Sekr1t"));
        let s = c.check().unwrap();
        assert!(!format!("{s:?}").contains("Sekr1t"));
    }

    #[test]
    fn plain_ldap_only_to_loopback() {
        let t: toml::Table = "url = \"ldap://ldap.example.org\"\nbind_dn = \"cn=a,dc=b\"\n\
                              bind_password = \"pw\"\nbase_dn = \"dc=b\"\n"
            .parse()
            .unwrap();
        let e = LdapConfig::from_table(&t).unwrap().check().err().unwrap();
        assert!(e.starts_with("url:"), "{e}");
        let mut t2 = t.clone();
        t2.insert("starttls".into(), true.into());
        let s = LdapConfig::from_table(&t2).unwrap().check().unwrap();
        assert!(s.tls.is_some());
    }

    #[test]
    fn bad_values_name_their_field() {
        for (extra, field) in [
            ("starttls = true\nurl2 = 1", "url2"),
            ("login_filter = \"(uid=x)\"", "login_filter"),
            ("email_filter = \"(mail={email}\"", "email_filter"),
            ("login_attribute = \"u id\"", "login_attribute"),
            ("timeout_secs = 0", "timeout_secs"),
            ("bind_password_file = \"/nonexistent\"", "bind_password"),
            ("mode = \"novell\"", "mode"),
            ("password_write = \"append\"", "password_write"),
        ] {
            let e = check(extra)
                .err()
                .unwrap_or_else(|| panic!("{extra} accepted"));
            assert!(e.contains(field), "{extra}: {e}");
        }
        let e = LdapConfig::from_table(
            &"url = \"ldaps://x\"\nstarttls = true\nbind_dn = \"cn=a\"\n\
                                         bind_password = \"p\"\nbase_dn = \"dc=b\""
                .parse()
                .unwrap(),
        )
        .unwrap()
        .check()
        .err()
        .unwrap();
        assert!(e.starts_with("starttls"), "{e}");
    }

    #[test]
    fn active_directory_needs_tls_and_replace() {
        let plain = check("mode = \"active_directory\"").err().unwrap();
        assert!(plain.contains("encrypted"), "{plain}");
        let t: toml::Table = "url = \"ldaps://dc1.example.org\"\nmode = \"active_directory\"\n\
                              bind_dn = \"CN=svc,DC=example,DC=org\"\nbind_password = \"p\"\n\
                              base_dn = \"DC=example,DC=org\"\n"
            .parse()
            .unwrap();
        let s = LdapConfig::from_table(&t).unwrap().check().unwrap();
        assert_eq!(s.login_attribute, "sAMAccountName");
        assert_eq!(s.id_attribute, "objectGUID");
        assert_eq!(s.password_write, PasswordWrite::Replace);
        assert!(s
            .login_filter
            .render("bob")
            .contains("(sAMAccountName=bob)"));
        let mut t2 = t.clone();
        t2.insert("password_write".into(), "password_modify".into());
        let e = LdapConfig::from_table(&t2).unwrap().check().err().unwrap();
        assert!(e.starts_with("password_write"), "{e}");
    }

    #[test]
    fn bind_password_file_drops_one_newline() {
        let dir = std::env::temp_dir().join(format!("resetd-ldap-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bind");
        std::fs::write(&path, "from-file\n").unwrap();
        let t: toml::Table = format!(
            "url = \"ldap://localhost\"\nbind_dn = \"cn=a,dc=b\"\nbase_dn = \"dc=b\"\n\
             bind_password_file = {:?}\n",
            path.display().to_string()
        )
        .parse()
        .unwrap();
        let s = LdapConfig::from_table(&t).unwrap().check().unwrap();
        assert_eq!(s.bind_password.expose(), "from-file");
        std::fs::write(&path, "\n").unwrap();
        let e = LdapConfig::from_table(&t).unwrap().check().err().unwrap();
        assert!(e.contains("empty"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
