//! Opening the breached-password index at start (the `resetd breached` commands are in
//! `cli/breached.rs`).

use std::path::Path;
use std::sync::Arc;

use resetd_store::breached::BreachIndex;

use crate::config::Config;

/// The index to check passwords against, if there is one: a missing default file means no
/// check; a named file that is missing, or any damaged file, stops the start.
pub fn open_index(config: &Config) -> Result<Option<Arc<BreachIndex>>, String> {
    let (path, named) = config.breached_index_file()?;
    if !named && !Path::new(&path).exists() {
        return Ok(None);
    }
    let index = BreachIndex::open(&path).map_err(|e| e.to_string())?;
    tracing::info!(
        path = %path.display(),
        hashes = index.records(),
        whole_hashes = index.full(),
        "breached-password index open"
    );
    Ok(Some(Arc::new(index)))
}
