//! Secret settings from files (issue 18 item 4): `<name>_file` in TOML, `RESETD_<NAME>_FILE` in
//! the environment, and a systemd credential named after the setting in
//! `$CREDENTIALS_DIRECTORY`. Each is started for real and shown to be used (AUTH succeeds with the
//! password, the database is where the URL says); two sources, or an unreadable file, stop the
//! start with an error naming the setting and the path and never the content.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::helpers::config::TestConfig;
use crate::helpers::smtp::{self, Options, SmtpServer};
use crate::helpers::{Server, BIN};

/// Contains "smtp-pass-Xq7", which the harness's log scan looks for in every server log.
const SMTP_PASSWORD: &str = "smtp-pass-Xq7-from-a-file";
const GOOD: &str = "violet tangerine orbit 7";

fn mail_config(port: u16) -> TestConfig {
    TestConfig::fast()
        .smtp(port, "Acme Accounts <accounts@acme.example>")
        .smtp_set("tls", "none")
        .smtp_set("username", "mailer")
        .smtp_set("timeout_secs", 5u64)
        .quick_retries(20)
}

fn write_secret(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Asks for a reset and checks the SMTP server got it with AUTH as `mailer`: the password the
/// server was started with is the one the MTA expects.
async fn mail_goes_out_with_auth(s: &Server, mta: &SmtpServer) {
    s.add_person("jane", "jane@example.com", Some(GOOD)).await;
    assert_eq!(s.request_reset("jane").await.status(), 202);
    let got = mta.wait_received(1, 15).await;
    assert_eq!(got.len(), 1, "{}", s.log());
    assert_eq!(got[0].meta["auth_user"], "mailer");
}

/// Starts `resetd serve` expecting it to refuse: its exit code and standard error.
fn refused_start(config: &str, env: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("resetd.toml");
    std::fs::write(&cfg, config).unwrap();
    let out = Command::new(BIN)
        .envs(env.iter().copied())
        .env_remove("CREDENTIALS_DIRECTORY")
        .arg("--config")
        .arg(&cfg)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("RESETD_MANAGEMENT_LISTEN", "127.0.0.1:0")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "resetd started: {out:?}");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_smtp_password_comes_from_a_toml_password_file() {
    if !smtp::available() {
        return;
    }
    let mta = SmtpServer::start(&Options {
        auth: Some("mailer:smtp-pass-Xq7-from-a-file"),
        ..Default::default()
    });
    let secrets = tempfile::tempdir().unwrap();
    let file = write_secret(
        secrets.path(),
        "smtp_password",
        &format!("{SMTP_PASSWORD}\n"),
    );
    let s = Server::spawn(&mail_config(mta.port).smtp_set("password_file", file.as_str()));
    mail_goes_out_with_auth(&s, &mta).await;
    // check-config names the file and never prints the password it holds.
    let printed = crate::helpers::cli(
        s.dir.path(),
        Some(&s.config_path()),
        &["check-config"],
        None,
    );
    assert!(printed.contains(&file), "{printed}");
    assert!(!printed.contains(SMTP_PASSWORD), "{printed}");
}

#[tokio::test]
async fn the_smtp_password_comes_from_resetd_smtp_password_file() {
    if !smtp::available() {
        return;
    }
    let mta = SmtpServer::start(&Options {
        auth: Some("mailer:smtp-pass-Xq7-from-a-file"),
        ..Default::default()
    });
    let secrets = tempfile::tempdir().unwrap();
    // CRLF, as a file written on Windows: the line ending is not part of the password.
    let file = write_secret(secrets.path(), "pw", &format!("{SMTP_PASSWORD}\r\n"));
    let s = Server::start_env(
        tempfile::tempdir().unwrap(),
        mail_config(mta.port).toml(),
        "info",
        &[("RESETD_SMTP_PASSWORD_FILE", &file)],
    );
    mail_goes_out_with_auth(&s, &mta).await;
}

#[tokio::test]
async fn the_smtp_password_comes_from_a_systemd_credential() {
    if !smtp::available() {
        return;
    }
    let mta = SmtpServer::start(&Options {
        auth: Some("mailer:smtp-pass-Xq7-from-a-file"),
        ..Default::default()
    });
    // What `LoadCredential=mail.smtp.password:/etc/resetd/smtp_password` makes.
    let credentials = tempfile::tempdir().unwrap();
    write_secret(
        credentials.path(),
        "mail.smtp.password",
        &format!("{SMTP_PASSWORD}\n"),
    );
    let s = Server::start_env(
        tempfile::tempdir().unwrap(),
        mail_config(mta.port).toml(),
        "info",
        &[(
            "CREDENTIALS_DIRECTORY",
            credentials.path().to_str().unwrap(),
        )],
    );
    mail_goes_out_with_auth(&s, &mta).await;
}

#[tokio::test]
async fn the_database_url_comes_from_a_file_in_toml_or_the_environment() {
    let elsewhere = tempfile::tempdir().unwrap();
    let secrets = tempfile::tempdir().unwrap();

    let db = elsewhere.path().join("from-toml.db");
    let file = write_secret(
        secrets.path(),
        "url-toml",
        &format!("sqlite://{}\n", db.display()),
    );
    let s = Server::spawn(&TestConfig::fast().top("database_url_file", file.as_str()));
    s.add_person("jane", "jane@example.com", Some(GOOD)).await;
    assert!(db.is_file(), "no database at {}", db.display());
    assert!(!s.dir.path().join("resetd.db").exists());
    drop(s);

    let db = elsewhere.path().join("from-env.db");
    let file = write_secret(
        secrets.path(),
        "url-env",
        &format!("sqlite://{}", db.display()),
    );
    let s = Server::start_env(
        tempfile::tempdir().unwrap(),
        TestConfig::fast().toml(),
        "info",
        &[("RESETD_DATABASE_URL_FILE", &file)],
    );
    s.add_person("jane", "jane@example.com", Some(GOOD)).await;
    assert!(db.is_file(), "no database at {}", db.display());
}

#[test]
fn a_secret_given_twice_stops_the_start_naming_the_setting_and_not_the_secret() {
    let secrets = tempfile::tempdir().unwrap();
    let file = write_secret(secrets.path(), "pw", "smtp-pass-Xq7-in-the-file\n");
    let toml = mail_config(2525)
        .smtp_set("password", "smtp-pass-Xq7-inline")
        .smtp_set("password_file", file.as_str());
    let (code, err) = refused_start(toml.toml(), &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("mail.smtp.password") && err.contains("keep one"),
        "{err}"
    );
    assert!(!err.contains("smtp-pass-Xq7"), "{err}");

    // Inline in TOML, the file from the environment: still two sources.
    let toml = TestConfig::fast().database_url("sqlite:///tmp/x.db");
    let (code, err) = refused_start(toml.toml(), &[("RESETD_DATABASE_URL_FILE", &file)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("database_url") && err.contains(&file), "{err}");
    assert!(!err.contains("smtp-pass-Xq7"), "{err}");
}

#[test]
fn an_unreadable_or_empty_secret_file_stops_the_start_naming_the_setting_and_path() {
    let secrets = tempfile::tempdir().unwrap();
    let missing = secrets.path().join("absent");
    let missing = missing.to_str().unwrap();
    let (code, err) = refused_start(
        TestConfig::fast().toml(),
        &[("RESETD_DATABASE_URL_FILE", missing)],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("database_url_file") && err.contains(missing),
        "{err}"
    );

    let empty = write_secret(secrets.path(), "empty", "\n");
    let toml = mail_config(2525).smtp_set("password_file", empty.as_str());
    let (code, err) = refused_start(toml.toml(), &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("mail.smtp.password_file") && err.contains("empty"),
        "{err}"
    );

    // A directory is not a readable secret either.
    let toml = mail_config(2525).smtp_set("password_file", secrets.path().to_str().unwrap());
    let (code, err) = refused_start(toml.toml(), &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot read"), "{err}");
}
