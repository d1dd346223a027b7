//! The schema port: used at start-up (`resetd serve`, `resetd migrate`) and by `/readyz`.

use async_trait::async_trait;

use super::StoreError;

/// The database's schema and liveness.
#[async_trait]
pub trait Schema: Send + Sync {
    /// Creates or upgrades the schema; safe to call from several processes at once.
    async fn migrate(&self) -> Result<(), StoreError>;
    /// Whether the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
}
