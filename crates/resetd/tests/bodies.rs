//! Request bodies on every surface at once, against the real binary (issue 13, items 6 and 8):
//! a corpus of malformed bodies on every endpoint that reads one, and slow bodies (declared but
//! short, or trickled chunk by chunk) on each surface. Each answer must be the surface's own
//! error (problem+json, the page's HTML, each vendor's body), a 4xx for bad bodies and a 408 for
//! slow ones, never a 5xx, and never serde's or Rust's words.
//!
//! Every endpoint that reads a body is one row of [`endpoints`]; a new one is one more row.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Server, FAST_ARGON, NO_LIMITS};
use serde_json::{json, Value};

/// A password used in the bodies; no answer may repeat it.
const SECRET: &str = "quartz-meadow-secret-91";
const PEOPLE: &str = "/alfresco/api/-default-/public/alfresco/versions/1/people";
const CRAFTER: &str = "/crafter-profile/api/1/profile";

/// Words that only Rust, serde or axum would write. None may reach a client.
const FORBIDDEN: &[&str] = &[
    "expected struct",
    "invalid type",
    "invalid value",
    "unknown variant",
    "variant",
    "at line ",
    "EOF while",
    "Failed to deserialize",
    "deserialize",
    "serde",
    "u64",
    "u32",
    "usize",
    "i64",
    "Option",
    "resetd_",
    "::",
    "struct ",
];

/// The error shape of each surface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Problem,
    Html,
    Alfresco,
    Unleash,
    Payabli,
    Crafter,
    EmpowerId,
}

/// How an endpoint takes its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Json,
    Form,
}

/// The JSON type a field takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Str,
    Bool,
    Int,
    StrList,
    Object,
}

