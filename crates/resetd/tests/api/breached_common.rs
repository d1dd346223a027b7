//! The bundled common-password list on every surface (issue 16, item 1): the eleven classics
//! that zxcvbn alone let through are refused with the `common` violation on the native API, the
//! hosted page, Alfresco, Unleash, Crafter Profile, EmpowerID and the admin set, each in its own
//! error shape and wording; the person's password stays what it was.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unimplemented
)]

use crate::helpers::dialect::{link_param, post_json, send};
use crate::helpers::surfaces::{world, World, CRAFTER, PEOPLE};
use crate::helpers::token_from_mail;
use serde_json::{json, Value};

const OLD: &str = "violet tangerine orbit 7";
const COMMON: &str = "This password is too common or too easy to guess.";

/// The issue's list: each is a top-100,000 word behind a capital, substitutions and a tail.
const DERIVED: [&str; 11] = [
    "Password1!",
    "Password123!",
    "P@ssw0rd1",
    "Passw0rd!",
    "Welcome1!",
    "Qwerty123!",
    "letmein!",
    "Admin@123",
    "Monkey123",
    "Changeme1!",
    "Summer2024!",
];

/// Those of the eleven that pass Unleash's OWASP rules, so that the list is what refuses them.
const OWASP_PASSING: [&str; 5] = [
    "Password1!",
    "Password123!",
    "Qwerty123!",
    "Changeme1!",
    "Summer2024!",
];

/// Adds `login` (with `OLD`) to `default` and returns its id.
async fn person(w: &World, login: &str) -> String {
    w.s.add_person(login, &format!("{login}@example.com"), Some(OLD))
        .await
}

/// The `nth` reset mail sent to `login`.
async fn mail(w: &World, login: &str, nth: usize) -> String {
    w.s.wait_mails("reset_link", &format!("{login}@example.com"), nth)
        .await
        .remove(nth - 1)
}

/// The person can still sign in with `OLD`: no refused password was set.
async fn unchanged(w: &World, login: &str) {
    let res =
        w.s.post(
            "/v1/default/authenticate",
            json!({"login": login, "password": OLD}),
        )
        .await;
    assert_eq!(res.status(), 200, "{login}");
}

/// A native problem (422, `application/problem+json`) whose only violation is `common`.
async fn common_problem(res: reqwest::Response, pw: &str) {
    assert_eq!(res.status(), 422, "{pw}");
    assert_eq!(
        res.headers()["content-type"],
        "application/problem+json",
        "{pw}"
    );
    let text = res.text().await.unwrap();
    assert!(!text.contains(pw), "the password is never echoed: {text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    let codes: Vec<&str> = body["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["common"], "{pw}: {body}");
    assert_eq!(body["violations"][0]["message"], COMMON, "{pw}");
}

#[tokio::test]
async fn native_recovery_and_the_admin_set_refuse_them_as_common() {
    let w = world("").await;
    let id = person(&w, "nat").await;
    let token = w.s.reset_token("nat", "nat@example.com", 1).await;
    for pw in DERIVED {
        let res =
            w.s.post(
                &format!("/v1/default/recovery/{token}"),
                json!({"password": pw}),
            )
            .await;
        common_problem(res, pw).await;
        let res =
            w.s.admin_post(
                &format!("/v1/default/people/{id}/password"),
                json!({"password": pw}),
            )
            .await;
        common_problem(res, pw).await;
        // The anonymous check says the same before anything is submitted.
        let v: Value =
            w.s.post("/v1/default/password/check", json!({"password": pw}))
                .await
                .json()
                .await
                .unwrap();
        assert_eq!(v["ok"], false, "{pw}");
        assert_eq!(v["violations"][0]["code"], "common", "{pw}");
    }
    unchanged(&w, "nat").await;
    // The refusals kept the token alive, and a passphrase still goes through.
    let res =
        w.s.post(
            &format!("/v1/default/recovery/{token}"),
            json!({"password": "monkey lantern orbit violet"}),
        )
        .await;
    assert_eq!(res.status(), 204);
}

/// The `Set-Cookie` pairs of `res`, merged into `jar`.
fn keep_cookies(jar: &mut Vec<(String, String)>, res: &reqwest::Response) {
    for sc in res.headers().get_all("set-cookie") {
        let sc = sc.to_str().unwrap();
        let (pair, attrs) = sc.split_once(';').unwrap_or((sc, ""));
        let (k, v) = pair.split_once('=').unwrap();
        jar.retain(|(name, _)| name != k);
        if !attrs.contains("Max-Age=0") {
            jar.push((k.to_owned(), v.to_owned()));
        }
    }
}

