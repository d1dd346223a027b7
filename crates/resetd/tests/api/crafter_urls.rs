//! Issue 15 item 4: Crafter's `resetPasswordUrl` in the spellings of one origin that browsers
//! treat alike (scheme and host in any letter case, the default port written out) is allowed,
//! and the emailed link carries the origin in its one spelling; everything the allow-list
//! refused before is still refused, with its message, and nothing is emailed for it.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::config::TestConfig;
use crate::helpers::dialect::{first_link, link_param};
use crate::helpers::{cli, Server};

const API: &str = "/crafter-profile/api/1/profile";
const NOT_ALLOWED: &str = "The resetPasswordUrl matches no reset page URL allowed for this tenant";
const EMAIL: &str = "ann@example.com";

/// A server with the Crafter dialect on `acme` (no cool-down), a client `portal` allowing
/// `https://portal.example.com/account/`, an admin key and one person; returns the key and the
/// person's profile id.
async fn crafter() -> (Server, String, String) {
    let s = Server::spawn(
        &TestConfig::new()
            .fast_argon()
            .no_limits()
            .section("[dialects.crafter]\nenabled = true\ntenant = \"acme\"\n"),
    );
    let data = s.dir.path().to_owned();
    cli(
        &data,
        None,
        &["tenant", "add", "acme", "--cooldown", "0"],
        None,
    );
    let key = cli(&data, None, &["apikey", "create", "--tenant", "acme"], None)
        .trim()
        .to_owned();
    let res = s
        .http
        .post(s.url("/v1/acme/clients"))
        .bearer_auth(&key)
        .json(&json!({
            "name": "portal",
            "link_template": "https://portal.example.com/account/reset?token={token}",
            "allowed_prefixes": ["https://portal.example.com/account/"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let res = s
        .http
        .post(s.url("/v1/acme/people"))
        .bearer_auth(&key)
        .json(&json!({"login": "ann", "email": EMAIL, "password": "violet tangerine orbit 7"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (s, key, id[..24].to_owned())
}

/// `reset_password` with `url`: the status and body.
async fn reset(s: &Server, key: &str, oid: &str, url: &str) -> (u16, String) {
    let res = s
        .http
        .post(s.url(&format!("{API}/{oid}/reset_password")))
        .form(&[("accessTokenId", key), ("resetPasswordUrl", url)])
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

fn crafter_error(message: &str) -> (u16, String) {
    (
        403,
        json!({"errorCode": "ACCESS_DENIED", "message": message}).to_string(),
    )
}

#[tokio::test]
async fn same_origin_spellings_are_allowed_and_linked_in_one_spelling() {
    let (s, key, oid) = crafter().await;
    for (n, (url, link)) in [
        (
            "HTTPS://PORTAL.EXAMPLE.COM/account/reset",
            "https://portal.example.com/account/reset",
        ),
        (
            "https://portal.example.com:443/account/reset",
            "https://portal.example.com/account/reset",
        ),
        (
            "Https://Portal.Example.Com:443/account/reset?from=App",
            "https://portal.example.com/account/reset?from=App",
        ),
        (
            "HTTPS://portal.EXAMPLE.com/account/#/Reset",
            "https://portal.example.com/account/#/Reset",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let (status, body) = reset(&s, &key, &oid, url).await;
        assert_eq!(status, 200, "{url}: {body}");
        let mails = s.wait_mails("reset_link", EMAIL, n + 1).await;
        let mail = &mails[n];
        let token = link_param(mail, "tokenId=");
        let sep = if link.contains('?') { '&' } else { '?' };
        assert_eq!(
            first_link(mail),
            format!("{link}{sep}tokenId={token}"),
            "{url}"
        );
    }
}

#[tokio::test]
async fn other_origins_paths_and_malformed_spellings_are_still_refused() {
    let (s, key, oid) = crafter().await;
    for url in [
        // Another port, the other scheme (in any case, with either default port).
        "https://portal.example.com:8443/account/reset",
        "https://portal.example.com:80/account/reset",
        "http://portal.example.com/account/reset",
        "HTTP://PORTAL.EXAMPLE.COM/account/reset",
        "http://portal.example.com:443/account/reset",
        // Ports a browser might read as the default, which a prefix must spell out.
        "https://portal.example.com:0443/account/reset",
        "https://portal.example.com:/account/reset",
        // The path keeps its case.
        "https://portal.example.com/ACCOUNT/reset",
        "HTTPS://PORTAL.EXAMPLE.COM/Account/reset",
        // Look-alike hosts: a trailing dot, an IDN with a Cyrillic `о` and its punycode,
        // full-width letters, a longer host in upper case.
        "https://portal.example.com./account/reset",
        "https://p\u{43E}rtal.example.com/account/reset",
        "https://xn--prtal-jye.example.com/account/reset",
        "https://\u{FF50}ortal.example.com/account/reset",
        "HTTPS://PORTAL.EXAMPLE.COM.EVIL.COM/account/reset",
        "https://portal.example.com.evil.com:443/account/reset",
        "https://evil.example.com/?https://portal.example.com/account/reset",
    ] {
        assert_eq!(
            reset(&s, &key, &oid, url).await,
            crafter_error(NOT_ALLOWED),
            "{url}"
        );
    }
    for (url, why) in [
        (
            "HTTPS://USER@PORTAL.EXAMPLE.COM/account/reset",
            "must name a host and no user information",
        ),
        (
            "https://user:pw@portal.example.com:443/account/reset",
            "must name a host and no user information",
        ),
        (
            "HTTPS://portal.example.com:443@evil.com/account/reset",
            "must name a host and no user information",
        ),
        (
            "HTTPS://PORTAL.EXAMPLE.COM/account/../admin",
            "must not contain dot segments",
        ),
        (
            "HTTPS://PORTAL.EXAMPLE.COM:443/account/%2e%2e/admin",
            "must not contain dot segments",
        ),
        (
            "HTTPS://PORTAL.EXAMPLE.COM//evil.com/",
            "must not contain empty path segments (//)",
        ),
        (
            "HTTPS://PORTAL.EXAMPLE.COM\\@evil.com/account/",
            "must not contain a backslash",
        ),
        (
            "FTP://portal.example.com/account/reset",
            "must start with https:// or http://",
        ),
        (
            "HTTPS:portal.example.com/account/reset",
            "must start with https:// or http://",
        ),
    ] {
        assert_eq!(
            reset(&s, &key, &oid, url).await,
            crafter_error(&format!("The resetPasswordUrl is not allowed: it {why}")),
            "{url}"
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(s.mails().is_empty(), "{:?}", s.mails());
}
