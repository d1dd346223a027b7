//! A real SMTP server for the black-box tests: `scripts/smtp-test-server.py` (aiosmtpd) on a
//! loopback port, and a small reader for the messages it stores.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The server script.
pub const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../scripts/smtp-test-server.py"
);

/// The test CA and the server certificate it signed (for `localhost` and `127.0.0.1`).
pub fn tls_fixture(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/smtp-tls")
        .join(file)
}

/// Whether python3 with aiosmtpd is here. Missing on CI (`CI=true`) is a failure; elsewhere
/// the caller skips with a visible message.
pub fn available() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    let found = *FOUND.get_or_init(|| {
        Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    });
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "python3 with aiosmtpd is required on CI (scripts/test.sh installs it)"
        );
        eprintln!(
            "SKIPPED: python3 with aiosmtpd is not installed (python3 -m pip install aiosmtpd, or run ./scripts/test.sh)"
        );
    }
    found
}

/// How the test server behaves.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `none` (default), `starttls` or `implicit`.
    pub tls: Option<&'static str>,
    /// `USER:PASSWORD`: AUTH required.
    pub auth: Option<&'static str>,
    /// Replies to the first DATA commands, in order.
    pub data_replies: Vec<&'static str>,
    /// After `data_replies`: keep giving the last one (else accept).
    pub repeat_last: bool,
    /// Recipients matching this regex are refused with 550.
    pub reject_rcpt: Option<&'static str>,
}

/// One received message.
#[derive(Debug, Clone)]
pub struct Received {
    /// The raw message as it came over DATA.
    pub raw: String,
    /// Envelope and session facts: `mail_from`, `rcpt_tos`, `auth_user`, `tls`.
    pub meta: Value,
}

/// A running test SMTP server; killed on drop.
pub struct SmtpServer {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl SmtpServer {
    /// Starts a server on a port the OS picks.
    pub fn start(opts: &Options) -> SmtpServer {
        Self::start_on(0, opts)
    }

    /// Starts a server on `port` (0: any).
    pub fn start_on(port: u16, opts: &Options) -> SmtpServer {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("python3");
        cmd.arg(SCRIPT)
            .arg("--port")
            .arg(port.to_string())
            .arg("--dir")
            .arg(dir.path());
        if let Some(tls) = opts.tls {
            cmd.args(["--tls", tls])
                .arg("--cert")
                .arg(tls_fixture("server.pem"))
                .arg("--key")
                .arg(tls_fixture("server.key"));
        }
        if let Some(auth) = opts.auth {
            cmd.args(["--auth", auth]);
        }
        for r in &opts.data_replies {
            cmd.args(["--data-reply", r]);
        }
        if opts.repeat_last {
            cmd.args(["--then", "repeat"]);
        }
        if let Some(re) = opts.reject_rcpt {
            cmd.args(["--reject-rcpt", re]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn python3 scripts/smtp-test-server.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("LISTENING port=")
            .unwrap_or_else(|| panic!("the SMTP test server did not start: {line:?}"))
            .parse()
            .unwrap();
        SmtpServer { child, port, dir }
    }

    /// Every message stored so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".eml") && !n.starts_with('.'))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|n| {
                let raw = std::fs::read_to_string(self.dir.path().join(&n)).unwrap();
                let meta =
                    std::fs::read_to_string(self.dir.path().join(n.replace(".eml", ".json")))
                        .map(|m| serde_json::from_str(&m).unwrap())
                        .unwrap_or(Value::Null);
                Received { raw, meta }
            })
            .collect()
    }

    /// Waits (up to `secs`) until at least `n` messages arrived, and returns them all.
    pub async fn wait_received(&self, n: usize, secs: u64) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {n} messages arrived within {secs} s",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The server's answers to DATA and refused RCPTs, in order.
    pub fn transactions(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("transactions.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port that nothing listens on, and that nothing else in the suite will take while the
/// test holds it as a dead server's address.
///
/// Taken from below the kernel's ephemeral range: every server the suite starts binds port 0, which
/// the kernel picks from that range, so a port from here is never handed to another test's SMTP
/// server in the meantime (seen once: a "dead" port from `bind(0)` reused by a parallel test's
/// server, and a message meant to fail was sent). Tests that later start a server on it
/// (`SmtpServer::start_on`) get it back as they expect.
pub fn free_port() -> u16 {
    static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (from, to) = (low.saturating_sub(12_000).max(1024), low);
    let span = u32::from(to - from);
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        ^ std::process::id().rotate_left(16)
        ^ CALLS
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9);
    for _ in 0..1000 {
        // xorshift: spreads parallel callers over the range.
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let port = from + (seed % span) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port below {low}");
}

/// A parsed RFC 5322 message or MIME part: unfolded headers and the body.
#[derive(Debug, Clone)]
pub struct Mime {
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Mime {
    pub fn parse(raw: &str) -> Mime {
        let raw = raw.replace("\r\n", "\n");
        let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.lines() {
            if line.starts_with([' ', '\t']) {
                if let Some(last) = headers.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(line.trim());
                }
            } else if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        Mime {
            headers,
            body: body.to_owned(),
        }
    }

    /// The first header of that name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// How many headers of that name there are.
    pub fn count(&self, name: &str) -> usize {
        let name = name.to_ascii_lowercase();
        self.headers.iter().filter(|(k, _)| *k == name).count()
    }

    /// The parts of a multipart body.
    pub fn parts(&self) -> Vec<Mime> {
        let ct = self.header("content-type").expect("a content-type");
        let boundary = ct
            .split("boundary=")
            .nth(1)
            .expect("a boundary")
            .split(';')
            .next()
            .unwrap()
            .trim_matches('"');
        let delim = format!("--{boundary}");
        let mut parts = Vec::new();
        for chunk in self.body.split(&delim).skip(1) {
            if chunk.starts_with("--") {
                break;
            }
            parts.push(Mime::parse(chunk.trim_start_matches('\n')));
        }
        parts
    }

    /// The body with its transfer encoding undone (7bit, 8bit, quoted-printable or base64).
    pub fn decoded(&self) -> String {
        let enc = self
            .header("content-transfer-encoding")
            .unwrap_or("7bit")
            .to_ascii_lowercase();
        let bytes = match enc.as_str() {
            "quoted-printable" => qp_decode(&self.body),
            "base64" => base64_decode(&self.body),
            _ => self.body.clone().into_bytes(),
        };
        String::from_utf8(bytes).expect("utf-8 text")
    }
}

fn qp_decode(s: &str) -> Vec<u8> {
    let soft = s.replace("=\n", "");
    let b = soft.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn base64_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        let v = ALPHABET.iter().position(|a| *a == c).expect("base64") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}
