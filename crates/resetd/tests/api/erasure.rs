//! A person's erasure leaves nothing of them in the database (issue 18 item 2): after a
//! password history, a used reset link, delivered email, failed logins and audit
//! events, `DELETE /v1/{t}/people/{id}` and then the SQLite files (`resetd.db`, `-wal`, `-shm`,
//! read as bytes while the server runs, after a checkpoint and after it stopped) or a `pg_dump`
//! of the PostgreSQL schema hold neither their login, nor their email, nor their name. Another
//! person's data is still there, so the scan reads what it should.

use serde_json::{json, Value};

use crate::helpers::at_rest::{self, Snapshot};
use crate::helpers::config::TestConfig;
use crate::helpers::{cli, Server};
use resetd_store::postgres::testing::{self, TestSchema};

const LOGIN: &str = "erasable-kyu7";
const EMAIL: &str = "erasable.kyu7@example.com";
const NAME: &str = "Zebulon Quixotic";
const KEPT_EMAIL: &str = "keeps.wolfram@example.com";

/// The person's traces: a history, a used link, mail, failed logins, audit events (a live link
/// and pending mail are erased too: the store conformance checks cover them).
/// Returns their id.
async fn leave_traces(s: &Server) -> String {
    let res = s
        .create_person(json!({"login": LOGIN, "email": EMAIL, "display_name": NAME,
            "password": "amber falcon quartz 91", "attributes": {"nick": "zq"}}))
        .await;
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = s
        .set_password(&id, json!({"password": "copper meadow lantern 42"}))
        .await;
    assert_eq!(res.status(), 204);
    let token = s.reset_token(LOGIN, EMAIL, 1).await;
    assert_eq!(
        s.complete_reset(&token, "silver harbour thistle 8")
            .await
            .status(),
        204
    );
    for _ in 0..2 {
        assert_eq!(s.auth_status(LOGIN, "wrong password entirely").await, 401);
    }
    s.add_person("keeps", KEPT_EMAIL, None).await;
    s.reset_token("keeps", KEPT_EMAIL, 1).await;
    id
}

async fn erase(s: &Server, id: &str) {
    let res = s
        .http
        .delete(s.url(&format!("/v1/default/people/{id}")))
        .bearer_auth(&s.key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
}

fn assert_erased(snapshots: &[Snapshot]) {
    at_rest::assert_holds(snapshots, KEPT_EMAIL);
    let traces = [
        ("login".to_owned(), LOGIN.to_owned()),
        ("email".to_owned(), EMAIL.to_owned()),
        ("display name".to_owned(), NAME.to_owned()),
    ];
    let found = at_rest::findings(snapshots, &traces);
    assert!(
        found.is_empty(),
        "the erased person is still readable: {found:#?}"
    );
}

#[tokio::test]
async fn an_erased_person_is_gone_from_the_sqlite_files() {
    let config = TestConfig::fast();
    let first = Server::spawn(&config);
    let key = first.key.clone();
    let dir = first.stop();
    // A password history to erase too.
    let conf = dir.path().join("resetd.toml");
    cli(
        dir.path(),
        Some(&conf),
        &["tenant", "set", "default", "--password-history", "3"],
        None,
    );
    let mut s = Server::spawn_in(dir, &config);
    s.key = key;
    let id = leave_traces(&s).await;
    // The scan can see her before: it would find her if she were left.
    let before = vec![at_rest::sqlite_files(s.dir.path(), "before")];
    assert!(
        !at_rest::findings(&before, &[("email".into(), EMAIL.into())]).is_empty(),
        "the scan must see the person before the erasure"
    );

    erase(&s, &id).await;
    let mut snapshots = vec![at_rest::sqlite_files(s.dir.path(), "running")];
    at_rest::checkpoint(s.dir.path());
    snapshots.push(at_rest::sqlite_files(s.dir.path(), "running, checkpointed"));
    let dir = s.stop();
    snapshots.push(at_rest::sqlite_files(dir.path(), "stopped"));
    assert_erased(&snapshots);
}

#[tokio::test]
async fn an_erased_person_is_gone_from_the_postgres_tables() {
    let Some(server) = testing::server_url().await else {
        return;
    };
    let schema = TestSchema::new(&server);
    let url = schema.url.clone();
    let s = tokio::task::spawn_blocking(move || Server::spawn_on(&url, &TestConfig::fast()))
        .await
        .unwrap();
    let id = leave_traces(&s).await;
    let before = at_rest::pg_dump(&server, &schema.name, "before");
    assert!(!at_rest::findings(&[before], &[("email".into(), EMAIL.into())]).is_empty());

    erase(&s, &id).await;
    let snapshots = vec![at_rest::pg_dump(&server, &schema.name, "after")];
    assert_erased(&snapshots);
}
