//! The page's defences (design §4 invariant 9): security headers on every answer, CSRF
//! refusals, bad input, the per-IP limits, nothing secret in the log, and a broken override
//! refused at start.

use super::*;

#[tokio::test]
async fn every_page_answer_carries_the_security_headers() {
    let s = Server::spawn(&config());
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
async fn forms_without_the_csrf_proof_are_refused_and_change_nothing() {
    let s = Server::spawn(&config());
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
    assert_eq!(s.authenticate("csrf", STRONG).await.status(), 401);
    // The forgot form is defended the same way.
    let p = b
        .post("/forgot/default", &[("login", "csrf"), ("csrf", "0")])
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    // The genuine form still works, and `Origin: null` (sent by browsers for forms on
    // no-referrer pages) is not held against it.
    b.origin = "null".into();
    let ok = b.submit_reset(STRONG, STRONG, &good).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    assert_eq!(s.authenticate("csrf", STRONG).await.status(), 200);
}

#[tokio::test]
async fn bad_input_gets_an_html_error_page_never_a_500() {
    let s = Server::spawn(&config());
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
async fn the_page_shares_the_per_ip_limits() {
    // Default limits: 20 completions at once per address, then 429 with Retry-After.
    let s = Server::spawn(&TestConfig::new().fast_argon());
    let mut b = Browser::new(&s);
    b.get("/forgot/default").await;
    let csrf = b.csrf();
    let mut statuses = Vec::new();
    for _ in 0..21 {
        let p = b.submit_reset("x", "x", &csrf).await;
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
    let s = Server::spawn(&config());
    s.add_person("quiet", "quiet@example.com", None).await;
    let link = emailed_link(&s, "quiet", "quiet@example.com", 1).await;
    let token = link.split("token=").nth(1).unwrap().to_owned();
    let mut b = Browser::new(&s);
    b.open_link(&link).await;
    let csrf = b.csrf();
    let weak = "quiet-weak-1";
    b.submit_reset(weak, weak, &csrf).await;
    b.submit_reset(STRONG, STRONG, &csrf).await;
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
        TestConfig::new()
            .page_templates_dir(&pages.display().to_string())
            .toml(),
    )
    .unwrap();
    for args in [
        &["check-config"][..],
        &["serve", "--listen", "127.0.0.1:0"][..],
    ] {
        let out = std::process::Command::new(crate::helpers::BIN)
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
