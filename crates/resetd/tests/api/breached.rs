//! The breached-password index end to end (issue 16 items 2 and 3): `resetd breached import` on a
//! generated corpus in the real download format, a password in it refused on the native API, the
//! hosted page and the EmpowerID dialect in each one's own wording, and the range endpoint
//! answering like Have I Been Pwned's.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use resetd_core::ports::password_sha1;
use resetd_core::types::Password;
use serde_json::{json, Value};

use crate::helpers::{cli, Server, BIN, FAST_ARGON, NO_LIMITS};

/// zxcvbn rates it well, so only the corpus refuses it.
const LEAKED: &str = "amber kettle nocturne 58";
const GOOD: &str = "violet tangerine orbit 7";
const BREACHED_MESSAGE: &str = "This password has appeared in a data breach; choose another one.";

fn sha1_hex(pw: &str) -> String {
    password_sha1(&Password::parse(pw).unwrap())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// Writes `lines` lines of `SHA1-HEX:COUNT` (CRLF, ordered by hash, as the download is): evenly
/// spread pseudo-random hashes with the known passwords' hashes merged in at their place.
fn write_corpus(path: &Path, lines: u64, known: &[(&str, u32)]) {
    let mut known: Vec<(String, u32)> = known.iter().map(|(p, c)| (sha1_hex(p), *c)).collect();
    known.sort();
    let mut known = known.into_iter().peekable();
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let filler = lines - known.len() as u64;
    let step = u128::MAX / u128::from(filler);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..filler {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // The first 128 bits step evenly (so they stay sorted); the last 32 are noise.
        let hi = step * u128::from(i) + u128::from(x) % step.max(1);
        let hash = format!("{hi:032X}{:08X}", x as u32);
        while known.peek().is_some_and(|(k, _)| *k < hash) {
            let (k, c) = known.next().unwrap();
            write!(out, "{k}:{c}\r\n").unwrap();
        }
        write!(out, "{hash}:{}\r\n", 1 + x % 1000).unwrap();
    }
    for (k, c) in known {
        write!(out, "{k}:{c}\r\n").unwrap();
    }
    out.flush().unwrap();
}

const KNOWN: &[(&str, u32)] = &[(LEAKED, 3), ("P@ssw0rd", 52579), ("Vt9#qLm2-Rw8xPz", 1)];

/// A data directory with the index imported at its default place and tenants `pub` (public
/// range) and `off` (no range) created, then a server on it.
fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus.txt");
    write_corpus(&corpus, 20_000, KNOWN);
    let out = cli(
        dir.path(),
        None,
        &["breached", "import", corpus.to_str().unwrap()],
        None,
    );
    assert!(out.contains("imported 20000 lines"), "{out}");
    assert!(dir.path().join("breached.idx").exists());
    cli(
        dir.path(),
        None,
        &["tenant", "add", "pub", "--breached-range", "public"],
        None,
    );
    cli(
        dir.path(),
        None,
        &["tenant", "add", "off", "--breached-range", "off"],
        None,
    );
    Server::start_in(
        dir,
        &format!(
            "{FAST_ARGON}{NO_LIMITS}[dialects.empowerid]\nenabled = true\ntenant = \"default\"\n"
        ),
    )
}

#[tokio::test]
async fn a_breached_password_is_refused_on_the_native_api() {
    let s = server();
    let id = s.add_person("mh", "mh@example.com", Some(GOOD)).await;
    let res = s
        .admin_post(
            &format!("/v1/default/people/{id}/password"),
            json!({"password": LEAKED}),
        )
        .await;
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["violations"][0]["code"], "breached", "{body}");
    assert_eq!(body["violations"][0]["message"], BREACHED_MESSAGE);
    // The check endpoint says so too, and a reset completion refuses it.
    let res = s
        .post("/v1/default/password/check", json!({"password": LEAKED}))
        .await;
    let v: Value = res.json().await.unwrap();
    assert_eq!(
        (v["ok"].clone(), v["violations"][0]["code"].clone()),
        (json!(false), json!("breached"))
    );
    let token = s.reset_token("mh", "mh@example.com", 1).await;
    let res = s
        .post(
            &format!("/v1/default/recovery/{token}"),
            json!({"password": "Vt9#qLm2-Rw8xPz"}),
        )
        .await;
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["violations"][0]["code"], "breached", "{body}");
    // Not in the corpus: accepted with the same token.
    let res = s
        .post(
            &format!("/v1/default/recovery/{token}"),
            json!({"password": "quiet harbour lantern 42"}),
        )
        .await;
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
}

