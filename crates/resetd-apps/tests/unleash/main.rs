//! The Unleash adapter against a real unleash-server 8.2.0 (`resetd_apps::testing::unleash`
//! starts it). Without the npm install or PostgreSQL each test prints SKIPPED and passes, except
//! with CI=true, where it fails (`scripts/test.sh` runs `npm ci` in tests/unleash-server).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use resetd_apps::connect_unleash;
use resetd_apps::testing::unleash::{UnleashServer, ADMIN_TOKEN};
use resetd_core::ports::{AccountQuery, ExternalAccount, ExternalCredentials, ExternalError};
use resetd_core::types::Password;

const OLD: &str = "Old-Horse-Battery-7!";
const NEW: &str = "Purple-Elephants-Juggle-42!";

fn adapter(url: &str, token: &str, extra: &str) -> Arc<dyn ExternalCredentials> {
    let table: toml::Table = format!("url = \"{url}\"\nadmin_token = \"{token}\"\n{extra}")
        .parse()
        .unwrap();
    connect_unleash(&table).unwrap()
}

fn pw(s: &str) -> Password {
    Password::parse(s).unwrap()
}

fn login(s: &str) -> AccountQuery {
    AccountQuery::Login(s.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_set_verify_and_refuse_against_unleash_8_2_0() {
    let Some(mut unleash) = UnleashServer::start().await else {
        return;
    };
    let ada_id = unleash
        .create_user("ada", "Ada.Lovelace@example.com", OLD)
        .await;
    // Prefixes of "ada" that Unleash's search also returns: the match must be exact.
    unleash.create_user("adam", "adam@example.com", OLD).await;
    let bob_id = unleash.create_user("b", "bob@example.com", OLD).await;
    let u = adapter(&unleash.url, ADMIN_TOKEN, "");
    assert!(u.capabilities().holds_people && u.capabilities().verifies_passwords);

    // find_account by login, by email (Unleash keeps emails in lower case), by an email used as
    // a login (as Unleash's sign-in does), and a one-character login (past the search's minimum).
    let ada = u
        .find_account(&login("ada"))
        .await
        .unwrap()
        .expect("ada by login");
    let expected = ExternalAccount {
        stable_id: ada_id.to_string(),
        locator: ada_id.to_string(),
        login: "ada".into(),
        email: Some("ada.lovelace@example.com".into()),
        display_name: Some("Test Person".into()),
        enabled: true,
    };
    assert_eq!(ada, expected);
    let by_email = AccountQuery::Email("ADA.Lovelace@example.com".into());
    assert_eq!(
        u.find_account(&by_email).await.unwrap(),
        Some(expected.clone())
    );
    assert_eq!(
        u.find_account(&login("ada.lovelace@example.com"))
            .await
            .unwrap(),
        Some(expected)
    );
    let bob = u
        .find_account(&login("b"))
        .await
        .unwrap()
        .expect("a one-letter login");
    assert_eq!(bob.stable_id, bob_id.to_string());
    for nobody in [
        login("ad"),
        login("Ada"),
        login("nobody"),
        AccountQuery::Email("ada@example.com".into()),
    ] {
        assert_eq!(u.find_account(&nobody).await.unwrap(), None, "{nobody:?}");
    }

    // verify_password through Unleash's own sign-in.
    assert!(u.verify_password(&ada, &pw(OLD)).await.unwrap());
    assert!(!u.verify_password(&ada, &pw(NEW)).await.unwrap());

    // set_password, then Unleash's own login: the new password 200, the old one 401.
    u.set_password(&ada, &pw(NEW), "chg_1").await.unwrap();
    assert_eq!(unleash.login("ada", NEW).await, 200);
    assert_eq!(unleash.login("ada", OLD).await, 401);
    assert_eq!(unleash.login("ada.lovelace@example.com", NEW).await, 200);
    assert!(u.verify_password(&ada, &pw(NEW)).await.unwrap());
    assert!(!u.verify_password(&ada, &pw(OLD)).await.unwrap());
    // The same change again (the core's retry after an unknown outcome) is harmless.
    u.set_password(&ada, &pw(NEW), "chg_1").await.unwrap();
    assert_eq!(unleash.login("ada", NEW).await, 200);

    // Unleash's password rules refuse a weak one, with Unleash's reason; nothing changes.
    let weak = u
        .set_password(&ada, &pw("short"), "chg_2")
        .await
        .unwrap_err();
    assert_eq!(
        weak,
        ExternalError::Refused("The password must be at least 10 characters long.".into())
    );
    assert_eq!(unleash.login("ada", NEW).await, 200);

    // An account deleted in Unleash is gone.
    let gone = ExternalAccount {
        locator: "999999".into(),
        stable_id: "999999".into(),
        ..ada.clone()
    };
    assert_eq!(
        u.set_password(&gone, &pw(NEW), "chg_3").await,
        Err(ExternalError::NoAccount)
    );

    // A wrong admin token is a configuration failure that names the key, not the token.
    let bad = adapter(&unleash.url, "*:*.not-the-token", "");
    let e = bad.find_account(&login("ada")).await.unwrap_err();
    assert!(
        matches!(&e, ExternalError::Failed(m) if m.contains("admin_token") && !m.contains("not-the-token")),
        "{e:?}"
    );

    // Unleash stopped: unavailable, for every call, and the password in no error text.
    unleash.stop();
    let down = [
        u.find_account(&login("ada")).await.unwrap_err(),
        u.set_password(&ada, &pw(NEW), "chg_4").await.unwrap_err(),
        u.verify_password(&ada, &pw(NEW)).await.unwrap_err(),
    ];
    for e in down {
        assert!(matches!(&e, ExternalError::Unavailable(_)), "{e:?}");
        assert!(
            !e.to_string().contains(NEW) && !e.to_string().contains(ADMIN_TOKEN),
            "{e}"
        );
    }
}

/// A server that reads requests and answers only `GET`s of one user (200), never anything else:
/// past the bound, a write's outcome is unknown and a read is unavailable. Nothing hangs.
#[tokio::test]
async fn a_silent_server_times_out_within_the_bound() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                if buf[..n].starts_with(b"GET /api/admin/user-admin/7 ") {
                    let ok = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                              content-length: 8\r\nconnection: close\r\n\r\n{\"id\":7}";
                    let _ = socket.write_all(ok.as_bytes()).await;
                } else {
                    // Hold the connection open and say nothing.
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
            });
        }
    });
    let u = adapter(&url, ADMIN_TOKEN, "timeout_secs = 1");
    let account = ExternalAccount {
        stable_id: "7".into(),
        locator: "7".into(),
        login: "ada".into(),
        email: None,
        display_name: None,
        enabled: true,
    };
    let find = tokio::time::timeout(Duration::from_secs(30), u.find_account(&login("ada")))
        .await
        .expect("bounded");
    assert!(
        matches!(find, Err(ExternalError::Unavailable(_))),
        "{find:?}"
    );
    let verify = tokio::time::timeout(
        Duration::from_secs(30),
        u.verify_password(&account, &pw(NEW)),
    )
    .await
    .expect("bounded");
    assert!(
        matches!(verify, Err(ExternalError::Unavailable(_))),
        "{verify:?}"
    );
    // The account exists; the change-password request went out and got no answer.
    let set = tokio::time::timeout(
        Duration::from_secs(30),
        u.set_password(&account, &pw(NEW), "chg"),
    )
    .await
    .expect("bounded");
    assert!(
        matches!(set, Err(ExternalError::Indeterminate(_))),
        "{set:?}"
    );
}
