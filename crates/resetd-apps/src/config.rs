//! What both adapters read from their table the same way: a secret given inline or in a file, the
//! endpoint's URL, the timeout, an extra CA.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;

/// A secret read from the configuration. Its `Debug` shows nothing, so a config struct can derive
/// `Debug` safely.
#[derive(Clone)]
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    #[cfg(test)]
    pub(crate) fn for_tests(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Takes the secret out of `table`, given either inline as `key` or in the file `file_key` (its
/// contents without the trailing newline). Removing both keys means the rest of the table can be
/// deserialised, and its errors printed, without any risk of echoing the secret.
pub(crate) fn take_secret(
    table: &mut toml::Table,
    key: &str,
    file_key: &str,
) -> Result<Secret, String> {
    let inline = table.remove(key);
    let file = table.remove(file_key);
    let value = match (inline, file) {
        (Some(_), Some(_)) => return Err(format!("give either `{key}` or `{file_key}`, not both")),
        (None, None) => return Err(format!("`{key}` or `{file_key}` is required")),
        (Some(toml::Value::String(s)), None) => s,
        (Some(_), None) => return Err(format!("`{key}` must be a string")),
        (None, Some(toml::Value::String(path))) => std::fs::read_to_string(&path)
            .map_err(|e| format!("`{file_key}` {path}: {e}"))?
            .trim_end_matches(['\n', '\r'])
            .to_owned(),
        (None, Some(_)) => return Err(format!("`{file_key}` must be a string (a path)")),
    };
    if value.trim().is_empty() {
        return Err(format!("`{key}` is empty"));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("`{key}` contains control characters"));
    }
    Ok(Secret(value))
}

/// An http(s) URL with no credentials in it (they would end up in logs) and no fragment.
pub(crate) fn endpoint(key: &str, raw: &str, allow_query: bool) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("`{key}`: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{key}` must be an http:// or https:// URL"));
    }
    if url.host_str().is_none() {
        return Err(format!("`{key}` has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "`{key}` must not carry credentials (user:password@); use the secret keys"
        ));
    }
    if url.fragment().is_some() || (!allow_query && url.query().is_some()) {
        return Err(format!("`{key}` must not have a query or fragment"));
    }
    Ok(url)
}

/// The bound on one call (connect, send, answer): at least 1 s, at most 120 s.
pub(crate) fn timeout(key: &str, secs: Option<u64>, default: u64) -> Result<Duration, String> {
    let secs = secs.unwrap_or(default);
    if !(1..=120).contains(&secs) {
        return Err(format!("`{key}` must be between 1 and 120 (seconds)"));
    }
    Ok(Duration::from_secs(secs))
}

/// An HTTP client bounded by `timeout` (the whole call, body included), that follows no
/// redirect (a redirect would resend a password elsewhere) and trusts the web PKI roots plus
/// `ca_file` when given.
pub(crate) fn client(
    timeout: Duration,
    ca_file: Option<&PathBuf>,
) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("resetd/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| format!("`ca_file` {}: {e}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("`ca_file` {}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "`ca_file` {}: no certificate in it",
                path.display()
            ));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| format!("HTTP client: {e}"))
}

/// Deserialises the rest of a table (secrets already taken out) into `T`, naming the adapter.
pub(crate) fn rest<T: serde::de::DeserializeOwned>(table: toml::Table) -> Result<T, String> {
    toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| e.message().to_owned())
}
