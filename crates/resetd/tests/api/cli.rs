//! CLI parity (issue 18 item 3): the admin operations of the native API as commands over the same
//! configuration and database, lists in `--json` (one object per line), errors as one line and a
//! non-zero exit, `resetd --help` in groups, and `person import` before the first `serve` saying
//! how to create the tenant.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::helpers::{cli, BIN, FAST_ARGON};

/// Runs the CLI and returns (exit code, stdout, stderr), whatever the outcome.
fn run(dir: &Path, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let conf = dir.join("resetd.toml");
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .arg("--config")
        .arg(&conf)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Runs a command that must fail, and returns its one line of error.
fn fails(dir: &Path, args: &[&str]) -> String {
    let (code, stdout, stderr) = run(dir, args, None);
    assert_ne!(code, 0, "resetd {args:?} succeeded: {stdout}");
    // Log lines (the outbox key file created on a first run) may come before it.
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| {
            !l.trim().is_empty()
                && !l.starts_with("warning: ")
                && !l.contains(" INFO ")
                && !l.contains("INFO\u{1b}")
        })
        .collect();
    assert_eq!(lines.len(), 1, "resetd {args:?}: not one line: {stderr}");
    assert!(lines[0].starts_with("error: "), "resetd {args:?}: {stderr}");
    lines[0].to_owned()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    cli(dir, Some(&dir.join("resetd.toml")), args, None)
}

fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("resetd.toml"), FAST_ARGON).unwrap();
    dir
}

#[test]
fn import_before_the_first_serve_says_how_to_create_the_tenant() {
    let dir = data_dir();
    let csv = dir.path().join("people.csv");
    std::fs::write(&csv, "login,email\nann,ann@example.com\n").unwrap();
    let line = fails(
        dir.path(),
        &[
            "person",
            "import",
            "--tenant",
            "default",
            csv.to_str().unwrap(),
        ],
    );
    assert!(line.contains("resetd tenant add default"), "{line}");
    assert!(line.contains("resetd serve"), "{line}");
    ok(dir.path(), &["tenant", "add", "default"]);
    let out = ok(
        dir.path(),
        &[
            "person",
            "import",
            "--tenant",
            "default",
            csv.to_str().unwrap(),
        ],
    );
    assert!(out.contains("imported 1"), "{out}");
}

#[test]
fn people_are_managed_from_the_command_line() {
    let dir = data_dir();
    let d = dir.path();
    ok(d, &["tenant", "add", "acme"]);
    let mut ids = Vec::new();
    for who in ["ann", "ben", "cat"] {
        let id = ok(
            d,
            &[
                "person",
                "add",
                "--tenant",
                "acme",
                "--login",
                who,
                "--email",
                &format!("{who}@example.com"),
            ],
        );
        ids.push(id.trim().to_owned());
    }

    let all = json_lines(&ok(d, &["person", "list", "--tenant", "acme", "--json"]));
    let logins: Vec<&str> = all.iter().map(|p| p["login"].as_str().unwrap()).collect();
    assert_eq!(logins, ["ann", "ben", "cat"]);
    assert!(all.iter().all(|p| p.get("password_hash").is_none()));
    let first = json_lines(&ok(
        d,
        &[
            "person", "list", "--tenant", "acme", "--json", "--limit", "2",
        ],
    ));
    assert_eq!(first.len(), 2);
    let after = first[1]["number"].to_string();
    let rest = json_lines(&ok(
        d,
        &[
            "person", "list", "--tenant", "acme", "--json", "--after", &after,
        ],
    ));
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0]["login"], "cat");
    let paged = json_lines(&ok(
        d,
        &[
            "person", "list", "--tenant", "acme", "--json", "--limit", "1", "--all",
        ],
    ));
    assert_eq!(paged.len(), 3);
    assert!(ok(d, &["person", "list", "--tenant", "acme", "--after", "99"]).is_empty());
    let text = ok(
        d,
        &["person", "list", "--tenant", "acme", "--search", "BEN"],
    );
    assert_eq!(text.lines().count(), 1);
    assert!(
        text.starts_with(&format!("{}\t2\tben\tben@example.com\tenabled", ids[1])),
        "{text}"
    );

    let show = |args: &[&str]| -> Value {
        let mut full = vec!["person", "show", "--tenant", "acme", "--json"];
        full.extend_from_slice(args);
        serde_json::from_str(&ok(d, &full)).unwrap()
    };
    assert_eq!(show(&["--login", "ann"])["id"], ids[0].as_str());
    assert_eq!(show(&[&ids[1]])["login"], "ben");
    assert_eq!(show(&["--email", "cat@example.com"])["login"], "cat");

    ok(
        d,
        &["person", "disable", "--tenant", "acme", "--login", "ann"],
    );
    assert_eq!(show(&["--login", "ann"])["enabled"], false);
    ok(
        d,
        &["person", "enable", "--tenant", "acme", "--login", "ann"],
    );
    assert_eq!(show(&["--login", "ann"])["enabled"], true);
    ok(
        d,
        &[
            "person",
            "update",
            "--tenant",
            "acme",
            "--login",
            "ann",
            "--name",
            "Ann Smith",
            "--role",
            "ops",
        ],
    );
    let ann = show(&["--login", "ann"]);
    assert_eq!(
        (ann["display_name"].as_str(), ann["roles"][0].as_str()),
        (Some("Ann Smith"), Some("ops"))
    );
    let conf = d.join("resetd.toml");
    cli(
        d,
        Some(&conf),
        &[
            "person",
            "set-password",
            "--tenant",
            "acme",
            "--login",
            "ann",
            "--must-change-password",
        ],
        Some("orchid lantern basalt 55\n"),
    );
    let ann = show(&["--login", "ann"]);
    assert_eq!(
        (
            ann["has_password"].as_bool(),
            ann["must_change_password"].as_bool()
        ),
        (Some(true), Some(true))
    );
    ok(
        d,
        &["person", "unlock", "--tenant", "acme", "--login", "ann"],
    );

    let out = ok(
        d,
        &["person", "delete", "--tenant", "acme", "--login", "ben"],
    );
    assert!(out.contains("erased"), "{out}");
    let line = fails(d, &["person", "delete", "--tenant", "acme", &ids[1]]);
    assert!(line.contains("no such person"), "{line}");
    assert_eq!(
        json_lines(&ok(d, &["person", "list", "--tenant", "acme", "--json"])).len(),
        2
    );

    let events = json_lines(&ok(
        d,
        &["audit", "--tenant", "acme", "--json", "--limit", "100"],
    ));
    assert!(events.iter().any(|e| e["kind"] == "person_erased"));
    assert!(events.iter().all(|e| e["person"] != ids[1].as_str()));
    assert!(events.iter().all(|e| e["actor"] == "cli"));

    // Bad input: one line each, naming what is wrong.
    for args in [
        &["person", "show", "--tenant", "acme", "--login", "nobody"][..],
        &["person", "show", "--tenant", "acme", "not-an-id"],
        &["person", "list", "--tenant", "acme", "--limit", "0"],
        &["person", "list", "--tenant", "nosuch"],
        &[
            "person",
            "disable",
            "--tenant",
            "bad tenant!",
            "--login",
            "ann",
        ],
    ] {
        fails(d, args);
    }
    let policy = {
        let (code, _, stderr) = run(
            d,
            &[
                "person",
                "set-password",
                "--tenant",
                "acme",
                "--login",
                "ann",
            ],
            Some("short\n"),
        );
        assert_ne!(code, 0);
        stderr
    };
    let policy: Vec<&str> = policy
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(policy.len(), 1, "{policy:?}");
    assert!(policy[0].contains("does not meet the policy"), "{policy:?}");
}

