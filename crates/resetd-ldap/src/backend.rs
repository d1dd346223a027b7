//! The adapter: [`ExternalCredentials`] over an LDAP directory.
//!
//! Every call opens its own connection and closes it when done. So a bind as a person (to check
//! a password) never shares a connection, or its identity, with the service account's searches
//! and writes, and a server that restarted costs nothing but the next connect. Each network step
//! (connect with TLS or StartTLS, bind, search, write) is bounded by `timeout_secs`.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::sync::Mutex;

use async_trait::async_trait;
use ldap3::exop::PasswordModify;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Mod, Scope, SearchEntry, SearchOptions};
use resetd_core::ports::{
    AccountQuery, Capabilities, ExternalAccount, ExternalCredentials, ExternalError,
};
use resetd_core::types::Password;

use crate::ad;
use crate::config::{Mode, PasswordWrite, Settings};
use crate::outcome::{self, INVALID_CREDENTIALS, NO_SUCH_OBJECT, SIZE_LIMIT_EXCEEDED, SUCCESS};

/// OpenLDAP ppolicy's value of `pwdAccountLockedTime` for an account an administrator locked
/// for good (a lock after failed binds has a real time and ends, so a reset may still help).
const ADMIN_LOCK: &str = "000001010000Z";

/// How many change ids whose write ended with an unknown outcome are remembered, so that a
/// repeat of the same change is recognised (see `set_password`).
const REMEMBERED_CHANGES: usize = 1024;

/// An LDAP directory holding a tenant's people and passwords.
#[derive(Debug)]
pub struct LdapBackend {
    settings: Settings,
    /// Change ids whose write may have landed without our hearing the answer.
    unsettled: Mutex<VecDeque<String>>,
}

impl LdapBackend {
    pub(crate) fn new(settings: Settings) -> Self {
        Self {
            settings,
            unsettled: Mutex::new(VecDeque::new()),
        }
    }

    /// Connects and binds as the service account, as every call does: for a start-up or
    /// `check-config` probe. The error never contains the bind password.
    pub async fn probe(&self) -> Result<(), String> {
        let mut ldap = self.open().await.map_err(|e| e.to_string())?;
        let bound = self
            .bind_service(&mut ldap)
            .await
            .map_err(|e| e.to_string());
        self.close(ldap).await;
        bound
    }

    /// Runs one network step within the timeout.
    async fn bounded<T>(&self, step: impl Future<Output = T>) -> Option<T> {
        tokio::time::timeout(self.settings.timeout, step).await.ok()
    }

    async fn open(&self) -> Result<Ldap, ExternalError> {
        let mut conn = LdapConnSettings::new().set_starttls(self.settings.starttls);
        if let Some(tls) = &self.settings.tls {
            conn = conn.set_config(tls.clone());
        }
        let (driver, ldap) = self
            .bounded(LdapConnAsync::with_settings(conn, &self.settings.url))
            .await
            .ok_or_else(|| {
                ExternalError::Unavailable(format!(
                    "connect to {}: no answer within {:?}",
                    self.settings.url, self.settings.timeout
                ))
            })?
            .map_err(|e| outcome::unreachable(&format!("connect to {}", self.settings.url), &e))?;
        // The driver ends when the last handle is dropped, closing the socket.
        tokio::spawn(async move {
            if let Err(e) = driver.drive().await {
                tracing::debug!(error = %e, "LDAP connection ended with an error");
            }
        });
        Ok(ldap)
    }

    async fn close(&self, mut ldap: Ldap) {
        let _ = self.bounded(ldap.unbind()).await;
    }

    /// Binds as the service account. Any failure is `Unavailable`: nothing was written.
    async fn bind_service(&self, ldap: &mut Ldap) -> Result<(), ExternalError> {
        let result = self
            .bounded(ldap.simple_bind(&self.settings.bind_dn, self.settings.bind_password.expose()))
            .await
            .ok_or_else(|| {
                ExternalError::Unavailable("service bind: no answer in time".to_owned())
            })?
            .map_err(|e| outcome::unreachable("service bind", &e))?;
        if result.rc == SUCCESS {
            Ok(())
        } else {
            Err(ExternalError::Unavailable(format!(
                "the directory refused the service account's bind ({})",
                outcome::describe(&result)
            )))
        }
    }

    fn attributes(&self) -> Vec<&str> {
        let s = &self.settings;
        let state = match s.mode {
            Mode::Openldap => "pwdAccountLockedTime",
            Mode::ActiveDirectory => "userAccountControl",
        };
        vec![
            s.login_attribute.as_str(),
            s.email_attribute.as_str(),
            s.name_attribute.as_str(),
            s.id_attribute.as_str(),
            state,
        ]
    }

