//! Secrets never reach logs, audit or metrics (design §4 invariant 8), across every surface at
//! once: one server with every dialect; a whole reset on each (native, hosted forgot page,
//! Alfresco, Unleash, Payabli, Crafter Profile, EmpowerID), a failed login and a bad API key;
//! then the log, the audit log (through the API) and `/metrics` are searched for every password,
//! token and API key used. (The harness also scans every server's log in every test.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unimplemented
)]

use crate::helpers::dialect::link_param;
use crate::helpers::{secret_in_log, token_from_mail, Server, FAST_ARGON, NO_LIMITS};
use serde_json::{json, Value};

const OLD: &str = "violet tangerine orbit 7";
const PEOPLE: &str = "/alfresco/api/-default-/public/alfresco/versions/1/people";
const CRAFTER: &str = "/crafter-profile/api/1/profile";

/// A distinct new password per surface (a number, not the login: the policy refuses passwords
/// that contain the person's own login).
fn new_password(surface: &str) -> String {
    let n: u32 = surface.bytes().map(u32::from).sum();
    format!("lunar cobalt meadow {n}")
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

#[tokio::test]
async fn no_password_token_or_key_used_on_any_surface_reaches_logs_audit_or_metrics() {
    let base = format!("{FAST_ARGON}{NO_LIMITS}");
    let first = Server::start(&base);
    let admin = first.key.clone();
    let (payabli_id, payabli_key) = api_key(&first, "payhub").await;
    let (_, app_key) = api_key(&first, "apps").await;
    let mut ids = std::collections::HashMap::new();
    for who in ["nat", "pag", "alf", "unl", "pay", "cra", "emp"] {
        let id = first
            .add_person(who, &format!("{who}@example.com"), Some(OLD))
            .await;
        ids.insert(who, id);
    }
    let res = first
        .admin_post(
            "/v1/default/clients",
            json!({"name": "portal", "link_template": "https://portal.example.com/reset?token={token}",
                   "allowed_prefixes": ["https://portal.example.com/account/"]}),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
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
             [dialects.payabli]\nenabled = true\ntenant = \"default\"\nrequest_tokens = [\"{payabli_id}\"]\n\
             [dialects.crafter]\nenabled = true\ntenant = \"default\"\n\
             [dialects.empowerid]\nenabled = true\ntenant = \"default\"\n"
        ),
    );
    s.key = admin.clone();
    let mut tokens = Vec::new();
    let mail = |who: &'static str| {
        let s = &s;
        async move {
            s.wait_mails("reset_link", &format!("{who}@example.com"), 1)
                .await
                .remove(0)
        }
    };

    // Native.
    let token = s.reset_token("nat", "nat@example.com", 1).await;
    let res = s
        .post(
            &format!("/v1/default/recovery/{token}"),
            json!({"password": new_password("nat")}),
        )
        .await;
    assert_eq!(res.status(), 204);
    tokens.push(token);

    // Hosted page: the forgot form, then the emailed token through the native API.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = http.get(s.url("/forgot/default")).send().await.unwrap();
    let csrf = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.strip_prefix("resetd_csrf="))
        .map(|v| v.split(';').next().unwrap().to_owned())
        .next()
        .unwrap();
    let res = http
        .post(s.url("/forgot/default"))
        .header("cookie", format!("resetd_csrf={csrf}"))
        .header("origin", &s.base)
        .form(&[("login", "pag"), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let token = token_from_mail(&mail("pag").await);
    let res = s
        .post(
            &format!("/v1/default/recovery/{token}"),
            json!({"password": new_password("pag")}),
        )
        .await;
    assert_eq!(res.status(), 204);
    tokens.push(token);
    tokens.push(csrf);

    // Alfresco.
    let res = s
        .post(
            &format!("{PEOPLE}/alf/request-password-reset"),
            json!({"client": "share"}),
        )
        .await;
    assert_eq!(res.status(), 202);
    let m = mail("alf").await;
    let (key, id) = (link_param(&m, "key="), link_param(&m, "id="));
    let res = s
        .post(
            &format!("{PEOPLE}/alf/reset-password"),
            json!({"password": new_password("alf"), "id": id, "key": key}),
        )
        .await;
    assert_eq!(res.status(), 202);
    tokens.push(key);

    // Unleash.
    let res = s
        .post(
            "/auth/reset/password-email",
            json!({"email": "unl@example.com"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let token = token_from_mail(&mail("unl").await);
    let res = s
        .post(
            "/auth/reset/password",
            json!({"token": token, "password": new_password("unl")}),
        )
        .await;
    assert_eq!(res.status(), 200);
    tokens.push(token);

    // Payabli: the request, then the emailed token through the native API.
    let res = s
        .http
        .post(s.url("/api/User/authreset"))
        .header("requestToken", &payabli_key)
        .json(&json!({"email": "pay@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let token = token_from_mail(&mail("pay").await);
    let res = s
        .post(
            &format!("/v1/default/recovery/{token}"),
            json!({"password": new_password("pay")}),
        )
        .await;
    assert_eq!(res.status(), 204);
    tokens.push(token);

    // Crafter Profile.
    let oid = &ids["cra"][..24];
    let res = s
        .http
        .post(s.url(&format!("{CRAFTER}/{oid}/reset_password")))
        .form(&[
            ("accessTokenId", app_key.as_str()),
            (
                "resetPasswordUrl",
                "https://portal.example.com/account/reset",
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let token = link_param(&mail("cra").await, "tokenId=");
    let res = s
        .http
        .post(s.url(&format!("{CRAFTER}/change_password")))
        .form(&[
            ("accessTokenId", app_key.as_str()),
            ("resetTokenId", token.as_str()),
            ("newPassword", new_password("cra").as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    tokens.push(token);

    // EmpowerID: an administrative set.
    let person: Value = s
        .http
        .get(s.url(&format!("/v1/default/people/{}", ids["emp"])))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let res = s
        .http
        .post(s.url("/api/services/v1/PasswordPolicy/ResetPassword"))
        .header("X-EmpowerID-API-Key", &app_key)
        .bearer_auth(&app_key)
        .json(&json!({"PersonID": person["number"], "Password": new_password("emp")}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());

    // Every reset took effect, so the secrets really went through the server.
    for who in ["nat", "pag", "alf", "unl", "pay", "cra", "emp"] {
        let res = s
            .post(
                "/v1/default/authenticate",
                json!({"login": who, "password": new_password(who)}),
            )
            .await;
        assert_eq!(res.status(), 200, "{who}");
    }
    // Failure paths: a wrong password, a well-formed but unknown key, a used token.
    let wrong = "lunar cobalt meadow wrong guess";
    s.post(
        "/v1/default/authenticate",
        json!({"login": "nat", "password": wrong}),
    )
    .await;
    let bogus_key = format!("rsd_{}", "Q".repeat(43));
    s.http
        .get(s.url("/v1/default/audit"))
        .bearer_auth(&bogus_key)
        .send()
        .await
        .unwrap();
    s.post(
        &format!("/v1/default/recovery/{}", tokens[0]),
        json!({"password": new_password("again")}),
    )
    .await;

    let audit = s
        .http
        .get(s.url("/v1/default/audit?limit=1000"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        audit.contains("password_changed") || audit.len() > 100,
        "{audit}"
    );
    let metrics = s.mgmt_get("/metrics").await.text().await.unwrap();
    let log = s.log();
    let log_without_demo_links: String = log
        .lines()
        .filter(|l| !l.contains("file transport, demo"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut secrets: Vec<String> = vec![
        OLD.into(),
        wrong.into(),
        admin.clone(),
        payabli_key,
        app_key,
        bogus_key,
        new_password("again"),
    ];
    secrets.extend(
        ["nat", "pag", "alf", "unl", "pay", "cra", "emp"]
            .iter()
            .map(|w| new_password(w)),
    );
    secrets.extend(tokens);
    for secret in &secrets {
        assert!(
            !log_without_demo_links.contains(secret.as_str()),
            "a secret in the log"
        );
        assert!(
            !audit.contains(secret.as_str()),
            "a secret in the audit log"
        );
        assert!(
            !metrics.contains(secret.as_str()),
            "a secret in the metrics"
        );
    }
    assert_eq!(secret_in_log(&log, &admin), None);
}

#[test]
fn the_harness_log_scan_finds_each_kind_of_secret() {
    let key = format!("rsd_{}", "A".repeat(43));
    let token = "B".repeat(43);
    let clean = "INFO request route=/v1/{tenant}/recovery/{token} status=204 micros=812";
    assert_eq!(secret_in_log(clean, "rsd_admin"), None);
    assert!(secret_in_log(&format!("{clean}\nWARN bad key {key}"), "").is_some());
    assert!(secret_in_log("DEBUG body password=violet tangerine orbit 7", "").is_some());
    assert!(secret_in_log(&format!("GET /reset/default?token={token}"), "").is_some());
    assert!(secret_in_log(&format!("POST ?key={token}&id=activiti$1"), "").is_some());
    assert!(secret_in_log("admin s3cr3t-admin-key", "s3cr3t-admin-key").is_some());
    // The demo file transport's link line is the one deliberate exception.
    assert_eq!(
        secret_in_log(
            &format!("INFO reset email written (file transport, demo): open the link link=http://x/reset?token={token}"),
            ""
        ),
        None
    );
}
