//! What the database keeps at rest, read as an attacker with a copy of it would: the bytes of
//! `resetd.db`, `resetd.db-wal` and `resetd.db-shm` (with and without a checkpoint), or a
//! `pg_dump` of the server's schema, searched for secrets in every form they travel in.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;

/// One copy of what is at rest: a name for messages, and each file's bytes.
pub struct Snapshot {
    pub label: String,
    pub files: Vec<(String, Vec<u8>)>,
}

/// The three files of the SQLite database in `dir`, as they are now (a missing one is empty).
pub fn sqlite_files(dir: &Path, label: &str) -> Snapshot {
    let files = ["resetd.db", "resetd.db-wal", "resetd.db-shm"]
        .iter()
        .map(|name| {
            (
                (*name).to_owned(),
                std::fs::read(dir.join(name)).unwrap_or_default(),
            )
        })
        .collect();
    Snapshot {
        label: label.to_owned(),
        files,
    }
}

/// `PRAGMA wal_checkpoint(TRUNCATE)` through a connection of our own (the server may be running):
/// every committed page is copied into `resetd.db` and the WAL emptied. Retried while a reader
/// of the server holds it back.
pub fn checkpoint(dir: &Path) {
    let conn = rusqlite::Connection::open(dir.join("resetd.db")).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    for _ in 0..100 {
        let (busy, log, done): (i64, i64, i64) = conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        if busy == 0 && log == done {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the WAL could not be checkpointed");
}

/// A `pg_dump` of one schema (data and definitions) of the PostgreSQL server at `server_url`.
pub fn pg_dump(server_url: &str, schema: &str, label: &str) -> Snapshot {
    let out = std::process::Command::new("pg_dump")
        .arg("--dbname")
        .arg(server_url)
        .arg("--schema")
        .arg(schema)
        .output()
        .expect("run pg_dump (PostgreSQL client tools)");
    assert!(
        out.status.success(),
        "pg_dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("COPY"),
        "the dump holds no table data"
    );
    Snapshot {
        label: label.to_owned(),
        files: vec![("pg_dump".into(), out.stdout)],
    }
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Every form in which `secret` could sit in a database: as it is; URL-encoded (how a link or a
/// form carries it); HTML-escaped; each half (a line break or an encoding could split it); and
/// for a base64url token its decoded bytes (and each half), hex and standard base64.
pub fn forms(secret: &str) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = vec![
        ("as is".into(), secret.as_bytes().to_vec()),
        ("URL-encoded".into(), percent_encode(secret).into_bytes()),
        ("HTML-escaped".into(), html_escape(secret).into_bytes()),
    ];
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() >= 32 {
        let mid = chars.len() / 2;
        out.push((
            "first half".into(),
            chars[..mid].iter().collect::<String>().into_bytes(),
        ));
        out.push((
            "second half".into(),
            chars[mid..].iter().collect::<String>().into_bytes(),
        ));
    }
    if let Ok(raw) = URL_SAFE_NO_PAD.decode(secret) {
        if raw.len() >= 16 {
            let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
            out.push(("hex".into(), hex.clone().into_bytes()));
            out.push(("HEX".into(), hex.to_uppercase().into_bytes()));
            out.push(("standard base64".into(), STANDARD.encode(&raw).into_bytes()));
            let mid = raw.len() / 2;
            out.push(("decoded bytes, first half".into(), raw[..mid].to_vec()));
            out.push(("decoded bytes, second half".into(), raw[mid..].to_vec()));
            out.push(("decoded bytes".into(), raw));
        }
    }
    out
}

/// Bytes as a string of one char per byte, so that the standard library's (optimised) substring
/// search finds exactly the byte sequences (a naive scan of megabytes of WAL per needle is slow in
/// a debug build).
fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && latin1(haystack).contains(&latin1(needle))
}

/// Every (snapshot, file, secret's name, form) where a secret was found.
pub fn findings(snapshots: &[Snapshot], secrets: &[(String, String)]) -> Vec<String> {
    let mut found = Vec::new();
    for snap in snapshots {
        for (file, bytes) in &snap.files {
            let text = latin1(bytes);
            for (name, secret) in secrets {
                for (form, needle) in forms(secret) {
                    if !needle.is_empty() && text.contains(&latin1(&needle)) {
                        found.push(format!("{}: {file}: {name} ({form})", snap.label));
                    }
                }
            }
        }
    }
    found
}

/// Asserts that every snapshot really holds the data (the scan reads what it should): `marker`
/// (e.g. a recipient address, stored in clear by design) is in at least one file of each.
pub fn assert_holds(snapshots: &[Snapshot], marker: &str) {
    for snap in snapshots {
        assert!(
            snap.files
                .iter()
                .any(|(_, bytes)| contains(bytes, marker.as_bytes())),
            "{}: {marker} is in none of the files; the scan would prove nothing",
            snap.label
        );
    }
}