    async fn search_one(&self, filter: &str) -> Result<Option<ExternalAccount>, ExternalError> {
        let mut ldap = self.open().await?;
        self.bind_service(&mut ldap).await?;
        let limit = i32::try_from(self.settings.timeout.as_secs()).unwrap_or(i32::MAX);
        // Two are enough to know there is more than one.
        let options = SearchOptions::new().sizelimit(2).timelimit(limit);
        let found = self
            .bounded(ldap.with_search_options(options).search(
                &self.settings.base_dn,
                Scope::Subtree,
                filter,
                self.attributes(),
            ))
            .await
            .ok_or_else(|| ExternalError::Unavailable("search: no answer in time".to_owned()))?
            .map_err(|e| outcome::unreachable("search", &e))?;
        self.close(ldap).await;
        let ldap3::SearchResult(entries, result) = found;
        match result.rc {
            SUCCESS | SIZE_LIMIT_EXCEEDED => {}
            NO_SUCH_OBJECT => {
                return Err(ExternalError::Failed(format!(
                    "base_dn {} is not in the directory",
                    self.settings.base_dn
                )))
            }
            _ => {
                return Err(ExternalError::Unavailable(format!(
                    "search: {}",
                    outcome::describe(&result)
                )))
            }
        }
        let mut entries = entries.into_iter();
        match (entries.next(), entries.next()) {
            (Some(only), None) => Ok(self.account(SearchEntry::construct(only))),
            _ => Ok(None),
        }
    }

    /// The account an entry describes; `None` (logged) when it lacks the id or the login.
    fn account(&self, entry: SearchEntry) -> Option<ExternalAccount> {
        let s = &self.settings;
        let Some(stable_id) = self.stable_id(&entry) else {
            tracing::warn!(attribute = %s.id_attribute, "directory entry without a usable id: not an account");
            return None;
        };
        let Some(login) = text(&entry, &s.login_attribute) else {
            tracing::warn!(attribute = %s.login_attribute, "directory entry without a login: not an account");
            return None;
        };
        let enabled = match s.mode {
            Mode::Openldap => text(&entry, "pwdAccountLockedTime").as_deref() != Some(ADMIN_LOCK),
            Mode::ActiveDirectory => {
                !text(&entry, "userAccountControl").is_some_and(|v| ad::uac_disabled(&v))
            }
        };
        Some(ExternalAccount {
            stable_id,
            locator: entry.dn.clone(),
            login,
            email: text(&entry, &s.email_attribute),
            display_name: text(&entry, &s.name_attribute),
            enabled,
        })
    }

    fn stable_id(&self, entry: &SearchEntry) -> Option<String> {
        let attr = &self.settings.id_attribute;
        let raw = bytes(entry, attr)?;
        if attr.eq_ignore_ascii_case("objectGUID") {
            return ad::guid_string(&raw);
        }
        match String::from_utf8(raw) {
            Ok(s) if !s.is_empty() => Some(s),
            Ok(_) => None,
            Err(e) => Some(e.into_bytes().iter().map(|b| format!("{b:02x}")).collect()),
        }
    }

    /// One write of the password on a fresh connection bound as the service account.
    async fn write_once(&self, dn: &str, password: &str) -> Result<(), ExternalError> {
        let mut ldap = self.open().await?;
        self.bind_service(&mut ldap).await?;
        let answer = match (self.settings.mode, self.settings.password_write) {
            (Mode::Openldap, PasswordWrite::PasswordModify) => {
                let exop = PasswordModify {
                    user_id: Some(dn),
                    old_pass: None,
                    new_pass: Some(password),
                };
                self.bounded(
                    ldap.with_controls(outcome::ppolicy_request())
                        .extended(exop),
                )
                .await
                .map(|r| r.map(|ldap3::result::ExopResult(_, result)| result))
            }
            (Mode::Openldap, PasswordWrite::Replace) => {
                let value = HashSet::from([password.as_bytes().to_vec()]);
                let mods = vec![Mod::Replace(b"userPassword".to_vec(), value)];
                self.bounded(
                    ldap.with_controls(outcome::ppolicy_request())
                        .modify(dn, mods),
                )
                .await
            }
            (Mode::ActiveDirectory, _) => {
                let value = HashSet::from([ad::unicode_pwd(password)]);
                let mods = vec![Mod::Replace(b"unicodePwd".to_vec(), value)];
                self.bounded(ldap.modify(dn, mods)).await
            }
        };
        let result = answer
            .ok_or_else(|| {
                ExternalError::Indeterminate(format!(
                    "password write: no answer within {:?}",
                    self.settings.timeout
                ))
            })?
            .map_err(|e| outcome::in_flight("password write", &e))?;
        self.close(ldap).await;
        outcome::write_result(&result)
    }