/// One body field: name, type, and whether `null` is refused (required fields).
type Field = (&'static str, Ty, bool);

/// One endpoint that reads a body.
struct Endpoint {
    shape: Shape,
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    kind: Kind,
    /// A body of the right form (JSON object, or form pairs) that the mutations start from.
    template: Value,
    fields: Vec<Field>,
    /// Numbers and booleans are read as strings (Alfresco, as Jackson binds a `String`).
    coerces_scalars: bool,
    /// Unknown fields are refused (otherwise ignored, as the vendor does).
    refuses_unknown: bool,
}

/// The server with every surface on, and what the endpoints need.
struct World {
    s: Server,
    /// An admin key of `default`, also allow-listed for Payabli.
    app_key: String,
    person_id: String,
}

/// Creates an API key of `default` through the admin API; returns (id, key).
async fn api_key(s: &Server, name: &str) -> (String, String) {
    let res = s
        .admin_post("/v1/default/api-keys", json!({ "name": name }))
        .await;
    assert_eq!(res.status(), 201);
    let v: Value = res.json().await.unwrap();
    (
        v["id"].as_str().unwrap().to_owned(),
        v["key"].as_str().unwrap().to_owned(),
    )
}

/// One server with the native API, the page and all five dialects; `http` is extra `[http]`
/// settings.
async fn world(http: &str) -> World {
    let base = format!("{FAST_ARGON}{NO_LIMITS}{http}");
    let first = Server::start(&base);
    let admin = first.key.clone();
    let (app_id, app_key) = api_key(&first, "apps").await;
    let person_id = first
        .add_person(
            "bodies",
            "bodies@example.com",
            Some("violet tangerine orbit 7"),
        )
        .await;
    let dir = first.stop();
    let mut s = Server::start_in(
        dir,
        &format!(
            "{base}\
             [dialects.alfresco]\nenabled = true\ntenant = \"default\"\nnetwork = \"-default-\"\n\
             [dialects.alfresco.clients.share]\n\
             reset_password_page_url = \"https://share.example.com/share/page/reset-password\"\n\
             [dialects.unleash]\nenabled = true\ntenant = \"default\"\n\
             unleash_url = \"https://unleash.example.com/\"\n\
             [dialects.payabli]\nenabled = true\ntenant = \"default\"\nrequest_tokens = [\"{app_id}\"]\n\
             [dialects.crafter]\nenabled = true\ntenant = \"default\"\n\
             [dialects.empowerid]\nenabled = true\ntenant = \"default\"\n"
        ),
    );
    s.key = admin;
    World {
        s,
        app_key,
        person_id,
    }
}

/// Every endpoint that reads a body, from the routers: native (`native::routes`), the page
/// (`page::routes`) and each dialect's `routes`. (The people import streams rows and reports
/// each bad row in its 200 answer; `import.rs` tests it.)
fn endpoints(w: &World) -> Vec<Endpoint> {
    use Shape::*;
    use Ty::*;
    let admin = || vec![("authorization", format!("Bearer {}", w.s.key))];
    let id = &w.person_id;
    let token = "A".repeat(43);
    let json = |shape, path: String, headers, template: Value, fields: Vec<Field>| Endpoint {
        shape,
        method: "POST",
        path,
        headers,
        kind: Kind::Json,
        template,
        fields,
        coerces_scalars: false,
        refuses_unknown: shape == Problem || shape == Unleash,
    };
    let mut all = vec![
        // ---- native
        json(
            Problem,
            "/v1/default/recovery".into(),
            vec![],
            json!({"login": "nobody", "email": null, "client": null, "locale": null}),
            vec![
                ("login", Str, true),
                ("email", Str, false),
                ("client", Str, false),
                ("locale", Str, false),
            ],
        ),
        json(
            Problem,
            format!("/v1/default/recovery/{token}"),
            vec![],
            json!({"password": SECRET}),
            vec![("password", Str, true)],
        ),
        json(
            Problem,
            "/v1/default/password/check".into(),
            vec![],
            json!({"password": SECRET, "login": "nobody"}),
            vec![("password", Str, true), ("login", Str, false)],
        ),
        json(
            Problem,
            "/v1/default/authenticate".into(),
            vec![],
            json!({"login": "nobody", "password": SECRET}),
            vec![("login", Str, true), ("password", Str, true)],
        ),
        json(
            Problem,
            "/v1/default/people".into(),
            admin(),
            json!({"login": "newbody", "email": "newbody@example.com", "display_name": "N",
                   "locale": "en", "enabled": true, "verified": false, "roles": ["a"],
                   "attributes": {}, "password": SECRET}),
            vec![
                ("login", Str, true),
                ("email", Str, true),
                ("display_name", Str, false),
                ("locale", Str, false),
                ("enabled", Bool, true),
                ("verified", Bool, true),
                ("roles", StrList, true),
                ("attributes", Object, false),
                ("password", Str, false),
            ],
        ),
        Endpoint {
            method: "PATCH",
            ..json(
                Problem,
                format!("/v1/default/people/{id}"),
                admin(),
                json!({"email": "b@example.com", "display_name": "B", "locale": "en",
                       "enabled": true, "verified": true, "roles": [], "attributes": {}}),
                vec![
                    ("email", Str, false),
                    ("display_name", Str, false),
                    ("locale", Str, false),
                    ("enabled", Bool, false),
                    ("verified", Bool, false),
                    ("roles", StrList, false),
                    ("attributes", Object, false),
                ],
            )
        },
        json(
            Problem,
            format!("/v1/default/people/{id}/password"),
            admin(),
            json!({"password": SECRET, "unlock": false, "must_change_password": false}),
            vec![
                ("password", Str, true),
                ("unlock", Bool, true),
                ("must_change_password", Bool, true),
            ],
        ),
        json(
            Problem,
            "/v1/default/api-keys".into(),
            admin(),
            json!({"name": "k", "scopes": ["admin"]}),
            vec![("name", Str, true), ("scopes", StrList, true)],
        ),
        json(
            Problem,
            "/v1/default/clients".into(),
            admin(),
            json!({"name": "c", "link_template": "https://c.example.com/r?t={token}", "allowed_prefixes": []}),
            vec![
                ("name", Str, true),
                ("link_template", Str, true),
                ("allowed_prefixes", StrList, true),
            ],
        ),
        // ---- Alfresco
        Endpoint {
            coerces_scalars: true,
            ..json(
                Alfresco,
                format!("{PEOPLE}/nobody/request-password-reset"),
                vec![],
                json!({"client": "share"}),
                vec![("client", Str, true)],
            )
        },
        Endpoint {
            coerces_scalars: true,
            ..json(
                Alfresco,
                format!("{PEOPLE}/nobody/reset-password"),
                vec![],
                json!({"password": SECRET, "id": "activiti$1", "key": token}),
                vec![
                    ("password", Str, true),
                    ("id", Str, true),
                    ("key", Str, true),
                ],
            )
        },
        // ---- Unleash
        json(
            Unleash,
            "/auth/reset/password-email".into(),
            vec![],
            json!({"email": "nobody@example.com"}),
            vec![("email", Str, true)],
        ),
        json(
            Unleash,
            "/auth/reset/password".into(),
            vec![],
            json!({"token": token, "password": SECRET}),
            vec![("token", Str, true), ("password", Str, true)],
        ),
        json(
            Unleash,
            "/auth/reset/validate-password".into(),
            vec![],
            json!({"password": SECRET}),
            vec![("password", Str, true)],
        ),
        // ---- Payabli
        json(
            Payabli,
            "/api/User/authreset".into(),
            vec![("requestToken", w.app_key.clone())],
            json!({"email": "nobody@example.com", "entry": "pp1", "entryType": 2}),
            vec![
                ("email", Str, true),
                ("entry", Str, false),
                ("entryType", Int, false),
            ],
        ),
    ];
    // ---- EmpowerID, on both of its paths
    for path in ["PasswordPolicy/ResetPassword", "password/reset"] {
        all.push(json(
            EmpowerId,
            format!("/api/services/v1/{path}"),
            vec![
                ("X-EmpowerID-API-Key", w.app_key.clone()),
                ("authorization", format!("Bearer {}", w.app_key)),
            ],
            json!({"PersonID": 999999, "Password": SECRET, "UnlockAccounts": false,
                   "MustChangePasswordOnNextLogin": false}),
            vec![
                ("PersonID", Int, true),
                ("Password", Str, true),
                ("UnlockAccounts", Bool, false),
                ("MustChangePasswordOnNextLogin", Bool, false),
            ],
        ));
    }
    // ---- form bodies: the page and Crafter Profile
    let form = |shape, path: String, template: Value| Endpoint {
        shape,
        method: "POST",
        path,
        headers: vec![],
        kind: Kind::Form,
        template,
        fields: vec![],
        coerces_scalars: true,
        refuses_unknown: false,
    };
    let oid = "0123456789abcdef01234567";
    all.extend([
        form(
            Html,
            "/reset/default".into(),
            json!({"password": SECRET, "confirm": SECRET, "csrf": "x"}),
        ),
        form(
            Html,
            "/forgot/default".into(),
            json!({"login": "nobody", "csrf": "x"}),
        ),
        form(
            Crafter,
            format!("{CRAFTER}/{oid}/reset_password"),
            json!({"accessTokenId": w.app_key, "resetPasswordUrl": "https://evil.example.com/"}),
        ),
        form(
            Crafter,
            format!("{CRAFTER}/change_password"),
            json!({"accessTokenId": w.app_key, "resetTokenId": token, "newPassword": SECRET}),
        ),
        form(
            Crafter,
            format!("{CRAFTER}/verification_token/{token}/delete"),
            json!({"accessTokenId": w.app_key}),
        ),
    ]);
    all
}

/// One malformed body: a name for messages, the content type (`None`: no header) and the bytes.
struct Case {
    name: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

fn case(
    name: impl Into<String>,
    content_type: Option<&'static str>,
    body: impl Into<Vec<u8>>,
) -> Case {
    Case {
        name: name.into(),
        content_type,
        body: body.into(),
    }
}

/// Values of the wrong JSON type for `ty` (as the surface reads it).
fn wrong_values(ty: Ty, coerces: bool) -> Vec<Value> {
    let mut v = vec![json!([]), json!({}), json!({"a": {"b": [1, {"c": null}]}})];
    match ty {
        Ty::Str => {
            if !coerces {
                v.extend([
                    json!(5),
                    json!(true),
                    json!(1.5e300),
                    json!(-12345678901234567890i128 as f64),
                ]);
            }
            v.push(json!(["x"]));
        }
        Ty::Bool => v.extend([json!("yes"), json!(5), json!([true])]),
        Ty::Int => v.extend([json!("x"), json!(1.5), json!(true), json!([2])]),
        Ty::StrList => {
            v.retain(|x| !x.is_array());
            v.extend([
                json!("x"),
                json!(5),
                json!([5]),
                json!([null]),
                json!([["x"]]),
            ]);
        }
        Ty::Object => {
            v.retain(|x| !x.is_object());
            v.extend([json!("x"), json!(5), json!([1])]);
        }
    }
    v
}

/// The malformed bodies for `e`.
fn corpus(e: &Endpoint) -> Vec<Case> {
    const JSON: Option<&str> = Some("application/json");
    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");
    let mut out = Vec::new();
    match e.kind {
        Kind::Json => {
            let t = e.template.to_string();
            for (name, body) in [
                ("null", "null".to_owned()),
                ("an empty array", "[]".to_owned()),
                ("the object in an array", format!("[{t}]")),
                ("a string", "\"text\"".to_owned()),
                ("a number", "5".to_owned()),
                ("true", "true".to_owned()),
                ("a huge number", "1e999".to_owned()),
                (
                    "a huge integer",
                    "123456789012345678901234567890".to_owned(),
                ),
                ("an open brace", "{".to_owned()),
                ("truncated", t[..t.len() / 2].to_owned()),
                ("a trailing brace", format!("{t}}}")),
                ("two values", format!("{t} {t}")),
                ("single quotes", "{'login': 'x'}".to_owned()),
                ("a bare key", "{login: 1}".to_owned()),
                ("a trailing comma", "{\"a\": 1,}".to_owned()),
                ("a bad escape", "{\"a\": \"\\q\"}".to_owned()),
                ("a control character", "{\"a\": \"\u{1}\"}".to_owned()),
                (
                    "deep nesting",
                    format!("{}1{}", "[".repeat(300), "]".repeat(300)),
                ),
                (
                    "deep nesting in an object",
                    format!("{{\"a\":{}1{}}}", "[".repeat(300), "]".repeat(300)),
                ),
                ("whitespace only", "  \n ".to_owned()),
                ("nul", "nul".to_owned()),
            ] {
                out.push(case(name, JSON, body));
            }
            out.push(case("empty", JSON, ""));
            out.push(case(
                "invalid UTF-8 in a string",
                JSON,
                [&b"{\"a\": \"\xff\xfe\"}"[..]].concat(),
            ));
            out.push(case("invalid UTF-8 bytes", JSON, &b"\xff\xfe\xfd"[..]));
            out.push(case(
                "UTF-16",
                JSON,
                t.encode_utf16()
                    .flat_map(u16::to_le_bytes)
                    .collect::<Vec<u8>>(),
            ));
            out.push(case("text/plain", Some("text/plain"), t.clone()));
            out.push(case("no content type", None, t.clone()));
            out.push(case("a form", FORM, "login=x&password=y"));
            out.push(case(
                "too large",
                JSON,
                format!("{{\"a\": \"{}\"}}", "x".repeat(70_000)),
            ));
            for (field, ty, required) in &e.fields {
                let mut bad = wrong_values(*ty, e.coerces_scalars);
                if *required {
                    bad.push(Value::Null);
                }
                for v in bad {
                    let mut body = e.template.clone();
                    body[*field] = v.clone();
                    out.push(case(format!("{field} = {v}"), JSON, body.to_string()));
                }
                // A duplicate key whose last value is wrong: refused both where the first wins
                // and where the last wins (as the vendors' parsers do).
                let dup = format!("{}, \"{field}\": [{{}}]}}", t.trim_end_matches('}'));
                out.push(case(format!("{field} twice, the last wrong"), JSON, dup));
                // The native API refuses any duplicate, even of a good value: two readers of one
                // body must never see two different requests.
                if e.shape == Shape::Problem {
                    let dup = format!(
                        "{}, \"{field}\": {}}}",
                        t.trim_end_matches('}'),
                        e.template[*field]
                    );
                    out.push(case(format!("{field} twice"), JSON, dup));
                }
            }
            if e.refuses_unknown {
                let mut body = e.template.clone();
                body["surprise"] = json!(1);
                out.push(case("an unknown field", JSON, body.to_string()));
            }
        }
        Kind::Form => {
            out.push(case("JSON", JSON, e.template.to_string()));
            out.push(case("text/plain", Some("text/plain"), "a=b"));
            out.push(case("no content type", None, "a=b"));
            out.push(case("too large", FORM, format!("a={}", "x".repeat(70_000))));
            out.push(case("invalid UTF-8", FORM, &b"a=\xff\xfe&csrf=%ff"[..]));
            out.push(case("a broken escape", FORM, "a=%&b=%z1&c=%"));
            out.push(case("brackets", FORM, "a[b][c]=d&a[]=e"));
            out.push(case("binary", FORM, (0u8..=255).collect::<Vec<u8>>()));
            out.push(case("empty", FORM, ""));
            let pairs: Vec<String> = e
                .template
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect();
            // The page refuses duplicates; Crafter takes the first, as Spring does (not malformed).
            if e.shape == Shape::Html {
                let dup = pairs
                    .iter()
                    .chain(pairs.iter())
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("&");
                out.push(case("every field twice", FORM, dup));
            }
        }
    }
    out
}

/// Checks that `body` is `shape`'s error body for `status`; returns why not.
fn check_shape(
    shape: Shape,
    status: u16,
    content_type: Option<&str>,
    body: &str,
) -> Result<(), String> {
    let ct = content_type.unwrap_or("");
    let want_ct = match shape {
        Shape::Problem => "application/problem+json",
        Shape::Html => "text/html; charset=utf-8",
        Shape::Alfresco => "application/json;charset=UTF-8",
        Shape::Unleash | Shape::Payabli | Shape::EmpowerId => "application/json; charset=utf-8",
        Shape::Crafter => "application/json",
    };
    if ct != want_ct {
        return Err(format!("content type {ct:?}, not {want_ct:?}"));
    }
    if shape == Shape::Html {
        return if body.starts_with("<!DOCTYPE html>") {
            Ok(())
        } else {
            Err("not an HTML page".into())
        };
    }
    let v: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let s = |p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .is_some_and(|t| !t.is_empty())
    };
    let n = |p: &str| v.pointer(p).and_then(Value::as_u64) == Some(u64::from(status));
    let ok = match shape {
        Shape::Problem => {
            v["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("urn:resetd:problem:"))
                && n("/status")
                && s("/title")
                && s("/detail")
        }
        Shape::Alfresco => {
            s("/error/errorKey")
                && n("/error/statusCode")
                && s("/error/briefSummary")
                && s("/error/stackTrace")
                && s("/error/descriptionURL")
                && s("/error/logId")
        }
        Shape::Unleash => {
            s("/name") && s("/message") && v["details"].as_array().is_some_and(|d| !d.is_empty())
        }
        Shape::Payabli => {
            v["isSuccess"] == false
                && n("/responseCode")
                && s("/responseText")
                && s("/responseData/explanation")
                && s("/responseData/todoAction")
        }
        Shape::Crafter => s("/errorCode") && s("/message"),
        Shape::EmpowerId => v["Success"] == false && s("/Message") && s("/Exception"),
        Shape::Html => unreachable!(),
    };
    if ok {
        Ok(())
    } else {
        Err("not the surface's error body".into())
    }
}

/// The forbidden words `text` holds.
fn forbidden_in(text: &str) -> Vec<&'static str> {
    let mut found: Vec<&str> = FORBIDDEN
        .iter()
        .copied()
        .filter(|w| text.contains(w))
        .collect();
    // serde_json's position, whatever words come before it.
    for (i, _) in text.match_indices("line ") {
        let rest = &text[i + 5..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && rest[digits..].starts_with(" column ") {
            found.push("line N column M");
        }
    }
    found
}

#[tokio::test]
async fn malformed_bodies_on_every_endpoint_get_the_surfaces_own_4xx_without_internal_words() {
    let started = Instant::now();
    let w = world("").await;
    let endpoints = endpoints(&w);
    let mut failures = Vec::new();
    let mut count = 0;
    for e in &endpoints {
        for c in corpus(e) {
            count += 1;
            let method = reqwest::Method::from_bytes(e.method.as_bytes()).unwrap();
            let mut req =
                w.s.http
                    .request(method, w.s.url(&e.path))
                    .body(c.body.clone());
            if let Some(t) = c.content_type {
                req = req.header("content-type", t);
            }
            for (k, v) in &e.headers {
                req = req.header(*k, v);
            }
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            let ct = res
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned());
            let text = res.text().await.unwrap();
            let mut wrong = Vec::new();
            if !(400..500).contains(&status) {
                wrong.push(format!("status {status}"));
            }
            if let Err(why) = check_shape(e.shape, status, ct.as_deref(), &text) {
                wrong.push(why);
            }
            let words = forbidden_in(&text);
            if !words.is_empty() {
                wrong.push(format!("says {words:?}"));
            }
            if text.contains(SECRET) {
                wrong.push("repeats the password".into());
            }
            if !wrong.is_empty() {
                failures.push(format!(
                    "{} {} [{}]: {}\n    {}",
                    e.method,
                    e.path,
                    c.name,
                    wrong.join("; "),
                    text.chars().take(400).collect::<String>()
                ));
            }
        }
    }
    println!(
        "{count} malformed bodies on {} endpoints in {:?}",
        endpoints.len(),
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} of {count} answers were wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Nothing was created by any of them, and the service still works.
    let found: Value =
        w.s.http
            .get(w.s.url("/v1/default/people?login=newbody"))
            .bearer_auth(&w.s.key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(found["items"], json!([]));
    assert_eq!(
        w.s.post("/v1/default/recovery", json!({"login": "bodies"}))
            .await
            .status(),
        202
    );
}

// ---- slow bodies ------------------------------------------------------------------------------

/// How a slow client sends its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slow {
    /// Declares `Content-Length: 100`, sends 10 bytes, then nothing.
    Short,
    /// Sends a chunked body one byte every 300 ms, never ending it.
    Trickle,
}

/// What a slow client got back.
#[derive(Debug)]
struct SlowAnswer {
    status: u16,
    /// From the end of the head to the first byte of the answer.
    took: Duration,
    headers: Vec<(String, String)>,
    body: String,
    /// The server closed the connection after its answer.
    closed: bool,
}

impl SlowAnswer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A request to a surface's endpoint whose body is `body` (never sent in full).
#[derive(Clone)]
struct SlowCase {
    shape: Shape,
    path: String,
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
    body: String,
    /// Also sent as a trickle (the people import has an idle limit, not a deadline: a
    /// trickle is a slow import, not a stalled one).
    trickle: bool,
}

/// Sends `c` slowly to `addr` and reads the answer (up to 25 s).
fn slow_request(addr: &str, c: &SlowCase, mode: Slow) -> SlowAnswer {
    let mut conn = TcpStream::connect(addr).unwrap();
    let framing = match mode {
        Slow::Short => "Content-Length: 100".to_owned(),
        Slow::Trickle => "Transfer-Encoding: chunked".to_owned(),
    };
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nContent-Type: {}\r\n{framing}\r\n",
        c.path, c.content_type
    );
    for (k, v) in &c.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    // Padding first, so that the real body never arrives whole.
    let padded = if c.content_type.contains("json") {
        format!("{}{}", " ".repeat(1000), c.body)
    } else {
        format!("pad={}&{}", "x".repeat(1000), c.body)
    };
    conn.write_all(head.as_bytes()).unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    let mut first: Option<Duration> = None;
    let mut buf = [0u8; 8192];
    let mut closed = false;
    match mode {
        Slow::Short => conn.write_all(&padded.as_bytes()[..10]).unwrap(),
        Slow::Trickle => {
            conn.set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            for b in padded.bytes() {
                let _ = conn.write_all(format!("1\r\n{}\r\n", b as char).as_bytes());
                match conn.read(&mut buf) {
                    Ok(0) => {
                        closed = true;
                        break;
                    }
                    Ok(n) => {
                        first.get_or_insert(started.elapsed());
                        got.extend_from_slice(&buf[..n]);
                        break;
                    }
                    Err(_) if started.elapsed() > Duration::from_secs(25) => break,
                    Err(_) => {}
                }
            }
        }
    }
    conn.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    while !closed && started.elapsed() < Duration::from_secs(25) {
        match conn.read(&mut buf) {
            Ok(0) => closed = true,
            Ok(n) => {
                first.get_or_insert(started.elapsed());
                got.extend_from_slice(&buf[..n]);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => closed = true,
        }
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        .collect();
    SlowAnswer {
        status,
        took: first.unwrap_or(started.elapsed()),
        headers,
        body: body.to_owned(),
        closed,
    }
}

/// A request per surface whose body, were it ever whole, would ask for a reset, a new person or a
/// new password for `slowpoke`.
fn slow_cases(w: &World, slowpoke_oid: &str, slowpoke_number: i64) -> Vec<SlowCase> {
    let json = "application/json";
    let form = "application/x-www-form-urlencoded";
    let c =
        |shape, path: &str, content_type, headers: Vec<(&'static str, String)>, body: String| {
            SlowCase {
                shape,
                path: path.to_owned(),
                content_type,
                headers,
                body,
                trickle: true,
            }
        };
    vec![
        c(
            Shape::Problem,
            "/v1/default/recovery",
            json,
            vec![],
            r#"{"login":"slowpoke"}"#.into(),
        ),
        c(
            Shape::Problem,
            "/v1/default/people",
            json,
            vec![("Authorization", format!("Bearer {}", w.s.key))],
            r#"{"login":"slowmade","email":"slowmade@example.com"}"#.into(),
        ),
        c(
            Shape::Html,
            "/forgot/default",
            form,
            vec![],
            "login=slowpoke&csrf=x".into(),
        ),
        c(
            Shape::Alfresco,
            &format!("{PEOPLE}/slowpoke/request-password-reset"),
            json,
            vec![],
            r#"{"client":"share"}"#.into(),
        ),
        c(
            Shape::Unleash,
            "/auth/reset/password-email",
            json,
            vec![],
            r#"{"email":"slowpoke@example.com"}"#.into(),
        ),
        c(
            Shape::Payabli,
            "/api/User/authreset",
            json,
            vec![("requestToken", w.app_key.clone())],
            r#"{"email":"slowpoke@example.com"}"#.into(),
        ),
        c(
            Shape::Crafter,
            &format!("{CRAFTER}/{slowpoke_oid}/reset_password"),
            form,
            vec![],
            format!(
                "accessTokenId={}&resetPasswordUrl=https://portal.example.com/account/reset",
                w.app_key
            ),
        ),
        c(
            Shape::EmpowerId,
            "/api/services/v1/PasswordPolicy/ResetPassword",
            json,
            vec![
                ("X-EmpowerID-API-Key", w.app_key.clone()),
                ("Authorization", format!("Bearer {}", w.app_key)),
            ],
            format!(r#"{{"PersonID":{slowpoke_number},"Password":"{SECRET}"}}"#),
        ),
        SlowCase {
            trickle: false,
            ..c(
                Shape::Problem,
                "/v1/default/people/import",
                "application/x-ndjson",
                vec![("Authorization", format!("Bearer {}", w.s.key))],
                "{\"login\":\"slowmade\",\"email\":\"slowmade@example.com\"}\n".into(),
            )
        },
    ]
}

const SLOWPOKE_PASSWORD: &str = "amber willow canyon 64";

/// Adds `slowpoke` and a client for Crafter's URL; returns (Crafter profile id, person number).
async fn slowpoke(w: &World) -> (String, i64) {
    let id =
        w.s.add_person("slowpoke", "slowpoke@example.com", Some(SLOWPOKE_PASSWORD))
            .await;
    let res = w
        .s
        .admin_post(
            "/v1/default/clients",
            json!({"name": "portal", "link_template": "https://portal.example.com/reset?token={token}",
                   "allowed_prefixes": ["https://portal.example.com/account/"]}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let p: Value =
        w.s.http
            .get(w.s.url(&format!("/v1/default/people/{id}")))
            .bearer_auth(&w.s.key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    (id[..24].to_owned(), p["number"].as_i64().unwrap())
}

/// Runs every case in every mode at once, each on its own thread.
fn run_slow(w: &World, cases: Vec<SlowCase>, modes: &[Slow]) -> Vec<(SlowCase, Slow, SlowAnswer)> {
    let addr = w.s.base.trim_start_matches("http://").to_owned();
    let mut threads = Vec::new();
    for c in cases {
        for &mode in modes {
            if mode == Slow::Trickle && !c.trickle {
                continue;
            }
            let (addr, c) = (addr.clone(), c.clone());
            threads.push(std::thread::spawn(move || {
                let a = slow_request(&addr, &c, mode);
                (c, mode, a)
            }));
        }
    }
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

/// Nothing any slow body asked for happened, and the service still works.
async fn nothing_stored(w: &World) {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mails: Vec<String> =
        w.s.mails()
            .into_iter()
            .filter(|(_, m)| m.contains("slowpoke@example.com"))
            .map(|(n, _)| n)
            .collect();
    assert!(mails.is_empty(), "mail for slowpoke: {mails:?}");
    let found: Value =
        w.s.http
            .get(w.s.url("/v1/default/people?login=slowmade"))
            .bearer_auth(&w.s.key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(found["items"], json!([]), "a person was created");
    let res =
        w.s.post(
            "/v1/default/authenticate",
            json!({"login": "slowpoke", "password": SLOWPOKE_PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), 200, "slowpoke's password changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_or_short_bodies_get_408_in_each_surfaces_shape_within_12_s_and_nothing_else_waits() {
    let started = Instant::now();
    let w = world("").await;
    let (oid, number) = slowpoke(&w).await;
    let cases = slow_cases(&w, &oid, number);
    let n = cases.len();
    let slow = {
        let w = &w;
        async move { tokio::task::block_in_place(|| run_slow(w, cases, &[Slow::Short, Slow::Trickle])) }
    };
    // Meanwhile, everyone else is served at once.
    let others = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        for _ in 0..10 {
            let t = Instant::now();
            assert_eq!(w.s.get("/healthz").await.status(), 200);
            let res =
                w.s.post("/v1/default/recovery", json!({"login": "nobody"}))
                    .await;
            assert_eq!(res.status(), 202);
            let page = w.s.get("/forgot/default").await;
            assert_eq!(page.status(), 200);
            assert!(
                t.elapsed() < Duration::from_secs(2),
                "took {:?}",
                t.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let (answers, ()) = tokio::join!(slow, others);
    assert_eq!(answers.len(), 2 * n - 1);
    let mut wrong = Vec::new();
    for (c, mode, a) in &answers {
        println!(
            "{:?} {mode:?} {}: {} after {:?}",
            c.shape, c.path, a.status, a.took
        );
        let mut why = Vec::new();
        if a.status != 408 {
            why.push(format!("status {}", a.status));
        }
        if !(Duration::from_millis(9_500)..=Duration::from_secs(12)).contains(&a.took) {
            why.push(format!("answered after {:?}", a.took));
        }
        if let Err(e) = check_shape(c.shape, 408, a.header("content-type"), &a.body) {
            why.push(e);
        }
        if a.not_body_timeout(c.shape) {
            why.push("not the body-timeout problem".into());
        }
        if !a.closed {
            why.push("the connection was left open".into());
        }
        let words = forbidden_in(&a.body);
        if !words.is_empty() {
            why.push(format!("says {words:?}"));
        }
        if !why.is_empty() {
            wrong.push(format!(
                "{:?} {mode:?} {}: {}\n    {}",
                c.shape,
                c.path,
                why.join("; "),
                a.body
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    nothing_stored(&w).await;
    println!("slow bodies: {:?} in all", started.elapsed());
}

impl SlowAnswer {
    /// For the native API: whether the problem is anything but `body-timeout`.
    fn not_body_timeout(&self, shape: Shape) -> bool {
        shape == Shape::Problem
            && serde_json::from_str::<Value>(&self.body)
                .map(|v| v["type"] != "urn:resetd:problem:body-timeout")
                .unwrap_or(true)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_the_request_timeout_gets_503_with_retry_after_in_each_surfaces_shape() {
    let w = world("request_timeout_secs = 2\n").await;
    let (oid, number) = slowpoke(&w).await;
    let mut cases = slow_cases(&w, &oid, number);
    // The people import may stream for minutes: it is not under the request timeout.
    cases.retain(|c| !c.path.ends_with("/import"));
    let answers = tokio::task::block_in_place(|| run_slow(&w, cases, &[Slow::Short]));
    let mut wrong = Vec::new();
    for (c, _, a) in &answers {
        println!("{:?} {}: {} after {:?}", c.shape, c.path, a.status, a.took);
        let mut why = Vec::new();
        if a.status != 503 {
            why.push(format!("status {}", a.status));
        }
        if !(Duration::from_millis(1_500)..=Duration::from_secs(4)).contains(&a.took) {
            why.push(format!("answered after {:?}", a.took));
        }
        // Every surface asks for the same retry after a timeout.
        if a.header("retry-after") != Some("5") {
            why.push(format!("Retry-After {:?}, not 5", a.header("retry-after")));
        }
        if let Err(e) = check_shape(c.shape, 503, a.header("content-type"), &a.body) {
            why.push(e);
        }
        if !why.is_empty() {
            wrong.push(format!(
                "{:?} {}: {}\n    {}",
                c.shape,
                c.path,
                why.join("; "),
                a.body
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    nothing_stored(&w).await;
}
