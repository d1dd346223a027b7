//! The private PostgreSQL cluster the restart tests stop and start.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A private PostgreSQL cluster in a temporary directory; stopped (immediately) when dropped,
/// also when the test fails, and then deleted with the directory.
pub(super) struct PgCluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    /// initdb and the server refuse to run as root: then every command runs as `postgres`.
    as_postgres: bool,
    // Dropped after `drop` has stopped the server.
    dir: tempfile::TempDir,
}

/// The directory holding `initdb` and `pg_ctl`: the newest /usr/lib/postgresql/*/bin, else the
/// first directory on PATH that has both.
fn pg_bin_dir() -> Option<PathBuf> {
    let has_both = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, d)| has_both(d))
        .collect();
    versioned.sort();
    versioned
        .pop()
        .map(|(_, d)| d)
        .or_else(|| std::env::split_paths(&std::env::var_os("PATH")?).find(|d| has_both(d)))
}

/// A free loopback port (free when asked; the cluster start retries on a clash).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

impl PgCluster {
    /// Creates and starts a cluster, or returns `None` after printing why the test is skipped
    /// (no PostgreSQL binaries). Panics instead when `CI=true`.
    pub(super) fn start() -> Option<PgCluster> {
        let Some(bin) = pg_bin_dir() else {
            let why = "PostgreSQL's server binaries (initdb, pg_ctl) are not installed";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("PostgreSQL is required on CI (CI=true) but {why}");
            }
            eprintln!("SKIPPED (PostgreSQL restart test): {why}. With CI=true this is a failure.");
            return None;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        // The directory belongs to whoever runs the test: root means running as `postgres`.
        let as_postgres = std::fs::metadata(dir.path()).expect("stat tempdir").uid() == 0;
        if as_postgres {
            let ok = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                ok,
                "running as root, but cannot hand the cluster directory to the postgres user"
            );
        }
        let mut cluster = PgCluster {
            data: dir.path().join("data"),
            bin,
            port: 0,
            as_postgres,
            dir,
        };
        let out = cluster.run(
            "initdb",
            &[
                "-D".as_ref(),
                cluster.data.as_os_str(),
                "-A".as_ref(),
                "trust".as_ref(),
                "-U".as_ref(),
                "postgres".as_ref(),
            ],
        );
        assert!(out.status.success(), "initdb failed: {}", text(&out));
        // A port taken between free_port() and the start fails the start: try another one.
        for attempt in 1..=3 {
            cluster.port = free_port();
            let out = cluster.pg_ctl_start();
            if out.status.success() {
                return Some(cluster);
            }
            assert!(
                attempt < 3,
                "the private PostgreSQL did not start: {}\n{}",
                text(&out),
                cluster.log()
            );
        }
        unreachable!()
    }

    /// Runs one of the PostgreSQL binaries (as `postgres` when we are root).
    fn run(&self, program: &str, args: &[&std::ffi::OsStr]) -> Output {
        let exe = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        // A working directory the postgres user may enter (the test's own may not be).
        cmd.args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
    }

    /// `pg_ctl start`, waiting (up to 30 s) until the server accepts connections. Small
    /// shared buffers keep it light; fsync stays on (the default), as durability is under test.
    fn pg_ctl_start(&self) -> Output {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c shared_buffers=16MB -c max_connections=40",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("postgres.log");
        self.run(
            "pg_ctl",
            &[
                "start".as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                "30".as_ref(),
                "-D".as_ref(),
                self.data.as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-o".as_ref(),
                options.as_ref(),
            ],
        )
    }

    /// Starts the server again after [`PgCluster::stop`]; panics if it does not come up.
    pub(super) fn start_again(&self) {
        let out = self.pg_ctl_start();
        assert!(
            out.status.success(),
            "PostgreSQL did not start again: {}\n{}",
            text(&out),
            self.log()
        );
    }

    /// `pg_ctl stop -m <mode>` and waits until the server is down: `fast` ends every session
    /// (rolling back open transactions) and writes a checkpoint; `immediate` kills everything at
    /// once, like a crash, so the next start replays the WAL.
    pub(super) fn stop(&self, mode: &str) -> Output {
        self.run(
            "pg_ctl",
            &[
                "stop".as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                "30".as_ref(),
                "-m".as_ref(),
                mode.as_ref(),
                "-D".as_ref(),
                self.data.as_os_str(),
            ],
        )
    }

    pub(super) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The server's own log.
    pub(super) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // Already stopped is fine; nothing else to do if it fails.
        let _ = self.stop("immediate");
    }
}

pub(super) fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
