//! No live secret is ever readable from the database (design §4 invariant 1), on SQLite and
//! PostgreSQL: a reset over every surface that has a request step (native API, the hosted
//! forgot page, Alfresco, Unleash, Payabli, Crafter Profile) and EmpowerID's administrative set,
//! with a real SMTP server that is down at first (so the emails wait in the outbox) and then up.
//! The database is copied as an attacker with the files or a dump would have it — while the
//! emails are pending, after they were sent, and after the server stopped; for SQLite the bytes
//! of `resetd.db`, `-wal` and `-shm` before and after `PRAGMA wal_checkpoint(TRUNCATE)` — and
//! searched for every token, password, CSRF value and API key in every form a link or a form
//! carries it in. Each emailed token then completes its reset, so the secrets searched for were
//! live.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unimplemented
)]

use crate::helpers::at_rest::{self, Snapshot};
use crate::helpers::config::TestConfig;
use crate::helpers::dialect::link_param;
use crate::helpers::page::Browser;
use crate::helpers::smtp::{self, free_port, Mime, SmtpServer};
use crate::helpers::Server;
use resetd_store::postgres::testing::{self, TestSchema};
use serde_json::json;

const OLD: &str = "violet tangerine orbit 7";
const WHO: [&str; 7] = ["nat", "pag", "alf", "unl", "pay", "cra", "emp"];
/// The people who get a reset link (EmpowerID has no request step).
const LINKED: [&str; 6] = ["nat", "pag", "alf", "unl", "pay", "cra"];

fn new_password(who: &str) -> String {
    let n: u32 = who.bytes().map(u32::from).sum();
    format!("lunar cobalt meadow {n}")
}

/// SMTP on `port` (nothing there yet), quick retries, never dead during the test.
fn base_config(port: u16) -> TestConfig {
    TestConfig::fast()
        .smtp(port, "Acme <accounts@acme.example>")
        .smtp_set("tls", "none")
        .smtp_set("timeout_secs", 5u64)
        .quick_retries(20)
}

/// What the first server set up: the admin key, the API keys and the people's ids.
struct Setup {
    admin: String,
    payabli_id: String,
    payabli_key: String,
    app_key: String,
    ids: std::collections::HashMap<&'static str, String>,
}

async fn set_up(s: &Server) -> Setup {
    let (payabli_id, payabli_key) = s.api_key("payhub").await;
    let (_, app_key) = s.api_key("apps").await;
    let mut ids = std::collections::HashMap::new();
    for who in WHO {
        let id = s
            .add_person(who, &format!("{who}@example.com"), Some(OLD))
            .await;
        ids.insert(who, id);
    }
    s.add_portal_client().await;
    Setup {
        admin: s.key.clone(),
        payabli_id,
        payabli_key,
        app_key,
        ids,
    }
}

/// Asks for a reset on every surface, and EmpowerID's set; returns the hosted page's CSRF value.
async fn request_everywhere(s: &Server, setup: &Setup) -> String {
    assert_eq!(s.request_reset("nat").await.status(), 202);

    let mut page = Browser::new(s);
    assert_eq!(page.forgot("default", "pag").await.status, 303);

    let res = s.alfresco_request_reset("alf", "share").await;
    assert_eq!(res.status(), 202);

    let res = s.unleash_password_email("unl@example.com").await;
    assert_eq!(res.status(), 200);

    let res = s
        .payabli_authreset(&setup.payabli_key, "pay@example.com")
        .await;
    assert_eq!(res.status(), 200);

    let oid = &setup.ids["cra"][..24];
    let res = s
        .crafter_reset_password(
            oid,
            &setup.app_key,
            "https://portal.example.com/account/reset",
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());

    let person = s
        .tenant("default", &setup.admin)
        .person_json(&setup.ids["emp"])
        .await;
    let res = s
        .empowerid_reset_password(
            &setup.app_key,
            &setup.app_key,
            json!({"PersonID": person["number"], "Password": new_password("emp")}),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    page.csrf()
}

/// `who`'s reset email as received.
fn mail_of<'a>(mails: &'a [smtp::Received], who: &str) -> &'a str {
    &mails
        .iter()
        .find(|m| m.meta["rcpt_tos"][0].as_str() == Some(&format!("{who}@example.com")))
        .unwrap_or_else(|| panic!("no reset email for {who}"))
        .raw
}

/// The secret of `who`'s reset email: the link's token (Alfresco: `key=`, Crafter: `tokenId=`).
fn token_of(mails: &[smtp::Received], who: &str) -> String {
    let marker = match who {
        "alf" => "key=",
        "cra" => "tokenId=",
        _ => "token=",
    };
    let token = link_param(mail_of(mails, who), marker);
    assert_eq!(token.len(), 43, "{who}: {token}");
    token
}

/// Completes each reset with its emailed token, on the surface that asked for it.
async fn complete_everywhere(
    s: &Server,
    setup: &Setup,
    tokens: &[(String, String)],
    alfresco_id: &str,
) {
    let token = |who: &str| {
        tokens
            .iter()
            .find(|(n, _)| n == &format!("{who}'s token"))
            .unwrap()
            .1
            .clone()
    };
    for who in ["nat", "pag", "pay"] {
        let res = s.complete_reset(&token(who), &new_password(who)).await;
        assert_eq!(res.status(), 204, "{who}");
    }
    let res = s
        .alfresco_reset_password("alf", &new_password("alf"), alfresco_id, &token("alf"))
        .await;
    assert_eq!(res.status(), 202);
    let res = s
        .unleash_reset_password(&token("unl"), &new_password("unl"))
        .await;
    assert_eq!(res.status(), 200);
    let res = s
        .crafter_change_password(&setup.app_key, &token("cra"), &new_password("cra"))
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    for who in WHO {
        let res = s.authenticate(who, &new_password(who)).await;
        assert_eq!(
            res.status(),
            200,
            "{who}: the emailed token did not complete the reset"
        );
    }
}

