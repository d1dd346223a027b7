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

use crate::helpers::config::TestConfig;
use crate::helpers::dialect::link_param;
use crate::helpers::page::Browser;
use crate::helpers::{secret_in_log, token_from_mail, Server};
use serde_json::json;

const OLD: &str = "violet tangerine orbit 7";

/// A distinct new password per surface (a number, not the login: the policy refuses passwords
/// that contain the person's own login).
fn new_password(surface: &str) -> String {
    let n: u32 = surface.bytes().map(u32::from).sum();
    format!("lunar cobalt meadow {n}")
}

#[tokio::test]
async fn no_password_token_or_key_used_on_any_surface_reaches_logs_audit_or_metrics() {
    let base = TestConfig::fast();
    let first = Server::spawn(&base);
    let admin = first.key.clone();
    let (payabli_id, payabli_key) = first.api_key("payhub").await;
    let (_, app_key) = first.api_key("apps").await;
    let mut ids = std::collections::HashMap::new();
    for who in ["nat", "pag", "alf", "unl", "pay", "cra", "emp"] {
        let id = first
            .add_person(who, &format!("{who}@example.com"), Some(OLD))
            .await;
        ids.insert(who, id);
    }
    first.add_portal_client().await;
    let s = first.restart(&base.every_dialect(&payabli_id));
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
    let res = s.complete_reset(&token, &new_password("nat")).await;
    assert_eq!(res.status(), 204);
    tokens.push(token);

    // Hosted page: the forgot form, then the emailed token through the native API.
    let mut page = Browser::new(&s);
    assert_eq!(page.forgot("default", "pag").await.status, 303);
    let csrf = page.csrf();
    let token = token_from_mail(&mail("pag").await);
    let res = s.complete_reset(&token, &new_password("pag")).await;
    assert_eq!(res.status(), 204);
    tokens.push(token);
    tokens.push(csrf);

    // Alfresco.
    let res = s.alfresco_request_reset("alf", "share").await;
    assert_eq!(res.status(), 202);
    let m = mail("alf").await;
    let (key, id) = (link_param(&m, "key="), link_param(&m, "id="));
    let res = s
        .alfresco_reset_password("alf", &new_password("alf"), &id, &key)
        .await;
    assert_eq!(res.status(), 202);
    tokens.push(key);

    // Unleash.
    let res = s.unleash_password_email("unl@example.com").await;
    assert_eq!(res.status(), 200);
    let token = token_from_mail(&mail("unl").await);
    let res = s.unleash_reset_password(&token, &new_password("unl")).await;
    assert_eq!(res.status(), 200);
    tokens.push(token);

    // Payabli: the request, then the emailed token through the native API.
    let res = s.payabli_authreset(&payabli_key, "pay@example.com").await;
    assert_eq!(res.status(), 200);
    let token = token_from_mail(&mail("pay").await);
    let res = s.complete_reset(&token, &new_password("pay")).await;
    assert_eq!(res.status(), 204);
    tokens.push(token);

    // Crafter Profile.
    let oid = &ids["cra"][..24];
    let res = s
        .crafter_reset_password(oid, &app_key, "https://portal.example.com/account/reset")
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let token = link_param(&mail("cra").await, "tokenId=");
    let res = s
        .crafter_change_password(&app_key, &token, &new_password("cra"))
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    tokens.push(token);

    // EmpowerID: an administrative set.
    let person = s.tenant("default", &admin).person_json(&ids["emp"]).await;
    let res = s
        .empowerid_reset_password(
            &app_key,
            &app_key,
            json!({"PersonID": person["number"], "Password": new_password("emp")}),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());

    // Every reset took effect, so the secrets really went through the server.
    for who in ["nat", "pag", "alf", "unl", "pay", "cra", "emp"] {
        let res = s.authenticate(who, &new_password(who)).await;
        assert_eq!(res.status(), 200, "{who}");
    }
    // Failure paths: a wrong password, a well-formed but unknown key, a used token.
    let wrong = "lunar cobalt meadow wrong guess";
    s.authenticate("nat", wrong).await;
    let bogus_key = format!("rsd_{}", "Q".repeat(43));
    s.tenant("default", &bogus_key).audit("").await;
    s.complete_reset(&tokens[0], &new_password("again")).await;

    let audit = s
        .tenant("default", &admin)
        .audit("?limit=1000")
        .await
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
