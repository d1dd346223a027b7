//! The use cases, written against the ports (store, hasher, renderer, clock). Every API surface —
//! the native API, the vendor dialects, the CLI — calls these.
//!
//! One file per flow: `people`, `api_keys`, `admin` (clients, outbox, audit log), `recovery`
//! (requesting and voiding reset tokens), `issue` (the one step that mints a token and its email,
//! shared by both recovery paths), `complete` (using a token), `credentials` (passwords and logins)
//! and `message` (the emails those flows queue).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::CoreError;
use crate::hash::PasswordHasher;
use crate::model::{Client, Clock, NewAudit, Person, Tenant, TenantSettings, Timestamp};
use crate::policy::{PasswordPolicy, PolicyMode};
use crate::render::Renderer;
use crate::store::Store;
use crate::types::{PersonId, TenantId};

mod admin;
mod api_keys;
mod backlog;
mod breached;
mod complete;
mod credentials;
mod external;
mod external_set;
mod issue;
mod message;
mod people;
mod people_admin;
mod recovery;
mod retention;

pub use backlog::{ResetBacklog, DEFAULT_RESET_QUEUE_CAP};
pub use complete::{CompleteOptions, TokenInfo};
pub use credentials::Authenticated;
pub use external::{shadow_id, BACKEND_POLICY_CODE, EXTERNAL_CLAIM_LEASE_SECS, MAX_WRITE_ATTEMPTS};
pub(crate) use people::check_attributes;
pub use people::{NewPersonInput, PersonPatch};
pub use people_admin::MAX_PAGE;
pub use recovery::{DEFAULT_RESOLVE_CONCURRENCY, RESET_REQUEST_LEASE_SECS};

type Result<T> = std::result::Result<T, CoreError>;

/// Deployment-wide settings the use cases need.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The externally visible base URL of resetd, for links to the hosted page (no trailing `/`).
    pub public_url: String,
    /// The domain part of generated Message-IDs.
    pub message_id_domain: String,
    /// How long a "password changed" notice is retried before it is dead (a reset link is
    /// retried until it expires).
    pub notice_retry_secs: i64,
}

/// The default of [`ServiceConfig::notice_retry_secs`]: a day, so an SMTP outage of a few hours
/// still tells the person their password changed.
pub const DEFAULT_NOTICE_RETRY_SECS: i64 = 24 * 3600;

/// Who performs an action, as recorded in the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An API key, by its public id.
    ApiKey(String),
    /// An unauthenticated caller.
    Anonymous,
    /// The command line.
    Cli,
    /// resetd itself (workers).
    System,
}

impl Actor {
    fn label(&self) -> String {
        match self {
            Actor::ApiKey(id) => format!("api_key:{id}"),
            Actor::Anonymous => "anonymous".into(),
            Actor::Cli => "cli".into(),
            Actor::System => "system".into(),
        }
    }
}

const TENANT_CACHE_MS: i64 = 5_000;
/// How long a tenant's client list is used without reading it again, while it has what a
/// request needs.
pub(crate) const CLIENT_CACHE_MS: i64 = 5_000;

/// A tenant's clients as read, and when.
type ClientList = (Arc<[Client]>, Timestamp);

/// The recovery service: one per process, shared by every API surface.
pub struct Service {
    store: Arc<dyn Store>,
    hasher: Arc<dyn PasswordHasher>,
    renderer: Arc<dyn Renderer>,
    clock: Arc<dyn Clock>,
    config: ServiceConfig,
    tenants: Mutex<HashMap<TenantId, (Tenant, Timestamp)>>,
    /// Each tenant's clients as last read, and when (see `recovery::Service::clients_where`).
    client_lists: Mutex<HashMap<TenantId, ClientList>>,
    breached: Option<Arc<dyn crate::ports::BreachedPasswords>>,
    /// The tenants whose passwords live in an external system (`with_external`).
    externals: HashMap<TenantId, Arc<dyn crate::ports::ExternalCredentials>>,
    /// When this process last wrote each key's `last_used_at` (see `api_keys::note_use`).
    key_touches: Mutex<HashMap<String, Timestamp>>,
    /// The accepted reset requests that wait to be resolved, and their cap.
    backlog: ResetBacklog,
    /// How many claimed reset requests the worker resolves at once.
    resolve_concurrency: usize,
}

