//! The native API on an LDAP tenant: resets by login and by email land in the directory,
//! `authenticate` binds as the person (lockout included), ppolicy's refusal is the policy
//! error with slapd's reason, and the request's answer does not tell who is in the directory.

use serde_json::{json, Value};

use super::{Ldap, NEW, NEW2, SHORT_FOR_LDAP};
use crate::helpers::config::TestConfig;

#[tokio::test]
async fn resets_by_login_and_by_email_set_the_password_in_the_directory() {
    let Some(l) = Ldap::start(TestConfig::fast(), &[]) else {
        return;
    };

    // By login: the link comes to the directory's mail address.
    let token = l.token("alice", "alice@example.org", 1).await;
    let info = l.s.token_info(&token).await;
    assert_eq!(info.status(), 200);
    assert_eq!(info.json::<Value>().await.unwrap()["login"], "alice");
    let done = l.s.complete_reset(&token, NEW).await;
    assert_eq!(done.status(), 204, "{}", done.text().await.unwrap());
    l.assert_password_is("alice", NEW);
    // Single use, and the directory keeps the password it was given.
    assert_eq!(l.s.complete_reset(&token, NEW2).await.status(), 410);
    assert!(l.binds("alice", NEW));

    // By email.
    let res =
        l.s.request_reset_with(json!({ "email": "bob@example.org" }))
            .await;
    assert_eq!(res.status(), 202);
    let mails = l.s.wait_mails("reset_link", "bob@example.org", 1).await;
    let token = crate::helpers::token_from_mail(&mails[0]);
    let done = l.s.complete_reset(&token, NEW2).await;
    assert_eq!(done.status(), 204, "{}", done.text().await.unwrap());
    l.assert_password_is("bob", NEW2);

    // resetd kept a shadow row, never a password.
    let db = rusqlite::Connection::open(l.s.dir.path().join("resetd.db")).unwrap();
    let hashes: Vec<String> = db
        .prepare("SELECT COALESCE(password_hash, '') FROM person WHERE login IN ('alice', 'bob')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(hashes, ["", ""], "no local hash for a directory tenant");
}

#[tokio::test]
async fn authenticate_binds_as_the_person_and_the_lockout_still_works() {
    let Some(l) = Ldap::start(TestConfig::fast(), &["--lockout-threshold", "3"]) else {
        return;
    };
    let old = resetd_ldap::testing::person_by_uid("alice").password;

    // Before any reset: the directory's own password works; a login resetd never met too.
    assert_eq!(l.s.auth_status("alice", old).await, 200);
    assert_eq!(l.s.auth_status("alice", "not her password").await, 401);
    assert_eq!(l.s.auth_status("nobody-here", "whatever it is").await, 401);

    let token = l.token("alice", "alice@example.org", 1).await;
    assert_eq!(l.s.complete_reset(&token, NEW).await.status(), 204);
    let res = l.s.authenticate("alice", NEW).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["must_change_password"], false);
    assert_eq!(l.s.auth_status("alice", old).await, 401, "the old password");

    // The lockout: three failures, then even the right password is refused (423).
    assert_eq!(l.s.auth_status("bob", "wrong one").await, 401);
    assert_eq!(l.s.auth_status("bob", "wrong two").await, 401);
    assert_eq!(l.s.auth_status("bob", "wrong three").await, 401);
    let bob = resetd_ldap::testing::person_by_uid("bob").password;
    let locked = l.s.authenticate("bob", bob).await;
    assert_eq!(locked.status(), 423, "locked after the threshold");
    assert!(locked.headers().get("retry-after").is_some());
    // resetd's lock is resetd's: the directory still binds bob (no ppolicy lockout configured).
    assert!(l.binds("bob", bob));

    // A reset gets bob back in (reset_unlocks, the default), with the new password only.
    let token = l.token("bob", "bob@example.org", 1).await;
    assert_eq!(l.s.complete_reset(&token, NEW2).await.status(), 204);
    assert_eq!(l.s.auth_status("bob", NEW2).await, 200);
    assert_eq!(l.s.auth_status("bob", bob).await, 401);
}

#[tokio::test]
async fn ppolicy_minimum_length_is_the_policy_error_with_the_directory_reason() {
    let Some(l) = Ldap::start(TestConfig::fast(), &[]) else {
        return;
    };
    let token = l.token("alice", "alice@example.org", 1).await;

    // resetd's own policy accepts it (the password check says so), the directory does not.
    let check =
        l.s.check_password(json!({ "password": SHORT_FOR_LDAP }))
            .await;
    assert_eq!(check.status(), 200);
    let check: Value = check.json().await.unwrap();
    assert_eq!(check["ok"], true, "resetd's policy accepts it: {check}");

    let res = l.s.complete_reset(&token, SHORT_FOR_LDAP).await;
    assert_eq!(res.status(), 422);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let body: Value = res.json().await.unwrap();
    let violations = body["violations"].as_array().cloned().unwrap_or_default();
    assert_eq!(violations.len(), 1, "{body}");
    assert_eq!(violations[0]["code"], "backend_policy", "{body}");
    let text = body.to_string();
    assert!(
        text.contains("too short"),
        "slapd's reason is in the answer: {body}"
    );
    assert!(!text.contains(SHORT_FOR_LDAP), "{body}");
    // Nothing changed in the directory.
    let old = resetd_ldap::testing::person_by_uid("alice").password;
    assert!(l.binds("alice", old));
    assert!(!l.binds("alice", SHORT_FOR_LDAP));

    // The token stays usable.
    assert_eq!(l.s.token_info(&token).await.status(), 200);
    assert_eq!(l.s.complete_reset(&token, NEW).await.status(), 204);
    l.assert_password_is("alice", NEW);
}

