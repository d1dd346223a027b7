//! OpenTelemetry traces over OTLP/HTTP (issue 18 item 5), received by a real OTLP/HTTP receiver
//! (`scripts/otlp-receiver.py`, decoding the protobuf with PyPI's `opentelemetry-proto`): the
//! span tree (a request span parent of its store and hashing spans, a delivery span parent of
//! its SMTP span), the `OTEL_*` variables honoured, and no secret in any attribute. Also the JSON
//! log lines of `RESETD_LOG_FORMAT=json`.
#![cfg(feature = "otel")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::config::TestConfig;
use crate::helpers::smtp::{self, Options, SmtpServer};
use crate::helpers::{token_from_mail, Server};

const RECEIVER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../scripts/otlp-receiver.py"
);
const GOOD: &str = "violet tangerine orbit 7";
const NEW: &str = "quiet harbour lantern 9";
const SMTP_PASSWORD: &str = "smtp-pass-Xq7-traced";
/// A collector's bearer token, given in OTEL_EXPORTER_OTLP_HEADERS: a secret too.
const COLLECTOR_TOKEN: &str = "otlp-collector-token-4f9a";

/// Whether python3 can decode OTLP here; missing on CI (`CI=true`) is a failure.
fn available() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    let found = *FOUND.get_or_init(|| {
        Command::new("python3")
            .args([
                "-c",
                "from opentelemetry.proto.collector.trace.v1 import trace_service_pb2",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "python3 with opentelemetry-proto is required on CI (scripts/test.sh installs it)"
        );
        eprintln!("SKIPPED: python3 -m pip install opentelemetry-proto (or run ./scripts/test.sh)");
    }
    found
}

/// The receiver process, stopped by its PID on drop.
struct Receiver {
    child: Child,
    port: u16,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Receiver {
    fn start() -> Receiver {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("spans.jsonl");
        let mut child = Command::new("python3")
            .arg(RECEIVER)
            .arg(&out)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn python3 scripts/otlp-receiver.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("the OTLP receiver did not start: {line:?}"))
            .parse()
            .unwrap();
        Receiver {
            child,
            port,
            out,
            _dir: dir,
        }
    }

    fn spans(&self) -> Vec<Value> {
        read_lines(&self.out)
    }

    /// Waits until a span satisfies `found` (the batch exporter sends every 100 ms here).
    async fn wait_for(&self, what: &str, found: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let spans = self.spans();
            if found(&spans) {
                return spans;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} among the spans received: {:#?}",
                spans.iter().map(|s| &s["name"]).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn named<'a>(spans: &'a [Value], name: &str) -> Vec<&'a Value> {
    spans.iter().filter(|s| s["name"] == name).collect()
}

fn children<'a>(spans: &'a [Value], parent: &Value) -> Vec<&'a Value> {
    spans
        .iter()
        .filter(|s| s["parent_span_id"] == parent["span_id"] && s["trace_id"] == parent["trace_id"])
        .collect()
}

