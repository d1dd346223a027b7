//! Black-box harness: runs the real `resetd` binary on a random loopback port with its own data
//! directory, and reads the mail it writes.
#![allow(dead_code)]

pub mod app;
pub mod at_rest;
pub mod config;
pub mod dialect;
pub mod page;
pub mod smtp;
pub mod surfaces;
pub mod vendors;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_resetd");

/// Cheap Argon2 parameters so the suite runs quickly; one test uses the defaults on purpose.
pub const FAST_ARGON: &str = "[argon2]\nm_cost = 1024\nt_cost = 1\np_cost = 1\n";

/// Config that lifts the per-IP limits, since every test request comes from 127.0.0.1.
pub const NO_LIMITS: &str =
    "[http]\nrecovery_per_minute = 0\nauth_per_minute = 0\npassword_check_per_minute = 0\n";

pub struct Server {
    pub dir: tempfile::TempDir,
    pub base: String,
    /// The management listener (`/metrics`, `/readyz`), e.g. `http://127.0.0.1:PORT`; empty
    /// when `[management] enabled = false`. The harness puts it on a free port.
    pub mgmt: String,
    pub key: String,
    child: Child,
    pub stderr: Arc<Mutex<String>>,
    /// The thread that copies the server's stderr into `stderr`; joined on drop.
    stderr_reader: Option<std::thread::JoinHandle<()>>,
    pub http: reqwest::Client,
}

/// Runs a CLI command against `data_dir` and returns its stdout; panics on failure.
pub fn cli(data_dir: &Path, config: Option<&Path>, args: &[&str], stdin: Option<&str>) -> String {
    let mut cmd = Command::new(BIN);
    cmd.arg("--data-dir").arg(data_dir);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn resetd");
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "resetd {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

impl Server {
    /// Starts a server with `config` (TOML) in a fresh data directory.
    pub fn start(config: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, config)
    }

    /// Starts a server in an existing data directory (its config file is rewritten).
    pub fn start_in(dir: tempfile::TempDir, config: &str) -> Server {
        Self::start_with(dir, config, "info")
    }

    /// Starts a server with `config` on the database at `database_url` (e.g. a PostgreSQL
    /// schema shared with other servers), in a fresh data directory of its own (for its mail).
    /// Every server on one database shares one outbox key file (as every instance of a real
    /// deployment must), kept in the temporary directory under a name derived from the URL.
    pub fn start_on(database_url: &str, config: &str, log: &str) -> Server {
        // Top-level keys must come before the first [table] of the TOML.
        let config = format!("database_url = \"{database_url}\"\n{config}");
        let key_file = shared_key_file(database_url);
        Self::start_env(
            tempfile::tempdir().unwrap(),
            &config,
            log,
            &[("RESETD_OUTBOX_KEY_FILE", key_file.to_str().unwrap())],
        )
    }

    /// Starts a server in `dir` with `config` and the log filter `log` (RESETD_LOG).
    pub fn start_with(dir: tempfile::TempDir, config: &str, log: &str) -> Server {
        Self::start_full(dir, config, log, "127.0.0.1:0", &[])
    }

    /// Starts a server with `config` listening on `listen` (e.g. `[::1]:0` for IPv6).
    pub fn start_listening(config: &str, listen: &str) -> Server {
        Self::start_full(tempfile::tempdir().unwrap(), config, "info", listen, &[])
    }

    /// Like [`Server::start_with`], with extra environment variables.
    pub fn start_env(
        dir: tempfile::TempDir,
        config: &str,
        log: &str,
        env: &[(&str, &str)],
    ) -> Server {
        Self::start_full(dir, config, log, "127.0.0.1:0", env)
    }

    /// Starts a server in `dir` with `config`, the log filter `log`, listening on `listen`, with
    /// extra environment variables `env`.
    pub fn start_full(
        dir: tempfile::TempDir,
        config: &str,
        log: &str,
        listen: &str,
        env: &[(&str, &str)],
    ) -> Server {
        let cfg = dir.path().join("resetd.toml");
        std::fs::write(&cfg, config).unwrap();
        let mut child = Command::new(BIN)
            .envs(env.iter().copied())
            .arg("--config")
            .arg(&cfg)
            .arg("--data-dir")
            .arg(dir.path())
            .args(["serve", "--listen", listen])
            .env("RESETD_LOG", log)
            .env("NO_COLOR", "1")
            // Parallel servers cannot share the default management port.
            .env("RESETD_MANAGEMENT_LISTEN", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn resetd serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let stderr_reader = {
            let sink = stderr.clone();
            let mut err = child.stderr.take().unwrap();
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = err.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    sink.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            })
        };
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut key = String::new();
        let mut mgmt = String::new();
        let base = loop {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("resetd exited early: {}", stderr.lock().unwrap()))
                .unwrap();
            if let Some(k) = line.split("(shown only once): ").nth(1) {
                key = k.trim().to_owned();
            }
            if let Some(rest) = line.strip_prefix("resetd management on ") {
                mgmt = rest.split_whitespace().next().unwrap().to_owned();
            }
            if let Some(rest) = line.strip_prefix("resetd listening on ") {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Server {
            dir,
            base,
            mgmt,
            key,
            child,
            stderr,
            stderr_reader: Some(stderr_reader),
            http: reqwest::Client::new(),
        }
    }

    /// Stops the server and hands back its data directory.
    pub fn stop(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the server with SIGKILL (no shutdown of any kind) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The config file the server was started with.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("resetd.toml")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn mail_dir(&self) -> PathBuf {
        self.dir.path().join("mail")
    }

    pub async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn admin_post(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    /// `path` on the management listener.
    pub fn mgmt_url(&self, path: &str) -> String {
        assert!(
            !self.mgmt.is_empty(),
            "this server has no management listener"
        );
        format!("{}{}", self.mgmt, path)
    }

    /// GET `path` (`/metrics`, `/readyz`, `/healthz`) on the management listener.
    pub async fn mgmt_get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.mgmt_url(path)).send().await.unwrap()
    }

    /// Every .eml written so far, with its file name.
    pub fn mails(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Ok(rd) = std::fs::read_dir(self.mail_dir()) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with(".eml") {
                    out.push((name, std::fs::read_to_string(e.path()).unwrap_or_default()));
                }
            }
        }
        out.sort();
        out
    }

    /// Waits until `n` messages of `kind` for `recipient` exist, and returns them.
    pub async fn wait_mails(&self, kind: &str, recipient: &str, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let found: Vec<String> = self
                .mails()
                .into_iter()
                .filter(|(name, body)| {
                    name.contains(kind) && body.contains(&format!("To: {recipient}"))
                })
                .map(|(_, body)| body)
                .collect();
            if found.len() >= n {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "no {kind} mail for {recipient}; have {:?}",
                self.mails().iter().map(|m| &m.0).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Requests a reset for `login` and returns the token from the emailed link (the n-th mail).
    pub async fn reset_token(&self, login: &str, email: &str, nth: usize) -> String {
        let res = self.request_reset(login).await;
        assert_eq!(res.status(), 202);
        let mails = self.wait_mails("reset_link", email, nth).await;
        token_from_mail(&mails[nth - 1])
    }
}

impl Drop for Server {
    /// Stops the server, then scans its whole log for secrets (design §4 invariant 8): every
    /// test of the suite that starts a server is also a test that no secret reached its log.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
        if !std::thread::panicking() {
            if let Some(leak) = secret_in_log(&self.log(), &self.key) {
                panic!("a secret reached the server's log: {leak}");
            }
        }
    }
}

