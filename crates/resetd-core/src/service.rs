//! The use cases, written against the ports (store, hasher, renderer, clock). Every API surface —
//! the native API, the vendor dialects, the CLI — calls these and nothing below them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::error::CoreError;
use crate::hash::PasswordHasher;
use crate::model::{
    ApiKey, AuditEvent, Client, Clock, LinkTemplate, Lookup, MessageKind, NewAudit, NewMessage,
    NewResetRequest, OutboxMessage, OutboxStatus, Person, ResetPageUrl, ResetRequest, ResetToken,
    Scope, Tenant, TenantSettings, Timestamp,
};
use crate::policy::{PasswordPolicy, PolicyMode, Verdict, Violation};
use crate::render::{MessageContext, Renderer};
use crate::secret::{hex, random_bytes, ApiKeySecret, ResetSecret};
use crate::store::{IssueToken, LoginAttempt, PasswordChange, Resolution, Resolved, Store};
use crate::types::{ClientName, DisplayName, Email, Locale, Login, Password, PersonId, TenantId};

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

/// A new person as an admin describes them.
#[derive(Debug, Clone)]
pub struct NewPersonInput {
    /// Login, unique per tenant.
    pub login: Login,
    /// Email.
    pub email: Email,
    /// Display name.
    pub display_name: Option<DisplayName>,
    /// Preferred locale.
    pub locale: Option<Locale>,
    /// Enabled (default true).
    pub enabled: bool,
    /// Whether the email address is known to be confirmed.
    pub verified: bool,
    /// Roles.
    pub roles: Vec<String>,
    /// Attributes (a JSON object).
    pub attributes: serde_json::Value,
    /// An initial password, checked against the policy.
    pub password: Option<Password>,
}

/// Changes to a person's profile; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct PersonPatch {
    /// New email.
    pub email: Option<Email>,
    /// New display name.
    pub display_name: Option<DisplayName>,
    /// New locale (`Some(None)` clears it).
    pub locale: Option<Option<Locale>>,
    /// Enable or disable.
    pub enabled: Option<bool>,
    /// Mark the email address confirmed or not.
    pub verified: Option<bool>,
    /// Replace roles.
    pub roles: Option<Vec<String>>,
    /// Replace attributes.
    pub attributes: Option<serde_json::Value>,
}

/// A valid reset token's public facts.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenInfo {
    /// When it expires.
    pub expires_at: Timestamp,
    /// The person's login, for the page to show whose password is being reset.
    pub login: Login,
    /// The person's min-length policy, for the page to show.
    pub min_password_length: usize,
    /// The whole person, for surfaces that describe the token's owner in their own terms
    /// (Unleash's token user). Never shown as is: it holds the password hash.
    pub person: Person,
    /// When it was issued.
    pub issued_at: Timestamp,
}

/// How a surface wants a reset completed, beyond the token and the new password.
#[derive(Debug, Clone, Default)]
pub struct CompleteOptions {
    /// The token only counts when it belongs to this account; any other token is `TokenGone`
    /// (Alfresco names the person in the path next to the token).
    pub holder: Option<Lookup>,
    /// Check the new password with this rule set instead of the tenant's (Unleash's OWASP rules).
    pub mode: Option<PolicyMode>,
}

/// A successful login.
#[derive(Debug, Clone, PartialEq)]
pub struct Authenticated {
    /// The person.
    pub person: Person,
    /// The caller must make them change their password now.
    pub must_change_password: bool,
}

const TENANT_CACHE_MS: i64 = 5_000;

/// How long a claimed reset request stays reserved for the worker that claimed it. Resolving one
/// takes milliseconds; a lease that runs out only means another instance may redo the work, and
/// the store still resolves the request once.
pub const RESET_REQUEST_LEASE_SECS: i64 = 10;

