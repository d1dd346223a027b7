//! The outbox key file (`mail.outbox_key_file`): the key that seals queued email bodies in the
//! database (docs/decisions.md, "Outbox bodies are sealed at rest"). Read here, in the binary,
//! so that the store and the core stay free of file handling.

use std::io::Write;
use std::path::Path;

use resetd_core::model::{OutboxMessage, OutboxStatus};
use resetd_core::store::Outbox;
use resetd_store::OutboxKeys;

/// The ids of the keys that sealed the pending messages, each once.
async fn pending_key_ids(store: &dyn Outbox) -> Result<Vec<String>, String> {
    let pending: Vec<OutboxMessage> = store
        .list_outbox(None, Some(OutboxStatus::Pending), u32::MAX)
        .await
        .map_err(|e| format!("reading the outbox: {e}"))?;
    let mut ids: Vec<String> = pending
        .iter()
        .filter_map(|m| OutboxKeys::sealed_with(&m.message.text))
        .map(str::to_owned)
        .collect();
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// Creates a new key file at `path` with mode 0600, never replacing one that appeared meanwhile.
/// The key is written and synced under a temporary name first and then hard-linked into place
/// (which fails if the name exists), so a process starting at the same moment never reads a
/// half-written file: it finds either no file or the whole one.
fn create(path: &Path) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let text = OutboxKeys::generate_file()?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".new-{}", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&tmp).and_then(|mut f| {
        f.write_all(text.as_bytes())?;
        f.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("writing {}: {e}", tmp.display()));
    }
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            tracing::info!(path = %path.display(), "created the outbox key file (mode 0600); keep it, and keep it out of database backups");
            Ok(())
        }
        // Another process (an instance or a CLI command starting at the same time) made it.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("creating {}: {e}", path.display())),
    }
}

fn read(path: &Path) -> Result<OutboxKeys, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the outbox key file {}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(path = %path.display(), "the outbox key file is readable by other users; chmod 600 it");
            }
        }
    }
    OutboxKeys::parse(&text).map_err(|e| format!("the outbox key file {}: {e}", path.display()))
}

/// The outbox keys from `path`, creating the file at first start. Refuses (with what to do) when
/// pending messages are sealed with a key the file does not hold, or when the file is missing
/// while such messages exist: starting with a new key would make them unsendable.
pub async fn load(path: &Path, store: &dyn Outbox) -> Result<OutboxKeys, String> {
    let pending = pending_key_ids(store).await?;
    if !path.exists() {
        if !pending.is_empty() {
            return Err(format!(
                "the outbox key file {} does not exist, but pending email in the database is \
                 sealed with key {}: restore that file (or point mail.outbox_key_file at it). If \
                 it is lost for good, `resetd outbox abandon` marks that email dead; the people \
                 concerned ask for a new one",
                path.display(),
                pending.join(", ")
            ));
        }
        create(path)?;
    }
    let keys = read(path)?;
    let missing: Vec<&str> = pending
        .iter()
        .map(String::as_str)
        .filter(|id| !keys.has(id))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "pending email in the database is sealed with outbox key {}, which the key file {} \
             (keys {}) does not hold: use the key file that sealed it, or keep its key on a line \
             below the current one (docs/configuration.md). If it is lost for good, `resetd \
             outbox abandon` marks that email dead; the people concerned ask for a new one",
            missing.join(", "),
            path.display(),
            keys.ids().join(", ")
        ));
    }
    Ok(keys)
}

/// The keys for `resetd outbox abandon`: the file as it is (created if missing), without the
/// check that [`load`] makes, since that command is the way out of it.
pub fn load_unchecked(path: &Path) -> Result<OutboxKeys, String> {
    if !path.exists() {
        create(path)?;
    }
    read(path)
}