fn cookie_header(jar: &[(String, String)]) -> String {
    jar.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

#[tokio::test]
async fn the_hosted_page_shows_the_common_error_next_to_the_field() {
    let w = world("").await;
    person(&w, "pag").await;
    let token = w.s.reset_token("pag", "pag@example.com", 1).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut jar = Vec::new();
    // The emailed link, then its redirect to the form (the token moves into a cookie).
    let res = http
        .get(w.s.url(&format!("/reset/default?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    keep_cookies(&mut jar, &res);
    let to = res.headers()["location"].to_str().unwrap().to_owned();
    let to = if to.starts_with("http") {
        to
    } else {
        w.s.url(&to)
    };
    let res = http
        .get(to)
        .header("cookie", cookie_header(&jar))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    keep_cookies(&mut jar, &res);
    for pw in DERIVED {
        let csrf = jar
            .iter()
            .find(|(k, _)| k == "resetd_csrf")
            .map(|(_, v)| v.clone())
            .expect("a CSRF cookie");
        let res = http
            .post(w.s.url("/reset/default"))
            .header("cookie", cookie_header(&jar))
            .header("origin", &w.s.base)
            .header("sec-fetch-site", "same-origin")
            .form(&[("password", pw), ("confirm", pw), ("csrf", &csrf)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422, "{pw}");
        assert_eq!(
            res.headers()["content-type"],
            "text/html; charset=utf-8",
            "{pw}"
        );
        keep_cookies(&mut jar, &res);
        let body = res.text().await.unwrap();
        assert!(body.starts_with("<!DOCTYPE html>"), "{pw}");
        let summary = body
            .split("role=\"alert\"")
            .nth(1)
            .expect("an error summary");
        let summary = &summary[..summary.find("</div>").unwrap()];
        assert!(summary.contains(COMMON), "{pw}: {summary}");
        assert!(!summary.contains("Use at least"), "{pw}: {summary}");
        assert!(!summary.contains("do not match"), "{pw}: {summary}");
        assert!(!body.contains(pw), "{pw} is never echoed");
    }
    unchanged(&w, "pag").await;
}

#[tokio::test]
async fn alfresco_answers_its_400_naming_the_reason() {
    let w = world("").await;
    person(&w, "alf").await;
    let res =
        w.s.post(
            &format!("{PEOPLE}/alf/request-password-reset"),
            json!({"client": "share"}),
        )
        .await;
    assert_eq!(res.status(), 202);
    let m = mail(&w, "alf", 1).await;
    let (key, id) = (link_param(&m, "key="), link_param(&m, "id="));
    for pw in DERIVED {
        let a = post_json(
            &w.s,
            &format!("{PEOPLE}/alf/reset-password"),
            &json!({"password": pw, "id": id, "key": key}).to_string(),
        )
        .await;
        assert_eq!(a.status, 400, "{pw}: {a:?}");
        assert_eq!(
            a.header("content-type"),
            Some("application/json;charset=UTF-8")
        );
        let e = &a.json()["error"];
        assert_eq!(e["errorKey"], "framework.exception.ApiDefault", "{pw}");
        assert_eq!(e["statusCode"], 400, "{pw}");
        let summary = e["briefSummary"].as_str().unwrap();
        assert_eq!(
            &summary[9..],
            format!("Invalid password value: {COMMON}"),
            "{pw}"
        );
        assert!(!a.body.contains(pw), "{pw} is never echoed");
    }
    unchanged(&w, "alf").await;
}

/// Unleash's `OwaspValidationError` body listing `messages`.
fn owasp_error(messages: &[&str]) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap();
    let list: Vec<String> = messages.iter().map(|m| q(m)).collect();
    format!(
        r#"{{"name":"OwaspValidationError","message":{},"details":[{{"validationErrors":[{}],"message":{}}}]}}"#,
        q(messages[0]),
        list.join(","),
        q(messages[0])
    )
}

/// Requests an Unleash reset for `login` and returns the emailed token.
async fn unleash_token(w: &World, login: &str) -> String {
    let res =
        w.s.post(
            "/auth/reset/password-email",
            json!({"email": format!("{login}@example.com")}),
        )
        .await;
    assert_eq!(res.status(), 200);
    token_from_mail(&mail(w, login, 1).await)
}

async fn unleash_change(w: &World, token: &str, pw: &str) -> crate::helpers::dialect::Answer {
    post_json(
        &w.s,
        "/auth/reset/password",
        &json!({"token": token, "password": pw}).to_string(),
    )
    .await
}

#[tokio::test]
async fn unleash_refuses_them_under_its_own_rules_and_under_the_tenants() {
    // Unleash's OWASP rules (the default) speak first; those that pass them meet the list.
    let w = world("").await;
    person(&w, "unl").await;
    let token = unleash_token(&w, "unl").await;
    for pw in DERIVED {
        let a = unleash_change(&w, &token, pw).await;
        assert_eq!(a.status, 400, "{pw}: {a:?}");
        assert_eq!(
            a.header("content-type"),
            Some("application/json; charset=utf-8")
        );
        assert_eq!(a.json()["name"], "OwaspValidationError", "{pw}");
        if OWASP_PASSING.contains(&pw) {
            assert_eq!(a.body, owasp_error(&[COMMON]), "{pw}");
        }
        assert!(!a.body.contains(pw), "{pw} is never echoed");
    }
    unchanged(&w, "unl").await;
    drop(w);

    // With the tenant's rules (NIST, no composition rules) the list alone refuses all eleven.
    let w = tenant_rules_world().await;
    person(&w, "unt").await;
    let token = unleash_token(&w, "unt").await;
    for pw in DERIVED {
        let a = unleash_change(&w, &token, pw).await;
        assert_eq!(a.status, 400, "{pw}: {a:?}");
        assert_eq!(a.body, owasp_error(&[COMMON]), "{pw}");
        let a = post_json(
            &w.s,
            "/auth/reset/validate-password",
            &json!({ "password": pw }).to_string(),
        )
        .await;
        assert_eq!(a.status, 400, "{pw}: {a:?}");
        assert_eq!(a.body, owasp_error(&[COMMON]), "{pw}");
    }
    unchanged(&w, "unt").await;
}

/// A server with Unleash on `default` under the tenant's password rules.
async fn tenant_rules_world() -> World {
    let base = format!(
        "{}{}",
        crate::helpers::FAST_ARGON,
        crate::helpers::NO_LIMITS
    );
    let s = crate::helpers::Server::start(&format!(
        "{base}[dialects.unleash]\nenabled = true\ntenant = \"default\"\n\
         unleash_url = \"https://unleash.example.com/\"\npassword_rules = \"tenant\"\n"
    ));
    World {
        s,
        app_key: String::new(),
        person_id: String::new(),
    }
}

#[tokio::test]
async fn crafter_profile_answers_its_400_with_the_policy_message() {
    let w = world("").await;
    let id = person(&w, "cra").await;
    let res =
        w.s.admin_post(
            "/v1/default/clients",
            json!({"name": "portal", "link_template": "https://portal.example.com/reset?token={token}",
                   "allowed_prefixes": ["https://portal.example.com/account/"]}),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let oid = &id[..24];
    let res =
        w.s.http
            .post(w.s.url(&format!("{CRAFTER}/{oid}/reset_password")))
            .form(&[
                ("accessTokenId", w.app_key.as_str()),
                (
                    "resetPasswordUrl",
                    "https://portal.example.com/account/reset",
                ),
            ])
            .send()
            .await
            .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let token = link_param(&mail(&w, "cra", 1).await, "tokenId=");
    for pw in DERIVED {
        let res =
            w.s.http
                .post(w.s.url(&format!("{CRAFTER}/change_password")))
                .form(&[
                    ("accessTokenId", w.app_key.as_str()),
                    ("resetTokenId", token.as_str()),
                    ("newPassword", pw),
                ])
                .send()
                .await
                .unwrap();
        assert_eq!(res.status(), 400, "{pw}");
        assert_eq!(res.headers()["content-type"], "application/json", "{pw}");
        let body = res.text().await.unwrap();
        assert_eq!(
            body,
            json!({
                "errorCode": "OTHER",
                "message": format!("The new password does not meet the password policy: {COMMON}")
            })
            .to_string(),
            "{pw}"
        );
    }
    unchanged(&w, "cra").await;
}

#[tokio::test]
async fn empowerid_answers_its_password_policy_violation() {
    let w = world("").await;
    let id = person(&w, "emp").await;
    let person: Value =
        w.s.http
            .get(w.s.url(&format!("/v1/default/people/{id}")))
            .bearer_auth(&w.s.key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    for pw in DERIVED {
        let body = json!({"PersonID": person["number"], "Password": pw}).to_string();
        let a = send(
            &w.s,
            "POST",
            "/api/services/v1/PasswordPolicy/ResetPassword",
            Some("application/json"),
            &body,
            &[
                ("X-EmpowerID-API-Key", &w.app_key),
                ("authorization", &format!("Bearer {}", w.app_key)),
            ],
        )
        .await;
        assert_eq!(a.status, 400, "{pw}: {a:?}");
        assert_eq!(
            a.header("content-type"),
            Some("application/json; charset=utf-8")
        );
        assert_eq!(
            a.body,
            format!(
                r#"{{"Success":false,"Message":{},"Exception":"PasswordPolicyViolation"}}"#,
                json!(format!(
                    "The password does not meet the password policy: {COMMON}"
                ))
            ),
            "{pw}"
        );
    }
    unchanged(&w, "emp").await;
}
