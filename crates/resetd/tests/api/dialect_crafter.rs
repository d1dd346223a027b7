//! Contract tests of the Crafter Profile dialect (dialects.md section 2) against the real binary:
//! every row of its behaviour matrix with status, headers and exact body, and the full round trip
//! through the emailed link.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unimplemented
)]

use std::time::Duration;

use crate::helpers::{cli, Server, FAST_ARGON, NO_LIMITS};
use serde_json::{json, Value};

const GOOD: &str = "violet tangerine orbit 7";
const GOOD2: &str = "quiet harbour lantern 42";
const API: &str = "/crafter-profile/api/1/profile";
const PORTAL: &str = "https://portal.example.com/account/reset";

/// A server serving the Crafter dialect on tenant `acme` (created with `tenant_flags`), with a
/// client `portal` allowing `https://portal.example.com/account/`, an admin key and one person.
struct Crafter {
    s: Server,
    /// An admin API key of `acme`: the access token.
    key: String,
    /// The person's 24-hex profile id.
    oid: String,
    /// The person's full id (native API).
    id: String,
}

async fn crafter(tenant_flags: &[&str]) -> Crafter {
    crafter_with(tenant_flags, "").await
}

/// [`crafter`] with extra lines in `[dialects.crafter]`.
async fn crafter_with(tenant_flags: &[&str], extra: &str) -> Crafter {
    let s = Server::start(&format!(
        "{FAST_ARGON}{NO_LIMITS}[dialects.crafter]\nenabled = true\ntenant = \"acme\"\n{extra}"
    ));
    let data = s.dir.path().to_owned();
    let mut args = vec!["tenant", "add", "acme"];
    args.extend_from_slice(tenant_flags);
    cli(&data, None, &args, None);
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
        .json(&json!({
            "login": "john.doe",
            "email": "john.doe@example.com",
            "display_name": "John Doe",
            "password": GOOD,
            "verified": true,
            "roles": ["APP_TEST", "APP_REPORT"],
            "attributes": {"color": "blue", "size": 3, "nick": "jd"},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    Crafter {
        oid: id[..24].to_owned(),
        id,
        key,
        s,
    }
}

/// `application/x-www-form-urlencoded` encoding of `pairs`.
fn form(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                    (b as char).to_string()
                }
                b' ' => "+".into(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Status, content type, Retry-After and body text of a response.
struct Answer {
    status: u16,
    content_type: Option<String>,
    retry_after: Option<String>,
    body: String,
}

async fn answer(res: reqwest::Response) -> Answer {
    let h = res.headers().clone();
    let get = |name: &str| h.get(name).map(|v| v.to_str().unwrap().to_owned());
    Answer {
        status: res.status().as_u16(),
        content_type: get("content-type"),
        retry_after: get("retry-after"),
        body: res.text().await.unwrap(),
    }
}

impl Crafter {
    async fn post(&self, path: &str, pairs: &[(&str, &str)]) -> Answer {
        let res = self
            .s
            .http
            .post(self.s.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(pairs))
            .send()
            .await
            .unwrap();
        answer(res).await
    }

    async fn get(&self, path: &str) -> Answer {
        answer(self.s.http.get(self.s.url(path)).send().await.unwrap()).await
    }

    async fn reset(&self, oid: &str, url: &str) -> Answer {
        self.post(
            &format!("{API}/{oid}/reset_password"),
            &[("accessTokenId", &self.key), ("resetPasswordUrl", url)],
        )
        .await
    }

    async fn change(&self, token: &str, password: &str) -> Answer {
        self.post(
            &format!("{API}/change_password"),
            &[
                ("accessTokenId", &self.key),
                ("resetTokenId", token),
                ("newPassword", password),
            ],
        )
        .await
    }

    async fn token_info(&self, token: &str) -> Answer {
        self.get(&format!(
            "{API}/verification_token/{token}?accessTokenId={}",
            self.key
        ))
        .await
    }

    /// The person's createdOn and lastModified as stored.
    fn stamps(&self) -> (i64, i64) {
        let db = rusqlite::Connection::open(self.s.dir.path().join("resetd.db")).unwrap();
        db.query_row(
            "SELECT created_at, updated_at FROM person WHERE id = ?1",
            [&self.id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    }

    /// The exact Profile JSON of the person with `attributes` (as JSON text).
    fn profile(&self, attributes: &str) -> String {
        let (created, modified) = self.stamps();
        format!(
            r#"{{"username":"john.doe","email":"john.doe@example.com","verified":true,"enabled":true,"createdOn":{created},"lastModified":{modified},"tenant":"acme","roles":["APP_TEST","APP_REPORT"],"attributes":{attributes},"id":"{}"}}"#,
            self.oid
        )
    }

    /// Waits for the n-th reset email to the person and returns its `tokenId` and link.
    async fn emailed(&self, nth: usize) -> (String, String) {
        let mails = self
            .s
            .wait_mails("reset_link", "john.doe@example.com", nth)
            .await;
        link_from_mail(&mails[nth - 1])
    }
}

/// The link carrying `tokenId=` in a mail (quoted-printable soft breaks undone), and the token.
fn link_from_mail(mail: &str) -> (String, String) {
    let flat = mail
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    let at = flat
        .find("tokenId=")
        .expect("a link with tokenId= in the mail");
    let start = flat[..at].rfind("https://").expect("an absolute link");
    let token: String = flat[at + 8..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    let link = format!("{}{token}", &flat[start..at + 8]);
    (token, link)
}

fn assert_error(a: &Answer, status: u16, code: &str, message: &str) {
    assert_eq!(
        (a.status, a.content_type.as_deref()),
        (status, Some("application/json")),
        "{}",
        a.body
    );
    assert_eq!(
        a.body,
        json!({"errorCode": code, "message": message}).to_string()
    );
    // Key order: errorCode first, as Crafter's ErrorDetails.
    assert!(a.body.starts_with(r#"{"errorCode":"#), "{}", a.body);
}

const ACCESS_MISSING: &str = "Access token ID param missing from request";
const NO_ACCESS_TOKEN: &str = "No access token found for ID \"…\"";
const NO_TOKEN: &str = "No verification token found for ID \"…\"";

#[tokio::test]
async fn round_trip_request_email_change_authenticate() {
    let c = crafter(&["--cooldown", "0"]).await;
    let url = format!("{PORTAL}?lang=en");

    // Request: 200 with the profile, all attributes.
    let a = c.reset(&c.oid, &url).await;
    assert_eq!(
        (a.status, a.content_type.as_deref()),
        (200, Some("application/json"))
    );
    assert_eq!(
        a.body,
        c.profile(r#"{"color":"blue","nick":"jd","size":3}"#)
    );

    // The email carries the caller's URL verbatim, then &tokenId= (it already had a query).
    let (token, link) = c.emailed(1).await;
    assert_eq!(link, format!("{url}&tokenId={token}"));
    assert_eq!(token.len(), 43);

    // The token is stored only as its hash.
    let db = rusqlite::Connection::open(c.s.dir.path().join("resetd.db")).unwrap();
    let stored: Vec<Vec<u8>> = db
        .prepare("SELECT hash FROM reset_token")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].len(), 32);
    assert!(!String::from_utf8_lossy(&stored[0]).contains(&token));

    // Validate: the VerificationToken JSON.
    let a = c.token_info(&token).await;
    let issued: i64 = db
        .query_row("SELECT created_at FROM reset_token", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        (a.status, a.content_type.as_deref()),
        (200, Some("application/json"))
    );
    assert_eq!(
        a.body,
        format!(
            r#"{{"id":"{token}","tenant":"acme","profileId":"{}","timestamp":{issued}}}"#,
            c.oid
        )
    );
    // Suffix pattern matching.
    assert_eq!(
        c.get(&format!(
            "{API}/verification_token/{token}.json?accessTokenId={}",
            c.key
        ))
        .await
        .body,
        a.body
    );

    // A password the policy refuses: 400, and the token still works.
    let a = c.change(&token, "john").await;
    assert_error(
        &a,
        400,
        "OTHER",
        "The new password does not meet the password policy: Use at least 8 characters. \
         This password is too common or too easy to guess. \
         Do not use your login, email address or name in your password.",
    );
    assert_eq!(c.token_info(&token).await.status, 200);

    // Complete: 200 with the updated profile, attributes filtered as asked.
    let (_, before) = c.stamps();
    let a = c
        .post(
            &format!("{API}/change_password"),
            &[
                ("accessTokenId", &c.key),
                ("resetTokenId", &token),
                ("newPassword", GOOD2),
                ("attributeToReturn", "color"),
            ],
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body, c.profile(r#"{"color":"blue"}"#));
    assert!(c.stamps().1 >= before, "lastModified moves on");

    // Single use.
    assert_error(
        &c.change(&token, GOOD).await,
        404,
        "NO_SUCH_VERIFICATION_TOKEN",
        NO_TOKEN,
    );
    assert_error(
        &c.token_info(&token).await,
        404,
        "NO_SUCH_VERIFICATION_TOKEN",
        NO_TOKEN,
    );

    // Authenticate with the new password; the old one is gone; "password changed" mail sent.
    let auth = |pw: &str| {
        c.s.http
            .post(c.s.url("/v1/acme/authenticate"))
            .json(&json!({"login": "john.doe", "password": pw}))
            .send()
    };
    assert_eq!(auth(GOOD2).await.unwrap().status(), 200);
    assert_eq!(auth(GOOD).await.unwrap().status(), 401);
    c.s.wait_mails("password_changed", "john.doe@example.com", 1)
        .await;
}

#[tokio::test]
async fn access_token_rows() {
    let c = crafter(&["--cooldown", "0"]).await;
    let token = "A".repeat(43);
    let reset = format!("{API}/{}/reset_password", c.oid);
    let change = format!("{API}/change_password");
    let delete = format!("{API}/verification_token/{token}/delete");
    let get = format!("{API}/verification_token/{token}");

    // accessTokenId missing (or empty): 403 ACCESS_DENIED, before any other parameter check.
    for a in [
        c.post(&reset, &[("resetPasswordUrl", PORTAL)]).await,
        c.post(
            &reset,
            &[("accessTokenId", ""), ("resetPasswordUrl", PORTAL)],
        )
        .await,
        c.post(&change, &[]).await,
        c.post(&delete, &[]).await,
        c.get(&get).await,
    ] {
        assert_error(&a, 403, "ACCESS_DENIED", ACCESS_MISSING);
    }

    // Unknown access token, in resetd's form or Crafter's UUID form: never echoed.
    let unknown_key = format!("rsd_{}", "B".repeat(43));
    for bad in [unknown_key.as_str(), "e8f5170c-877b-416f-b70f-4b09772f8e2d"] {
        for a in [
            c.post(
                &reset,
                &[("accessTokenId", bad), ("resetPasswordUrl", PORTAL)],
            )
            .await,
            c.post(&change, &[("accessTokenId", bad)]).await,
            c.post(&delete, &[("accessTokenId", bad)]).await,
            c.get(&format!("{get}?accessTokenId={bad}")).await,
        ] {
            assert_error(&a, 403, "ACCESS_DENIED", NO_ACCESS_TOKEN);
            assert!(!a.body.contains(bad));
        }
    }

    // Access tokens never reach the log, wherever they were sent.
    let log = c.s.stderr.lock().unwrap().clone();
    assert!(
        !log.contains(&c.key) && !log.contains(&unknown_key),
        "{log}"
    );

    // A key of another tenant lacks the permission: 403 ACTION_DENIED.
    let a = c
        .post(
            &reset,
            &[("accessTokenId", &c.s.key), ("resetPasswordUrl", PORTAL)],
        )
        .await;
    assert_error(
        &a,
        403,
        "ACTION_DENIED",
        "The access token may not manage the profiles of this tenant",
    );

    // accessTokenId in the query string, the rest in the form body.
    let res =
        c.s.http
            .post(c.s.url(&format!("{reset}?accessTokenId={}", c.key)))
            .header(
                "content-type",
                "application/x-www-form-urlencoded; charset=UTF-8",
            )
            .body(form(&[("resetPasswordUrl", PORTAL)]))
            .send()
            .await
            .unwrap();
    assert_eq!(res.status(), 200);

    // Everything in the query string (Spring binds query parameters too), with the .json suffix.
    let res =
        c.s.http
            .post(c.s.url(&format!(
                "{reset}.json?accessTokenId={}&resetPasswordUrl={PORTAL}",
                c.key
            )))
            .send()
            .await
            .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.text().await.unwrap(),
        c.profile(r#"{"color":"blue","nick":"jd","size":3}"#)
    );
}

#[tokio::test]
async fn parameter_and_profile_rows() {
    let c = crafter(&["--cooldown", "0"]).await;
    let reset = format!("{API}/{}/reset_password", c.oid);
    let change = format!("{API}/change_password");

    // Missing required parameters, in Spring's wording and order.
    assert_error(
        &c.post(&reset, &[("accessTokenId", &c.key)]).await,
        400,
        "OTHER",
        "Required request parameter 'resetPasswordUrl' for method parameter type String is not present",
    );
    assert_error(
        &c.post(
            &change,
            &[("accessTokenId", &c.key), ("newPassword", GOOD2)],
        )
        .await,
        400,
        "OTHER",
        "Required request parameter 'resetTokenId' for method parameter type String is not present",
    );
    assert_error(
        &c.post(&change, &[("accessTokenId", &c.key), ("resetTokenId", "x")])
            .await,
        400,
        "OTHER",
        "Required request parameter 'newPassword' for method parameter type String is not present",
    );

    // Unknown profile (a valid ObjectId): 404 NO_SUCH_PROFILE, nothing emailed.
    let unknown = "59284659d4c650213cc2f3fc";
    assert_error(
        &c.reset(unknown, PORTAL).await,
        404,
        "NO_SUCH_PROFILE",
        "No profile with ID \"59284659d4c650213cc2f3fc\" found",
    );
    // A malformed profile id: 400 (Crafter answers 500; a bad input is not a server error).
    for bad in [
        "not-an-id",
        "59284659d4c650213cc2f3f",
        "59284659d4c650213cc2f3fcz",
    ] {
        assert_error(
            &c.reset(bad, PORTAL).await,
            400,
            "OTHER",
            "Error occurred while trying to get profile: the ID is not a 24-digit hexadecimal ObjectId",
        );
    }

    // Upper-case hex names the same profile (ObjectIds are hex of either case).
    let a = c.reset(&c.oid.to_uppercase(), PORTAL).await;
    assert_eq!(a.status, 200, "{}", a.body);

    // attributeToReturn (the code's name) and attributesToReturn (the docs' name), repeated or
    // comma-separated; unknown names are simply absent.
    for (pairs, want) in [
        (vec![("attributeToReturn", "color")], r#"{"color":"blue"}"#),
        (vec![("attributesToReturn", "size")], r#"{"size":3}"#),
        (
            vec![
                ("attributeToReturn", "color"),
                ("attributeToReturn", "nick"),
            ],
            r#"{"color":"blue","nick":"jd"}"#,
        ),
        (
            vec![("attributesToReturn", "nick,size")],
            r#"{"nick":"jd","size":3}"#,
        ),
        (vec![("attributeToReturn", "nothing")], r#"{}"#),
    ] {
        let mut all = vec![
            ("accessTokenId", c.key.as_str()),
            ("resetPasswordUrl", PORTAL),
        ];
        all.extend(pairs);
        let a = c.post(&reset, &all).await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.body, c.profile(want));
    }

    // A disabled profile gets no email: 403 DISABLED_PROFILE.
    let res =
        c.s.http
            .post(c.s.url(&format!("/v1/acme/people/{}/disable", c.id)))
            .bearer_auth(&c.key)
            .send()
            .await
            .unwrap();
    assert_eq!(res.status(), 200);
    assert_error(
        &c.reset(&c.oid, PORTAL).await,
        403,
        "DISABLED_PROFILE",
        &format!("Profile \"{}\" is disabled", c.oid),
    );
}

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
    let res =
        c.s.http
            .post(c.s.url("/v1/acme/clients"))
            .bearer_auth(&c.key)
            .json(&json!({
                "name": "app",
                "link_template": "https://app.example.com/reset?token={token}",
                "allowed_prefixes": ["https://app.example.com/"],
            }))
            .send()
            .await
            .unwrap();
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
async fn tokens_supersede_delete_and_expire() {
    let c = crafter(&["--cooldown", "0", "--token-ttl", "1"]).await;
    assert_eq!(c.reset(&c.oid, PORTAL).await.status, 200);
    let (first, _) = c.emailed(1).await;
    assert_eq!(c.reset(&c.oid, PORTAL).await.status, 200);
    let (second, _) = c.emailed(2).await;
    assert_ne!(first, second);

    // Superseded by the newer token.
    assert_error(
        &c.token_info(&first).await,
        404,
        "NO_SUCH_VERIFICATION_TOKEN",
        NO_TOKEN,
    );
    // Malformed and never-issued tokens look the same.
    for t in ["nope", &"A".repeat(43)] {
        assert_error(
            &c.token_info(t).await,
            404,
            "NO_SUCH_VERIFICATION_TOKEN",
            NO_TOKEN,
        );
        assert_error(
            &c.change(t, GOOD2).await,
            404,
            "NO_SUCH_VERIFICATION_TOKEN",
            NO_TOKEN,
        );
    }

    // Delete: 200 with an empty body, then the token is gone; deleting again is still 200.
    let delete = |t: &str| {
        let path = format!("{API}/verification_token/{t}/delete");
        let c = &c;
        async move { c.post(&path, &[("accessTokenId", c.key.as_str())]).await }
    };
    for _ in 0..2 {
        let a = delete(&second).await;
        assert_eq!((a.status, a.body.as_str(), a.content_type), (200, "", None));
    }
    assert_error(
        &c.token_info(&second).await,
        404,
        "NO_SUCH_VERIFICATION_TOKEN",
        NO_TOKEN,
    );
    assert_error(
        &c.change(&second, GOOD2).await,
        404,
        "NO_SUCH_VERIFICATION_TOKEN",
        NO_TOKEN,
    );
    assert_eq!(delete("whatever").await.status, 200);

    // Expired (the tenant's TTL is 1 s here).
    assert_eq!(c.reset(&c.oid, PORTAL).await.status, 200);
    let (third, _) = c.emailed(3).await;
    assert_eq!(c.token_info(&third).await.status, 200);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_error(
        &c.token_info(&third).await,
        404,
        "NO_SUCH_VERIFICATION_TOKEN",
        NO_TOKEN,
    );
    assert_error(
        &c.change(&third, GOOD2).await,
        404,
        "NO_SUCH_VERIFICATION_TOKEN",
        NO_TOKEN,
    );
}

#[tokio::test]
async fn cool_down_is_reported_to_the_trusted_caller() {
    let c = crafter(&[]).await; // the default 60 s cool-down
    assert_eq!(c.reset(&c.oid, PORTAL).await.status, 200);
    let a = c.reset(&c.oid, PORTAL).await;
    let secs: i64 = a.retry_after.as_deref().unwrap().parse().unwrap();
    assert!((1..=60).contains(&secs), "{secs}");
    assert_error(
        &a,
        429,
        "OTHER",
        &format!(
            "A reset password email was sent to profile \"{}\" recently; try again in {secs} seconds",
            c.oid
        ),
    );
    c.emailed(1).await;
}

#[tokio::test]
async fn wire_errors_keep_the_crafter_envelope() {
    let c = crafter(&["--cooldown", "0"]).await;
    let reset = c.s.url(&format!("{API}/{}/reset_password", c.oid));

    // A JSON body is not how Crafter takes parameters.
    let res =
        c.s.http
            .post(&reset)
            .json(&json!({"accessTokenId": c.key, "resetPasswordUrl": PORTAL}))
            .send()
            .await
            .unwrap();
    assert_error(
        &answer(res).await,
        415,
        "OTHER",
        "Content type 'application/json' not supported; send parameters as application/x-www-form-urlencoded or in the query string",
    );

    // Oversized body.
    let res =
        c.s.http
            .post(&reset)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("resetPasswordUrl={}", "x".repeat(100_000)))
            .send()
            .await
            .unwrap();
    assert_error(
        &answer(res).await,
        413,
        "OTHER",
        "The request body is larger than the server accepts",
    );

    // Unknown routes under the API and wrong methods.
    for path in [
        "/crafter-profile/api/1/nothing",
        "/crafter-profile/api/1/profile/x/y/z",
        "/crafter-profile/api/1/%FF",
    ] {
        assert_error(
            &c.get(path).await,
            404,
            "OTHER",
            "No endpoint matches this method and path",
        );
    }
    let res = c.s.http.get(&reset).send().await.unwrap();
    assert_error(
        &answer(res).await,
        405,
        "OTHER",
        "Request method 'GET' is not supported",
    );
    let res =
        c.s.http
            .delete(c.s.url(&format!("{API}/verification_token/x")))
            .send()
            .await
            .unwrap();
    assert_error(
        &answer(res).await,
        405,
        "OTHER",
        "Request method 'DELETE' is not supported",
    );

    // Path segments that are not UTF-8 once decoded are malformed values like any other.
    let a = c
        .post(
            &format!("{API}/%FF/reset_password"),
            &[("accessTokenId", &c.key), ("resetPasswordUrl", PORTAL)],
        )
        .await;
    assert_error(
        &a,
        400,
        "OTHER",
        "Error occurred while trying to get profile: the ID is not a 24-digit hexadecimal ObjectId",
    );
    let a = c
        .get(&format!(
            "{API}/verification_token/%FF?accessTokenId={}",
            c.key
        ))
        .await;
    assert_error(&a, 404, "NO_SUCH_VERIFICATION_TOKEN", NO_TOKEN);

    // A password longer than any policy allows.
    let a = c.change(&"A".repeat(43), &"x".repeat(2000)).await;
    assert_error(&a, 404, "NO_SUCH_VERIFICATION_TOKEN", NO_TOKEN);
    assert_eq!(c.reset(&c.oid, PORTAL).await.status, 200);
    let (token, _) = c.emailed(1).await;
    assert_error(
        &c.change(&token, &"x".repeat(2000)).await,
        400,
        "OTHER",
        "Invalid parameter 'newPassword': it must be at most 256 characters",
    );
}

#[tokio::test]
async fn the_dialect_is_off_unless_enabled() {
    let s = Server::start(&format!("{FAST_ARGON}{NO_LIMITS}"));
    let res = s
        .http
        .post(s.url(&format!("{API}/59284659d4c650213cc2f3fc/reset_password")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(
        res.headers()["content-type"],
        "application/problem+json",
        "the native not-found answer: nothing is mounted"
    );
}

#[tokio::test]
async fn a_configured_client_narrows_the_allowed_urls_and_base_path_moves() {
    let c = crafter_with(
        &["--cooldown", "0"],
        "client = \"portal\"\nbase_path = \"/profile-server\"\n",
    )
    .await;
    let res =
        c.s.http
            .post(c.s.url("/v1/acme/clients"))
            .bearer_auth(&c.key)
            .json(&json!({
                "name": "other",
                "link_template": "https://other.example.com/reset?token={token}",
                "allowed_prefixes": ["https://other.example.com/"],
            }))
            .send()
            .await
            .unwrap();
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
