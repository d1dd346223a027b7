//! Unleash (8.x) as a tenant's user store, through its admin API (`/api/admin/user-admin`, with an
//! admin API token) and its password sign-in (`/auth/simple/login`).
//!
//! - `find_account`: `GET /api/admin/user-admin/search?q=` (name, username and email prefixes),
//!   then an exact match the way Unleash's own sign-in matches: an email-shaped login or an email
//!   against the (lower-cased) email, any other login against the username. Queries the search
//!   cannot serve (one character, a backslash, which its ILIKE would read as an escape) list all
//!   users instead (`GET /api/admin/user-admin`).
//! - `set_password`: `GET /api/admin/user-admin/{id}` (404 -> the account is gone; Unleash's
//!   change-password answers 500 for an unknown id), then
//!   `POST /api/admin/user-admin/{id}/change-password`. Setting the same password again is
//!   harmless, so a repeat after a lost answer is safe. Unleash checks its own password rules
//!   (OWASP: 10+ characters, upper case, a digit, a symbol) and answers 400 with its reason, which
//!   becomes `Refused`. The change also ends the user's Unleash sessions, as any password change
//!   there does.
//! - `verify_password`: `POST /auth/simple/login`. A success creates an Unleash session that
//!   resetd drops (its cookie is never kept); Unleash keeps at most `MAX_PARALLEL_SESSIONS` (5)
//!   per user, so frequent checks can push out the person's oldest browser session. Unleash
//!   limits this path per client IP (`SIMPLE_LOGIN_LIMIT_PER_MINUTE`, 10): its 429 is
//!   `Unavailable`.

use async_trait::async_trait;
use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::{StatusCode, Url};
use resetd_core::ports::{
    AccountQuery, Capabilities, ExternalAccount, ExternalCredentials, ExternalError,
};
use resetd_core::types::Password;
use serde::Deserialize;

use crate::config::{self, Secret};
use crate::http::{self, Answer, Call};

const WHAT: &str = "Unleash";

/// The `[credentials.<tenant>]` section for `kind = "unleash"`.
#[derive(Debug, Clone)]
pub struct UnleashConfig {
    /// Unleash's base URL, with its base path if it has one (`https://unleash.example.com`).
    pub url: Url,
    admin_token: Secret,
    /// The bound on each call to Unleash.
    pub timeout: std::time::Duration,
    /// An extra CA certificate bundle (PEM) for an Unleash behind a private CA.
    pub ca_file: Option<std::path::PathBuf>,
}

/// The section's keys other than the token.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    url: String,
    timeout_secs: Option<u64>,
    ca_file: Option<std::path::PathBuf>,
}

impl UnleashConfig {
    /// Reads and checks the section; the error names the key and never the token.
    pub fn from_table(table: &toml::Table) -> Result<Self, String> {
        let wrap = |e: String| format!("credentials (unleash): {e}");
        let mut table = table.clone();
        let admin_token =
            config::take_secret(&mut table, "admin_token", "admin_token_file").map_err(wrap)?;
        HeaderValue::from_str(admin_token.expose())
            .map_err(|_| wrap("`admin_token` is not usable in an HTTP header".to_owned()))?;
        let keys: Keys = config::rest(table).map_err(wrap)?;
        Ok(Self {
            url: config::endpoint("url", &keys.url, false).map_err(wrap)?,
            admin_token,
            timeout: config::timeout("timeout_secs", keys.timeout_secs, 10).map_err(wrap)?,
            ca_file: keys.ca_file,
        })
    }
}

/// The adapter: one HTTP client, the base URL and the token.
#[derive(Debug)]
pub struct Unleash {
    client: reqwest::Client,
    base: String,
    token: HeaderValue,
}

impl Unleash {
    /// The adapter over `config` (builds the HTTP client; contacts nothing yet).
    pub fn new(config: UnleashConfig) -> Result<Self, String> {
        let wrap = |e: String| format!("credentials (unleash): {e}");
        let client = config::client(config.timeout, config.ca_file.as_ref()).map_err(wrap)?;
        let mut token = HeaderValue::from_str(config.admin_token.expose())
            .map_err(|_| wrap("`admin_token` is not usable in an HTTP header".to_owned()))?;
        token.set_sensitive(true);
        Ok(Self {
            client,
            base: config.url.as_str().trim_end_matches('/').to_owned(),
            token,
        })
    }

    fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .header(AUTHORIZATION, self.token.clone())
    }

    async fn users_matching(&self, needle: &str) -> Result<Vec<User>, ExternalError> {
        let searchable = needle.chars().count() >= 2 && !needle.contains('\\');
        let answer = if searchable {
            let request = self
                .admin(reqwest::Method::GET, "/api/admin/user-admin/search")
                .query(&[("q", needle)]);
            http::send(request, Call::Read, WHAT).await?
        } else {
            let request = self.admin(reqwest::Method::GET, "/api/admin/user-admin");
            http::send(request, Call::Read, WHAT).await?
        };
        expect_ok(&answer, None)?;
        let users = if searchable {
            serde_json::from_slice::<Vec<User>>(&answer.body)
        } else {
            serde_json::from_slice::<UserList>(&answer.body).map(|l| l.users)
        };
        users.map_err(|e| ExternalError::Failed(format!("{WHAT}'s user list is unreadable: {e}")))
    }
}

/// A user as the admin API lists it (only the fields resetd uses).
#[derive(Debug, Deserialize)]
struct User {
    id: u64,
    name: Option<String>,
    username: Option<String>,
    email: Option<String>,
}

#[derive(Deserialize)]
struct UserList {
    users: Vec<User>,
}

/// An error body of Unleash (`UnleashError::toJSON`).
#[derive(Deserialize)]
struct UnleashErrorBody {
    name: Option<String>,
}

impl User {
    fn account(&self) -> Option<ExternalAccount> {
        let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        let email = nonempty(&self.email);
        let login = nonempty(&self.username).or_else(|| email.clone())?;
        Some(ExternalAccount {
            stable_id: self.id.to_string(),
            locator: self.id.to_string(),
            login,
            email,
            display_name: nonempty(&self.name),
            // Unleash has no disabled state; a deleted user is no longer listed.
            enabled: true,
        })
    }
}

/// Whether Unleash's sign-in reads `value` as an email address (a loose copy of its `isEmail`:
/// something@domain.tld with a tld of two or more letters).
fn email_shaped(value: &str) -> bool {
    let Some((local, domain)) = value.rsplit_once('@') else {
        return false;
    };
    let Some((host, tld)) = domain.rsplit_once('.') else {
        return false;
    };
    !local.is_empty()
        && !host.is_empty()
        && tld.len() >= 2
        && tld.chars().all(|c| c.is_ascii_alphabetic())
}

/// Whether `user` is the one `query` names, by Unleash's own sign-in rules.
fn matches(user: &User, query: &AccountQuery) -> bool {
    let email_is = |q: &str| user.email.as_deref().is_some_and(|e| e == q.to_lowercase());
    match query {
        AccountQuery::Email(q) => email_is(q),
        AccountQuery::Login(q) if email_shaped(q) => email_is(q),
        AccountQuery::Login(q) => user.username.as_deref() == Some(q.as_str()),
    }
}

/// 2xx is fine; anything else becomes the port's error (writes get `Refused` for a 400).
fn expect_ok(answer: &Answer, password: Option<&str>) -> Result<(), ExternalError> {
    let status = answer.status;
    if status.is_success() {
        return Ok(());
    }
    let reason = || http::reason(answer, password);
    let code = status.as_u16();
    Err(match status {
        StatusCode::UNAUTHORIZED => ExternalError::Failed(format!(
            "{WHAT} refused the admin API token (401); check `admin_token`"
        )),
        StatusCode::NOT_FOUND => ExternalError::NoAccount,
        StatusCode::TOO_MANY_REQUESTS => {
            ExternalError::Unavailable(format!("{WHAT} is rate limiting resetd (429)"))
        }
        s if s.is_server_error() => ExternalError::Unavailable(format!(
            "{WHAT} answered HTTP {code}{}",
            reason().map(|r| format!(": {r}")).unwrap_or_default()
        )),
        _ => ExternalError::Failed(format!(
            "{WHAT} answered HTTP {code}{}",
            reason().map(|r| format!(": {r}")).unwrap_or_default()
        )),
    })
}

