//! Every surface that completes a reset, on an LDAP tenant: the hosted page, Alfresco, Unleash,
//! Crafter, EmpowerID's set, and Payabli's request (Payabli has no completion of its own: its
//! emailed link is completed through the native API, as the vendor's portal does). On each,
//! before the password is set: ppolicy's refusal is the surface's own error with slapd's reason,
//! and the directory down is a 503 with `Retry-After` in the surface's shape; the same link
//! still completes after both, and then the real `ldapwhoami` binds with the new password and
//! not the old one.

use serde_json::{json, Value};

use super::{credentials_section, Ldap, NEW, SHORT_FOR_LDAP};
use crate::helpers::config::{TestConfig, SHARE_PAGE, UNLEASH_UI};
use crate::helpers::dialect::{first_link, link_param};
use crate::helpers::page::Browser;
use crate::helpers::surfaces::{check_shape, forbidden_in, Shape};

const PORTAL: &str = "https://portal.example.com/account/reset";

/// Status, content type, Retry-After and body of an answer.
#[derive(Debug)]
struct Seen {
    status: u16,
    content_type: Option<String>,
    retry_after: Option<String>,
    body: String,
}

async fn seen(res: reqwest::Response) -> Seen {
    let h = res.headers().clone();
    let get = |n: &str| h.get(n).map(|v| v.to_str().unwrap().to_owned());
    Seen {
        status: res.status().as_u16(),
        content_type: get("content-type"),
        retry_after: get("retry-after"),
        body: res.text().await.unwrap(),
    }
}

/// `a` is `shape`'s error for `status`, with no internal word and no password in it.
fn assert_error(a: &Seen, shape: Shape, status: u16) {
    assert_eq!(a.status, status, "{a:?}");
    if let Err(why) = check_shape(shape, status, a.content_type.as_deref(), &a.body) {
        panic!("{shape:?} {status}: {why}: {a:?}");
    }
    assert_eq!(forbidden_in(&a.body), Vec::<&str>::new(), "{a:?}");
    for secret in [SHORT_FOR_LDAP, NEW, resetd_ldap::testing::SERVICE_PASSWORD] {
        assert!(!a.body.contains(secret), "{a:?}");
    }
}

/// ppolicy's refusal: the surface's policy error (`status`) carrying slapd's reason.
fn assert_policy_refusal(a: &Seen, shape: Shape, status: u16) {
    assert_error(a, shape, status);
    assert!(a.body.contains("too short"), "slapd's reason: {a:?}");
}

/// The directory down: 503 in the surface's shape, with a Retry-After.
fn assert_unavailable(a: &Seen, shape: Shape) {
    assert_error(a, shape, 503);
    assert!(
        a.retry_after
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|s| s >= 1),
        "{a:?}"
    );
}

impl Ldap {
    /// Stops the server and starts it again with `config` (plus the credentials section).
    fn restart(self, config: TestConfig) -> Self {
        let Ldap { slapd, s } = self;
        let s = s.restart(&config.section(&credentials_section(&slapd)));
        Ldap { slapd, s }
    }
}

#[tokio::test]
async fn the_hosted_page_sets_the_password_in_the_directory() {
    let Some(mut l) = Ldap::start(TestConfig::fast(), &[]) else {
        return;
    };
    let mut b = Browser::new(&l.s);
    let forgot = b.forgot("default", "alice").await;
    assert!(forgot.status.is_success() || forgot.status.is_redirection());
    let mails = l.s.wait_mails("reset_link", "alice@example.org", 1).await;
    let link = first_link(&mails[0]);
    let form = b.open_link(&link).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let csrf = b.csrf();
    let refused = b.submit_reset(SHORT_FOR_LDAP, SHORT_FOR_LDAP, &csrf).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(refused.body.contains("too short"), "{}", refused.body);
    assert!(!refused.body.contains(SHORT_FOR_LDAP));
    l.slapd.stop();
    let down = b.submit_reset(NEW, NEW, &csrf).await;
    assert_eq!(down.status, 503, "{}", down.body);
    assert!(down.headers.contains_key("retry-after"));
    assert!(down.body.starts_with("<!DOCTYPE html>"), "{}", down.body);
    l.slapd.restart();
    let done = b.submit_reset(NEW, NEW, &csrf).await;
    assert_eq!(done.status, 303, "{}", done.body);
    l.assert_password_is("alice", NEW);
}

