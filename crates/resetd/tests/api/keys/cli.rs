//! `resetd apikey create | list | show | revoke | rotate` with the real binary, on the database of
//! a running server: what the commands print (secrets once, on stdout alone; listings never),
//! that the server honours what they did, and one clear line and a non-zero exit on bad input.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use super::KeyCalls;
use crate::helpers::config::TestConfig;
use crate::helpers::{Server, BIN};

/// Runs `resetd --data-dir DIR args`; (exit success, stdout, stderr).
fn run(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("RESETD_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn ok(dir: &Path, args: &[&str]) -> (String, String) {
    let (success, out, err) = run(dir, args);
    assert!(success, "resetd {args:?} failed: {err}");
    (out, err)
}

/// Asserts a refusal: non-zero exit, nothing on stdout, one line on stderr containing `says`.
fn refused(dir: &Path, args: &[&str], says: &str) {
    let (success, out, err) = run(dir, args);
    assert!(!success, "resetd {args:?} succeeded: {out}");
    assert_eq!(out, "", "{args:?}");
    assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    assert!(err.starts_with("error: "), "{args:?}: {err}");
    assert!(err.contains(says), "{args:?}: {err:?} lacks {says:?}");
}

/// The key id `create` or `rotate` named on stderr.
fn id_in(stderr: &str) -> String {
    stderr
        .split("API key ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("the key id on stderr")
        .to_owned()
}

#[tokio::test]
async fn apikey_commands_manage_the_keys_the_server_checks() {
    let s = Server::spawn(&TestConfig::fast());
    let dir = s.dir.path().to_owned();
    let t = s.default_tenant();

    let (secret, err) = ok(
        &dir,
        &[
            "apikey",
            "create",
            "--tenant",
            "default",
            "--name",
            "dash",
            "--scope",
            "read",
            "--expires",
            "30d",
        ],
    );
    let secret = secret.trim().to_owned();
    let id = id_in(&err);
    assert!(secret.starts_with("rsd_") && !err.contains(&secret));
    let (_, err) = ok(
        &dir,
        &[
            "apikey",
            "create",
            "--tenant",
            "default",
            "--scope",
            "crafter,payabli",
        ],
    );
    let multi = id_in(&err);

    // The server sees the CLI's key at once: a read key reads the audit log only.
    assert_eq!(t.audit_as(&secret).await.status(), 200);
    assert_eq!(s.tenant("default", &secret).list_keys().await.status(), 403);

    let (json, _) = ok(&dir, &["apikey", "list", "--json"]);
    let rows: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(
        rows.len(),
        3,
        "bootstrap, dash and the multi-scope key: {json}"
    );
    assert!(!json.contains("rsd_"), "no secret in a listing: {json}");
    let dash = rows.iter().find(|r| r["id"] == id.as_str()).unwrap();
    assert_eq!(dash["scopes"], serde_json::json!(["read"]));
    assert_eq!(dash["state"], "active");
    assert!(dash["expires_at"].is_string() && dash["last_used_at"].is_string());
    let both = rows.iter().find(|r| r["id"] == multi.as_str()).unwrap();
    assert_eq!(both["scopes"], serde_json::json!(["crafter", "payabli"]));

    let (text, _) = ok(&dir, &["apikey", "list", "--tenant", "default"]);
    let line = text.lines().find(|l| l.starts_with(&id)).unwrap();
    let cols: Vec<&str> = line.split('\t').collect();
    assert_eq!(
        cols[..5],
        [id.as_str(), "default", "dash", "read", "active"]
    );
    assert_eq!(cols.len(), 8, "{line}");
    let (shown, _) = ok(&dir, &["apikey", "show", &id, "--json"]);
    assert_eq!(&serde_json::from_str::<Value>(&shown).unwrap(), dash);

    // Rotation with no overlap: the new secret works and the old one stops.
    let (fresh, err) = ok(&dir, &["apikey", "rotate", &id, "--overlap", "0"]);
    let fresh = fresh.trim().to_owned();
    assert_eq!(id_in(&err), id);
    assert!(fresh.starts_with("rsd_") && fresh != secret);
    assert_eq!(t.audit_as(&fresh).await.status(), 200);
    assert_eq!(t.audit_as(&secret).await.status(), 401);

    let (out, _) = ok(&dir, &["apikey", "revoke", &id]);
    assert_eq!(
        out.trim(),
        format!("API key {id} of tenant default revoked")
    );
    assert_eq!(t.audit_as(&fresh).await.status(), 401);
    let (json, _) = ok(&dir, &["apikey", "show", &id, "--json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&json).unwrap()["state"],
        "revoked"
    );

    refused(&dir, &["apikey", "revoke", &id], "revoked already");
    refused(&dir, &["apikey", "rotate", &id], "revoked already");
    refused(
        &dir,
        &["apikey", "revoke", "0000000000000000"],
        "no API key",
    );
    refused(&dir, &["apikey", "show", "nope"], "no API key");
    refused(
        &dir,
        &["apikey", "rotate", &multi, "--overlap", "90000"],
        "--overlap",
    );
    refused(
        &dir,
        &["apikey", "create", "--tenant", "default", "--scope", "root"],
        "unknown scope \"root\"",
    );
    for bad in ["yesterday", "0d", "2001-01-01T00:00:00Z"] {
        let says = if bad.starts_with("2001") {
            "must be in the future"
        } else {
            "--expires"
        };
        refused(
            &dir,
            &["apikey", "create", "--tenant", "default", "--expires", bad],
            says,
        );
    }
    refused(
        &dir,
        &["apikey", "list", "--tenant", "ghost"],
        "unknown tenant",
    );

    // Each command that changed a key is in the tenant's audit log, acted by the CLI.
    let events = t.audit_items("").await;
    for kind in ["api_key_created", "api_key_rotated", "api_key_revoked"] {
        assert!(
            events
                .iter()
                .any(|e| e["kind"] == kind && e["actor"] == "cli"),
            "{kind}: {events:?}"
        );
    }
    assert!(!Value::Array(events).to_string().contains("rsd_"));
}
