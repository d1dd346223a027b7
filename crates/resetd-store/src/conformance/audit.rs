//! Conformance of the [`Audit`](resetd_core::ports::Audit) port.

use std::sync::Arc;

use resetd_core::store::Store;
use resetd_core::types::PersonId;
use serde_json::json;

use super::fixtures::*;

/// Audit events: per tenant, newest first, paginated by id.
pub async fn audit_listing(store: Arc<dyn Store>) {
    let s = &*store;
    let a = tid("acme");
    let b = tid("beta");
    let pid = PersonId::generate();
    for i in 0..25 {
        let mut e = audit(&a, Some(&pid), "event", at(i));
        e.detail = json!({"i": i});
        s.append_audit(e).await.unwrap();
        if i % 10 == 0 {
            s.append_audit(audit(&b, None, "other", at(i)))
                .await
                .unwrap();
        }
    }
    let page1 = s.list_audit(&a, None, 10).await.unwrap();
    assert_eq!(page1.len(), 10);
    assert!(page1.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    assert_eq!(page1[0].detail, json!({"i": 24}));
    let e = &page1[0];
    assert_eq!(
        (
            e.person.as_deref(),
            e.kind.as_str(),
            e.actor.as_str(),
            e.ip.as_deref(),
            e.at
        ),
        (
            Some(pid.as_str()),
            "event",
            "system",
            Some("192.0.2.1"),
            at(24)
        )
    );

    let page2 = s.list_audit(&a, Some(page1[9].id), 10).await.unwrap();
    assert_eq!(page2.len(), 10);
    assert_eq!(page2[0].detail, json!({"i": 14}));
    let page3 = s.list_audit(&a, Some(page2[9].id), 10).await.unwrap();
    assert_eq!(
        page3
            .iter()
            .map(|e| e.detail["i"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        vec![4, 3, 2, 1, 0]
    );
    assert_eq!(
        s.list_audit(&a, Some(page3[4].id), 10).await.unwrap(),
        vec![]
    );

    let other = s.list_audit(&b, None, 100).await.unwrap();
    assert_eq!(other.len(), 3);
    assert!(other
        .iter()
        .all(|e| e.kind == "other" && e.person.is_none()));
    assert_eq!(
        s.list_audit(&tid("nobody"), None, 100).await.unwrap(),
        vec![]
    );
}
