//! The caller-supplied `resetPasswordUrl` (design §4 invariant 4): only URLs under a prefix a
//! registered client allows are emailed, whatever their spelling.

use super::*;

#[tokio::test]
async fn reset_password_url_must_match_an_allowed_prefix() {
    let c = crafter(&["--cooldown", "0"]).await;
    let refused = "The resetPasswordUrl matches no reset page URL allowed for this tenant";
    for url in [
        "https://evil.example.com/account/reset",
        "https://portal.example.com/other",
        "https://portal.example.com/account", // stops short of the prefix
        "https://portal.example.com.evil.com/account/reset",
        "http://portal.example.com/account/reset", // another scheme
    ] {
        assert_error(&c.reset(&c.oid, url).await, 403, "ACCESS_DENIED", refused);
    }
    for (url, why) in [
        ("javascript:alert(1)", "must start with https:// or http://"),
        (
            "https://portal.example.com/account/../admin",
            "must not contain dot segments",
        ),
        (
            "https://user@portal.example.com/account/reset",
            "must name a host and no user information",
        ),
    ] {
        assert_error(
            &c.reset(&c.oid, url).await,
            403,
            "ACCESS_DENIED",
            &format!("The resetPasswordUrl is not allowed: it {why}"),
        );
    }
    // The unknown profile is not even looked up when the URL is refused.
    assert_error(
        &c.reset("59284659d4c650213cc2f3fc", "https://evil.example.com/")
            .await,
        403,
        "ACCESS_DENIED",
        refused,
    );

    // Nothing was emailed for the refusals: the only mail is the allowed request's.
    let a = c.reset(&c.oid, PORTAL).await;
    assert_eq!(a.status, 200);
    let (token, link) = c.emailed(1).await;
    assert_eq!(link, format!("{PORTAL}?tokenId={token}"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(c.s.mails().len(), 1, "{:?}", c.s.mails());
}

/// Issue 13 item 9: paths that a Java server (or a proxy decoding again) resolves outside the
/// allowed prefix are refused, whatever their spelling; the allowed spellings still work.
#[tokio::test]
async fn reset_password_url_refuses_every_spelling_of_a_path_outside_its_prefix() {
    let c = crafter(&["--cooldown", "0"]).await;
    // A second client whose prefix is a bare origin, as in the issue's `//evil.com/` example.
    let res = c
        .acme()
        .create_client(json!({
            "name": "app",
            "link_template": "https://app.example.com/reset?token={token}",
            "allowed_prefixes": ["https://app.example.com/"],
        }))
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    for (url, why) in [
        (
            "https://portal.example.com/account/reset/..;/admin",
            "must not contain dot segments",
        ),
        (
            "https://portal.example.com/account/..;jsessionid=1/admin",
            "must not contain dot segments",
        ),
        (
            "https://portal.example.com/account/reset/%252e%252e/x",
            "must not contain dot segments",
        ),
        (
            "https://portal.example.com/account/reset/%25252e%25252E/x",
            "must not contain dot segments",
        ),
        (
            "https://portal.example.com/account/reset/\u{2025}/x",
            "must not contain characters that look like dots",
        ),
        (
            "https://portal.example.com/account/reset/%E2%80%A5/x",
            "must not contain characters that look like dots",
        ),
        (
            "https://portal.example.com/account/\u{FF0E}\u{FF0E}/admin",
            "must not contain characters that look like dots",
        ),
        (
            "https://app.example.com//evil.com/",
            "must not contain empty path segments (//)",
        ),
        (
            "https://portal.example.com/account//evil.com/",
            "must not contain empty path segments (//)",
        ),
        (
            "https://portal.example.com/account/%2f%2fevil.com/",
            "must not contain empty path segments (//)",
        ),
        (
            "https://portal.example.com/account/reset%255c..%255cadmin",
            "must not contain a backslash",
        ),
        // Refused before, and still.
        (
            "https://portal.example.com/account/../admin",
            "must not contain dot segments",
        ),
        (
            "https://portal.example.com/account/%2E%2E/admin",
            "must not contain dot segments",
        ),
        (
            "https://portal.example.com\\@evil.com/account/",
            "must not contain a backslash",
        ),
    ] {
        assert_error(
            &c.reset(&c.oid, url).await,
            403,
            "ACCESS_DENIED",
            &format!("The resetPasswordUrl is not allowed: it {why}"),
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(c.s.mails().is_empty(), "{:?}", c.s.mails());
    // Allowed spellings: a trailing slash, dots inside names, path parameters, the bare origin.
    for (n, url) in [
        format!("{PORTAL}/"),
        "https://portal.example.com/account/v1.2/reset.html".into(),
        "https://portal.example.com/account/reset;jsessionid=abc".into(),
        "https://app.example.com/".into(),
    ]
    .iter()
    .enumerate()
    {
        let a = c.reset(&c.oid, url).await;
        assert_eq!(a.status, 200, "{url}: {}", a.body);
        let (token, link) = c.emailed(n + 1).await;
        assert_eq!(link, format!("{url}?tokenId={token}"));
    }
}

#[tokio::test]
async fn a_configured_client_narrows_the_allowed_urls_and_base_path_moves() {
    let c = crafter_with(
        &["--cooldown", "0"],
        config().dialect("crafter", "client", "portal").dialect(
            "crafter",
            "base_path",
            "/profile-server",
        ),
    )
    .await;
    let res = c
        .acme()
        .create_client(json!({
            "name": "other",
            "link_template": "https://other.example.com/reset?token={token}",
            "allowed_prefixes": ["https://other.example.com/"],
        }))
        .await;
    assert_eq!(res.status(), 201);
    let reset = format!("/profile-server/api/1/profile/{}/reset_password", c.oid);
    let a = c
        .post(
            &reset,
            &[
                ("accessTokenId", &c.key),
                ("resetPasswordUrl", "https://other.example.com/reset"),
            ],
        )
        .await;
    assert_error(
        &a,
        403,
        "ACCESS_DENIED",
        "The resetPasswordUrl matches no reset page URL allowed for this tenant",
    );
    let a = c
        .post(
            &reset,
            &[("accessTokenId", &c.key), ("resetPasswordUrl", PORTAL)],
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    // Nothing answers at the default base path now.
    assert_eq!(c.reset(&c.oid, PORTAL).await.status, 404);
}