#[test]
fn tenants_clients_and_the_outbox_from_the_command_line() {
    let dir = data_dir();
    let d = dir.path();
    ok(d, &["tenant", "add", "acme", "--min-password-length", "12"]);
    let tenants = json_lines(&ok(d, &["tenant", "list", "--json"]));
    assert_eq!(tenants[0]["id"], "acme");
    let shown: Value = serde_json::from_str(&ok(d, &["tenant", "show", "acme", "--json"])).unwrap();
    assert_eq!(shown["settings"]["min_password_length"], 12);
    fails(d, &["tenant", "show", "nosuch"]);

    ok(
        d,
        &[
            "client",
            "add",
            "--tenant",
            "acme",
            "--name",
            "web",
            "--link-template",
            "https://app.example.com/r?t={token}",
        ],
    );
    let clients = json_lines(&ok(d, &["client", "list", "--tenant", "acme", "--json"]));
    assert_eq!(clients.len(), 1);
    assert_eq!(clients[0]["name"], "web");
    let one: Value = serde_json::from_str(&ok(
        d,
        &["client", "show", "--tenant", "acme", "web", "--json"],
    ))
    .unwrap();
    assert_eq!(one, clients[0]);
    ok(d, &["client", "remove", "--tenant", "acme", "web"]);
    assert!(ok(d, &["client", "list", "--tenant", "acme"]).is_empty());
    let line = fails(d, &["client", "remove", "--tenant", "acme", "web"]);
    assert!(line.contains("no client web"), "{line}");

    assert!(json_lines(&ok(d, &["outbox", "list", "--json"])).is_empty());

    ok(
        d,
        &[
            "person",
            "add",
            "--tenant",
            "acme",
            "--login",
            "ann",
            "--email",
            "ann@example.com",
        ],
    );
    let line = fails(d, &["tenant", "remove", "acme"]);
    assert!(line.contains("--force"), "{line}");
    assert_eq!(
        json_lines(&ok(d, &["person", "list", "--tenant", "acme", "--json"])).len(),
        1
    );
    let out = ok(d, &["tenant", "remove", "acme", "--force"]);
    assert!(out.contains("1 people erased"), "{out}");
    assert!(ok(d, &["tenant", "list"]).is_empty());
    fails(d, &["tenant", "remove", "acme", "--force"]);
}

#[test]
fn the_help_groups_the_commands() {
    let dir = data_dir();
    let help = ok(dir.path(), &["--help"]);
    let mut at = 0;
    for heading in [
        "Service:",
        "Directory:",
        "Records:",
        "Password data:",
        "Options:",
    ] {
        let found = help[at..]
            .find(heading)
            .unwrap_or_else(|| panic!("{heading} missing or out of order:\n{help}"));
        at += found;
    }
    for command in [
        "serve",
        "migrate",
        "check-config",
        "tenant",
        "person",
        "client",
        "apikey",
        "audit",
        "outbox",
        "breached",
    ] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{command} "))),
            "{command} is not listed:\n{help}"
        );
    }
    // Each noun lists its own verbs.
    let person = ok(dir.path(), &["person", "--help"]);
    for verb in [
        "add",
        "import",
        "list",
        "show",
        "update",
        "disable",
        "enable",
        "set-password",
        "unlock",
        "delete",
    ] {
        assert!(
            person.contains(&format!("  {verb} ")),
            "person {verb}:\n{person}"
        );
    }
}