/// The numeric user id in a locator (resetd wrote it from Unleash's answer).
fn user_id(account: &ExternalAccount) -> Result<u64, ExternalError> {
    account
        .locator
        .parse()
        .map_err(|_| ExternalError::Failed(format!("not an {WHAT} user id: {:?}", account.locator)))
}

#[async_trait]
impl ExternalCredentials for Unleash {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            holds_people: true,
            verifies_passwords: true,
        }
    }

    async fn find_account(
        &self,
        query: &AccountQuery,
    ) -> Result<Option<ExternalAccount>, ExternalError> {
        let needle = match query {
            AccountQuery::Login(q) | AccountQuery::Email(q) => q.as_str(),
        };
        if needle.is_empty() {
            return Ok(None);
        }
        let users = self.users_matching(needle).await?;
        let mut found = users.iter().filter(|u| matches(u, query));
        match (found.next(), found.next()) {
            (Some(one), None) => Ok(one.account()),
            _ => Ok(None),
        }
    }

    async fn set_password(
        &self,
        account: &ExternalAccount,
        password: &Password,
        _change_id: &str,
    ) -> Result<(), ExternalError> {
        let id = user_id(account)?;
        let path = format!("/api/admin/user-admin/{id}");
        let exists = http::send(self.admin(reqwest::Method::GET, &path), Call::Read, WHAT).await?;
        expect_ok(&exists, None)?;

        let body = serde_json::json!({ "password": password.expose() });
        let request = self
            .admin(reqwest::Method::POST, &format!("{path}/change-password"))
            .json(&body);
        let answer = http::send(request, Call::Write, WHAT).await?;
        let refused = |answer: &Answer| {
            http::reason(answer, Some(password.expose()))
                .unwrap_or_else(|| format!("{WHAT} refused the password"))
        };
        match answer.status {
            // Unleash's password rules (OwaspValidationError) and any other bad-data answer.
            StatusCode::BAD_REQUEST => Err(ExternalError::Refused(refused(&answer))),
            // A SCIM-managed user (ForbiddenError) is a definite no for this account; a token
            // without the permission is a configuration error.
            StatusCode::FORBIDDEN => {
                let name = serde_json::from_slice::<UnleashErrorBody>(&answer.body)
                    .ok()
                    .and_then(|b| b.name);
                if name.as_deref() == Some("ForbiddenError") {
                    Err(ExternalError::Refused(refused(&answer)))
                } else {
                    Err(ExternalError::Failed(format!(
                        "{WHAT} refused the change (403); the admin token needs the ADMIN permission"
                    )))
                }
            }
            _ => expect_ok(&answer, Some(password.expose())),
        }
    }

    async fn verify_password(
        &self,
        account: &ExternalAccount,
        password: &Password,
    ) -> Result<bool, ExternalError> {
        let id = user_id(account)?;
        // Unleash signs in by email when given one, by username otherwise.
        let name = account.email.as_deref().unwrap_or(&account.login);
        let answer = self.sign_in(name, password).await?;
        if answer.status != StatusCode::OK {
            return Ok(false);
        }
        let user: User = serde_json::from_slice(&answer.body).map_err(|e| {
            ExternalError::Failed(format!("{WHAT}'s sign-in answer is unreadable: {e}"))
        })?;
        // The name might lead Unleash to another account than the one resetd holds.
        Ok(user.id == id)
    }

    async fn verify_nobody(&self, password: &Password) -> Result<(), ExternalError> {
        // A sign-in as an address nobody can hold (a reserved domain, RFC 2606): the same round
        // trip as a wrong password.
        let name = format!(
            "resetd-nobody-{}@nobody.invalid",
            resetd_core::secret::hex(&resetd_core::secret::random_bytes::<8>())
        );
        self.sign_in(&name, password).await.map(|_| ())
    }
}