#[tokio::test]
async fn alfresco_sets_the_password_in_the_directory() {
    let Some(mut l) = Ldap::start(TestConfig::fast().alfresco(SHARE_PAGE), &[]) else {
        return;
    };
    assert_eq!(
        l.s.alfresco_request_reset("alice", "share").await.status(),
        202
    );
    let mails = l.s.wait_mails("reset_link", "alice@example.org", 1).await;
    let (key, id) = (
        link_param(&mails[0], "?key="),
        link_param(&mails[0], "&id="),
    );
    let a = seen(
        l.s.alfresco_reset_password("alice", SHORT_FOR_LDAP, &id, &key)
            .await,
    )
    .await;
    assert_policy_refusal(&a, Shape::Alfresco, 400);
    l.slapd.stop();
    let a = seen(l.s.alfresco_reset_password("alice", NEW, &id, &key).await).await;
    assert_unavailable(&a, Shape::Alfresco);
    l.slapd.restart();
    let res = l.s.alfresco_reset_password("alice", NEW, &id, &key).await;
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
    l.assert_password_is("alice", NEW);
}

#[tokio::test]
async fn unleash_sets_the_password_in_the_directory() {
    let Some(mut l) = Ldap::start(TestConfig::fast().unleash(UNLEASH_UI), &[]) else {
        return;
    };
    let res = l.s.unleash_password_email("bob@example.org").await;
    assert_eq!(res.status(), 200);
    let mails = l.s.wait_mails("reset_link", "bob@example.org", 1).await;
    let token = link_param(&mails[0], "?token=");
    let a = seen(l.s.unleash_reset_password(&token, SHORT_FOR_LDAP).await).await;
    assert_policy_refusal(&a, Shape::Unleash, 400);
    l.slapd.stop();
    let a = seen(l.s.unleash_reset_password(&token, NEW).await).await;
    assert_unavailable(&a, Shape::Unleash);
    l.slapd.restart();
    let res = l.s.unleash_reset_password(&token, NEW).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    l.assert_password_is("bob", NEW);
}

#[tokio::test]
async fn a_payabli_request_is_completed_into_the_directory() {
    let Some(l) = Ldap::start(TestConfig::fast(), &[]) else {
        return;
    };
    let (key_id, key) = l.s.api_key("payabli").await;
    let l = l.restart(TestConfig::fast().payabli(&[&key_id]));
    let res = l.s.payabli_authreset(&key, "alice@example.org").await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let mails = l.s.wait_mails("reset_link", "alice@example.org", 1).await;
    let token = link_param(&mails[0], "?token=");
    assert_eq!(l.s.complete_reset(&token, NEW).await.status(), 204);
    l.assert_password_is("alice", NEW);
}

/// The shadow row of `login`, made by a request by login (the dialects that name a person by
/// id, number or ObjectId only know people resetd has already met).
async fn met(l: &Ldap, login: &str, email: &str) -> Value {
    assert_eq!(l.s.request_reset(login).await.status(), 202);
    l.s.wait_mails("reset_link", email, 1).await;
    l.shadow(login).await
}

#[tokio::test]
async fn crafter_sets_the_password_in_the_directory() {
    let config = TestConfig::fast().dialect_on("crafter", "default");
    let Some(mut l) = Ldap::start(config, &["--cooldown", "0"]) else {
        return;
    };
    l.s.add_portal_client().await;
    let row = met(&l, "alice", "alice@example.org").await;
    let oid = row["id"].as_str().unwrap()[..24].to_owned();

    let res = l.s.crafter_reset_password(&oid, &l.s.key, PORTAL).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let mails = l.s.wait_mails("reset_link", "alice@example.org", 2).await;
    let token = link_param(&mails[1], "tokenId=");
    let key = l.s.key.clone();
    let a = seen(
        l.s.crafter_change_password(&key, &token, SHORT_FOR_LDAP)
            .await,
    )
    .await;
    assert_policy_refusal(&a, Shape::Crafter, 400);
    l.slapd.stop();
    let a = seen(l.s.crafter_change_password(&key, &token, NEW).await).await;
    assert_unavailable(&a, Shape::Crafter);
    l.slapd.restart();
    let res = l.s.crafter_change_password(&key, &token, NEW).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    l.assert_password_is("alice", NEW);
}

#[tokio::test]
async fn empowerids_set_writes_the_password_into_the_directory() {
    let config = TestConfig::fast().dialect_on("empowerid", "default");
    let Some(mut l) = Ldap::start(config, &[]) else {
        return;
    };
    let (_, app) = l.s.api_key("empowerid app").await;
    let row = met(&l, "bob", "bob@example.org").await;
    let number = row["number"].as_i64().unwrap();
    let admin = l.s.key.clone();
    let set = |password: &str| json!({"PersonID": number, "Password": password});
    let a = seen(
        l.s.empowerid_reset_password(&app, &admin, set(SHORT_FOR_LDAP))
            .await,
    )
    .await;
    assert_policy_refusal(&a, Shape::EmpowerId, 400);
    l.slapd.stop();
    let a = seen(l.s.empowerid_reset_password(&app, &admin, set(NEW)).await).await;
    assert_unavailable(&a, Shape::EmpowerId);
    l.slapd.restart();
    let res = l.s.empowerid_reset_password(&app, &admin, set(NEW)).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["Success"], true, "{body}");
    l.assert_password_is("bob", NEW);
}
