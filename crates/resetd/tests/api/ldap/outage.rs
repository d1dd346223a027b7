//! The directory down: completing answers 503 + `Retry-After` (problem+json) and the same token
//! completes once slapd is back; a request made while it is down stays queued and is resolved
//! after; `authenticate` is 503 and does not count against the lockout.

use std::time::Duration;

use serde_json::Value;

use super::{Ldap, NEW};
use crate::helpers::config::TestConfig;

/// The Retry-After of `res` in seconds (panics when it is missing or not a number).
fn retry_after(res: &reqwest::Response) -> u64 {
    res.headers()
        .get("retry-after")
        .expect("a Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in seconds")
}

#[tokio::test]
async fn directory_down_is_503_and_the_same_token_completes_after_it_is_back() {
    let Some(mut l) = Ldap::start(TestConfig::fast(), &["--lockout-threshold", "2"]) else {
        return;
    };
    let token = l.token("alice", "alice@example.org", 1).await;
    l.slapd.stop();

    let res = l.s.complete_reset(&token, NEW).await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert!(retry_after(&res) >= 1);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("urn:resetd:problem:")),
        "{body}"
    );
    assert_eq!(body["status"], 503);
    let text = body.to_string();
    assert!(
        !text.contains(resetd_ldap::testing::SERVICE_PASSWORD) && !text.contains("ldap3"),
        "{body}"
    );
    // The token was released, not spent.
    assert_eq!(l.s.token_info(&token).await.status(), 200);

    // A login while the directory is down is 503, and is given back: more than the threshold
    // of them does not lock alice out.
    for _ in 0..3 {
        let res = l.s.authenticate("alice", NEW).await;
        assert_eq!(res.status(), 503);
        assert!(retry_after(&res) >= 1);
    }

    l.slapd.restart();
    let done = l.s.complete_reset(&token, NEW).await;
    assert_eq!(done.status(), 204, "{}", done.text().await.unwrap());
    l.assert_password_is("alice", NEW);
    assert_eq!(l.s.auth_status("alice", NEW).await, 200, "not locked out");
}

#[tokio::test]
async fn a_request_made_while_the_directory_is_down_is_resolved_once_it_is_back() {
    let config = TestConfig::fast().quick_retries(2);
    let Some(mut l) = Ldap::start(config, &[]) else {
        return;
    };
    // The answer while the directory holds the people, for the comparison below.
    let up = l.s.request_reset("nobody-here").await;
    let up = (up.status(), up.text().await.unwrap());

    l.slapd.stop();
    let down = l.s.request_reset("bob").await;
    assert_eq!((down.status(), down.text().await.unwrap()), up);
    // Several leases pass with the directory down: no link, and the request is not given up.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        crate::helpers::dialect::reset_mails_to(&l.s, "bob@example.org"),
        0
    );

    l.slapd.restart();
    let mails = l.s.wait_mails("reset_link", "bob@example.org", 1).await;
    let token = crate::helpers::token_from_mail(&mails[0]);
    assert_eq!(l.s.complete_reset(&token, NEW).await.status(), 204);
    l.assert_password_is("bob", NEW);
}