/// Status, content type and body of a request-reset answer.
async fn answer(res: reqwest::Response) -> (u16, String, String) {
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (res.status().as_u16(), ct, res.text().await.unwrap())
}

#[tokio::test]
async fn the_request_answer_is_the_same_for_people_in_and_out_of_the_directory() {
    let Some(l) = Ldap::start(TestConfig::fast(), &[]) else {
        return;
    };
    let known = answer(l.s.request_reset("alice").await).await;
    assert_eq!(known.0, 202, "{known:?}");
    let bodies = [
        json!({ "login": "nobody-here" }),
        // No mail, an administrator's lock, an email two entries share: no link, same answer.
        json!({ "login": "carol" }),
        json!({ "login": "dave" }),
        json!({ "email": "shared@example.org" }),
        json!({ "email": "bob@example.org" }),
        json!({ "email": "nobody@example.org" }),
        // Filter injection finds nobody.
        json!({ "login": "*)(uid=*" }),
    ];
    for body in bodies {
        let other = answer(l.s.request_reset_with(body.clone()).await).await;
        assert_eq!(other, known, "{body}");
    }
    // Only the people who are there, once, with a mail of their own got a link.
    l.s.wait_mails("reset_link", "alice@example.org", 1).await;
    l.s.wait_mails("reset_link", "bob@example.org", 1).await;
    // The others are resolved by the same worker within moments; give it time to send a link
    // it should not (the usual sentinel person cannot be created on a directory tenant).
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let links: Vec<String> =
        l.s.mails()
            .into_iter()
            .filter(|(name, _)| name.contains("reset_link"))
            .map(|(_, body)| body)
            .collect();
    assert_eq!(links.len(), 2, "two links only");
    for mail in &links {
        assert!(!mail.contains("shared@example.org") && !mail.contains("dave@example.org"));
    }
}

#[tokio::test]
async fn a_link_sent_over_smtp_completes_into_the_directory() {
    use crate::helpers::smtp::{self, Options, SmtpServer};
    if !smtp::available() {
        return;
    }
    let mta = SmtpServer::start(&Options::default());
    let config = TestConfig::fast()
        .smtp(mta.port, "Accounts <accounts@example.org>")
        .smtp_set("tls", "none");
    let Some(l) = Ldap::start(config, &[]) else {
        return;
    };
    assert_eq!(l.s.request_reset("alice").await.status(), 202);
    let got = mta.wait_received(1, 15).await;
    assert_eq!(got[0].meta["rcpt_tos"], json!(["alice@example.org"]));
    let token = crate::helpers::token_from_mail(&got[0].raw);
    assert_eq!(l.s.complete_reset(&token, NEW).await.status(), 204);
    l.assert_password_is("alice", NEW);
    // The "password changed" notice goes to the directory's address too.
    let got = mta.wait_received(2, 15).await;
    assert_eq!(got[1].meta["rcpt_tos"], json!(["alice@example.org"]));
}

/// One login attempt with a wrong password: (status, body, latency in µs).
async fn wrong_login(l: &Ldap, http: &reqwest::Client, login: &str) -> (u16, String, f64) {
    let req = http
        .post(l.s.url("/v1/default/authenticate"))
        .json(&json!({"login": login, "password": "not the password at all 5"}))
        .build()
        .unwrap();
    let t = std::time::Instant::now();
    let res = http.execute(req).await.unwrap();
    let status = res.status().as_u16();
    let body = res.text().await.unwrap();
    (status, body, t.elapsed().as_nanos() as f64 / 1000.0)
}

/// An attacker timing logins: a login nobody has must take as long as a real person's with a
/// wrong password. It used to return after the directory search alone, while a known login also
/// wrote its shadow row and bound as the person.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn an_unknown_login_takes_as_long_as_a_wrong_password() {
    let Some(l) = Ldap::start(TestConfig::fast(), &["--lockout-threshold", "100000"]) else {
        return;
    };
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut rng = crate::enumeration::Rng(seed);
    let n = 400;
    let mut verdicts = Vec::new();
    for attempt in 1..=2 {
        for i in 0..20 {
            wrong_login(&l, &http, ["alice", &format!("warm{i}")][i % 2]).await;
        }
        let reference = wrong_login(&l, &http, "alice").await;
        assert_eq!(reference.0, 401, "{}", reference.1);
        let mut lat: [Vec<f64>; 2] = Default::default();
        for i in 0..n / 2 {
            let first = (rng.next() % 2) as usize;
            for side in [first, 1 - first] {
                let login = if side == 0 {
                    "alice".to_owned()
                } else {
                    format!("nobody{attempt}x{i}")
                };
                let (status, body, took) = wrong_login(&l, &http, &login).await;
                assert_eq!((status, &body), (reference.0, &reference.1), "{login}");
                lat[side].push(took);
            }
        }
        let median = |v: &[f64]| {
            let mut v = v.to_vec();
            v.sort_by(|a, b| a.total_cmp(b));
            v[v.len() / 2]
        };
        let (_, p) = crate::enumeration::mann_whitney_u(&lat[0], &lat[1]);
        let line = format!(
            "attempt {attempt} (seed {seed}): wrong password median {:.0} µs, unknown login median {:.0} µs, p = {p:.4}",
            median(&lat[0]),
            median(&lat[1])
        );
        println!("{line}");
        if p > crate::enumeration::ALPHA {
            return;
        }
        verdicts.push(line);
    }
    panic!(
        "an unknown login is told apart by its timing:\n{}",
        verdicts.join("\n")
    );
}
