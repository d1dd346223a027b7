//! Forgetting what is no longer needed, by the retention policy (see [`RetentionPolicy`]).

use crate::ports::{Purged, RetentionPolicy};

use super::{Result, Service};

impl Service {
    /// Deletes at most `batch` expired rows of each kind as of now; the caller repeats while a
    /// kind came back full.
    pub async fn purge_expired(&self, policy: &RetentionPolicy, batch: u32) -> Result<Purged> {
        Ok(self.store.purge(self.now(), policy, batch).await?)
    }
}
