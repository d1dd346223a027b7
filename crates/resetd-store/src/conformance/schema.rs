//! Conformance of the [`Schema`](resetd_core::ports::Schema) port.

use std::sync::Arc;

use resetd_core::store::Store;

use super::fixtures::*;

/// `migrate` may be called again, and concurrently, without harm; `ping` answers.
pub async fn ping_and_migrate_are_idempotent(store: Arc<dyn Store>) {
    store.ping().await.expect("ping");
    let t = tenant(&*store, "mig").await;
    store.migrate().await.expect("second migrate");
    store.migrate().await.expect("third migrate");
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let s = store.clone();
            tokio::spawn(async move { s.migrate().await })
        })
        .collect();
    for r in runs {
        r.await.expect("task").expect("concurrent migrate");
    }
    assert!(
        store.get_tenant(&t).await.expect("get").is_some(),
        "data survives migrate"
    );
    store.ping().await.expect("ping");
}