impl Unleash {
    /// `POST /auth/simple/login` as `name`: the answer when it is 200 or 401, an error otherwise.
    async fn sign_in(
        &self,
        name: &str,
        password: &Password,
    ) -> Result<http::Answer, ExternalError> {
        let body = serde_json::json!({ "username": name, "password": password.expose() });
        let request = self
            .client
            .post(format!("{}/auth/simple/login", self.base))
            .json(&body);
        let answer = http::send(request, Call::Read, WHAT).await?;
        match answer.status {
            StatusCode::OK | StatusCode::UNAUTHORIZED => Ok(answer),
            _ => expect_ok(&answer, Some(password.expose())).and(Err(ExternalError::Failed(
                format!("{WHAT}'s sign-in answered HTTP {}", answer.status.as_u16()),
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(username: Option<&str>, email: Option<&str>) -> User {
        User {
            id: 7,
            name: Some("Ada".into()),
            username: username.map(Into::into),
            email: email.map(Into::into),
        }
    }

    #[test]
    fn logins_match_as_unleash_signs_in() {
        let ada = user(Some("ada"), Some("ada@example.com"));
        assert!(matches(&ada, &AccountQuery::Login("ada".into())));
        assert!(
            !matches(&ada, &AccountQuery::Login("Ada".into())),
            "usernames are exact"
        );
        assert!(
            !matches(&ada, &AccountQuery::Login("ad".into())),
            "a prefix is not a match"
        );
        assert!(matches(
            &ada,
            &AccountQuery::Login("Ada@Example.com".into())
        ));
        assert!(matches(
            &ada,
            &AccountQuery::Email("ADA@example.com".into())
        ));
        assert!(!matches(&ada, &AccountQuery::Email("ada".into())));
        let email_only = user(None, Some("bob@example.com"));
        assert_eq!(
            email_only.account().map(|a| a.login),
            Some("bob@example.com".into())
        );
        assert_eq!(user(None, None).account(), None);
    }

    #[test]
    fn email_shape_follows_unleash() {
        assert!(email_shaped("a@b.io"));
        assert!(!email_shaped("a@b"));
        assert!(!email_shaped("ada"));
        assert!(!email_shaped("a@b.c"));
        assert!(!email_shaped("@b.io"));
    }

    #[test]
    fn config_errors_name_keys_never_the_token() {
        let parse = |s: &str| UnleashConfig::from_table(&s.parse::<toml::Table>().unwrap());
        let ok =
            parse("url = \"http://127.0.0.1:4242/\"\nadmin_token = \"*:*.s3cr3t-token\"").unwrap();
        assert_eq!(ok.timeout, std::time::Duration::from_secs(10));
        assert!(!format!("{ok:?}").contains("s3cr3t"));
        for (toml, wanted) in [
            (
                "url = \"http://h\"",
                "`admin_token` or `admin_token_file` is required",
            ),
            (
                "url = \"ftp://h\"\nadmin_token = \"s3cr3t\"",
                "http:// or https://",
            ),
            (
                "url = \"http://u:s3cr3t@h\"\nadmin_token = \"t\"",
                "must not carry credentials",
            ),
            (
                "url = \"http://h\"\nadmin_token = \"s3cr3t\"\nadmin_token_file = \"/x\"",
                "not both",
            ),
            (
                "url = \"http://h\"\nadmin_token = \"s3cr3t\"\ntimeout_secs = 0",
                "between 1 and 120",
            ),
            (
                "url = \"http://h\"\nadmin_token = \"s3cr3t\"\nadmin-token = \"s3cr3t\"",
                "unknown field",
            ),
            (
                "url = \"http://h\"\nadmin_token_file = \"/nonexistent/s3cr3t\"",
                "admin_token_file",
            ),
            ("url = \"http://h\"\nadmin_token = 5", "must be a string"),
        ] {
            let e = parse(toml).unwrap_err();
            assert!(e.contains(wanted), "{toml}: {e}");
            assert!(e.starts_with("credentials (unleash): "), "{e}");
            if !toml.contains("admin_token_file") {
                assert!(!e.contains("s3cr3t"), "{toml}: {e}");
            }
        }
    }
}
