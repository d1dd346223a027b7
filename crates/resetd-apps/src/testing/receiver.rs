//! `tests/webhook/receiver.py`, a credential receiver independent of resetd's code (the reference
//! `standardwebhooks` library checks the signature, argon2-cffi and bcrypt the hash), and typed
//! calls to its control endpoints.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/webhook/receiver.py");

pub struct Receiver {
    child: Child,
    /// `http://127.0.0.1:<port>`; deliveries go to `{base}/hook`.
    pub base: String,
    /// The `whsec_` signing secret it verifies with.
    pub secret: String,
    pub http: reqwest::Client,
}

/// A random `whsec_` secret (24 bytes, the spec's minimum).
pub fn new_secret() -> String {
    use base64::Engine as _;
    let bytes = resetd_core::secret::random_bytes::<24>();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

fn missing(why: &str) -> Option<Receiver> {
    super::unavailable("the webhook receiver", why)
}

impl Receiver {
    /// Starts receiver.py on a free port with a new secret; `None` (after a notice) when it
    /// cannot run here.
    pub fn start() -> Option<Self> {
        let secret = new_secret();
        let spawned = Command::new("python3")
            .arg(SCRIPT)
            .env("WEBHOOK_SECRET", &secret)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => return missing(&format!("python3: {e}")),
        };
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("receiver.py's first line");
        let Some(port) = line.trim().strip_prefix("PORT ") else {
            let mut err = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
            }
            let _ = child.wait();
            return missing(&format!("receiver.py did not start: {}", err.trim()));
        };
        Some(Self {
            base: format!("http://127.0.0.1:{port}"),
            child,
            secret,
            http: reqwest::Client::new(),
        })
    }

    /// Where deliveries go.
    pub fn hook_url(&self) -> String {
        format!("{}/hook", self.base)
    }

    /// How `/hook` answers a verified delivery from now on: `{"status", "body", "content_type",
    /// "delay"}`, each optional (204, empty, text/plain, 0 s).
    pub async fn mode(&self, mode: Value) {
        let r = self
            .http
            .post(format!("{}/control/mode", self.base))
            .json(&mode)
            .send()
            .await;
        assert_eq!(r.expect("receiver's /control/mode").status(), 204);
    }

    /// Every request to `/hook` so far: `{"headers", "body", "verified"}`.
    pub async fn received(&self) -> Vec<Value> {
        let r = self
            .http
            .get(format!("{}/control/received", self.base))
            .send()
            .await
            .expect("receiver's /control/received");
        r.json::<Vec<Value>>().await.expect("a JSON list")
    }

    /// Whether the PHC string `hash` (Argon2id or bcrypt) verifies `password`.
    pub async fn hash_verifies(&self, hash: &str, password: &str) -> bool {
        let r = self
            .http
            .post(format!("{}/control/check", self.base))
            .json(&json!({ "hash": hash, "password": password }))
            .send()
            .await
            .expect("receiver's /control/check");
        r.json::<Value>().await.expect("JSON")["ok"]
            .as_bool()
            .expect("ok: a bool")
    }

    /// Stops it (by its PID): deliveries are refused from now on.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}
