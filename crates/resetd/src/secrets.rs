//! Secret settings from files, the convention of containers (`RESETD_<NAME>_FILE` pointing at a
//! mounted secret) and of systemd credentials (`LoadCredential=` puts the secret in
//! `$CREDENTIALS_DIRECTORY`, named after the setting).
//!
//! Every secret setting goes through [`resolve_secret`], so its rules hold for all of them: one
//! source only (two is a start error, as a forgotten inline value would silently win or lose),
//! errors name the setting and the path and never the content, and the file's trailing newline
//! (which `echo` and editors add) is not part of the secret.

use std::path::{Path, PathBuf};

/// The value of the secret setting `setting` (its TOML name, e.g. `mail.smtp.password`), from
/// exactly one of: `inline` (the setting itself, from TOML or the environment; empty counts as
/// unset), `file` (`<setting>_file` or `RESETD_<NAME>_FILE`), or the systemd credential named
/// `setting` in `$CREDENTIALS_DIRECTORY`. `None` when none is given.
pub fn resolve_secret(
    setting: &str,
    inline: Option<String>,
    file: Option<&Path>,
) -> Result<Option<String>, String> {
    resolve_in(setting, inline, file, credentials_dir().as_deref())
}

/// The systemd credentials directory of this process, if it has one.
pub fn credentials_dir() -> Option<PathBuf> {
    std::env::var_os("CREDENTIALS_DIRECTORY")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
}

/// The credential file `name` in `dir`, when it exists.
pub fn credential(dir: Option<&Path>, name: &str) -> Option<PathBuf> {
    dir.map(|d| d.join(name)).filter(|p| p.is_file())
}

/// [`resolve_secret`] with the credentials directory given, for tests.
fn resolve_in(
    setting: &str,
    inline: Option<String>,
    file: Option<&Path>,
    credentials: Option<&Path>,
) -> Result<Option<String>, String> {
    let inline = inline.filter(|v| !v.is_empty());
    let file = file.filter(|f| !f.as_os_str().is_empty());
    let credential = credential(credentials, setting);
    match (inline, file, credential) {
        (Some(_), Some(f), _) => Err(format!(
            "{setting} is set both inline and as a file ({setting}_file = {}): keep one",
            f.display()
        )),
        (Some(_), None, Some(c)) => Err(format!(
            "{setting} is set both inline and as the systemd credential {}: keep one",
            c.display()
        )),
        (Some(v), None, None) => Ok(Some(v)),
        // A file named explicitly is the operator's choice over a credential found by name.
        (None, Some(f), _) => read_secret(&format!("{setting}_file"), f).map(Some),
        (None, None, Some(c)) => {
            read_secret(&format!("{setting} (systemd credential)"), &c).map(Some)
        }
        (None, None, None) => Ok(None),
    }
}

/// Reads the secret in `path`; the errors name `what` and the path, never the content.
fn read_secret(what: &str, path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("{what}: cannot read {}: {}", path.display(), e.kind()))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("{what}: {} is not UTF-8 text", path.display()))?;
    let secret = text.strip_suffix('\n').unwrap_or(&text);
    let secret = secret.strip_suffix('\r').unwrap_or(secret);
    if secret.is_empty() {
        return Err(format!("{what}: {} is empty", path.display()));
    }
    Ok(secret.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_source_only_and_the_trailing_newline_is_not_part_of_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret value\r\n").unwrap();
        assert_eq!(
            resolve_in("mail.smtp.password", None, Some(&file), None).unwrap(),
            Some("s3cret value".into())
        );
        std::fs::write(&file, "two\nlines\n").unwrap();
        assert_eq!(
            resolve_in("x", None, Some(&file), None).unwrap(),
            Some("two\nlines".into())
        );
        assert_eq!(
            resolve_in("x", Some("inline".into()), None, None).unwrap(),
            Some("inline".into())
        );
        assert_eq!(
            resolve_in("x", Some(String::new()), None, None).unwrap(),
            None
        );
        let both = resolve_in(
            "database_url",
            Some("inline-s3cret".into()),
            Some(&file),
            None,
        )
        .unwrap_err();
        assert!(
            both.contains("database_url") && both.contains("keep one"),
            "{both}"
        );
        assert!(
            !both.contains("s3cret") && !both.contains("lines"),
            "{both}"
        );
    }

    #[test]
    fn unreadable_and_empty_files_are_named_without_their_content() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("absent");
        let e = resolve_in("mail.smtp.password", None, Some(&missing), None).unwrap_err();
        assert!(
            e.contains("mail.smtp.password_file") && e.contains(&*missing.to_string_lossy()),
            "{e}"
        );
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        assert!(resolve_in("x", None, Some(&empty), None)
            .unwrap_err()
            .contains("is empty"));
        let binary = dir.path().join("bin");
        std::fs::write(&binary, [0xff, 0xfe, b's', b'3']).unwrap();
        let e = resolve_in("x", None, Some(&binary), None).unwrap_err();
        assert!(e.contains("UTF-8"), "{e}");
    }

    #[test]
    fn a_systemd_credential_named_after_the_setting_is_picked_up() {
        let creds = tempfile::tempdir().unwrap();
        std::fs::write(creds.path().join("database_url"), "postgres://a:pw@h/d\n").unwrap();
        assert_eq!(
            resolve_in("database_url", None, None, Some(creds.path())).unwrap(),
            Some("postgres://a:pw@h/d".into())
        );
        assert_eq!(
            resolve_in("mail.smtp.password", None, None, Some(creds.path())).unwrap(),
            None
        );
        let e = resolve_in("database_url", Some("x".into()), None, Some(creds.path())).unwrap_err();
        assert!(e.contains("systemd credential"), "{e}");
    }
}
