//! What administrators and operators manage besides people: API keys, clients, the outbox and
//! the audit log.

use serde_json::json;

use crate::error::CoreError;
use crate::model::{ApiKey, AuditEvent, Client, LinkTemplate, OutboxMessage, OutboxStatus, Scope};
use crate::secret::{hex, random_bytes, ApiKeySecret};
use crate::store::StoreError;
use crate::types::{ClientName, InvalidInput, TenantId};

use super::{Actor, Result, Service};

impl Service {
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
            return Err(InvalidInput::new("name", "must be 1 to 128 printable characters").into());
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
                InvalidInput::new(
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
            Err(StoreError::NotFound) => return Err(CoreError::NotFound("message")),
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
