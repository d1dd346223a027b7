//! Contract tests of the Crafter Profile dialect (dialects.md section 2) against the real binary:
//! every row of its behaviour matrix with status, headers and exact body, and the full round trip
//! through the emailed link. This module is their harness; the tests are in its submodules.

use std::time::Duration;

use crate::helpers::config::TestConfig;
use crate::helpers::{cli, Server};
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
    crafter_with(tenant_flags, config()).await
}

/// The Crafter dialect on tenant `acme`.
fn config() -> TestConfig {
    TestConfig::fast().dialect_on("crafter", "acme")
}

/// [`crafter`] with the server's configuration `config`.
async fn crafter_with(tenant_flags: &[&str], config: TestConfig) -> Crafter {
    let s = Server::spawn(&config);
    let data = s.dir.path().to_owned();
    let mut args = vec!["tenant", "add", "acme"];
    args.extend_from_slice(tenant_flags);
    cli(&data, None, &args, None);
    let key = cli(&data, None, &["apikey", "create", "--tenant", "acme"], None)
        .trim()
        .to_owned();
    let acme = s.tenant("acme", &key);
    let res = acme
        .create_client(json!({
            "name": "portal",
            "link_template": "https://portal.example.com/account/reset?token={token}",
            "allowed_prefixes": ["https://portal.example.com/account/"],
        }))
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let res = acme
        .create_person(json!({
            "login": "john.doe",
            "email": "john.doe@example.com",
            "display_name": "John Doe",
            "password": GOOD,
            "verified": true,
            "roles": ["APP_TEST", "APP_REPORT"],
            "attributes": {"color": "blue", "size": 3, "nick": "jd"},
        }))
        .await;
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
    /// The native API on `acme`, with the admin key.
    fn acme(&self) -> crate::helpers::app::Tenant<'_> {
        self.s.tenant("acme", &self.key)
    }

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

mod flow;
mod rows;
mod urls;
mod wire;