/// The recovery service: one per process, shared by every API surface.
pub struct Service {
    store: Arc<dyn Store>,
    hasher: Arc<dyn PasswordHasher>,
    renderer: Arc<dyn Renderer>,
    clock: Arc<dyn Clock>,
    config: ServiceConfig,
    tenants: Mutex<HashMap<TenantId, (Tenant, Timestamp)>>,
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
        }
    }

    /// The store, for surfaces that list operational data (outbox, health).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
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

    // ---- tenants -------------------------------------------------------------------------------

    /// A tenant by id (cached for a few seconds; settings changes apply within that time).
    pub async fn tenant(&self, id: &TenantId) -> Result<Tenant> {
        let now = self.now();
        if let Some((t, at)) = self.tenants.lock().unwrap().get(id) {
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
            .unwrap()
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
        self.tenants.lock().unwrap().remove(id);
        Ok(())
    }

    // ---- API keys ------------------------------------------------------------------------------

    /// Creates an API key and returns its secret, which is never shown again.
    pub async fn create_api_key(
        &self,
        tenant: &TenantId,
        name: &str,
        scopes: Vec<Scope>,
        actor: &Actor,
    ) -> Result<(ApiKey, ApiKeySecret)> {
        self.tenant(tenant).await?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
            return Err(crate::types::InvalidInput::new(
                "name",
                "must be 1 to 128 printable characters",
            )
            .into());
        }
        let secret = ApiKeySecret::generate();
        let key = ApiKey {
            id: hex(&random_bytes::<8>()),
            tenant: tenant.clone(),
            name: name.to_owned(),
            scopes,
            created_at: self.now(),
            revoked_at: None,
        };
        let audit = self.audit(
            tenant,
            None,
            "api_key_created",
            actor,
            None,
            json!({"key_id": key.id, "name": key.name}),
        );
        self.store
            .insert_api_key(&key, secret.hash(), Some(audit))
            .await?;
        Ok((key, secret))
    }

    /// The live key behind `secret`, whatever its tenant and scopes; `Unauthenticated` when it is
    /// unknown or revoked. For surfaces that authorise keys by rules of their own (Payabli's
    /// allow-list of request tokens).
    pub async fn identify_api_key(&self, secret: &ApiKeySecret) -> Result<ApiKey> {
        let key = self
            .store
            .find_api_key(secret.hash())
            .await?
            .ok_or(CoreError::Unauthenticated)?;
        if key.revoked_at.is_some() {
            return Err(CoreError::Unauthenticated);
        }
        Ok(key)
    }

    /// Checks that `secret` is a live key of `tenant` with `scope`.
    pub async fn authorize(
        &self,
        tenant: &TenantId,
        secret: &ApiKeySecret,
        scope: Scope,
    ) -> Result<ApiKey> {
        let key = self.identify_api_key(secret).await?;
        if &key.tenant != tenant || !key.scopes.contains(&scope) {
            return Err(CoreError::Forbidden);
        }
        Ok(key)
    }

    // ---- people --------------------------------------------------------------------------------

    /// Creates a person.
    pub async fn create_person(
        &self,
        tenant: &TenantId,
        input: NewPersonInput,
        actor: &Actor,
    ) -> Result<Person> {
        let t = self.tenant(tenant).await?;
        check_attributes(&input.attributes, &input.roles)?;
        let now = self.now();
        let mut person = Person {
            id: PersonId::generate(),
            number: 0,
            tenant: tenant.clone(),
            login: input.login,
            email: input.email,
            display_name: input
                .display_name
                .unwrap_or_else(|| DisplayName::parse("").expect("empty name is valid")),
            locale: input.locale,
            enabled: input.enabled,
            verified: input.verified,
            roles: input.roles,
            attributes: input.attributes,
            password_hash: None,
            password_changed_at: None,
            must_change_password: false,
            failed_logins: 0,
            locked_until: None,
            created_at: now,
            updated_at: now,
        };
        if let Some(pw) = input.password {
            let verdict = self
                .hasher
                .check_policy(&t.settings.policy(), &pw, &personal_words(&person))
                .await?;
            if !verdict.is_ok() {
                return Err(CoreError::Policy(verdict));
            }
            person.password_hash = Some(self.hasher.hash(&pw).await?);
            person.password_changed_at = Some(now);
        }
        let audit = self.audit(
            tenant,
            Some(&person.id),
            "person_created",
            actor,
            None,
            json!({"login": person.login}),
        );
        person.number = self.store.insert_person(&person, audit).await?;
        Ok(person)
    }

    /// Imports a batch of checked rows (upsert by login, see [`Store::upsert_people`]); with
    /// `dry_run` nothing is written and the counts say what would happen. Returns per row whether
    /// it was (or would be) inserted. Rows whose roles or attributes are out of bounds are refused
    /// before anything is written, with their index in `rows`.
    pub async fn import_people(
        &self,
        tenant: &TenantId,
        rows: Vec<crate::import::ImportRow>,
        dry_run: bool,
        actor: &Actor,
    ) -> Result<Vec<bool>> {
        self.tenant(tenant).await?;
        let now = self.now();
        let mut people = Vec::with_capacity(rows.len());
        for row in rows {
            check_attributes(&row.attributes, &row.roles)?;
            let has_hash = row.password_hash.is_some();
            people.push(Person {
                id: PersonId::generate(),
                number: 0,
                tenant: tenant.clone(),
                login: row.login,
                email: row.email,
                display_name: row
                    .display_name
                    .unwrap_or_else(|| DisplayName::parse("").expect("empty name is valid")),
                locale: row.locale,
                enabled: row.enabled,
                verified: row.verified,
                roles: row.roles,
                attributes: row.attributes,
                password_hash: row.password_hash.map(|h| h.into_string()),
                password_changed_at: has_hash.then_some(now),
                must_change_password: false,
                failed_logins: 0,
                locked_until: None,
                created_at: now,
                updated_at: now,
            });
        }
        if dry_run {
            let mut seen = std::collections::HashSet::new();
            let mut inserted = Vec::with_capacity(people.len());
            for p in &people {
                let known = self
                    .store
                    .find_person(tenant, &Lookup::login(&p.login))
                    .await?
                    .is_some();
                inserted.push(!known && seen.insert(p.login.as_str().to_owned()));
            }
            return Ok(inserted);
        }
        let audit = self.audit(
            tenant,
            None,
            "people_imported",
            actor,
            None,
            json!({"rows": people.len()}),
        );
        Ok(self.store.upsert_people(&people, audit).await?)
    }

    /// A person by id.
    pub async fn get_person(&self, tenant: &TenantId, id: &PersonId) -> Result<Person> {
        self.tenant(tenant).await?;
        self.store
            .get_person(tenant, id)
            .await?
            .ok_or(CoreError::NotFound("person"))
    }

    /// A person by login, email or id.
    pub async fn find_person(&self, tenant: &TenantId, lookup: &Lookup) -> Result<Person> {
        self.tenant(tenant).await?;
        self.store
            .find_person(tenant, lookup)
            .await?
            .ok_or(CoreError::NotFound("person"))
    }

    /// Applies `patch` to a person's profile.
    pub async fn update_person(
        &self,
        tenant: &TenantId,
        id: &PersonId,
        patch: PersonPatch,
        actor: &Actor,
    ) -> Result<Person> {
        let mut p = self.get_person(tenant, id).await?;
        let mut changed = Vec::new();
        if let Some(e) = patch.email {
            p.email = e;
            changed.push("email");
        }
        if let Some(n) = patch.display_name {
            p.display_name = n;
            changed.push("display_name");
        }
        if let Some(l) = patch.locale {
            p.locale = l;
            changed.push("locale");
        }
        if let Some(e) = patch.enabled {
            p.enabled = e;
            changed.push("enabled");
        }
        if let Some(v) = patch.verified {
            p.verified = v;
            changed.push("verified");
        }
        if let Some(r) = patch.roles {
            p.roles = r;
            changed.push("roles");
        }
        if let Some(a) = patch.attributes {
            p.attributes = a;
            changed.push("attributes");
        }
        check_attributes(&p.attributes, &p.roles)?;
        p.updated_at = self.now();
        let audit = self.audit(
            tenant,
            Some(id),
            "person_updated",
            actor,
            None,
            json!({"fields": changed, "enabled": p.enabled}),
        );
        self.store.update_person(&p, audit).await?;
        Ok(p)
    }

    // ---- clients -------------------------------------------------------------------------------

    /// Registers (or replaces) a client whose reset links follow `link_template`.
    pub async fn register_client(
        &self,
        tenant: &TenantId,
        name: ClientName,
        link_template: LinkTemplate,
        allowed_prefixes: Vec<String>,
        actor: &Actor,
    ) -> Result<Client> {
        self.tenant(tenant).await?;
        for p in &allowed_prefixes {
            LinkTemplate::parse(&format!("{p}{{token}}")).map_err(|_| {
                crate::types::InvalidInput::new(
                    "allowed_prefixes",
                    "each must be an absolute http(s) URL prefix",
                )
            })?;
        }
        let c = Client {
            tenant: tenant.clone(),
            name,
            link_template,
            allowed_prefixes,
            created_at: self.now(),
        };
        let audit = self.audit(
            tenant,
            None,
            "client_registered",
            actor,
            None,
            json!({"client": c.name}),
        );
        self.store.upsert_client(&c, audit).await?;
        Ok(c)
    }

    /// A tenant's clients.
    pub async fn list_clients(&self, tenant: &TenantId) -> Result<Vec<Client>> {
        self.tenant(tenant).await?;
        Ok(self.store.list_clients(tenant).await?)
    }

    /// A client by name; `UnknownClient` when not registered.
    pub async fn client(&self, tenant: &TenantId, name: &ClientName) -> Result<Client> {
        self.store
            .get_client(tenant, name)
            .await?
            .ok_or(CoreError::UnknownClient)
    }

    // ---- recovery ------------------------------------------------------------------------------

    /// Records a "forgot password" request. The same work is done whether or not the account
    /// exists: the account is resolved later by [`Service::process_reset_requests`]. Only the
    /// tenant and client are checked here, and neither depends on the account.
    pub async fn request_reset(
        &self,
        tenant: &TenantId,
        lookup: Lookup,
        client: Option<ClientName>,
        locale: Option<Locale>,
        ip: Option<String>,
    ) -> Result<()> {
        self.tenant(tenant).await?;
        if let Some(c) = &client {
            self.client(tenant, c).await?;
        }
        let req = NewResetRequest {
            tenant: tenant.clone(),
            lookup,
            client,
            locale,
            ip,
            created_at: self.now(),
        };
        self.store.insert_reset_request(&req).await?;
        Ok(())
    }

    /// Resolves up to `limit` recorded requests: issues tokens and queues their emails. Returns how
    /// many were resolved and the errors of those that could not be (they stay queued).
    /// Several instances may run this at once: each claims its own requests with a lease of
    /// [`RESET_REQUEST_LEASE_SECS`], and a request whose worker died is claimed again after it.
    pub async fn process_reset_requests(&self, limit: u32) -> Result<(usize, Vec<CoreError>)> {
        let now = self.now();
        let lease_until = now.plus_secs(RESET_REQUEST_LEASE_SECS);
        let pending = self
            .store
            .claim_reset_requests(now, lease_until, limit)
            .await?;
        let mut errors = Vec::new();
        let mut done = 0;
        for r in pending {
            match self.resolve(&r).await {
                Ok(()) => done += 1,
                Err(e) => errors.push(e),
            }
        }
        Ok((done, errors))
    }

    async fn resolve(&self, r: &ResetRequest) -> Result<()> {
        let discard = |outcome: &str| {
            Resolution::Discard(self.audit(
                &r.tenant,
                None,
                "reset_requested",
                &Actor::Anonymous,
                r.ip.as_deref(),
                json!({"by": r.lookup.kind(), "outcome": outcome}),
            ))
        };
        let tenant = match self.tenant(&r.tenant).await {
            Ok(t) => t,
            Err(CoreError::UnknownTenant) => {
                self.store
                    .resolve_reset_request(r.id, discard("no_tenant"))
                    .await?;
                return Ok(());
            }
            // A database error is not a missing tenant: the request stays queued (its lease
            // runs out and it is claimed again) instead of being discarded after a 202.
            Err(e) => return Err(e),
        };
        let person = self.store.find_person(&r.tenant, &r.lookup).await?;
        let Some(person) = person.filter(|p| p.enabled) else {
            self.store
                .resolve_reset_request(r.id, discard("no_account"))
                .await?;
            return Ok(());
        };
        let client = match &r.client {
            Some(name) => match self.store.get_client(&r.tenant, name).await? {
                Some(c) => Some(c),
                None => {
                    self.store
                        .resolve_reset_request(r.id, discard("client_removed"))
                        .await?;
                    return Ok(());
                }
            },
            None => None,
        };
        let now = self.now();
        let secret = ResetSecret::generate();
        let link = match &client {
            Some(c) => c.link_template.render(&r.tenant, secret.expose()),
            None => format!(
                "{}/reset/{}?token={}",
                self.config.public_url,
                r.tenant,
                secret.expose()
            ),
        };
        let ttl = tenant.settings.token_ttl_secs;
        let locale = self.locale_for(&person, r.locale.as_ref(), &tenant);
        let ctx = MessageContext {
            tenant: &r.tenant,
            kind: MessageKind::ResetLink,
            client: r.client.as_ref(),
            locale: &locale,
            name: person_name(&person),
            login: person.login.as_str(),
            link: Some(&link),
            expires_in_minutes: (ttl + 59) / 60,
        };
        let message = match self.renderer.render(&ctx) {
            Ok(m) => self.new_message(&person, MessageKind::ResetLink, m, now, now.plus_secs(ttl)),
            Err(e) => {
                self.store
                    .resolve_reset_request(r.id, discard("render_failed"))
                    .await?;
                return Err(CoreError::Internal(format!(
                    "rendering the reset email failed: {e}"
                )));
            }
        };
        let token = ResetToken {
            hash: secret.hash(),
            tenant: r.tenant.clone(),
            person: person.id.clone(),
            client: r.client.clone(),
            created_at: now,
            expires_at: now.plus_secs(ttl),
            used_at: None,
            revoked_at: None,
            ip: r.ip.clone(),
        };
        let audit = self.audit(
            &r.tenant,
            Some(&person.id),
            "reset_requested",
            &Actor::Anonymous,
            r.ip.as_deref(),
            json!({"by": r.lookup.kind(), "outcome": "token_issued"}),
        );
        let issue = IssueToken {
            token,
            cooldown_since: cooldown_since(now, tenant.settings.cooldown_secs),
            message,
            audit,
        };
        match self
            .store
            .resolve_reset_request(r.id, Resolution::Issue(Box::new(issue)))
            .await?
        {
            Resolved::CoolingDown => {
                let a = self.audit(
                    &r.tenant,
                    Some(&person.id),
                    "reset_requested",
                    &Actor::Anonymous,
                    r.ip.as_deref(),
                    json!({"by": r.lookup.kind(), "outcome": "cooling_down"}),
                );
                self.store.append_audit(a).await?;
            }
            Resolved::Issued | Resolved::Discarded => {}
        }
        Ok(())
    }

    fn locale_for(&self, person: &Person, requested: Option<&Locale>, tenant: &Tenant) -> Locale {
        person
            .locale
            .clone()
            .or_else(|| requested.cloned())
            .or_else(|| Locale::parse(&tenant.settings.default_locale).ok())
            .unwrap_or_else(|| Locale::parse("en").expect("en is a locale"))
    }

    fn new_message(
        &self,
        person: &Person,
        kind: MessageKind,
        r: crate::render::Rendered,
        now: Timestamp,
        deliver_by: Timestamp,
    ) -> NewMessage {
        NewMessage {
            tenant: person.tenant.clone(),
            kind,
            recipient: person.email.clone(),
            subject: r.subject,
            text: r.text,
            html: r.html,
            message_id: format!(
                "<{}@{}>",
                hex(&random_bytes::<16>()),
                self.config.message_id_domain
            ),
            created_at: now,
            deliver_by,
        }
    }

    fn password_changed_message(&self, person: &Person, tenant: &Tenant) -> Result<NewMessage> {
        let locale = self.locale_for(person, None, tenant);
        let ctx = MessageContext {
            tenant: &tenant.id,
            kind: MessageKind::PasswordChanged,
            client: None,
            locale: &locale,
            name: person_name(person),
            login: person.login.as_str(),
            link: None,
            expires_in_minutes: 0,
        };
        let r = self
            .renderer
            .render(&ctx)
            .map_err(|e| CoreError::Internal(format!("rendering failed: {e}")))?;
        let now = self.now();
        let deliver_by = now.plus_secs(self.config.notice_retry_secs);
        Ok(self.new_message(person, MessageKind::PasswordChanged, r, now, deliver_by))
    }

    /// Looks up a token and its person; `TokenGone` unless it is live.
    async fn live_token(
        &self,
        tenant: &TenantId,
        secret: &ResetSecret,
    ) -> Result<(ResetToken, Person)> {
        let presented = secret.hash();
        let token = self
            .store
            .find_token(presented)
            .await?
            .ok_or(CoreError::TokenGone)?;
        let now = self.now();
        let live = token.hash.ct_eq(&presented)
            && &token.tenant == tenant
            && token.used_at.is_none()
            && token.revoked_at.is_none()
            && token.expires_at > now;
        if !live {
            return Err(CoreError::TokenGone);
        }
        let person = self
            .store
            .get_person(tenant, &token.person)
            .await?
            .ok_or(CoreError::TokenGone)?;
        let after_change = person
            .password_changed_at
            .is_none_or(|c| token.created_at >= c);
        if !person.enabled || !after_change {
            return Err(CoreError::TokenGone);
        }
        Ok((token, person))
    }

    /// Whether a reset token can still be used, and until when.
    pub async fn inspect_token(
        &self,
        tenant: &TenantId,
        secret: &ResetSecret,
    ) -> Result<TokenInfo> {
        let t = self.tenant(tenant).await?;
        let (token, person) = self.live_token(tenant, secret).await?;
        Ok(TokenInfo {
            expires_at: token.expires_at,
            login: person.login.clone(),
            min_password_length: t.settings.min_password_length,
            person,
            issued_at: token.created_at,
        })
    }

    /// The policy's verdict on a candidate password for the person a live reset token belongs
    /// to, with their whole personal context (login, email, name), without using the token or
    /// hashing anything. The hosted page uses it to list policy violations together with its own
    /// form errors (a mistyped confirmation); `complete_reset` still decides.
    pub async fn check_reset_password(
        &self,
        tenant: &TenantId,
        secret: &ResetSecret,
        password: &Password,
    ) -> Result<Verdict> {
        let t = self.tenant(tenant).await?;
        let (_, person) = self.live_token(tenant, secret).await?;
        Ok(self
            .hasher
            .check_policy(&t.settings.policy(), password, &personal_words(&person))
            .await?)
    }

    /// Voids a reset token so it can no longer be used (Crafter Profile's token delete). Returns
    /// whether a live token was voided; an unknown, used, voided or other tenant's token changes
    /// nothing.
    pub async fn void_token(
        &self,
        tenant: &TenantId,
        secret: &ResetSecret,
        actor: &Actor,
        ip: Option<&str>,
    ) -> Result<bool> {
        self.tenant(tenant).await?;
        let hash = secret.hash();
        let Some(token) = self.store.find_token(hash).await? else {
            return Ok(false);
        };
        if &token.tenant != tenant || !token.hash.ct_eq(&hash) {
            return Ok(false);
        }
        let audit = self.audit(
            tenant,
            Some(&token.person),
            "reset_token_voided",
            actor,
            ip,
            json!({}),
        );
        Ok(self
            .store
            .void_token(tenant, hash, self.now(), audit)
            .await?)
    }

    /// A trusted caller (an API key holder) has a reset link emailed now to the person `lookup`
    /// names. The link is built from `page`, a reset page URL the caller supplies, which must
    /// match an allowed prefix of one of the tenant's registered clients (only of `only_client`
    /// when given), with the token in the query parameter `token_param`. The URL is checked
    /// first: nothing is looked up, stored or sent for a URL that is not allowed. Then the person
    /// must exist (`NotFound`), be enabled (`Disabled`) and be out of the tenant's cool-down
    /// (`CoolingDown`). The new token supersedes the person's earlier ones. Returns the person.
    #[allow(clippy::too_many_arguments)]
    pub async fn send_reset_link(
        &self,
        tenant: &TenantId,
        lookup: &Lookup,
        page: &ResetPageUrl,
        token_param: &'static str,
        only_client: Option<&ClientName>,
        actor: &Actor,
        ip: Option<&str>,
    ) -> Result<Person> {
        let t = self.tenant(tenant).await?;
        let client = self
            .store
            .list_clients(tenant)
            .await?
            .into_iter()
            .filter(|c| only_client.is_none_or(|n| &c.name == n))
            .find(|c| c.allows(page))
            .ok_or(CoreError::LinkNotAllowed)?;
        let person = self.find_person(tenant, lookup).await?;
        if !person.enabled {
            return Err(CoreError::Disabled);
        }
        let now = self.now();
        let secret = ResetSecret::generate();
        let link = page.link(token_param, secret.expose());
        let ttl = t.settings.token_ttl_secs;
        let locale = self.locale_for(&person, None, &t);
        let ctx = MessageContext {
            tenant,
            kind: MessageKind::ResetLink,
            client: Some(&client.name),
            locale: &locale,
            name: person_name(&person),
            login: person.login.as_str(),
            link: Some(&link),
            expires_in_minutes: (ttl + 59) / 60,
        };
        let rendered = self
            .renderer
            .render(&ctx)
            .map_err(|e| CoreError::Internal(format!("rendering the reset email failed: {e}")))?;
        let message = self.new_message(
            &person,
            MessageKind::ResetLink,
            rendered,
            now,
            now.plus_secs(ttl),
        );
        let token = ResetToken {
            hash: secret.hash(),
            tenant: tenant.clone(),
            person: person.id.clone(),
            client: Some(client.name.clone()),
            created_at: now,
            expires_at: now.plus_secs(ttl),
            used_at: None,
            revoked_at: None,
            ip: ip.map(str::to_owned),
        };
        let audit = self.audit(
            tenant,
            Some(&person.id),
            "reset_requested",
            actor,
            ip,
            json!({"by": lookup.kind(), "outcome": "token_issued", "client": client.name}),
        );
        let issue = IssueToken {
            token,
            cooldown_since: cooldown_since(now, t.settings.cooldown_secs),
            message,
            audit,
        };
        match self.store.issue_token(issue).await? {
            Resolved::Issued => Ok(person),
            Resolved::CoolingDown | Resolved::Discarded => Err(CoreError::CoolingDown {
                until: now.plus_secs(t.settings.cooldown_secs),
            }),
        }
    }

    /// Completes a reset: sets the new password and consumes the token (exactly once). Returns the
    /// person as now stored.
    pub async fn complete_reset(
        &self,
        tenant: &TenantId,
        secret: &ResetSecret,
        password: &Password,
        ip: Option<&str>,
    ) -> Result<Person> {
        self.complete_reset_with(tenant, secret, password, &CompleteOptions::default(), ip)
            .await
    }

    /// [`Service::complete_reset`] with a surface's own conditions: the token must belong to
    /// `options.holder`, and the password is checked with `options.mode`. The token is checked
    /// before the password, so a policy verdict only ever reaches the holder of a live token.
    pub async fn complete_reset_with(
        &self,
        tenant: &TenantId,
        secret: &ResetSecret,
        password: &Password,
        options: &CompleteOptions,
        ip: Option<&str>,
    ) -> Result<Person> {
        let t = self.tenant(tenant).await?;
        let (_, person) = self.live_token(tenant, secret).await?;
        if options.holder.as_ref().is_some_and(|h| !h.matches(&person)) {
            return Err(CoreError::TokenGone);
        }
        let policy = policy_for(&t, options.mode);
        let new_hash = self.checked_hash(&t, &policy, &person, password).await?;
        let audit = self.audit(
            tenant,
            Some(&person.id),
            "reset_completed",
            &Actor::Anonymous,
            ip,
            json!({}),
        );
        let (at, unlock) = (self.now(), t.settings.reset_unlocks);
        let change = PasswordChange {
            tenant: tenant.clone(),
            person: person.id.clone(),
            token: Some(secret.hash()),
            new_hash: new_hash.clone(),
            must_change_password: false,
            unlock,
            keep_history: t.settings.password_history,
            at,
            message: Some(self.password_changed_message(&person, &t)?),
            audit,
        };
        self.store.change_password(change).await?;
        // Committed. The answer is the person with the change applied here, not read back: a
        // database failing between the commit and a second read would otherwise turn a completed
        // reset into an error telling the client to retry, and the retry would find the token
        // used.
        Ok(Person {
            password_hash: Some(new_hash),
            password_changed_at: Some(at),
            must_change_password: false,
            failed_logins: if unlock { 0 } else { person.failed_logins },
            locked_until: if unlock { None } else { person.locked_until },
            updated_at: at,
            ..person
        })
    }

    /// Policy (and optional reuse) check, then hash.
    async fn checked_hash(
        &self,
        t: &Tenant,
        policy: &PasswordPolicy,
        person: &Person,
        password: &Password,
    ) -> Result<String> {
        let mut verdict = self
            .hasher
            .check_policy(policy, password, &personal_words(person))
            .await?;
        if verdict.is_ok() && t.settings.password_history > 0 {
            let mut previous = self
                .store
                .password_history(&t.id, &person.id, t.settings.password_history)
                .await?;
            previous.extend(person.password_hash.clone());
            for h in previous {
                if self.hasher.verify(password, &h).await?.ok {
                    verdict.violations.push(Violation {
                        code: "reused",
                        message: "Choose a password you have not used before.".into(),
                    });
                    break;
                }
            }
        }
        if !verdict.is_ok() {
            return Err(CoreError::Policy(verdict));
        }
        Ok(self.hasher.hash(password).await?)
    }

    /// The policy's verdict on a candidate password. Only the given login is used as personal
    /// context, so the answer never depends on whether an account exists.
    pub async fn check_password(
        &self,
        tenant: &TenantId,
        password: &Password,
        login: Option<&Login>,
    ) -> Result<Verdict> {
        self.check_password_with(tenant, password, login, None)
            .await
    }

    /// [`Service::check_password`] with `mode` instead of the tenant's rules when given.
    pub async fn check_password_with(
        &self,
        tenant: &TenantId,
        password: &Password,
        login: Option<&Login>,
        mode: Option<PolicyMode>,
    ) -> Result<Verdict> {
        let t = self.tenant(tenant).await?;
        let words: Vec<&str> = login.map(|l| vec![l.as_str()]).unwrap_or_default();
        Ok(self
            .hasher
            .check_policy(&policy_for(&t, mode), password, &words)
            .await?)
    }

    /// An administrator sets a password directly (the policy still applies).
    #[allow(clippy::too_many_arguments)]
    pub async fn admin_set_password(
        &self,
        tenant: &TenantId,
        id: &PersonId,
        password: &Password,
        unlock: bool,
        must_change: bool,
        actor: &Actor,
        ip: Option<&str>,
    ) -> Result<()> {
        let t = self.tenant(tenant).await?;
        let person = self.get_person(tenant, id).await?;
        let new_hash = self
            .checked_hash(&t, &t.settings.policy(), &person, password)
            .await?;
        let audit = self.audit(
            tenant,
            Some(id),
            "password_set_by_admin",
            actor,
            ip,
            json!({"unlock": unlock, "must_change_password": must_change}),
        );
        let change = PasswordChange {
            tenant: tenant.clone(),
            person: id.clone(),
            token: None,
            new_hash,
            must_change_password: must_change,
            unlock,
            keep_history: t.settings.password_history,
            at: self.now(),
            message: Some(self.password_changed_message(&person, &t)?),
            audit,
        };
        Ok(self.store.change_password(change).await?)
    }

    /// Clears a person's failed logins and lock.
    pub async fn unlock(
        &self,
        tenant: &TenantId,
        id: &PersonId,
        actor: &Actor,
        ip: Option<&str>,
    ) -> Result<()> {
        self.get_person(tenant, id).await?;
        let audit = self.audit(tenant, Some(id), "unlocked", actor, ip, json!({}));
        Ok(self.store.unlock(tenant, id, audit).await?)
    }

    /// Checks a login and password so that no answer depends on whether the login exists:
    ///
    /// 1. The attempt is reserved against the login's counter ([`Store::begin_login`], kept per
    ///    tenant and login for unknown logins too) before any password is checked, so however
    ///    many guesses arrive at once, at most `lockout_threshold` are checked per window; the
    ///    same call reads the account.
    /// 2. Exactly one Argon2 verification follows: against the person's hash when the attempt was
    ///    granted and the person may log in, against the dummy hash (same parameters) otherwise —
    ///    unknown login, disabled person, no password, or locked login.
    /// 3. A failure writes nothing more (it was counted when reserved), except an audit event
    ///    when it locked the login, known or not; a success gives the attempt back and clears
    ///    the count.
    ///
    /// So unknown, wrong, disabled and locked logins each cost one write, one read and one hash,
    /// and answer `BadCredentials`, or `Locked` once the login's count reached the threshold.
    pub async fn authenticate(
        &self,
        tenant: &TenantId,
        login: &Login,
        password: &Password,
        ip: Option<&str>,
    ) -> Result<Authenticated> {
        let t = self.tenant(tenant).await?;
        let s = &t.settings;
        let now = self.now();
        let start = self
            .store
            .begin_login(
                tenant,
                login,
                s.lockout_threshold,
                now,
                now.plus_secs(s.lockout_secs),
            )
            .await?;
        let usable = start
            .account
            .as_ref()
            .filter(|a| a.enabled)
            .and_then(|a| Some((a, a.password_hash.as_deref()?)));
        let (failures, locked_now) = match start.attempt {
            LoginAttempt::Locked { until } => {
                self.hasher.verify_dummy(password).await?;
                return Err(CoreError::Locked { until });
            }
            LoginAttempt::Granted {
                failures,
                locked_until,
            } => (failures, locked_until.is_some()),
        };
        let verified = match usable {
            Some((account, hash)) => {
                Some((account, self.hasher.verify(password, hash).await?)).filter(|(_, v)| v.ok)
            }
            None => {
                self.hasher.verify_dummy(password).await?;
                None
            }
        };
        let Some((account, verified)) = verified else {
            if locked_now {
                let a = self.audit(
                    tenant,
                    start.account.as_ref().map(|a| &a.person),
                    "locked",
                    &Actor::Anonymous,
                    ip,
                    json!({ "failures": failures }),
                );
                self.store.append_audit(a).await?;
            }
            return Err(CoreError::BadCredentials);
        };
        let rehash = if verified.needs_rehash {
            Some(self.hasher.hash(password).await?)
        } else {
            None
        };
        self.store
            .record_login_success(tenant, login, &account.person, rehash)
            .await?;
        Ok(Authenticated {
            must_change_password: account.must_change_password,
            person: self.get_person(tenant, &account.person).await?,
        })
    }

    // ---- outbox --------------------------------------------------------------------------------

    /// Outbox messages, newest first: of one tenant, or of every tenant (`None`, for operators).
    pub async fn outbox(
        &self,
        tenant: Option<&TenantId>,
        status: Option<OutboxStatus>,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>> {
        if let Some(t) = tenant {
            self.tenant(t).await?;
        }
        Ok(self
            .store
            .list_outbox(tenant, status, limit.clamp(1, 1000))
            .await?)
    }

    /// Puts a dead (or waiting) message back in the queue, due now, with a full set of attempts.
    /// Scoped to `tenant` when given; `NotFound("message")` when there is no such pending or dead
    /// message there. Audited.
    pub async fn retry_message(
        &self,
        tenant: Option<&TenantId>,
        id: i64,
        actor: &Actor,
        ip: Option<&str>,
    ) -> Result<()> {
        if let Some(t) = tenant {
            self.tenant(t).await?;
        }
        let scope = match self.store.retry_outbox(tenant, id, self.now()).await {
            Ok(t) => t,
            Err(crate::store::StoreError::NotFound) => return Err(CoreError::NotFound("message")),
            Err(e) => return Err(e.into()),
        };
        self.store
            .append_audit(self.audit(
                &scope,
                None,
                "outbox_retried",
                actor,
                ip,
                json!({ "message": id }),
            ))
            .await?;
        Ok(())
    }

    // ---- audit ---------------------------------------------------------------------------------

    /// A tenant's audit log, newest first.
    pub async fn audit_log(
        &self,
        tenant: &TenantId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>> {
        self.tenant(tenant).await?;
        Ok(self
            .store
            .list_audit(tenant, before, limit.clamp(1, 1000))
            .await?)
    }
}

/// The instant after which an earlier token means "cooling down". A cool-down of 0 means none:
/// without this, a token issued to the same person by a concurrent request a moment later than
/// `now` would still count.
fn cooldown_since(now: Timestamp, cooldown_secs: i64) -> Timestamp {
    if cooldown_secs <= 0 {
        Timestamp(i64::MAX)
    } else {
        now.plus_secs(-cooldown_secs)
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

fn person_name(p: &Person) -> &str {
    if p.display_name.as_str().is_empty() {
        p.login.as_str()
    } else {
        p.display_name.as_str()
    }
}

/// The person's own details, which the policy refuses as (parts of) a password.
fn personal_words(p: &Person) -> Vec<&str> {
    let mut words = vec![p.login.as_str(), p.email.as_str(), p.email.local_part()];
    words.extend(p.display_name.as_str().split_whitespace());
    words
}

pub(crate) fn check_attributes(attributes: &serde_json::Value, roles: &[String]) -> Result<()> {
    if !attributes.is_object() {
        return Err(crate::types::InvalidInput::new("attributes", "must be a JSON object").into());
    }
    if serde_json::to_string(attributes)
        .map(|s| s.len())
        .unwrap_or(usize::MAX)
        > 16 * 1024
    {
        return Err(crate::types::InvalidInput::new("attributes", "must be at most 16 KiB").into());
    }
    if roles.len() > 64
        || roles
            .iter()
            .any(|r| r.is_empty() || r.chars().count() > 64 || r.chars().any(char::is_control))
    {
        return Err(crate::types::InvalidInput::new(
            "roles",
            "at most 64 roles of 1 to 64 printable characters",
        )
        .into());
    }
    Ok(())
}