impl Service {
    /// Wires the service to its ports.
    pub fn new(
        store: Arc<dyn Store>,
        hasher: Arc<dyn PasswordHasher>,
        renderer: Arc<dyn Renderer>,
        clock: Arc<dyn Clock>,
        config: ServiceConfig,
    ) -> Self {
        Self {
            store,
            hasher,
            renderer,
            clock,
            config,
            tenants: Mutex::new(HashMap::new()),
            client_lists: Mutex::new(HashMap::new()),
            breached: None,
            externals: HashMap::new(),
            key_touches: Mutex::new(HashMap::new()),
            backlog: ResetBacklog::default(),
            resolve_concurrency: recovery::DEFAULT_RESOLVE_CONCURRENCY,
        }
    }

    /// Resolves up to `n` claimed reset requests at once (at least one): more commit together,
    /// but take the store's writer from the requests being answered meanwhile.
    pub fn with_reset_worker_concurrency(mut self, n: usize) -> Self {
        self.resolve_concurrency = n.max(1);
        self
    }

    /// Caps the accepted reset requests that may wait to be resolved (see [`ResetBacklog`]).
    pub fn with_reset_queue_cap(mut self, cap: u64) -> Self {
        self.backlog = ResetBacklog::new(cap);
        self
    }

    /// The waiting reset requests, their cap and the refusals (for metrics).
    pub fn reset_backlog(&self) -> &ResetBacklog {
        &self.backlog
    }

    /// The current time by the service's clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The deployment-wide settings (the hosted page needs the public URL).
    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    fn audit(
        &self,
        tenant: &TenantId,
        person: Option<&PersonId>,
        kind: &'static str,
        actor: &Actor,
        ip: Option<&str>,
        detail: serde_json::Value,
    ) -> NewAudit {
        NewAudit {
            tenant: tenant.clone(),
            person: person.cloned(),
            kind,
            actor: actor.label(),
            ip: ip.map(str::to_owned),
            at: self.now(),
            detail,
        }
    }

    /// A tenant by id (cached for a few seconds; settings changes apply within that time).
    pub async fn tenant(&self, id: &TenantId) -> Result<Tenant> {
        let now = self.now();
        if let Some((t, at)) = self
            .tenants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
        {
            if now.0 - at.0 < TENANT_CACHE_MS {
                return Ok(t.clone());
            }
        }
        let t = self
            .store
            .get_tenant(id)
            .await?
            .ok_or(CoreError::UnknownTenant)?;
        self.tenants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), (t.clone(), now));
        Ok(t)
    }

    /// Creates a tenant; `Conflict` if it exists.
    pub async fn create_tenant(&self, id: TenantId, settings: TenantSettings) -> Result<Tenant> {
        settings.validate()?;
        let t = Tenant {
            id,
            settings,
            created_at: self.now(),
        };
        self.store.create_tenant(&t).await?;
        Ok(t)
    }

    /// Replaces a tenant's settings.
    pub async fn update_tenant_settings(
        &self,
        id: &TenantId,
        settings: TenantSettings,
    ) -> Result<()> {
        settings.validate()?;
        self.store.update_tenant_settings(id, &settings).await?;
        self.tenants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        Ok(())
    }
}

/// The tenant's policy, with a surface's rule set instead of the tenant's when it names one.
fn policy_for(t: &Tenant, mode: Option<PolicyMode>) -> PasswordPolicy {
    let mut policy = t.settings.policy();
    if let Some(m) = mode {
        policy.mode = m;
    }
    policy
}

/// The person's own details, which the policy refuses as (parts of) a password.
fn personal_words(p: &Person) -> Vec<&str> {
    let mut words = vec![p.login.as_str(), p.email.as_str(), p.email.local_part()];
    words.extend(p.display_name.as_str().split_whitespace());
    words
}

#[cfg(test)]
mod tests;
