//! What administrators and operators manage besides people and API keys (`api_keys`): clients,
//! the outbox and the audit log.

use serde_json::json;

use crate::error::CoreError;
use crate::model::{AuditEvent, Client, LinkTemplate, OutboxMessage, OutboxStatus};
use crate::store::StoreError;
use crate::types::{ClientName, InvalidInput, TenantId};

use super::{Actor, Result, Service};

impl Service {
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
        let stored = self.store.upsert_client(&c, audit).await;
        self.forget_clients(tenant);
        stored?;
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