/// The whole run on a server `s` (already set up, SMTP on `port` down). `snapshot` copies what
/// is at rest now. Returns the copies taken and every secret used.
async fn run(
    s: &Server,
    setup: &Setup,
    port: u16,
    snapshot: &dyn Fn(&str) -> Vec<Snapshot>,
) -> (Vec<Snapshot>, Vec<(String, String)>) {
    let csrf = request_everywhere(s, setup).await;
    // SMTP is down: every email waits, sealed, each tried at least once.
    let pending = s
        .wait_outbox(30, "7 pending emails, each tried", |items| {
            items.len() == 7
                && items
                    .iter()
                    .all(|m| m["status"] == "pending" && m["attempts"].as_u64().unwrap_or(0) >= 1)
        })
        .await;
    let mut snapshots = snapshot("emails pending");

    // A pending message can be retried (its sealed body is still there).
    let retried = &pending[0];
    let res = s.retry_outbox(&retried["id"]).await;
    assert_eq!(res.status(), 204);

    let mta = SmtpServer::start_on(port, &Default::default());
    let mails = mta.wait_received(7, 30).await;
    let retried_sent: Vec<&smtp::Received> = mails
        .iter()
        .filter(|m| Mime::parse(&m.raw).header("message-id") == retried["message_id"].as_str())
        .collect();
    assert_eq!(
        retried_sent.len(),
        1,
        "the retried message went out once, same Message-ID"
    );
    let mut secrets: Vec<(String, String)> = LINKED
        .iter()
        .map(|who| (format!("{who}'s token"), token_of(&mails, who)))
        .collect();
    s.wait_outbox(30, "7 sent emails", |items| {
        items.iter().filter(|m| m["status"] == "sent").count() == 7
    })
    .await;
    snapshots.extend(snapshot("emails sent"));

    let alfresco_id = link_param(mail_of(&mails, "alf"), "id=");
    complete_everywhere(s, setup, &secrets, &alfresco_id).await;
    // Six "password changed" emails more (EmpowerID's went out with the first seven).
    s.wait_outbox(30, "13 sent emails", |items| {
        items.len() == 13 && items.iter().all(|m| m["status"] == "sent")
    })
    .await;
    snapshots.extend(snapshot("resets completed"));

    secrets.push(("the page's CSRF value".into(), csrf));
    secrets.push(("the admin key".into(), setup.admin.clone()));
    secrets.push(("Payabli's key".into(), setup.payabli_key.clone()));
    secrets.push(("the apps' key".into(), setup.app_key.clone()));
    secrets.push(("the old password".into(), OLD.into()));
    for who in WHO {
        secrets.push((format!("{who}'s new password"), new_password(who)));
    }
    (snapshots, secrets)
}

fn assert_nothing_found(snapshots: &[Snapshot], secrets: &[(String, String)]) {
    // The copies hold the data (recipients are stored in clear by design), so a miss means
    // the secret is not there, not that the scan read nothing.
    at_rest::assert_holds(snapshots, "nat@example.com");
    let found = at_rest::findings(snapshots, secrets);
    assert!(
        found.is_empty(),
        "{} secrets readable at rest:\n{}",
        found.len(),
        found.join("\n")
    );
}

#[tokio::test]
async fn no_secret_is_readable_in_the_sqlite_files_pending_sent_or_stopped() {
    if !smtp::available() {
        return;
    }
    let port = free_port();
    let first = Server::spawn(&base_config(port));
    let setup = set_up(&first).await;
    let s = first.restart(&base_config(port).every_dialect(&setup.payabli_id));
    let path = s.dir.path().to_owned();
    let snapshot = |label: &str| {
        // As the files are while the server runs (rows still in the WAL), then checkpointed by
        // another connection while it runs.
        let live = at_rest::sqlite_files(&path, &format!("{label}, live"));
        at_rest::checkpoint(&path);
        vec![
            live,
            at_rest::sqlite_files(&path, &format!("{label}, checkpointed")),
        ]
    };
    let (mut snapshots, secrets) = run(&s, &setup, port, &snapshot).await;
    let dir = s.stop();
    snapshots.push(at_rest::sqlite_files(dir.path(), "stopped"));
    at_rest::checkpoint(dir.path());
    snapshots.push(at_rest::sqlite_files(dir.path(), "stopped, checkpointed"));
    assert_nothing_found(&snapshots, &secrets);
}

#[tokio::test]
async fn no_secret_is_readable_in_a_pg_dump_pending_sent_or_stopped() {
    let Some(server) = testing::server_url().await else {
        return;
    };
    if !smtp::available() {
        return;
    }
    let schema = TestSchema::new(&server);
    let port = free_port();
    let url = schema.url.clone();
    let first = tokio::task::spawn_blocking({
        let (url, config) = (url.clone(), base_config(port));
        move || Server::spawn_on(&url, &config)
    })
    .await
    .unwrap();
    let setup = set_up(&first).await;
    drop(first);
    let config = base_config(port).every_dialect(&setup.payabli_id);
    let mut s = tokio::task::spawn_blocking(move || Server::spawn_on(&url, &config))
        .await
        .unwrap();
    s.key = setup.admin.clone();
    let (server_url, name) = (server.clone(), schema.name.clone());
    let snapshot = |label: &str| vec![at_rest::pg_dump(&server_url, &name, label)];
    let (mut snapshots, secrets) = run(&s, &setup, port, &snapshot).await;
    drop(s);
    snapshots.push(at_rest::pg_dump(&server, &schema.name, "stopped"));
    assert_nothing_found(&snapshots, &secrets);
}
