//! The `[credentials.<tenant>]` frame of the binary (issue 17): `check-config` refuses an
//! unknown kind, an unknown tenant and an adapter's own refusal of its keys, with the section
//! named and no secret printed; the serve start refuses the same.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::helpers::config::TestConfig;
use crate::helpers::{cli, BIN};

/// Runs `resetd` and returns (success, stdout + stderr).
fn run(dir: &Path, config: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn config_with(dir: &Path, section: &str) -> std::path::PathBuf {
    let cfg = dir.join("c.toml");
    let text = format!("{}\n{section}", TestConfig::new().fast_argon().toml());
    std::fs::write(&cfg, text).unwrap();
    cfg
}

#[test]
fn check_config_refuses_an_unknown_kind_and_names_the_section() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_with(
        dir.path(),
        "[credentials.acme]\nkind = \"memory\"\nbind_password = \"s3cr3t-bind\"\n",
    );
    let (ok, out) = run(dir.path(), &cfg, &["check-config"]);
    assert!(!ok, "{out}");
    assert!(out.contains("[credentials.acme] kind"), "{out}");
    assert!(out.contains("\"memory\""), "{out}");
    assert!(!out.contains("s3cr3t-bind"), "{out}");
}

#[test]
fn check_config_refuses_an_unknown_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_with(dir.path(), "[credentials.ghost]\nkind = \"ldap\"\n");
    let (ok, out) = run(dir.path(), &cfg, &["check-config"]);
    assert!(!ok, "{out}");
    assert!(out.contains("unknown tenant \"ghost\""), "{out}");
}

#[test]
fn an_adapter_refuses_an_incomplete_section_and_secrets_stay_unprinted() {
    let dir = tempfile::tempdir().unwrap();
    let plain = config_with(dir.path(), "");
    cli(dir.path(), Some(&plain), &["tenant", "add", "acme"], None);
    let cfg = config_with(
        dir.path(),
        "[credentials.acme]\nkind = \"ldap\"\nbind_password = \"s3cr3t-bind\"\n",
    );
    for args in [
        &["check-config"][..],
        &["serve", "--listen", "127.0.0.1:0"][..],
    ] {
        let (ok, out) = run(dir.path(), &cfg, args);
        assert!(!ok, "{args:?}: {out}");
        assert!(
            out.contains("[credentials.acme]: ") && !out.contains("not built in"),
            "{args:?}: {out}"
        );
        assert!(!out.contains("s3cr3t-bind"), "{args:?}: {out}");
    }
}
