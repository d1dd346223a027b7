//! Issue 15 item 7: a repeat request within the per-account cool-down sends nothing and is
//! answered exactly like the first (no enumeration), and the hosted page's confirmation tells
//! the person that a second email can take up to the tenant's cool-down.

use crate::helpers::config::TestConfig;
use crate::helpers::dialect::{post_json, reset_mails_to, settle};
use crate::helpers::{cli, Server};

#[tokio::test]
async fn an_unleash_repeat_within_the_cool_down_is_answered_alike_and_sends_nothing() {
    let s = Server::spawn(&TestConfig::new().fast_argon().no_limits().section(
        "[dialects.unleash]\nenabled = true\ntenant = \"default\"\nunleash_url = \"https://unleash.example.com\"\n",
    ));
    s.add_person("ann", "ann@example.com", None).await;
    let body = r#"{"email":"ann@example.com"}"#;
    let first = post_json(&s, "/auth/reset/password-email", body).await;
    s.wait_mails("reset_link", "ann@example.com", 1).await;
    let again = post_json(&s, "/auth/reset/password-email", body).await;
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first, again);
    settle(&s).await;
    assert_eq!(reset_mails_to(&s, "ann@example.com"), 1);
}

#[tokio::test]
async fn the_hosted_confirmation_names_the_tenants_cool_down() {
    let s = Server::spawn(&TestConfig::new().fast_argon().no_limits());
    let data = s.dir.path().to_owned();
    cli(
        &data,
        None,
        &["tenant", "add", "slow", "--cooldown", "300"],
        None,
    );
    cli(
        &data,
        None,
        &["tenant", "add", "none", "--cooldown", "0"],
        None,
    );
    let page = |path: &str| {
        let url = s.url(path);
        let http = s.http.clone();
        async move {
            let res = http.get(url).send().await.unwrap();
            assert_eq!(res.status(), 200);
            res.text().await.unwrap()
        }
    };
    let en = page("/forgot/default/sent").await;
    assert!(
        en.contains(
            "We send at most one email per account every 60 seconds, so a second email can take \
             up to 60 seconds"
        ),
        "{en}"
    );
    let slow = page("/forgot/slow/sent").await;
    assert!(slow.contains("can take up to 5 minutes"), "{slow}");
    let de = page("/forgot/slow/sent?locale=de").await;
    assert!(
        de.contains("höchstens eine E-Mail pro Konto alle 5 Minuten"),
        "{de}"
    );
    let none = page("/forgot/none/sent").await;
    assert!(!none.contains("at most one email"), "{none}");
}
