//! The audit port. Most events are written by the other ports, in the transaction of the change
//! they record; this one is for events with no change of their own, and for reading.

use async_trait::async_trait;

use super::StoreError;
use crate::model::{AuditEvent, NewAudit};
use crate::types::TenantId;

/// The audit log.
#[async_trait]
pub trait Audit: Send + Sync {
    /// Records an audit event on its own.
    async fn append_audit(&self, audit: NewAudit) -> Result<(), StoreError>;
    /// A tenant's audit events, newest first, with ids below `before`.
    async fn list_audit(
        &self,
        tenant: &TenantId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, StoreError>;
}
