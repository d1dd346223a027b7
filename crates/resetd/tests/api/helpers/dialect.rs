//! Helpers for the dialect contract tests: raw requests whose whole answer (status, headers,
//! body) can be compared, links read from the demo mail files, and the vendors' npm clients run
//! with `node --test` against the server a test started.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::helpers::config::TestConfig;
use crate::helpers::Server;

/// A server configuration: fast Argon2, no per-IP limits, then `sections` (TOML text; a
/// [`TestConfig`] says the same with typed calls).
pub fn config(sections: &str) -> String {
    TestConfig::fast().section(sections).toml().to_owned()
}

/// A whole answer: status, headers (without the ones that differ per request) and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    /// The value of header `name`, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// Sends a request with a raw body and returns the whole answer.
pub async fn send(
    s: &Server,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = s.http.request(method, s.url(path));
    if let Some(t) = content_type {
        req = req.header("content-type", t);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if !body.is_empty() {
        req = req.body(body.to_owned());
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let mut headers: Vec<(String, String)> = res
        .headers()
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "date" | "x-request-id"))
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("?").to_owned()))
        .collect();
    headers.sort();
    let body = res.text().await.unwrap();
    Answer {
        status,
        headers,
        body,
    }
}

/// POSTs a JSON text.
pub async fn post_json(s: &Server, path: &str, body: &str) -> Answer {
    send(s, "POST", path, Some("application/json"), body, &[]).await
}

/// A mail with quoted-printable soft breaks and `=3D` undone.
pub fn flat(mail: &str) -> String {
    mail.replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
}

/// The value that follows `marker` (e.g. `?key=`) in the first link of a mail.
pub fn link_param(mail: &str, marker: &str) -> String {
    let flat = flat(mail);
    let at = flat
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in the mail: {flat}"));
    flat[at + marker.len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "-_$".contains(*c))
        .collect()
}

/// The first line of a mail's text that starts with `http`, i.e. the link as sent.
pub fn first_link(mail: &str) -> String {
    flat(mail)
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("http://") || l.starts_with("https://"))
        .unwrap_or_else(|| panic!("no link in the mail: {mail}"))
        .to_owned()
}

/// Reset-link mails addressed to `recipient` so far.
pub fn reset_mails_to(s: &Server, recipient: &str) -> usize {
    s.mails()
        .iter()
        .filter(|(name, body)| {
            name.contains("reset_link") && body.contains(&format!("To: {recipient}"))
        })
        .count()
}

/// Logs in through the native API and returns the status.
pub async fn authenticate(s: &Server, tenant: &str, login: &str, password: &str) -> u16 {
    s.tenant(tenant, &s.key).auth_status(login, password).await
}

/// Disables a person of `default`.
pub async fn disable(s: &Server, id: &str) {
    assert_eq!(s.disable_person(id).await.status(), 200);
}

/// Waits until the reset worker and the mailer have acted on every request made so far: asks a
/// reset for a fresh sentinel person of `default` and waits for its mail (requests are resolved
/// oldest first, and mail is written in queue order).
pub async fn settle(s: &Server) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let login = format!("sentinel{n}");
    let email = format!("sentinel{n}@example.com");
    s.add_person(&login, &email, None).await;
    assert_eq!(s.request_reset(&login).await.status(), 202);
    s.wait_mails("reset_link", &email, 1).await;
}

/// Checks that `text` is a UUID.
pub fn is_uuid(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && parts.iter().all(|p| {
            p.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        })
}

/// Waits a little, for tests that need a token to expire.
pub async fn sleep_secs(secs: u64) {
    tokio::time::sleep(Duration::from_secs(secs)).await;
}

/// The directory of the vendor-client tests (`tests/vendor-clients`).
pub fn vendor_clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vendor-clients")
}

/// Runs `node --test <script>` in tests/vendor-clients with `env`, and fails the test when Node's
/// tests fail. Without Node or without the installed packages (`npm ci`, done by
/// scripts/test.sh) the test is skipped with a message, except on CI (`CI=true`), where it fails.
pub fn run_node(script: &str, env: &[(&str, String)]) {
    let dir = vendor_clients_dir();
    let on_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let node_ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let installed = dir.join("node_modules/@alfresco/js-api").exists()
        && dir.join("node_modules/@payabli/sdk-node").exists();
    if !node_ok || !installed {
        let why = if node_ok {
            "the npm packages are not installed (run `npm ci` in tests/vendor-clients)"
        } else {
            "node is not installed"
        };
        assert!(!on_ci, "CI=true and {why}");
        eprintln!("SKIPPED {script}: {why}; ./scripts/test.sh installs both");
        return;
    }
    let mut cmd = Command::new("node");
    cmd.args(["--test", "--test-reporter=tap", script])
        .current_dir(&dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "node --test {script} failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("# fail 0") && !stdout.contains("# pass 0"),
        "node ran no passing tests:\n{stdout}"
    );
}