fn child_names(spans: &[Value], parent: &Value) -> Vec<String> {
    children(spans, parent)
        .iter()
        .map(|s| s["name"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn spans_reach_an_otlp_http_receiver_as_a_tree_without_secrets() {
    if !available() || !smtp::available() {
        return;
    }
    let receiver = Receiver::start();
    let mta = SmtpServer::start(&Options {
        auth: Some("mailer:smtp-pass-Xq7-traced"),
        ..Default::default()
    });
    let endpoint = format!("http://127.0.0.1:{}", receiver.port);
    let headers = format!("authorization=Bearer {COLLECTOR_TOKEN}");
    let config = TestConfig::fast()
        .smtp(mta.port, "Acme Accounts <accounts@acme.example>")
        .smtp_set("tls", "none")
        .smtp_set("username", "mailer")
        .smtp_set("password", SMTP_PASSWORD)
        .smtp_set("timeout_secs", 5u64)
        .quick_retries(20);
    let s = Server::start_env(
        tempfile::tempdir().unwrap(),
        config.toml(),
        "info",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_HEADERS", headers.as_str()),
            ("OTEL_SERVICE_NAME", "resetd-under-test"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("RESETD_LOG_FORMAT", "json"),
        ],
    );

    // A person with a password (hashing), a reset by email (store, then SMTP in the mail
    // worker), its completion through a path holding the token, and a login (verify).
    s.add_person("jane", "jane@example.com", Some(GOOD)).await;
    assert_eq!(s.request_reset("jane").await.status(), 202);
    let got = mta.wait_received(1, 15).await;
    let token = token_from_mail(&got[0].raw);
    let done = s.complete_reset(&token, NEW).await;
    assert!(done.status().is_success(), "{}", done.text().await.unwrap());
    assert_eq!(s.auth_status("jane", NEW).await, 200);

    let complete = "POST /v1/{tenant}/recovery/{token}";
    let spans = receiver
        .wait_for("completed reset, login and SMTP spans", |spans| {
            !named(spans, complete).is_empty()
                && !named(spans, "POST /v1/{tenant}/authenticate").is_empty()
                && !named(spans, "smtp.send").is_empty()
        })
        .await;

    // The exporter used the collector's header and the service name from the environment.
    assert!(spans
        .iter()
        .all(|sp| sp["resource"]["service.name"] == "resetd-under-test"));
    assert_eq!(
        spans[0]["headers"]["authorization"],
        format!("Bearer {COLLECTOR_TOKEN}")
    );

    // Creating a person: a server span with the route template, its status, a request id, and
    // children for hashing the password and for the store.
    let create = named(&spans, "POST /v1/{tenant}/people");
    assert_eq!(create.len(), 1, "{create:#?}");
    let create = create[0];
    assert_eq!(create["kind"], 2, "SPAN_KIND_SERVER");
    assert_eq!(create["attributes"]["http.route"], "/v1/{tenant}/people");
    assert_eq!(create["attributes"]["http.response.status_code"], 201);
    assert!(create["attributes"]["request_id"]
        .as_str()
        .is_some_and(|id| !id.is_empty()));
    assert_eq!(create["parent_span_id"], "", "a request span is a root");
    let names = child_names(&spans, create);
    assert!(names.iter().any(|n| n == "hash"), "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("store.")), "{names:?}");
    let hash = children(&spans, create)
        .into_iter()
        .find(|c| c["name"] == "hash" && c["attributes"]["hash.op"] == "hash");
    assert!(hash.is_some(), "no hash span for the new password");

    // Completing the reset: named by the template, never the token; it hashes and writes.
    let completed = named(&spans, complete)[0];
    assert_eq!(
        completed["attributes"]["http.route"],
        "/v1/{tenant}/recovery/{token}"
    );
    let names = child_names(&spans, completed);
    assert!(names.iter().any(|n| n == "hash"), "{names:?}");
    assert!(names.iter().any(|n| n == "store.write"), "{names:?}");
    let store = children(&spans, completed)
        .into_iter()
        .find(|c| c["name"] == "store.write")
        .unwrap();
    assert_eq!(store["attributes"]["db.system.name"], "sqlite");

    // The login verifies the password on the hashing pool.
    let login = named(&spans, "POST /v1/{tenant}/authenticate")[0];
    assert!(children(&spans, login)
        .iter()
        .any(|c| c["name"] == "hash" && c["attributes"]["hash.op"] == "verify"));

    // The email: one delivery span of the mail worker, parent of the SMTP exchange.
    let smtp = named(&spans, "smtp.send")[0];
    let delivery: Vec<&Value> = spans
        .iter()
        .filter(|sp| sp["span_id"] == smtp["parent_span_id"])
        .collect();
    assert_eq!(
        delivery.len(),
        1,
        "the SMTP span has no parent among {spans:#?}"
    );
    assert_eq!(delivery[0]["name"], "outbox.deliver");
    assert_eq!(delivery[0]["attributes"]["email.kind"], "reset_link");

    // No polling noise: every span belongs to a request or a delivery.
    for sp in &spans {
        let name = sp["name"].as_str().unwrap();
        if sp["parent_span_id"] == "" {
            assert!(
                name == "outbox.deliver" || name.starts_with("POST ") || name.starts_with("GET "),
                "an unexpected root span {name}"
            );
        }
    }

    // No secret anywhere in what was exported (headers are the receiver's view, not spans).
    let mut exported = spans.clone();
    for sp in &mut exported {
        sp.as_object_mut().unwrap().remove("headers");
    }
    let text = serde_json::to_string(&exported).unwrap();
    for secret in [
        token.as_str(),
        GOOD,
        NEW,
        SMTP_PASSWORD,
        COLLECTOR_TOKEN,
        s.key.as_str(),
    ] {
        assert!(
            !text.contains(secret),
            "a secret in the exported spans: {secret}"
        );
    }
    assert!(!text.contains("rsd_"), "an API key in the exported spans");

    // The JSON log: one object per line, the request line with its fields, and neither the
    // collector's token nor any other secret (the harness scans for those on drop).
    let log = s.log();
    assert!(!log.contains(COLLECTOR_TOKEN));
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let request = lines
        .iter()
        .find(|l| l["message"] == "request" && l["route"] == "/v1/{tenant}/recovery/{token}")
        .unwrap_or_else(|| panic!("no JSON request line for the completion: {log}"));
    assert_eq!(request["level"], "INFO");
    assert_eq!(request["method"], "POST");
    assert!(request["status"]
        .as_u64()
        .is_some_and(|c| (200..300).contains(&c)));
    assert!(request["micros"].as_u64().is_some());
    assert!(request["request_id"]
        .as_str()
        .is_some_and(|id| !id.is_empty()));
    assert!(request["timestamp"].as_str().is_some());
}

#[tokio::test]
async fn with_otel_traces_exporter_none_nothing_is_sent() {
    if !available() {
        return;
    }
    let receiver = Receiver::start();
    let endpoint = format!("http://127.0.0.1:{}", receiver.port);
    let s = Server::start_env(
        tempfile::tempdir().unwrap(),
        TestConfig::fast().toml(),
        "info",
        &[
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                &format!("{endpoint}/v1/traces"),
            ),
            ("OTEL_TRACES_EXPORTER", "none"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    s.add_person("jane", "jane@example.com", Some(GOOD)).await;
    assert_eq!(s.auth_status("jane", GOOD).await, 200);
    // Ten batch delays: a span would have been sent by now.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(receiver.spans().is_empty(), "{:#?}", receiver.spans());
}
