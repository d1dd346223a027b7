//! Malformed request bodies on every surface at once, against the real binary (issue 13, item
//! 6): a corpus of malformed bodies on every endpoint that reads one. Each answer must be a 4xx in
//! the surface's own error shape (problem+json, the page's HTML, each vendor's body), never a 5xx,
//! and never serde's or Rust's words. (Slow bodies are in `slow_bodies.rs`.)
//!
//! Every endpoint that reads a body is one row of [`endpoints`]; a new one is one more row.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unimplemented
)]

use serde_json::{json, Value};
use std::time::Instant;

use crate::helpers::config::TestConfig;
use crate::helpers::surfaces::{
    check_shape, forbidden_in, world_with, Shape, World, CRAFTER, PEOPLE, SECRET,
};

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

#[tokio::test]
async fn malformed_bodies_on_every_endpoint_get_the_surfaces_own_4xx_without_internal_words() {
    let started = Instant::now();
    let w = world_with(TestConfig::fast()).await;
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
    let found = w.s.find_people("newbody").await;
    assert_eq!(found["items"], json!([]));
    assert_eq!(w.s.request_reset("bodies").await.status(), 202);
}
