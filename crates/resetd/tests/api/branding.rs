//! Issue 15 item 6: an email asked for through a dialect speaks for that dialect's product (its
//! subject, wording and sender name, in English and German), as received by a real SMTP server;
//! an operator's own template, product name and sender still win.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{json, Value};

use crate::helpers::config::TestConfig;
use crate::helpers::dialect::link_param;
use crate::helpers::smtp::{self, Mime, Options, SmtpServer};
use crate::helpers::{cli, Server};

const GOOD: &str = "violet tangerine orbit 7";
const NEW: &str = "Quiet-Harbour-Lantern-42";
const PEOPLE: &str = "/alfresco/api/-default-/public/alfresco/versions/1/people";
const CRAFTER: &str = "/crafter-profile/api/1/profile";
const EMPOWERID: &str = "/api/services/v1/PasswordPolicy/ResetPassword";
const UNLEASH_UI: &str = "https://unleash.example.com";

/// A header with its RFC 2047 encoded words (`=?utf-8?b?…?=`, `=?utf-8?q?…?=`) decoded.
fn decoded_header(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut after_word = false;
    while let Some(start) = rest.find("=?") {
        let Some((word, tail)) = rest[start + 2..].split_once("?=") else {
            break;
        };
        let mut parts = word.splitn(3, '?');
        let (_charset, enc, text) = (parts.next(), parts.next(), parts.next().unwrap_or(""));
        let bytes = match enc.map(str::to_ascii_lowercase).as_deref() {
            Some("b") => base64::engine::general_purpose::STANDARD
                .decode(text)
                .unwrap(),
            Some("q") => {
                let (raw, mut b, mut i) = (text.as_bytes(), Vec::new(), 0);
                while i < raw.len() {
                    match raw[i] {
                        b'_' => b.push(b' '),
                        b'=' if i + 2 < raw.len() => {
                            b.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
                            i += 2;
                        }
                        c => b.push(c),
                    }
                    i += 1;
                }
                b
            }
            _ => break,
        };
        // White space between two encoded words is not part of the text.
        let before = &rest[..start];
        if !(after_word && before.trim().is_empty()) {
            out.push_str(before);
        }
        out.push_str(&String::from_utf8(bytes).unwrap());
        after_word = true;
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// One received message: its From and Subject (decoded), and its text part.
#[derive(Debug, Clone)]
struct Mail {
    from: String,
    subject: String,
    text: String,
}

/// The messages received so far, by recipient (the last one to each).
fn by_recipient(smtp: &SmtpServer) -> BTreeMap<String, Vec<Mail>> {
    let mut out: BTreeMap<String, Vec<Mail>> = BTreeMap::new();
    for r in smtp.received() {
        let m = Mime::parse(&r.raw);
        let text = m
            .parts()
            .into_iter()
            .find(|p| {
                p.header("content-type")
                    .unwrap_or("")
                    .starts_with("text/plain")
            })
            .map(|p| p.decoded())
            .unwrap_or_default();
        out.entry(m.header("to").unwrap().to_owned())
            .or_default()
            .push(Mail {
                from: decoded_header(m.header("from").unwrap()),
                subject: decoded_header(m.header("subject").unwrap()),
                text,
            });
    }
    out
}

/// Waits until `n` messages reached `to` and returns the last one.
async fn mail_to(smtp: &SmtpServer, to: &str, n: usize) -> Mail {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        if let Some(m) = by_recipient(smtp).get(to).filter(|m| m.len() >= n) {
            return m[n - 1].clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no mail #{n} to {to}: {:?}",
            by_recipient(smtp).keys().collect::<Vec<_>>()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Everything the tests need from one server with all five dialects on.
struct Dialects {
    s: Server,
    smtp: SmtpServer,
    /// An admin key of `default`: Crafter's access token and Payabli's request token.
    app_key: String,
    /// An admin key of `corp`, where EmpowerID is mounted.
    corp_key: String,
    /// Each person's login → native `number` (EmpowerID's PersonID).
    numbers: BTreeMap<String, i64>,
    /// Each person's login → native id (its first 24 digits are Crafter's profile id).
    ids: BTreeMap<String, String>,
}

/// Starts resetd with every dialect on (EmpowerID on its own tenant, `corp`, so that its
/// client-less notices are its own), SMTP to a test server, and `mail` as the `[mail]`
/// section's extra lines; creates `{dialect}-{lang}` people in both tenants, German ones with
/// the locale `de`.
async fn dialects(mail: &str, templates: Option<&std::path::Path>) -> Option<Dialects> {
    if !smtp::available() {
        return None;
    }
    let smtp = SmtpServer::start(&Options::default());
    let first = Server::spawn(&TestConfig::new().fast_argon().no_limits());
    let admin = first.key.clone();
    let res = first
        .admin_post("/v1/default/api-keys", json!({"name": "apps"}))
        .await;
    assert_eq!(res.status(), 201);
    let key: Value = res.json().await.unwrap();
    let (app_id, app_key) = (
        key["id"].as_str().unwrap().to_owned(),
        key["key"].as_str().unwrap().to_owned(),
    );
    let res = first
        .admin_post(
            "/v1/default/clients",
            json!({
                "name": "portal",
                "link_template": "https://portal.example.com/reset?token={token}",
                "allowed_prefixes": ["https://portal.example.com/account/"],
            }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let data = first.dir.path().to_owned();
    cli(&data, None, &["tenant", "add", "corp"], None);
    let corp_key = cli(&data, None, &["apikey", "create", "--tenant", "corp"], None)
        .trim()
        .to_owned();
    let (mut numbers, mut ids) = (BTreeMap::new(), BTreeMap::new());
    for dialect in ["alfresco", "crafter", "empowerid", "payabli", "unleash"] {
        for lang in ["en", "de"] {
            let login = format!("{dialect}-{lang}");
            let mut body = json!({
                "login": login,
                "email": format!("{login}@example.com"),
                "display_name": format!("Person {login}"),
                "password": GOOD,
            });
            if lang == "de" {
                body["locale"] = json!("de");
            }
            let (tenant, key) = if dialect == "empowerid" {
                ("corp", corp_key.as_str())
            } else {
                ("default", admin.as_str())
            };
            let res = first
                .http
                .post(first.url(&format!("/v1/{tenant}/people")))
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
            let person: Value = res.json().await.unwrap();
            numbers.insert(login.clone(), person["number"].as_i64().unwrap());
            ids.insert(login, person["id"].as_str().unwrap().to_owned());
        }
    }
    let dir = first.stop();
    let templates = templates
        .map(|d| format!("templates_dir = \"{}\"\n", d.display()))
        .unwrap_or_default();
    let config = TestConfig::new().fast_argon().no_limits().section(&format!(
        "[mail]\ntransport = \"smtp\"\n{mail}{templates}\
         [mail.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\ntimeout_secs = 5\n\
         [mail.worker]\nbase_backoff_ms = 100\nmax_backoff_ms = 1000\nlease_secs = 20\n\
         [dialects.alfresco]\nenabled = true\ntenant = \"default\"\nnetwork = \"-default-\"\n\
         [dialects.alfresco.clients.share]\n\
         reset_password_page_url = \"https://share.example.com/share/page/reset-password\"\n\
         [dialects.unleash]\nenabled = true\ntenant = \"default\"\nunleash_url = \"{UNLEASH_UI}/\"\n\
         [dialects.payabli]\nenabled = true\ntenant = \"default\"\nrequest_tokens = [\"{app_id}\"]\n\
         link_template = \"https://payhub.example.com/reset?token={{token}}\"\n\
         [dialects.crafter]\nenabled = true\ntenant = \"default\"\n\
         [dialects.empowerid]\nenabled = true\ntenant = \"corp\"\n",
        smtp.port
    ));
    let mut s = Server::start_in(dir, config.toml());
    s.key = admin;
    Some(Dialects {
        s,
        smtp,
        app_key,
        corp_key,
        numbers,
        ids,
    })
}

impl Dialects {
    /// Asks for a reset (or, for EmpowerID, sets the password) of `login` through its dialect.
    async fn ask(&self, dialect: &str, login: &str) {
        let email = format!("{login}@example.com");
        let http = &self.s.http;
        let res = match dialect {
            "alfresco" => http
                .post(
                    self.s
                        .url(&format!("{PEOPLE}/{login}/request-password-reset")),
                )
                .json(&json!({"client": "share"})),
            "crafter" => {
                let id = &self.ids[login];
                http.post(
                    self.s
                        .url(&format!("{CRAFTER}/{}/reset_password", &id[..24])),
                )
                .form(&[
                    ("accessTokenId", self.app_key.as_str()),
                    (
                        "resetPasswordUrl",
                        "https://portal.example.com/account/reset",
                    ),
                ])
            }
            "empowerid" => http
                .post(self.s.url(EMPOWERID))
                .header("X-EmpowerID-API-Key", &self.corp_key)
                .bearer_auth(&self.corp_key)
                .json(&json!({
                    "PersonID": self.numbers[login],
                    "Password": NEW,
                    "UnlockAccounts": false,
                    "MustChangePasswordOnNextLogin": false,
                })),
            "payabli" => http
                .post(self.s.url("/api/User/authreset"))
                .header("requestToken", &self.app_key)
                .json(&json!({"email": email})),
            "unleash" => http
                .post(self.s.url("/auth/reset/password-email"))
                .json(&json!({"email": email})),
            other => panic!("{other}"),
        }
        .send()
        .await
        .unwrap();
        assert!(
            res.status().is_success(),
            "{dialect} {login}: {}",
            res.status()
        );
    }
}

#[tokio::test]
async fn each_dialects_emails_speak_for_its_product_in_english_and_german() {
    let Some(d) = dialects("", None).await else {
        return;
    };
    // (dialect, language, subject, words of the text, sender name)
    let cases = [
        (
            "alfresco",
            "en",
            "Reset your password",
            "your Alfresco account",
            "Alfresco",
        ),
        (
            "alfresco",
            "de",
            "Passwort zurücksetzen",
            "Ihres Alfresco-Kontos",
            "Alfresco",
        ),
        ("crafter", "en", "Reset Password", "Crafter Team", "Crafter"),
        (
            "crafter",
            "de",
            "Passwort zurücksetzen",
            "Ihr Crafter-Team",
            "Crafter",
        ),
        (
            "empowerid",
            "en",
            "Your EmpowerID password has been reset",
            "your EmpowerID account",
            "EmpowerID",
        ),
        (
            "empowerid",
            "de",
            "Ihr EmpowerID-Passwort wurde zurückgesetzt",
            "Ihres EmpowerID-Kontos",
            "EmpowerID",
        ),
        (
            "payabli",
            "en",
            "Reset your Payabli password",
            "your Payabli user",
            "Payabli",
        ),
        (
            "payabli",
            "de",
            "Ihr Payabli-Passwort zurücksetzen",
            "Ihres Payabli-Benutzers",
            "Payabli",
        ),
        (
            "unleash",
            "en",
            "Unleash - Reset your password",
            "your Unleash account",
            "Unleash",
        ),
        (
            "unleash",
            "de",
            "Unleash - Passwort zurücksetzen",
            "Ihres Unleash-Kontos",
            "Unleash",
        ),
    ];
    for (dialect, lang, subject, words, sender) in cases {
        let login = format!("{dialect}-{lang}");
        d.ask(dialect, &login).await;
        let m = mail_to(&d.smtp, &format!("{login}@example.com"), 1).await;
        assert_eq!(m.subject, subject, "{login}");
        assert!(m.text.contains(words), "{login}: {}", m.text);
        assert!(
            m.text.contains(&format!("Person {login}")),
            "{login}: {}",
            m.text
        );
        assert!(!m.text.contains("resetd"), "{login}: {}", m.text);
        assert_eq!(
            m.from,
            format!("{sender} <no-reply@resetd.localhost>"),
            "{login}"
        );
    }

    // The notice after a reset completed through the Unleash UI's link is Unleash's too.
    let reset = mail_to(&d.smtp, "unleash-de@example.com", 1).await;
    let token = link_param(&reset.text, "?token=");
    let res =
        d.s.http
            .post(d.s.url("/auth/reset/password"))
            .json(&json!({"token": token, "password": NEW}))
            .send()
            .await
            .unwrap();
    assert_eq!(res.status(), 200);
    let notice = mail_to(&d.smtp, "unleash-de@example.com", 2).await;
    assert_eq!(notice.subject, "Unleash - Ihr Passwort wurde geändert");
    assert_eq!(notice.from, "Unleash <no-reply@resetd.localhost>");

    // The native API's own emails keep resetd's words.
    d.s.add_person("native", "native@example.com", None).await;
    let res =
        d.s.post("/v1/default/recovery", json!({"login": "native"}))
            .await;
    assert_eq!(res.status(), 202);
    let native = mail_to(&d.smtp, "native@example.com", 1).await;
    assert_eq!(native.subject, "Reset your resetd password");
    assert_eq!(native.from, "resetd <no-reply@resetd.localhost>");
}

#[tokio::test]
async fn the_operators_template_product_name_and_sender_still_win() {
    let templates = tempfile::tempdir().unwrap();
    let dir = templates.path().join("default/unleash/en");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("reset_link.subject.txt"),
        "Your {{ product_name }} feature flags: new password",
    )
    .unwrap();
    let Some(d) = dialects(
        "from = \"Acme Accounts <accounts@acme.example>\"\nproduct_name = \"Acme\"\n",
        Some(templates.path()),
    )
    .await
    else {
        return;
    };
    d.ask("unleash", "unleash-en").await;
    let m = mail_to(&d.smtp, "unleash-en@example.com", 1).await;
    assert_eq!(m.subject, "Your Acme feature flags: new password");
    // The parts the operator did not write are still Unleash's, with the operator's name.
    assert!(m.text.contains("your Acme account"), "{}", m.text);
    assert_eq!(m.from, "\"Acme Accounts\" <accounts@acme.example>");
    // The operator's file is for English: German keeps the product's subject.
    d.ask("unleash", "unleash-de").await;
    let de = mail_to(&d.smtp, "unleash-de@example.com", 1).await;
    assert_eq!(de.subject, "Acme - Passwort zurücksetzen");
    d.ask("alfresco", "alfresco-en").await;
    let alf = mail_to(&d.smtp, "alfresco-en@example.com", 1).await;
    assert_eq!(alf.subject, "Reset your password");
    assert!(alf.text.contains("your Acme account"), "{}", alf.text);
    assert_eq!(alf.from, "\"Acme Accounts\" <accounts@acme.example>");
}

#[test]
fn encoded_words_are_decoded() {
    assert_eq!(decoded_header("plain"), "plain");
    assert_eq!(
        decoded_header("=?utf-8?b?UGFzc3dvcnQgenVyw7xja3NldHplbg==?="),
        "Passwort zurücksetzen"
    );
    assert_eq!(decoded_header("=?utf-8?q?a=C3=BC_b?= c"), "aü b c");
    assert_eq!(decoded_header("=?utf-8?b?YQ==?= =?utf-8?b?Yg==?="), "ab");
}
