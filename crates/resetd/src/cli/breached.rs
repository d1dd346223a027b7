//! `resetd breached import FILE`: the Pwned Passwords corpus into the index the policy checks
//! (see `resetd_store::breached` for the format).

use std::io::{BufReader, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

use clap::Subcommand;
use resetd_store::breached::{self, FULL_SUFFIX};

use crate::config::Config;

#[derive(Subcommand)]
pub enum BreachedCmd {
    /// Build the index from the corpus in its download format (`SHA1-HEX:COUNT` lines, ordered
    /// by hash), replacing the index atomically.
    Import {
        /// The corpus, or `-` for standard input.
        file: PathBuf,
        /// Bytes of each hash kept after the first two (18: whole hashes, needed by the range
        /// endpoint; 5 to 17: smaller, lookups only, with the false-positive rate in
        /// docs/decisions.md).
        #[arg(long, default_value_t = FULL_SUFFIX)]
        suffix_bytes: usize,
        /// Write here instead of the configured `[breached] index_file`.
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

/// Runs a `breached` command (no database needed).
pub fn run(cmd: BreachedCmd, config: &Config) -> Result<(), String> {
    let BreachedCmd::Import {
        file,
        suffix_bytes,
        output,
    } = cmd;
    let dest = match output {
        Some(p) => p,
        None => config.breached_index_file()?.0,
    };
    let started = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let progress = |n: u64| {
        let secs = started.elapsed().as_secs_f64().max(1e-3);
        let rate = n as f64 / secs;
        let mut err = std::io::stderr();
        // A terminal gets one line rewritten; a log gets one line per step.
        let end = if tty { "\r" } else { "\n" };
        let _ = write!(err, "imported {n} lines ({rate:.0} lines/s){end}");
        let _ = err.flush();
    };
    let stats = if file.as_os_str() == "-" {
        let stdin = std::io::stdin();
        breached::import(stdin.lock(), &dest, suffix_bytes, 1_000_000, progress)
    } else {
        let f = std::fs::File::open(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        breached::import(
            BufReader::with_capacity(1 << 20, f),
            &dest,
            suffix_bytes,
            1_000_000,
            progress,
        )
    }
    .map_err(|e| format!("breached import of {}: {e}", file.display()))?;
    if tty {
        eprintln!();
    }
    let secs = started.elapsed().as_secs_f64().max(1e-3);
    println!(
        "imported {} lines into {} ({} hashes, {} bytes) in {secs:.1} s ({:.0} lines/s)",
        stats.lines,
        dest.display(),
        stats.records,
        stats.bytes,
        stats.lines as f64 / secs
    );
    Ok(())
}
