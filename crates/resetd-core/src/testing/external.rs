//! [`MemoryExternal`]: an external credential system in memory (accounts with their passwords),
//! with failures injected per call and a log of the calls, for the rules of the cross-system
//! flows (`service/tests/external.rs`).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use async_trait::async_trait;

use crate::ports::{
    AccountQuery, Capabilities, ExternalAccount, ExternalCredentials, ExternalError,
};
use crate::types::Password;

use super::store::lock;

/// Which call a failure is injected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExternalCall {
    FindAccount,
    SetPassword,
    VerifyPassword,
    /// A verification for a login that names no account.
    VerifyNobody,
}

/// One logged call: which, for whose stable id (`None` for a lookup), and the change id of a
/// set. Never the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedCall {
    pub call: ExternalCall,
    pub stable_id: Option<String>,
    pub change_id: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    /// By stable id: the account and its password.
    accounts: HashMap<String, (ExternalAccount, String)>,
    /// Answers given before the real one, per call, in order.
    faults: HashMap<ExternalCall, VecDeque<ExternalError>>,
    /// Applies the write before answering the injected failure (a timeout after the system
    /// changed the password).
    apply_before_failing: bool,
    log: Vec<LoggedCall>,
}

/// An external credential system in memory. Logins match exactly; emails ignoring ASCII case.
#[derive(Debug)]
pub struct MemoryExternal {
    capabilities: Capabilities,
    state: Mutex<State>,
}

impl MemoryExternal {
    /// A system with `capabilities` and no accounts.
    pub fn new(capabilities: Capabilities) -> Self {
        Self {
            capabilities,
            state: Mutex::new(State::default()),
        }
    }

    /// A directory: people live there and it checks their passwords (LDAP).
    pub fn directory() -> Self {
        Self::new(Capabilities {
            holds_people: true,
            verifies_passwords: true,
        })
    }

    /// A sink: people live in resetd, which keeps its hash too (a webhook).
    pub fn sink() -> Self {
        Self::new(Capabilities {
            holds_people: false,
            verifies_passwords: false,
        })
    }

    /// Adds (or replaces) an account with its password.
    pub fn add(&self, account: ExternalAccount, password: &str) {
        lock(&self.state)
            .accounts
            .insert(account.stable_id.clone(), (account, password.to_owned()));
    }

    /// The account's current password, if the account exists.
    pub fn password_of(&self, stable_id: &str) -> Option<String> {
        lock(&self.state)
            .accounts
            .get(stable_id)
            .map(|(_, p)| p.clone())
    }

    /// Removes an account.
    pub fn remove(&self, stable_id: &str) {
        lock(&self.state).accounts.remove(stable_id);
    }

    /// The next `times` calls of `call` answer `error` (after being logged); later ones work.
    pub fn fail(&self, call: ExternalCall, error: ExternalError, times: usize) {
        let mut s = lock(&self.state);
        let queue = s.faults.entry(call).or_default();
        queue.extend(std::iter::repeat_n(error, times));
    }

    /// Whether a set whose answer is an injected failure changed the password anyway (the
    /// answer was lost after the write).
    pub fn apply_before_failing(&self, yes: bool) {
        lock(&self.state).apply_before_failing = yes;
    }

    /// The calls so far, in order.
    pub fn calls(&self) -> Vec<LoggedCall> {
        lock(&self.state).log.clone()
    }

    /// How many calls of `call` were made.
    pub fn count(&self, call: ExternalCall) -> usize {
        lock(&self.state)
            .log
            .iter()
            .filter(|c| c.call == call)
            .count()
    }

    fn enter(
        &self,
        call: ExternalCall,
        stable_id: Option<&str>,
        change_id: Option<&str>,
    ) -> Option<ExternalError> {
        let mut s = lock(&self.state);
        s.log.push(LoggedCall {
            call,
            stable_id: stable_id.map(str::to_owned),
            change_id: change_id.map(str::to_owned),
        });
        s.faults.get_mut(&call).and_then(VecDeque::pop_front)
    }
}

/// Returns `Pending` once, so two flows joined on one thread interleave at an external call as
/// they would at a network round trip.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

#[async_trait]
impl ExternalCredentials for MemoryExternal {
    fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    async fn find_account(
        &self,
        query: &AccountQuery,
    ) -> Result<Option<ExternalAccount>, ExternalError> {
        YieldOnce(false).await;
        if let Some(e) = self.enter(ExternalCall::FindAccount, None, None) {
            return Err(e);
        }
        let s = lock(&self.state);
        let mut found = s.accounts.values().map(|(a, _)| a).filter(|a| match query {
            AccountQuery::Login(l) => &a.login == l,
            AccountQuery::Email(e) => a
                .email
                .as_deref()
                .is_some_and(|m| m.eq_ignore_ascii_case(e)),
        });
        // Several matches are no match, as the port asks.
        match (found.next(), found.next()) {
            (Some(a), None) => Ok(Some(a.clone())),
            _ => Ok(None),
        }
    }

    async fn set_password(
        &self,
        account: &ExternalAccount,
        password: &Password,
        change_id: &str,
    ) -> Result<(), ExternalError> {
        YieldOnce(false).await;
        let fault = self.enter(
            ExternalCall::SetPassword,
            Some(&account.stable_id),
            Some(change_id),
        );
        let mut s = lock(&self.state);
        let apply = fault.is_none() || s.apply_before_failing;
        if apply {
            match s.accounts.get_mut(&account.stable_id) {
                Some((_, p)) => *p = password.expose().to_owned(),
                None if fault.is_none() => return Err(ExternalError::NoAccount),
                None => {}
            }
        }
        match fault {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn verify_password(
        &self,
        account: &ExternalAccount,
        password: &Password,
    ) -> Result<bool, ExternalError> {
        YieldOnce(false).await;
        if let Some(e) = self.enter(ExternalCall::VerifyPassword, Some(&account.stable_id), None) {
            return Err(e);
        }
        let s = lock(&self.state);
        Ok(s.accounts
            .get(&account.stable_id)
            .is_some_and(|(a, p)| a.enabled && p == password.expose()))
    }

    async fn verify_nobody(&self, _password: &Password) -> Result<(), ExternalError> {
        YieldOnce(false).await;
        match self.enter(ExternalCall::VerifyNobody, None, None) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
