//! [`MemoryStore`]: every port over plain collections behind one mutex, with the semantics of the
//! SQL backends (`resetd-store`'s `ops.rs`, `login.rs` and its conformance suite), so that a use
//! case's rules can be tested without a database. What it leaves out is what only a database
//! has: sealing outbox bodies at rest (bodies are kept as queued) and durability.
//!
//! Each write works on a copy of the state and commits it only when the whole operation
//! succeeded, as a backend's transaction (or savepoint) does: an `Err` changes nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::model::{
    AuditEvent, Client, NewAudit, NewMessage, OutboxMessage, OutboxStatus, Person, ResetRequest,
    ResetToken, Tenant, Timestamp,
};
use crate::ports::{Audit, ClaimId, Schema, StoreError};
use crate::secret::SecretHash;
use crate::types::{ClientName, Login, PersonId, TenantId};

/// The per-login counter of `begin_login` (SQL: a `login_attempt` row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Counter {
    pub failures: u32,
    pub window_until: Timestamp,
    pub locked_until: Option<Timestamp>,
}

/// Everything the store holds. Ids of requests, messages, audit events and history entries
/// increase per table from 1 and are never reused, as with `AUTOINCREMENT`.
#[derive(Debug, Clone, Default)]
pub(super) struct State {
    pub tenants: BTreeMap<TenantId, Tenant>,
    /// In insertion order. `failed_logins` and `locked_until` are stored as 0 and `None`: a read
    /// takes them from the login's counter, as the SQL stores do.
    pub people: Vec<Person>,
    pub api_keys: Vec<super::api_keys::StoredKey>,
    pub clients: BTreeMap<(TenantId, ClientName), Client>,
    /// Each unresolved request with the end of its lease, if claimed.
    pub requests: BTreeMap<i64, (ResetRequest, Option<Timestamp>)>,
    pub tokens: Vec<ResetToken>,
    /// The claim on each claimed token (SQL: its `claim_id` and `claimed_until` columns), by the
    /// token's hash; the token's `claimed` flag is set while it is here.
    pub claims: HashMap<SecretHash, (ClaimId, Timestamp)>,
    pub outbox: BTreeMap<i64, OutboxMessage>,
    pub audit: Vec<(TenantId, AuditEvent)>,
    /// (id, tenant, person, hash) of previous passwords.
    pub history: Vec<(i64, TenantId, PersonId, String)>,
    pub counters: BTreeMap<(TenantId, Login), Counter>,
    pub sequences: Sequences,
}

/// The last id given out, per table.
#[derive(Debug, Clone, Default)]
pub(super) struct Sequences {
    pub request: i64,
    pub message: i64,
    pub audit: i64,
    pub history: i64,
}

/// The next id after `last`.
pub(super) fn next(last: &mut i64) -> i64 {
    *last += 1;
    *last
}

impl State {
    pub fn tenant_exists(&self, id: &TenantId) -> bool {
        self.tenants.contains_key(id)
    }

    pub fn person_index(&self, tenant: &TenantId, id: &PersonId) -> Option<usize> {
        self.people
            .iter()
            .position(|p| &p.tenant == tenant && &p.id == id)
    }

    /// A person as a read returns it: with the counters of their login.
    pub fn view(&self, p: &Person) -> Person {
        let counter = self.counters.get(&(p.tenant.clone(), p.login.clone()));
        Person {
            failed_logins: counter.map_or(0, |c| c.failures),
            locked_until: counter.and_then(|c| c.locked_until),
            ..p.clone()
        }
    }

    pub fn insert_audit(&mut self, a: &NewAudit) {
        let id = next(&mut self.sequences.audit);
        self.audit.push((
            a.tenant.clone(),
            AuditEvent {
                id,
                person: a.person.as_ref().map(|p| p.as_str().to_owned()),
                kind: a.kind.to_owned(),
                actor: a.actor.clone(),
                ip: a.ip.clone(),
                at: a.at,
                detail: a.detail.clone(),
            },
        ));
    }

    /// Queues a message: due at once (its `created_at`), no attempt yet.
    pub fn insert_message(&mut self, m: &NewMessage) -> i64 {
        let id = next(&mut self.sequences.message);
        self.outbox.insert(
            id,
            OutboxMessage {
                id,
                message: m.clone(),
                attempts: 0,
                next_attempt_at: m.created_at,
                status: OutboxStatus::Pending,
                last_error: None,
                sent_at: None,
            },
        );
        id
    }

