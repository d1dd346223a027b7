//! Black-box tests of the hosted reset page over real HTTP: security headers, the token leaving the
//! address bar, CSRF refusals, bad input, the forgot-password confirmation and the page's limits.
//! (The browser tests in tests/browser drive the same pages in Chromium.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unimplemented
)]

use crate::helpers;

use std::time::Duration;

use crate::helpers::{cli, token_from_mail, Server, FAST_ARGON, NO_LIMITS};
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::json;

const STRONG: &str = "purple elephants juggle quietly";

/// A browser-like client that does not follow redirects and keeps cookies by hand, so tests see
/// each answer and each cookie.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
    origin: String,
}

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Browser {
    fn new(s: &Server) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: s.base.clone(),
            cookies: Vec::new(),
            origin: s.base.clone(),
        }
    }

    fn cookie(&self, name: &str) -> Option<String> {
        self.cookies
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn keep(&mut self, res: reqwest::Response) -> Page {
        for sc in res.headers().get_all(SET_COOKIE) {
            let sc = sc.to_str().unwrap();
            let (pair, attrs) = sc.split_once(';').unwrap_or((sc, ""));
            let (k, v) = pair.split_once('=').unwrap();
            self.cookies.retain(|(name, _)| name != k);
            if !attrs.contains("Max-Age=0") {
                self.cookies.push((k.to_owned(), v.to_owned()));
            }
        }
        Page {
            status: res.status(),
            headers: res.headers().clone(),
            body: res.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path_or_url: &str) -> Page {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            format!("{}{path_or_url}", self.base)
        };
        let res = self
            .http
            .get(url)
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(res).await
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("origin", &self.origin)
            .header("sec-fetch-site", "same-origin")
            .form(fields)
            .send()
            .await
            .unwrap();
        self.keep(res).await
    }

    /// Opens an emailed link the way a browser does: the link, then the redirect.
    async fn open_link(&mut self, link: &str) -> Page {
        let first = self.get(link).await;
        assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.body);
        let to = first.headers[LOCATION].to_str().unwrap().to_owned();
        self.get(&to).await
    }

    fn csrf(&self) -> String {
        self.cookie("resetd_csrf").expect("a CSRF cookie")
    }
}

fn assert_page_headers(p: &Page, what: &str) {
    let h = |n: &str| {
        p.headers
            .get(n)
            .unwrap_or_else(|| panic!("{what}: no {n}"))
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(h("referrer-policy"), "no-referrer", "{what}");
    assert_eq!(h("cache-control"), "no-store", "{what}");
    assert_eq!(h("x-frame-options"), "DENY", "{what}");
    assert_eq!(h("x-content-type-options"), "nosniff", "{what}");
    let csp = h("content-security-policy");
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(part), "{what}: CSP {csp} lacks {part}");
    }
    assert!(!csp.contains("unsafe-inline"), "{what}");
    if p.status != StatusCode::SEE_OTHER {
        assert_eq!(h("content-type"), "text/html; charset=utf-8", "{what}");
        assert!(p.body.starts_with("<!DOCTYPE html>"), "{what}: {}", p.body);
        // No inline script or style anywhere (the CSP would block it anyway).
        assert!(
            !p.body.contains("<script>") && !p.body.contains("style="),
            "{what}"
        );
    }
}

fn config() -> String {
    format!("{FAST_ARGON}{NO_LIMITS}")
}

/// Requests a reset for `login` through the API and returns the emailed link (the n-th mail).
async fn emailed_link(s: &Server, login: &str, email: &str, nth: usize) -> String {
    let token = s.reset_token(login, email, nth).await;
    format!("{}/reset/default?token={token}", s.base)
}

