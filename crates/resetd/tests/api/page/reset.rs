//! The reset form opened from an emailed link: the token leaves the address bar, every
//! problem with a new password is shown at once, expired links, and the links and cookies
//! behind an HTTPS proxy.

use super::*;

#[tokio::test]
async fn the_token_moves_from_the_address_bar_into_a_scoped_cookie() {
    let s = Server::spawn(&config());
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
    let done = b.submit_reset(STRONG, STRONG, &b.csrf()).await;
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
async fn every_problem_with_a_new_password_is_shown_at_once_next_to_its_field() {
    let s = Server::spawn(&config());
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
    let p = b.submit_reset("abc12", "abc13", &csrf).await;
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
    let p = b.submit_reset("Hamilton-Apollo-1969", "x", &csrf).await;
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
    let p = b.submit_reset("password123", "password123", &csrf).await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.body.contains("This password is too common"));
    assert!(!p.body.contains("do not match"));
    // Longer than any password may be.
    let long = "x".repeat(300);
    let p = b.submit_reset(&long, &long, &csrf).await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.body.contains("Use at most 256 characters."));
    // The link still works after all that.
    let ok = b.submit_reset(STRONG, STRONG, &csrf).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    let done = b.get("/reset/default/done").await;
    assert!(done.body.contains("Your password has been changed"));
}

#[tokio::test]
async fn expired_links_show_the_no_longer_valid_page() {
    let s = Server::spawn(&config());
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
    let brief = s.tenant("brief", key.trim());
    let res = brief
        .create_person(json!({"login": "quick", "email": "quick@example.com"}))
        .await;
    assert_eq!(res.status(), 201);
    brief.request_reset("quick").await;
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
async fn behind_an_https_proxy_under_a_path_links_and_cookies_follow_the_public_url() {
    let s = Server::spawn(&TestConfig::fast().public_url("https://id.example.com/account"));
    s.add_person("proxied", "proxied@example.com", None).await;
    let mails = {
        s.request_reset("proxied").await;
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
    let refused = b.submit_reset(STRONG, STRONG, &csrf).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    b.origin = "https://id.example.com".into();
    let done = b.submit_reset(STRONG, STRONG, &csrf).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.headers[LOCATION], "/account/reset/default/done");
}