    /// Voids the person's live tokens (not used, not revoked) as of `at`.
    pub fn revoke_live_tokens(&mut self, tenant: &TenantId, person: &PersonId, at: Timestamp) {
        for t in &mut self.tokens {
            if &t.tenant == tenant
                && &t.person == person
                && t.used_at.is_none()
                && t.revoked_at.is_none()
            {
                t.revoked_at = Some(at);
            }
        }
    }

    /// Forgets the counter of `person`'s login (nothing when there is no such person).
    pub fn clear_counter(&mut self, tenant: &TenantId, person: &PersonId) {
        if let Some(i) = self.person_index(tenant, person) {
            let login = self.people[i].login.clone();
            self.counters.remove(&(tenant.clone(), login));
        }
    }
}

/// What the store answers instead of doing the work: see [`MemoryStore::fail_all`].
#[derive(Debug, Default)]
struct Faults {
    all: Option<StoreError>,
    methods: HashMap<&'static str, StoreError>,
}

/// An in-memory implementation of every port ([`crate::ports::Store`]), for tests.
///
/// Besides the ports it can fail on demand ([`MemoryStore::fail_all`], [`MemoryStore::fail`]),
/// so "the database is down" rules can be tested, and it logs which port methods were called
/// ([`MemoryStore::calls`]).
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    faults: Mutex<Faults>,
    calls: Mutex<Vec<&'static str>>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked while holding the lock must not hide the store from the next one.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MemoryStore {
    /// An empty store (no tenants); the schema needs no migration.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every port call fails with `error` (after being logged) until [`MemoryStore::heal`]:
    /// `StoreError::Unavailable` for a database that is down.
    pub fn fail_all(&self, error: StoreError) {
        lock(&self.faults).all = Some(error);
    }

    /// Calls of the port method named `method` (e.g. `"change_password"`) fail with `error`
    /// until [`MemoryStore::heal`]; every other call works.
    pub fn fail(&self, method: &'static str, error: StoreError) {
        lock(&self.faults).methods.insert(method, error);
    }

    /// Ends every failure set by [`MemoryStore::fail_all`] and [`MemoryStore::fail`].
    pub fn heal(&self) {
        *lock(&self.faults) = Faults::default();
    }

    /// The names of the port methods called so far, in order (failed calls included).
    pub fn calls(&self) -> Vec<&'static str> {
        lock(&self.calls).clone()
    }

    /// Forgets the calls logged so far.
    pub fn clear_calls(&self) {
        lock(&self.calls).clear();
    }

    /// Queues `message` in the outbox as the ports do when a flow sends an email (due at its
    /// `created_at`), and returns its id: for testing the mail worker without a flow.
    pub fn queue_message(&self, message: &NewMessage) -> i64 {
        lock(&self.state).insert_message(message)
    }

    /// Logs the call and answers the failure set for it, if any.
    fn enter(&self, method: &'static str) -> Result<(), StoreError> {
        lock(&self.calls).push(method);
        let faults = lock(&self.faults);
        match faults.all.as_ref().or_else(|| faults.methods.get(method)) {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Runs a read.
    pub(super) fn read<T>(
        &self,
        method: &'static str,
        f: impl FnOnce(&State) -> T,
    ) -> Result<T, StoreError> {
        self.enter(method)?;
        Ok(f(&lock(&self.state)))
    }

    /// Runs a write on a copy of the state, kept only if `f` succeeds.
    pub(super) fn write<T>(
        &self,
        method: &'static str,
        f: impl FnOnce(&mut State) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.enter(method)?;
        let mut state = lock(&self.state);
        let mut draft = state.clone();
        let out = f(&mut draft)?;
        *state = draft;
        Ok(out)
    }
}

#[async_trait]
impl Schema for MemoryStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        self.read("migrate", |_| ())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read("ping", |_| ())
    }
}

#[async_trait]
impl Audit for MemoryStore {
    async fn append_audit(&self, audit: NewAudit) -> Result<(), StoreError> {
        self.write("append_audit", |s| {
            s.insert_audit(&audit);
            Ok(())
        })
    }

    async fn list_audit(
        &self,
        tenant: &TenantId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let before = before.unwrap_or(i64::MAX);
        self.read("list_audit", |s| {
            s.audit
                .iter()
                .rev()
                .filter(|(t, e)| t == tenant && e.id < before)
                .take(limit as usize)
                .map(|(_, e)| e.clone())
                .collect()
        })
    }
}