#[tokio::test]
async fn every_page_answer_carries_the_security_headers() {
    let s = Server::start(&config());
    s.add_person("hdr", "hdr@example.com", None).await;
    let link = emailed_link(&s, "hdr", "hdr@example.com", 1).await;
    let mut b = Browser::new(&s);
    let redirect = b.get(&link).await;
    assert_page_headers(&redirect, "the first load's redirect");
    let form = b.get("/reset/default").await;
    assert_eq!(form.status, 200);
    assert_page_headers(&form, "the reset form");
    let cases = [
        ("GET", "/forgot/default"),
        ("GET", "/forgot/default/sent"),
        ("GET", "/reset/default/done"),
        ("GET", "/reset/nope"),
        ("GET", "/reset/default/nothing/here"),
        ("PUT", "/reset/default"),
        ("POST", "/forgot/default"),
    ];
    for (method, path) in cases {
        let res = b
            .http
            .request(method.parse().unwrap(), format!("{}{path}", s.base))
            .send()
            .await
            .unwrap();
        let p = b.keep(res).await;
        assert_page_headers(&p, &format!("{method} {path} ({})", p.status));
    }
    // Without the cookie the page says how to get a working link, with the same headers.
    let mut fresh = Browser::new(&s);
    let missing = fresh.get("/reset/default").await;
    assert_eq!(missing.status, 400);
    assert!(missing.body.contains("Open the link from your email"));
    assert_page_headers(&missing, "the page opened without a link");

    // The stylesheet and script hold no secrets and are cached for long; pages link to them
    // with a content version.
    let css_href = form
        .body
        .split("href=\"")
        .find(|p| p.starts_with("/assets/page.css?v="))
        .and_then(|p| p.split('"').next())
        .expect("a versioned stylesheet link")
        .to_owned();
    let css = s.get(&css_href).await;
    assert_eq!(css.status(), 200);
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    assert_eq!(
        css.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let js = s.get("/assets/page.js").await;
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(s.get("/assets/secrets.txt").await.status(), 404);
}

#[tokio::test]
async fn the_token_moves_from_the_address_bar_into_a_scoped_cookie() {
    let s = Server::start(&config());
    s.add_person("addr", "addr@example.com", None).await;
    let link = emailed_link(&s, "addr", "addr@example.com", 1).await;
    let token = link.split("token=").nth(1).unwrap().to_owned();
    let mut b = Browser::new(&s);
    let first = b.get(&link).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    assert_eq!(first.headers[LOCATION], "/reset/default");
    assert!(first.body.is_empty());
    let set = first.headers[SET_COOKIE].to_str().unwrap();
    assert_eq!(
        set,
        format!("resetd_reset={token}; Path=/reset/default; Max-Age=1800; HttpOnly; SameSite=Lax"),
        "plain http: no Secure flag"
    );
    let form = b.get("/reset/default").await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("“addr”"), "{}", form.body);
    assert!(
        !form.body.contains(&token),
        "the page never shows the token"
    );
    assert!(form.body.contains("valid for 30 more minutes"));
    let csrf = form.headers[SET_COOKIE].to_str().unwrap();
    assert!(
        csrf.starts_with("resetd_csrf=") && csrf.ends_with("; Path=/; HttpOnly; SameSite=Strict"),
        "{csrf}"
    );

    // The choice of language survives the redirect.
    let mut de = Browser::new(&s);
    let first = de.get(&format!("{link}&locale=de")).await;
    assert_eq!(first.headers[LOCATION], "/reset/default?locale=de");
    let form = de.get("/reset/default?locale=de").await;
    assert!(form.body.contains("<html lang=\"de\">"));
    assert!(form.body.contains("Neues Passwort wählen"));
    assert!(form.body.contains("action=\"/reset/default?locale=de\""));

    // Completing clears the cookie; the link's second use shows the "no longer valid" page.
    let done = b
        .post(
            "/reset/default",
            &[
                ("password", STRONG),
                ("confirm", STRONG),
                ("csrf", &b.csrf()),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.headers[LOCATION], "/reset/default/done");
    assert!(b.cookie("resetd_reset").is_none());
    let again = b.open_link(&link).await;
    assert_eq!(again.status, StatusCode::GONE);
    assert!(again.body.contains("This link can no longer be used"));
    assert!(again.body.contains("href=\"/forgot/default\""));
    // A token that was never issued, or is not even shaped like one, reads the same.
    for bogus in [
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "<script>",
        "",
    ] {
        let p = Browser::new(&s)
            .open_link(&format!("{}/reset/default?token={bogus}", s.base))
            .await;
        assert_eq!(p.status, StatusCode::GONE, "{bogus}");
    }
}

#[tokio::test]
async fn forms_without_the_csrf_proof_are_refused_and_change_nothing() {
    let s = Server::start(&config());
    s.add_person("csrf", "csrf@example.com", None).await;
    let link = emailed_link(&s, "csrf", "csrf@example.com", 1).await;
    let mut b = Browser::new(&s);
    assert_eq!(b.open_link(&link).await.status, 200);
    let good = b.csrf();
    let fields = |csrf: &str| {
        vec![
            ("password".to_owned(), STRONG.to_owned()),
            ("confirm".to_owned(), STRONG.to_owned()),
            ("csrf".to_owned(), csrf.to_owned()),
        ]
    };
    let token_cookie = format!("resetd_reset={}", b.cookie("resetd_reset").unwrap());
    // (what, Cookie header, extra request headers)
    type Attempt<'a> = (&'a str, String, Vec<(&'a str, String)>);
    let attempts: Vec<Attempt> = vec![
        ("no CSRF cookie", token_cookie.clone(), vec![]),
        (
            "a field that does not match the cookie",
            format!("{token_cookie}; resetd_csrf={good}"),
            vec![],
        ),
        (
            "another site's Origin",
            format!("{token_cookie}; resetd_csrf={good}"),
            vec![("origin", "https://evil.example".into())],
        ),
        (
            "a cross-site fetch",
            format!("{token_cookie}; resetd_csrf={good}"),
            vec![("sec-fetch-site", "cross-site".into())],
        ),
    ];
    for (i, (what, cookie, headers)) in attempts.into_iter().enumerate() {
        let field = if i == 1 { "f".repeat(64) } else { good.clone() };
        let mut req = b
            .http
            .post(format!("{}/reset/default", s.base))
            .header("cookie", cookie)
            .form(&fields(&field));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let p = b.keep(req.send().await.unwrap()).await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{what}");
        assert!(p.body.contains("This form has expired"), "{what}");
        assert!(
            p.body.contains("href=\"/reset/default\""),
            "{what}: offers a reload"
        );
        assert_page_headers(&p, what);
    }
    let login = json!({"login": "csrf", "password": STRONG});
    assert_eq!(
        s.post("/v1/default/authenticate", login.clone())
            .await
            .status(),
        401
    );
    // The forgot form is defended the same way.
    let p = b
        .post("/forgot/default", &[("login", "csrf"), ("csrf", "0")])
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    // The genuine form still works, and `Origin: null` (sent by browsers for forms on
    // no-referrer pages) is not held against it.
    b.origin = "null".into();
    let ok = b
        .post(
            "/reset/default",
            &[("password", STRONG), ("confirm", STRONG), ("csrf", &good)],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    assert_eq!(
        s.post("/v1/default/authenticate", login).await.status(),
        200
    );
}

#[tokio::test]
async fn every_problem_with_a_new_password_is_shown_at_once_next_to_its_field() {
    let s = Server::start(&config());
    s.add_person("mh", "hamilton@example.com", None).await;
    let link = emailed_link(&s, "mh", "hamilton@example.com", 1).await;
    let mut b = Browser::new(&s);
    b.open_link(&link).await;
    let csrf = b.csrf();
    let summary_of = |p: &Page| -> String {
        let after = p
            .body
            .split("role=\"alert\"")
            .nth(1)
            .expect("an error summary");
        after[..after.find("</div>").unwrap()].to_owned()
    };
    // Short and common, and not repeated correctly: all three at once, in field order.
    let p = b
        .post(
            "/reset/default",
            &[("password", "abc12"), ("confirm", "abc13"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    let summary = summary_of(&p);
    let at = |needle: &str| {
        summary
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} in {summary}"))
    };
    assert!(at("Use at least 8 characters.") < at("This password is too common"));
    assert!(at("This password is too common") < at("The two passwords do not match"));
    assert!(p.body.contains(
        "aria-describedby=\"password-hint password-error strength\" aria-invalid=\"true\""
    ));
    assert!(p
        .body
        .contains("aria-describedby=\"confirm-error\" aria-invalid=\"true\""));
    assert!(!p.body.contains("abc12"), "the password is never echoed");
    // Built on the email address (not the login): the personal check knows the whole account
    // even while the confirmation is wrong.
    let p = b
        .post(
            "/reset/default",
            &[
                ("password", "Hamilton-Apollo-1969"),
                ("confirm", "x"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    let summary = summary_of(&p);
    assert!(
        summary.contains("Do not use your login, email address or name"),
        "{summary}"
    );
    assert!(
        summary.contains("The two passwords do not match"),
        "{summary}"
    );
    // A common password alone.
    let p = b
        .post(
            "/reset/default",
            &[
                ("password", "password123"),
                ("confirm", "password123"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.body.contains("This password is too common"));
    assert!(!p.body.contains("do not match"));
    // Longer than any password may be.
    let long = "x".repeat(300);
    let p = b
        .post(
            "/reset/default",
            &[("password", &long), ("confirm", &long), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.body.contains("Use at most 256 characters."));
    // The link still works after all that.
    let ok = b
        .post(
            "/reset/default",
            &[("password", STRONG), ("confirm", STRONG), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    let done = b.get("/reset/default/done").await;
    assert!(done.body.contains("Your password has been changed"));
}

#[tokio::test]
async fn bad_input_gets_an_html_error_page_never_a_500() {
    let s = Server::start(&config());
    let mut b = Browser::new(&s);
    b.get("/forgot/default").await;
    let csrf = b.csrf();
    let cookie = format!("resetd_csrf={csrf}");
    let big = "a".repeat(70 * 1024);
    let cases: Vec<(&str, &str, Option<&str>, String, u16)> = vec![
        ("GET", "/reset/nope", None, String::new(), 404),
        ("GET", "/reset/NOT..valid", None, String::new(), 404),
        ("GET", "/forgot/nope", None, String::new(), 404),
        (
            "POST",
            "/reset/nope",
            Some("application/x-www-form-urlencoded"),
            format!("csrf={csrf}"),
            404,
        ),
        ("GET", "/reset/default/elsewhere", None, String::new(), 404),
        ("GET", "/reset/", None, String::new(), 404),
        ("GET", "/reset/default/", None, String::new(), 404),
        ("DELETE", "/reset/default", None, String::new(), 405),
        ("PUT", "/forgot/default/sent", None, String::new(), 405),
        (
            "GET",
            "/reset/default?token=a&token=b",
            None,
            String::new(),
            400,
        ),
        (
            "POST",
            "/forgot/default",
            Some("application/x-www-form-urlencoded"),
            format!("login={big}&csrf={csrf}"),
            413,
        ),
        (
            "POST",
            "/forgot/default",
            Some("application/json"),
            "{\"login\":\"x\"}".into(),
            415,
        ),
        (
            "POST",
            "/forgot/default",
            None,
            format!("login=x&csrf={csrf}"),
            415,
        ),
        (
            "POST",
            "/forgot/default",
            Some("application/x-www-form-urlencoded"),
            format!("login=a&login=b&csrf={csrf}"),
            400,
        ),
        (
            "POST",
            "/reset/default",
            Some("application/x-www-form-urlencoded"),
            format!("csrf={csrf}&csrf={csrf}"),
            400,
        ),
    ];
    for (method, path, ctype, body, want) in cases {
        let mut req = b
            .http
            .request(method.parse().unwrap(), format!("{}{path}", s.base))
            .header("cookie", &cookie)
            .body(body);
        if let Some(c) = ctype {
            req = req.header("content-type", c);
        }
        let p = b.keep(req.send().await.unwrap()).await;
        assert_eq!(p.status.as_u16(), want, "{method} {path}: {}", p.body);
        assert_page_headers(&p, &format!("{method} {path}"));
        assert!(p.body.contains("<h1>"), "{method} {path}");
    }
    let p = b
        .post("/forgot/default", &[("login", "   "), ("csrf", &csrf)])
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.body.contains("Enter your login or email address."));
    let p = b
        .post(
            "/forgot/default",
            &[("login", "bad\u{7}login"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.body.contains("aria-invalid=\"true\""));
    let p = b.get("/forgot/default?locale=de").await;
    assert!(p.body.contains("Passwort vergessen?"));
    let de = b
        .http
        .get(format!("{}/reset/nope", s.base))
        .header("accept-language", "de-CH, en;q=0.5")
        .send()
        .await
        .unwrap();
    assert!(de.text().await.unwrap().contains("Seite nicht gefunden"));
}

#[tokio::test]
async fn the_forgot_page_always_shows_the_same_confirmation() {
    let s = Server::start(&config());
    s.add_person("known", "known@example.com", None).await;
    let mut b = Browser::new(&s);
    b.get("/forgot/default").await;
    let csrf = b.csrf();
    let mut answers = Vec::new();
    for input in [
        "known",
        "known@example.com",
        "unknown",
        "nobody@example.com",
    ] {
        let p = b
            .post(
                "/forgot/default?locale=de",
                &[("login", input), ("csrf", &csrf)],
            )
            .await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{input}");
        let mut headers: Vec<(String, String)> = p
            .headers
            .iter()
            .filter(|(k, _)| !["date", "x-request-id"].contains(&k.as_str()))
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        headers.sort();
        answers.push((headers, p.body));
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    assert_eq!(
        answers[0]
            .0
            .iter()
            .find(|(k, _)| k == "location")
            .unwrap()
            .1,
        "/forgot/default/sent?locale=de"
    );
    let sent = b.get("/forgot/default/sent?locale=de").await;
    assert!(sent.body.contains("Prüfen Sie Ihre E-Mails"));
    assert!(sent.body.contains("30 Minuten"));
    // The known account gets its link (one: the cool-down holds back the second), in the page's language.
    let mails = s.wait_mails("reset_link", "known@example.com", 1).await;
    assert!(
        mails[0].contains("ignorieren Sie diese E-Mail"),
        "{}",
        mails[0]
    );
    let token = token_from_mail(&mails[0]);
    let page = b
        .open_link(&format!("{}/reset/default?token={token}", s.base))
        .await;
    assert_eq!(page.status, 200);
}

#[tokio::test]
async fn expired_links_show_the_no_longer_valid_page() {
    let s = Server::start(&config());
    let cfg = s.dir.path().join("resetd.toml");
    cli(
        s.dir.path(),
        Some(&cfg),
        &["tenant", "add", "brief", "--token-ttl", "1"],
        None,
    );
    let key = cli(
        s.dir.path(),
        Some(&cfg),
        &["apikey", "create", "--tenant", "brief"],
        None,
    );
    let res = s
        .http
        .post(s.url("/v1/brief/people"))
        .bearer_auth(key.trim())
        .json(&json!({"login": "quick", "email": "quick@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    s.post("/v1/brief/recovery", json!({"login": "quick"}))
        .await;
    let mail = s.wait_mails("reset_link", "quick@example.com", 1).await;
    let token = token_from_mail(&mail[0]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut b = Browser::new(&s);
    let p = b
        .open_link(&format!("{}/reset/brief?token={token}", s.base))
        .await;
    assert_eq!(p.status, StatusCode::GONE);
    assert!(p
        .body
        .contains("This link has expired or has already been used."));
    assert!(p.body.contains("href=\"/forgot/brief\""));
}

#[tokio::test]
async fn the_page_shares_the_per_ip_limits() {
    // Default limits: 20 completions at once per address, then 429 with Retry-After.
    let s = Server::start(FAST_ARGON);
    let mut b = Browser::new(&s);
    b.get("/forgot/default").await;
    let csrf = b.csrf();
    let mut statuses = Vec::new();
    for _ in 0..21 {
        let p = b
            .post(
                "/reset/default",
                &[("password", "x"), ("confirm", "x"), ("csrf", &csrf)],
            )
            .await;
        statuses.push(p.status.as_u16());
        if p.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(p.headers.contains_key("retry-after"));
            assert!(p.body.contains("Too many attempts"));
            assert_page_headers(&p, "429");
        }
    }
    assert_eq!(
        statuses[..20],
        [400; 20],
        "no token cookie: the missing-link page"
    );
    assert_eq!(statuses[20], 429);
}

#[tokio::test]
async fn secrets_from_the_page_never_reach_the_logs() {
    let s = Server::start(&config());
    s.add_person("quiet", "quiet@example.com", None).await;
    let link = emailed_link(&s, "quiet", "quiet@example.com", 1).await;
    let token = link.split("token=").nth(1).unwrap().to_owned();
    let mut b = Browser::new(&s);
    b.open_link(&link).await;
    let csrf = b.csrf();
    let weak = "quiet-weak-1";
    b.post(
        "/reset/default",
        &[("password", weak), ("confirm", weak), ("csrf", &csrf)],
    )
    .await;
    b.post(
        "/reset/default",
        &[("password", STRONG), ("confirm", STRONG), ("csrf", &csrf)],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = s.stderr.lock().unwrap().clone();
    assert!(
        logs.contains("/reset/{tenant}"),
        "the page's requests are logged by route"
    );
    // The demo file transport logs the emailed link on purpose; nothing else may.
    let logs: String = logs
        .lines()
        .filter(|l| !l.contains("file transport, demo"))
        .collect::<Vec<_>>()
        .join("\n");
    for secret in [token.as_str(), csrf.as_str(), weak, STRONG] {
        assert!(!logs.contains(secret), "a secret reached the log");
    }
}

#[test]
fn a_broken_page_override_stops_start_up_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("pages");
    std::fs::create_dir_all(pages.join("acme")).unwrap();
    std::fs::write(pages.join("acme/reset_form.html"), "{% if %}").unwrap();
    let cfg = dir.path().join("resetd.toml");
    std::fs::write(
        &cfg,
        format!(
            "[page]\ntemplates_dir = {:?}\n",
            pages.display().to_string()
        ),
    )
    .unwrap();
    for args in [
        &["check-config"][..],
        &["serve", "--listen", "127.0.0.1:0"][..],
    ] {
        let out = std::process::Command::new(helpers::BIN)
            .arg("--config")
            .arg(&cfg)
            .arg("--data-dir")
            .arg(dir.path())
            .args(args)
            .env("RESETD_MANAGEMENT_LISTEN", "127.0.0.1:0")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("acme/reset_form.html"), "{args:?}: {err}");
    }
}

#[tokio::test]
async fn behind_an_https_proxy_under_a_path_links_and_cookies_follow_the_public_url() {
    let s = Server::start(&format!(
        "public_url = \"https://id.example.com/account\"\n{FAST_ARGON}{NO_LIMITS}"
    ));
    s.add_person("proxied", "proxied@example.com", None).await;
    let mails = {
        s.post("/v1/default/recovery", json!({"login": "proxied"}))
            .await;
        s.wait_mails("reset_link", "proxied@example.com", 1).await
    };
    let token = token_from_mail(&mails[0]);
    let flat = mails[0]
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    assert!(flat.contains(&format!(
        "https://id.example.com/account/reset/default?token={token}"
    )));
    let mut b = Browser::new(&s);
    b.origin = "https://id.example.com".into();
    // The proxy strips /account before resetd sees the request.
    let first = b.get(&format!("/reset/default?token={token}")).await;
    assert_eq!(first.headers[LOCATION], "/account/reset/default");
    let set = first.headers[SET_COOKIE].to_str().unwrap();
    assert!(
        set.starts_with(&format!(
            "__Secure-resetd_reset={token}; Path=/account/reset/default;"
        )) && set.ends_with("; HttpOnly; SameSite=Lax; Secure"),
        "{set}"
    );
    let form = b.get("/reset/default").await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("action=\"/account/reset/default\""));
    assert!(form.body.contains("href=\"/account/assets/page.css?v="));
    assert!(form
        .body
        .contains("data-check-url=\"/account/v1/default/password/check\""));
    let csrf = b
        .cookie("__Host-resetd_csrf")
        .expect("a __Host- CSRF cookie");
    // A form posted from the plain-http origin the server happens to listen on is not this site.
    b.origin = s.base.clone();
    let refused = b
        .post(
            "/reset/default",
            &[("password", STRONG), ("confirm", STRONG), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    b.origin = "https://id.example.com".into();
    let done = b
        .post(
            "/reset/default",
            &[("password", STRONG), ("confirm", STRONG), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.headers[LOCATION], "/account/reset/default/done");
}