#[tokio::test]
async fn a_breached_password_is_refused_on_the_hosted_page_in_its_wording() {
    let s = server();
    s.add_person("mh", "mh@example.com", None).await;
    let token = s.reset_token("mh", "mh@example.com", 1).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut cookies: Vec<String> = vec![];
    let mut keep = |res: &reqwest::Response| {
        for sc in res.headers().get_all("set-cookie") {
            let pair = sc.to_str().unwrap().split(';').next().unwrap().to_owned();
            let name = pair.split('=').next().unwrap().to_owned();
            cookies.retain(|c| !c.starts_with(&format!("{name}=")));
            cookies.push(pair);
        }
        cookies.join("; ")
    };
    let res = http
        .get(s.url(&format!("/reset/default?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let jar = keep(&res);
    let res = http
        .get(s.url("/reset/default"))
        .header("cookie", jar)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let jar = keep(&res);
    let csrf = jar
        .split("; ")
        .find_map(|c| c.strip_prefix("resetd_csrf="))
        .expect("a CSRF cookie")
        .to_owned();
    let res = http
        .post(s.url("/reset/default"))
        .header("cookie", jar)
        .header("origin", &s.base)
        .header("sec-fetch-site", "same-origin")
        .form(&[("password", LEAKED), ("confirm", LEAKED), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let body = res.text().await.unwrap();
    assert!(body.contains(BREACHED_MESSAGE), "{body}");
    assert!(!body.contains(LEAKED), "the password is never echoed");
}

#[tokio::test]
async fn a_breached_password_is_refused_by_empowerid_in_its_envelope() {
    let s = server();
    let res = s
        .admin_post("/v1/default/api-keys", json!({"name": "empowerid app"}))
        .await;
    assert_eq!(res.status(), 201);
    let app: Value = res.json().await.unwrap();
    let res = s
        .admin_post(
            "/v1/default/people",
            json!({"login": "jdoe", "email": "jdoe@example.com", "password": GOOD}),
        )
        .await;
    let person: Value = res.json().await.unwrap();
    let res = s
        .http
        .post(s.url("/api/services/v1/PasswordPolicy/ResetPassword"))
        .header("X-EmpowerID-API-Key", app["key"].as_str().unwrap())
        .bearer_auth(&s.key)
        .json(&json!({"PersonID": person["number"], "Password": LEAKED}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.text().await.unwrap(),
        format!(
            r#"{{"Success":false,"Message":"The password does not meet the password policy: {BREACHED_MESSAGE}","Exception":"PasswordPolicyViolation"}}"#
        )
    );
}

async fn range(
    s: &Server,
    tenant: &str,
    prefix: &str,
    key: Option<&str>,
    pad: bool,
) -> (u16, String, String) {
    let mut req = s
        .http
        .get(s.url(&format!("/v1/{tenant}/breached/range/{prefix}")));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    if pad {
        req = req.header("Add-Padding", "true");
    }
    let res = req.send().await.unwrap();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (res.status().as_u16(), ct, res.text().await.unwrap())
}

#[tokio::test]
async fn the_range_endpoint_answers_like_have_i_been_pwned() {
    let s = server();
    let full = sha1_hex("P@ssw0rd");
    assert_eq!(&full[..5], "21BD1");
    let (status, ct, body) = range(&s, "default", "21bd1", Some(&s.key), false).await;
    assert_eq!((status, ct.as_str()), (200, "text/plain; charset=utf-8"));
    let lines: Vec<&str> = body.split("\r\n").collect();
    assert!(
        lines.contains(&format!("{}:52579", &full[5..]).as_str()),
        "{body}"
    );
    for l in &lines {
        let (suffix, count) = l.split_once(':').unwrap();
        assert_eq!(suffix.len(), 35);
        assert!(suffix
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)));
        assert!(count.parse::<u32>().unwrap() > 0);
    }
    let mut sorted = lines.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, lines, "in hash order");

    // Padding: 800 to 1000 lines, the real ones kept, the rest with count 0, still in order.
    let (status, _, padded) = range(&s, "default", "21BD1", Some(&s.key), true).await;
    assert_eq!(status, 200);
    let plines: Vec<&str> = padded.split("\r\n").collect();
    assert!((800..=1000).contains(&plines.len()), "{}", plines.len());
    for l in &lines {
        assert!(plines.contains(l));
    }
    assert_eq!(
        plines.iter().filter(|l| l.ends_with(":0")).count(),
        plines.len() - lines.len()
    );
    let mut sorted = plines.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, plines);

    // An API key unless the tenant made it public; 404 where it is off.
    assert_eq!(range(&s, "default", "21BD1", None, false).await.0, 401);
    let (status, _, public) = range(&s, "pub", "21BD1", None, false).await;
    assert_eq!((status, public), (200, body));
    let (status, ct, _) = range(&s, "off", "21BD1", None, false).await;
    assert_eq!((status, ct.as_str()), (404, "application/problem+json"));

    // A bad prefix is a native problem.
    for bad in ["21BD", "21BD12", "21BDG", "%2021BD"] {
        let (status, ct, body) = range(&s, "pub", bad, None, false).await;
        assert_eq!(
            (status, ct.as_str()),
            (400, "application/problem+json"),
            "{bad}: {body}"
        );
        let p: Value = serde_json::from_str(&body).unwrap();
        assert!(
            p["type"].as_str().unwrap().ends_with("bad-hash-prefix"),
            "{p}"
        );
    }
}

/// Peak resident memory of `resetd breached import` over a 5-million-line corpus: bounded (it
/// streams), whatever the corpus' size.
#[tokio::test]
async fn importing_five_million_lines_runs_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus.txt");
    write_corpus(&corpus, 5_000_000, KNOWN);
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["breached", "import", corpus.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    let status = loop {
        // VmHWM is the high-water mark, so the last reading before exit is the peak.
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            if let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak_kib = peak_kib.max(kib);
            }
        }
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(status.success());
    let out = std::io::read_to_string(child.stdout.take().unwrap()).unwrap();
    assert!(out.contains("imported 5000000 lines"), "{out}");
    let corpus_bytes = std::fs::metadata(&corpus).unwrap().len();
    println!(
        "breached import: 5000000 lines ({corpus_bytes} bytes), peak RSS {peak_kib} KiB; {out}"
    );
    assert!(
        peak_kib > 0 && peak_kib < 64 * 1024,
        "peak RSS {peak_kib} KiB"
    );
}

#[tokio::test]
async fn a_login_with_a_breached_password_must_change_it_where_the_tenant_asks() {
    let dir = tempfile::tempdir().unwrap();
    // Two tenants whose people chose the same password before the corpus knew it.
    cli(
        dir.path(),
        None,
        &[
            "tenant",
            "add",
            "checks",
            "--breached-check-at-login",
            "true",
        ],
        None,
    );
    cli(dir.path(), None, &["tenant", "add", "trusts"], None);
    for tenant in ["checks", "trusts"] {
        cli(
            dir.path(),
            None,
            &[
                "person",
                "add",
                "--tenant",
                tenant,
                "--login",
                "ann",
                "--email",
                "ann@example.com",
                "--password-stdin",
            ],
            Some(LEAKED),
        );
    }
    let corpus = dir.path().join("corpus.txt");
    write_corpus(&corpus, 1_000, KNOWN);
    cli(
        dir.path(),
        None,
        &["breached", "import", corpus.to_str().unwrap()],
        None,
    );
    let s = Server::start_in(dir, &format!("{FAST_ARGON}{NO_LIMITS}"));

    let login = |tenant: &'static str| {
        let s = &s;
        async move {
            let res = s
                .post(
                    &format!("/v1/{tenant}/authenticate"),
                    json!({"login": "ann", "password": LEAKED}),
                )
                .await;
            assert_eq!(res.status(), 200, "{tenant}");
            res.json::<Value>().await.unwrap()["must_change_password"].clone()
        }
    };
    // The login succeeds either way; only the tenant that asks makes her change the password.
    assert_eq!(login("checks").await, json!(true));
    assert_eq!(login("trusts").await, json!(false));
    // Once told, she stays told, and the event is audited once.
    assert_eq!(login("checks").await, json!(true));
    let audit = cli(s.dir.path(), None, &["audit", "--tenant", "checks"], None);
    assert_eq!(audit.matches("breached_at_login").count(), 1, "{audit}");
    let audit = cli(s.dir.path(), None, &["audit", "--tenant", "trusts"], None);
    assert!(!audit.contains("breached_at_login"), "{audit}");
}