/// The outbox key file that every server started on `database_url` shares.
pub fn shared_key_file(database_url: &str) -> PathBuf {
    // FNV-1a: a stable file name per URL (each PostgreSQL test has a schema of its own).
    let hash = database_url.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let dir = std::env::temp_dir().join("resetd-test-outbox-keys");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{hash:016x}.key"))
}

/// The outbox keys of the servers started on `database_url`, for a test that queues mail
/// straight into their store (a store without them seals with a key only it has).
pub fn shared_outbox_keys(database_url: &str) -> Arc<resetd_store::OutboxKeys> {
    let text = std::fs::read_to_string(shared_key_file(database_url))
        .expect("a server on this database made the key file");
    Arc::new(resetd_store::OutboxKeys::parse(&text).unwrap())
}

/// Passwords (and parts of them) the suite's tests use.
const TEST_PASSWORDS: &[&str] = &[
    "violet tangerine orbit",
    "Violet-Tangerine-Orbit",
    "quiet harbour lantern",
    "lunar cobalt meadow",
    "smtp-pass-Xq7",
    // The test directory's service account and root (tests/api/ldap/), and its people's
    // passwords: resetd binds with them but never logs them.
    resetd_ldap::testing::SERVICE_PASSWORD,
    resetd_ldap::testing::ROOT_PASSWORD,
    "alice-Old-password-1",
    "bob-Old-password-22",
    "carol-Old-password-3",
];

/// The first line of `log` that carries a secret: the admin key, any API key (`rsd_` + 43
/// base64url characters), a test password, or a reset token after `token=` / `key=` /
/// `tokenId=` (outside the demo file transport's own link line, which logs links on purpose).
pub fn secret_in_log(log: &str, admin_key: &str) -> Option<String> {
    let b64 = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let run_after = |line: &str, marker: &str| {
        line.match_indices(marker).any(|(at, _)| {
            line[at + marker.len()..]
                .chars()
                .take_while(|c| b64(*c))
                .count()
                >= 43
        })
    };
    log.lines()
        .filter(|l| !l.contains("file transport, demo"))
        .find(|l| {
            (!admin_key.is_empty() && l.contains(admin_key))
                || run_after(l, "rsd_")
                || TEST_PASSWORDS.iter().any(|p| l.contains(p))
                || ["token=", "key=", "tokenId=", "resetTokenId="]
                    .iter()
                    .any(|m| run_after(l, m))
        })
        .map(|l| l.chars().take(300).collect())
}

/// The `token=` value of the first link in a mail (quoted-printable soft breaks undone).
pub fn token_from_mail(mail: &str) -> String {
    let flat = mail
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    let at = flat.find("token=").expect("a link with token= in the mail");
    flat[at + 6..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}
