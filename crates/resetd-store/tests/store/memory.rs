//! The core's in-memory store (`resetd_core::testing::MemoryStore`, the store of the use cases' unit
//! tests) against the same conformance checks as the SQL backends, so that the rules the unit tests
//! rely on are the rules the real stores keep.

use std::sync::Arc;

use resetd_core::store::Store;
use resetd_core::testing::MemoryStore;

async fn fresh() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new())
}

// It has no outbox key and no disk, so bodies stay as queued; every other assertion is the same.
resetd_store::conformance_tests!(fresh, bodies_at_rest: Plain);