    /// Binds as `dn` on a connection of its own. `Ok(false)`: the directory said no.
    async fn bind_as(&self, dn: &str, password: &str) -> Result<bool, ExternalError> {
        // An empty password is an unauthenticated bind (RFC 4513 5.1.2), which many servers
        // answer with success: it proves nothing.
        if password.is_empty() || dn.is_empty() {
            return Ok(false);
        }
        let mut ldap = self.open().await?;
        let result = self
            .bounded(ldap.simple_bind(dn, password))
            .await
            .ok_or_else(|| {
                ExternalError::Unavailable("bind as the person: no answer in time".to_owned())
            })?
            .map_err(|e| outcome::unreachable("bind as the person", &e))?;
        self.close(ldap).await;
        match result.rc {
            SUCCESS => Ok(true),
            INVALID_CREDENTIALS => Ok(false),
            51 | 52 => Err(ExternalError::Unavailable(format!(
                "bind as the person: {}",
                outcome::describe(&result)
            ))),
            _ => Err(ExternalError::Failed(format!(
                "bind as the person: {}",
                outcome::describe(&result)
            ))),
        }
    }

    fn remember_unsettled(&self, change_id: &str) {
        if let Ok(mut ids) = self.unsettled.lock() {
            if ids.iter().any(|id| id == change_id) {
                return;
            }
            if ids.len() >= REMEMBERED_CHANGES {
                ids.pop_front();
            }
            ids.push_back(change_id.to_owned());
        }
    }

    /// Forgets the change id; whether it was there.
    fn settle(&self, change_id: &str) -> bool {
        let Ok(mut ids) = self.unsettled.lock() else {
            return false;
        };
        match ids.iter().position(|id| id == change_id) {
            Some(at) => {
                ids.remove(at);
                true
            }
            None => false,
        }
    }
}

/// The first value of an attribute as text (names compare case-insensitively).
fn text(entry: &SearchEntry, attr: &str) -> Option<String> {
    let values = entry
        .attrs
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(attr))?
        .1;
    values.first().filter(|v| !v.is_empty()).cloned()
}

/// The first value of an attribute as bytes, whether the library kept it as text or binary.
fn bytes(entry: &SearchEntry, attr: &str) -> Option<Vec<u8>> {
    if let Some(v) = text(entry, attr) {
        return Some(v.into_bytes());
    }
    entry
        .bin_attrs
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(attr))?
        .1
        .first()
        .cloned()
}

#[async_trait]
impl ExternalCredentials for LdapBackend {
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
        let filter = match query {
            AccountQuery::Login(login) if !login.is_empty() => {
                self.settings.login_filter.render(login)
            }
            AccountQuery::Email(email) if !email.is_empty() => {
                self.settings.email_filter.render(email)
            }
            _ => return Ok(None),
        };
        self.search_one(&filter).await
    }

    async fn set_password(
        &self,
        account: &ExternalAccount,
        password: &Password,
        change_id: &str,
    ) -> Result<(), ExternalError> {
        let new = password.expose();
        if new.is_empty() {
            return Err(ExternalError::Refused("the password is empty".to_owned()));
        }
        let written = self.write_once(&account.locator, new).await;
        match &written {
            Ok(()) => {
                self.settle(change_id);
            }
            Err(ExternalError::Indeterminate(_)) => self.remember_unsettled(change_id),
            // A repeat of a write whose answer was lost may be refused because the first one
            // landed (pwdInHistory, pwdMinAge). If the new password binds, the change is done.
            Err(ExternalError::Refused(_)) if self.settle(change_id) => {
                if self.bind_as(&account.locator, new).await == Ok(true) {
                    return Ok(());
                }
            }
            Err(_) => {}
        }
        written
    }

    async fn verify_password(
        &self,
        account: &ExternalAccount,
        password: &Password,
    ) -> Result<bool, ExternalError> {
        self.bind_as(&account.locator, password.expose()).await
    }

    async fn verify_nobody(&self, password: &Password) -> Result<(), ExternalError> {
        // A bind as an entry that cannot exist (a random name under the base): the same
        // connection, TLS and bind round trip as a wrong password, answered invalidCredentials.
        let nobody = format!(
            "cn=resetd-nobody-{},{}",
            resetd_core::secret::hex(&resetd_core::secret::random_bytes::<8>()),
            self.settings.base_dn
        );
        self.bind_as(&nobody, password.expose()).await.map(|_| ())
    }
}
