//! Contract tests of the EmpowerID dialect (dialects.md section 4) against the real binary:
//! status, headers and exact `{Success, Message, Exception}` bodies for every case, and the round
//! trip: the help desk sets the password (with unlock and must-change), then the person logs in.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unimplemented
)]

use crate::helpers::config::TestConfig;
use crate::helpers::{cli, Server};
use serde_json::{json, Value};

const GOOD: &str = "violet tangerine orbit 7";
const GOOD2: &str = "quiet harbour lantern 42";
const GOOD3: &str = "amber falcon meadow 93";
const PATH: &str = crate::helpers::vendors::EMPOWERID;
const JSON_UTF8: &str = "application/json; charset=utf-8";

/// EmpowerID on tenant `acme`.
fn config() -> TestConfig {
    TestConfig::fast().dialect_on("empowerid", "acme")
}

/// A server serving EmpowerID on tenant `acme` (lock after 3 failures), an admin key made by the
/// CLI, a second key made through the API (with its public id), and one person.
struct Emp {
    s: Server,
    admin: String,
    app: String,
    app_id: String,
    number: i64,
}

async fn setup(s: Server) -> Emp {
    let data = s.dir.path().to_owned();
    cli(
        &data,
        None,
        &["tenant", "add", "acme", "--lockout-threshold", "3"],
        None,
    );
    let admin = cli(&data, None, &["apikey", "create", "--tenant", "acme"], None)
        .trim()
        .to_owned();
    let acme = s.tenant("acme", &admin);
    let res = acme.create_api_key(json!({"name": "empowerid app"})).await;
    assert_eq!(res.status(), 201);
    let key: Value = res.json().await.unwrap();
    let res = acme
        .create_person(json!({"login": "jdoe", "email": "jdoe@example.com", "password": GOOD}))
        .await;
    assert_eq!(res.status(), 201);
    let person: Value = res.json().await.unwrap();
    Emp {
        s,
        admin,
        app: key["key"].as_str().unwrap().to_owned(),
        app_id: key["id"].as_str().unwrap().to_owned(),
        number: person["number"].as_i64().unwrap(),
    }
}

struct Answer {
    status: u16,
    content_type: Option<String>,
    www_authenticate: Option<String>,
    body: String,
}

impl Emp {
    /// POSTs `body` (raw text, JSON content type) with the given credentials.
    async fn call_raw(
        &self,
        path: &str,
        app: Option<&str>,
        bearer: Option<&str>,
        content_type: Option<&str>,
        body: String,
    ) -> Answer {
        let mut req = self.s.http.post(self.s.url(path)).body(body);
        if let Some(k) = app {
            req = req.header("X-EmpowerID-API-Key", k);
        }
        if let Some(b) = bearer {
            req = req.header("Authorization", format!("Bearer {b}"));
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let res = req.send().await.unwrap();
        let h = res.headers().clone();
        let get = |n: &str| h.get(n).map(|v| v.to_str().unwrap().to_owned());
        Answer {
            status: res.status().as_u16(),
            content_type: get("content-type"),
            www_authenticate: get("www-authenticate"),
            body: res.text().await.unwrap(),
        }
    }

    async fn call(&self, body: Value) -> Answer {
        self.call_raw(
            PATH,
            Some(&self.app),
            Some(&self.admin),
            Some("application/json"),
            body.to_string(),
        )
        .await
    }

    async fn login(&self, password: &str) -> (u16, Value) {
        let res = self
            .s
            .tenant("acme", &self.admin)
            .authenticate("jdoe", password)
            .await;
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }
}

fn success(a: &Answer) {
    assert_eq!(
        (a.status, a.content_type.as_deref()),
        (200, Some(JSON_UTF8)),
        "{}",
        a.body
    );
    // On the wire the message has one literal backslash, JSON-escaped.
    assert_eq!(
        a.body,
        r#"{"Success":true,"Message":"EmpowerID\\jdoe Password reset successfully","Exception":null}"#
    );
}

fn failure(a: &Answer, status: u16, message: &str, exception: &str) {
    assert_eq!(
        (a.status, a.content_type.as_deref()),
        (status, Some(JSON_UTF8)),
        "{}",
        a.body
    );
    assert_eq!(
        a.body,
        format!(
            r#"{{"Success":false,"Message":{},"Exception":"{exception}"}}"#,
            json!(message)
        )
    );
}

const DENIED: &str = "Authorization has been denied for this request.";

#[tokio::test]
async fn round_trip_set_unlock_must_change_then_authenticate() {
    let e = setup(Server::spawn(&config())).await;

    // Lock the account: three failures.
    for _ in 0..3 {
        assert_eq!(e.login("wrong password").await.0, 401);
    }
    assert_eq!(e.login(GOOD).await.0, 423);

    // Without UnlockAccounts the password changes but the lock stays.
    let a = e
        .call(json!({"PersonID": e.number, "Password": GOOD2, "UnlockAccounts": false, "MustChangePasswordOnNextLogin": false}))
        .await;
    success(&a);
    assert_eq!(e.login(GOOD2).await.0, 423, "still locked");

    // With both flags (and PersonID as a numeric string, as the docs' example sends it).
    let a = e
        .call(json!({"PersonID": e.number.to_string(), "Password": GOOD3, "UnlockAccounts": true, "MustChangePasswordOnNextLogin": true}))
        .await;
    success(&a);
    let (status, body) = e.login(GOOD3).await;
    assert_eq!(status, 200, "unlocked");
    assert_eq!(body["must_change_password"], true);
    assert_eq!(e.login(GOOD2).await.0, 401, "the previous password is gone");

    // The flags are optional (the older docs require only PersonID and Password) and reset
    // must-change when false.
    success(
        &e.call(json!({"PersonID": e.number, "Password": GOOD}))
            .await,
    );
    let (status, body) = e.login(GOOD).await;
    assert_eq!(
        (status, body["must_change_password"].clone()),
        (200, json!(false))
    );

    // Each change mails the person.
    e.s.wait_mails("password_changed", "jdoe@example.com", 3)
        .await;
}

#[tokio::test]
async fn both_credentials_are_required_and_checked() {
    let e = setup(Server::spawn(&config())).await;
    let body = json!({"PersonID": e.number, "Password": GOOD2}).to_string();
    let unknown = format!("rsd_{}", "C".repeat(43));
    for (app, bearer) in [
        (None, Some(e.admin.as_str())),
        (Some(e.app.as_str()), None),
        (None, None),
        (Some(unknown.as_str()), Some(e.admin.as_str())),
        (Some(e.app.as_str()), Some(unknown.as_str())),
        (Some("not-a-key"), Some(e.admin.as_str())),
        (Some(e.app.as_str()), Some("eyJhbGciOiJSUzI1NiJ9.e30.sig")),
    ] {
        let a = e
            .call_raw(PATH, app, bearer, Some("application/json"), body.clone())
            .await;
        failure(&a, 401, DENIED, "Unauthorized");
        assert_eq!(a.www_authenticate.as_deref(), Some("Bearer"));
    }
    // Authorization with another scheme.
    let res =
        e.s.http
            .post(e.s.url(PATH))
            .header("X-EmpowerID-API-Key", &e.app)
            .header("Authorization", format!("Basic {}", e.admin))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
    assert_eq!(res.status(), 401);

    // A key of another tenant may not act here.
    for (app, bearer) in [(&e.s.key, &e.admin), (&e.app, &e.s.key)] {
        let a = e
            .call_raw(
                PATH,
                Some(app),
                Some(bearer),
                Some("application/json"),
                body.clone(),
            )
            .await;
        failure(
            &a,
            403,
            "The caller may not reset passwords in this tenant.",
            "Forbidden",
        );
    }

    // Credentials are checked before the body: no hint about the body to a stranger.
    let a = e
        .call_raw(PATH, None, None, Some("text/plain"), "nonsense".into())
        .await;
    failure(&a, 401, DENIED, "Unauthorized");
    assert_eq!(e.login(GOOD).await.0, 200, "nothing changed");

    // The bearer key is the actor in the audit log.
    let a = e
        .call_raw(
            PATH,
            Some(&e.admin),
            Some(&e.app),
            Some("application/json"),
            body,
        )
        .await;
    success(&a);
    let audit: Value =
        e.s.tenant("acme", &e.admin)
            .audit("")
            .await
            .json()
            .await
            .unwrap();
    let set = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "password_set_by_admin")
        .expect("an audit event");
    assert_eq!(set["actor"], format!("api_key:{}", e.app_id));
    assert_eq!(
        set["detail"],
        json!({"unlock": false, "must_change_password": false})
    );
}

#[tokio::test]
async fn app_key_ids_restrict_the_application_key() {
    let e = setup(Server::spawn(&config())).await;
    let Emp {
        s,
        admin,
        app,
        app_id,
        number,
    } = e;
    let dir = s.stop();
    let s = Server::spawn_in(
        dir,
        &config().dialect("empowerid", "app_key_ids", [app_id.as_str()]),
    );
    let e = Emp {
        s,
        admin,
        app,
        app_id,
        number,
    };
    let body = json!({"PersonID": e.number, "Password": GOOD2}).to_string();
    let a = e
        .call_raw(
            PATH,
            Some(&e.admin),
            Some(&e.admin),
            Some("application/json"),
            body.clone(),
        )
        .await;
    failure(&a, 401, DENIED, "Unauthorized");
    let a = e
        .call_raw(
            PATH,
            Some(&e.app),
            Some(&e.admin),
            Some("application/json"),
            body,
        )
        .await;
    success(&a);
}

#[tokio::test]
async fn body_and_person_rows() {
    let e = setup(Server::spawn(&config())).await;
    let n = e.number;
    for (body, message) in [
        (json!({"Password": GOOD2}), "PersonID is required."),
        (
            json!({"PersonID": null, "Password": GOOD2}),
            "PersonID is required.",
        ),
        (
            json!({"PersonID": "12x", "Password": GOOD2}),
            "PersonID must be a positive integer.",
        ),
        (
            json!({"PersonID": 0, "Password": GOOD2}),
            "PersonID must be a positive integer.",
        ),
        (
            json!({"PersonID": 1.5, "Password": GOOD2}),
            "PersonID must be a positive integer.",
        ),
        (
            json!({"PersonID": true, "Password": GOOD2}),
            "PersonID must be a positive integer.",
        ),
        (json!({"PersonID": n}), "Password is required."),
        (
            json!({"PersonID": n, "Password": 5}),
            "Password must be a string.",
        ),
        (
            json!({"PersonID": n, "Password": GOOD2, "UnlockAccounts": "yes"}),
            "UnlockAccounts must be true or false.",
        ),
        (
            json!({"PersonID": n, "Password": GOOD2, "MustChangePasswordOnNextLogin": 1}),
            "MustChangePasswordOnNextLogin must be true or false.",
        ),
        (json!([n, GOOD2]), "The request body must be a JSON object."),
        (
            json!({"PersonID": n, "Password": "x".repeat(300)}),
            "Password must be at most 256 characters.",
        ),
    ] {
        failure(&e.call(body.clone()).await, 400, message, "InvalidRequest");
    }
    for (raw, message) in [
        ("", "The request body is required."),
        (
            "{\"PersonID\": 1, ",
            "The request body is not valid JSON (line 1, column 16).",
        ),
    ] {
        let a = e
            .call_raw(
                PATH,
                Some(&e.app),
                Some(&e.admin),
                Some("application/json"),
                raw.into(),
            )
            .await;
        failure(&a, 400, message, "InvalidRequest");
    }

    // Property names in any case, extra properties ignored (Newtonsoft's binding).
    success(
        &e.call(json!({"personid": n, "PASSWORD": GOOD2, "unlockAccounts": "TRUE", "Comment": "ticket 42"}))
            .await,
    );

    // Unknown person.
    failure(
        &e.call(json!({"PersonID": 999, "Password": GOOD2})).await,
        404,
        "No person with PersonID 999 was found.",
        "PersonNotFound",
    );

    // The policy still applies; nothing changes.
    failure(
        &e.call(json!({"PersonID": n, "Password": "jdoe"})).await,
        400,
        "The password does not meet the password policy: Use at least 8 characters. \
         This password is too common or too easy to guess. \
         Do not use your login, email address or name in your password.",
        "PasswordPolicyViolation",
    );
    assert_eq!(e.login(GOOD2).await.0, 200);
}

#[tokio::test]
async fn wire_errors_keep_the_envelope() {
    let e = setup(Server::spawn(&config())).await;
    let body = json!({"PersonID": e.number, "Password": GOOD2}).to_string();

    for (ct, shown) in [
        (Some("text/plain"), "text/plain"),
        (None, "application/octet-stream"),
        (
            Some("application/x-www-form-urlencoded"),
            "application/x-www-form-urlencoded",
        ),
    ] {
        let a = e
            .call_raw(PATH, Some(&e.app), Some(&e.admin), ct, body.clone())
            .await;
        failure(
            &a,
            415,
            &format!(
                "The request entity's media type '{shown}' is not supported for this resource."
            ),
            "UnsupportedMediaType",
        );
    }
    let a = e
        .call_raw(
            PATH,
            Some(&e.app),
            Some(&e.admin),
            Some("application/json"),
            format!("{{\"Password\":\"{}\"}}", "x".repeat(100_000)),
        )
        .await;
    failure(
        &a,
        413,
        "The request body is larger than the server accepts.",
        "PayloadTooLarge",
    );

    // The older documented path and any capitalisation reach the same endpoint.
    for path in [
        "/api/services/v1/password/reset",
        "/api/services/v1/passwordpolicy/resetpassword",
        "/api/services/v1/PASSWORDPOLICY/RESETPASSWORD",
    ] {
        let a = e
            .call_raw(
                path,
                Some(&e.app),
                Some(&e.admin),
                Some("application/json"),
                body.clone(),
            )
            .await;
        success(&a);
    }

    // Unknown routes (also ones that are not UTF-8) and other methods.
    for path in ["/api/services/v1/Person/GetByID", "/api/services/v1/%FF"] {
        let a = e
            .call_raw(
                path,
                Some(&e.app),
                Some(&e.admin),
                Some("application/json"),
                body.clone(),
            )
            .await;
        failure(
            &a,
            404,
            "No HTTP resource was found that matches the request URI.",
            "NotFound",
        );
    }
    for path in [PATH, "/api/services/v1/passwordpolicy/resetpassword"] {
        let res = e.s.http.get(e.s.url(path)).send().await.unwrap();
        let a = Answer {
            status: res.status().as_u16(),
            content_type: res
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned()),
            www_authenticate: None,
            body: res.text().await.unwrap(),
        };
        failure(
            &a,
            405,
            "The requested resource does not support http method 'GET'.",
            "MethodNotAllowed",
        );
    }
}

/// IIS matches the whole path in any letter case, and EmpowerID's docs promise it: the prefix too.
#[tokio::test]
async fn the_whole_path_matches_in_any_case() {
    let e = setup(Server::spawn(&config())).await;
    let body = json!({"PersonID": e.number, "Password": GOOD2}).to_string();
    let post = |path: &'static str| {
        e.call_raw(
            path,
            Some(&e.app),
            Some(&e.admin),
            Some("application/json"),
            body.clone(),
        )
    };
    for path in [
        "/API/Services/V1/PasswordPolicy/ResetPassword",
        "/Api/SERVICES/v1/passwordpolicy/resetpassword",
        "/API/SERVICES/V1/PASSWORD/RESET",
        "/api/Services/v1/PasswordPolicy/ResetPassword?x=1",
    ] {
        success(&post(path).await);
    }
    // Credentials are still checked behind a respelt prefix.
    let a = e
        .call_raw(
            "/API/Services/V1/PasswordPolicy/ResetPassword",
            Some(&e.app),
            None,
            Some("application/json"),
            body.clone(),
        )
        .await;
    failure(&a, 401, DENIED, "Unauthorized");
    assert_eq!(a.www_authenticate.as_deref(), Some("Bearer"));

    // A wrong path under the prefix, in any case, is EmpowerID's 404, not resetd's.
    for path in [
        "/API/Services/V1/Person/GetByID",
        "/Api/Services/V1/%FF",
        "/API/SERVICES/V1/PasswordPolicy",
    ] {
        failure(
            &post(path).await,
            404,
            "No HTTP resource was found that matches the request URI.",
            "NotFound",
        );
    }
    let res =
        e.s.http
            .get(e.s.url("/API/Services/V1/PasswordPolicy/ResetPassword"))
            .send()
            .await
            .unwrap();
    let a = Answer {
        status: res.status().as_u16(),
        content_type: res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned()),
        www_authenticate: None,
        body: res.text().await.unwrap(),
    };
    failure(
        &a,
        405,
        "The requested resource does not support http method 'GET'.",
        "MethodNotAllowed",
    );

    // Outside the prefix nothing changes: a look-alike segment and the native API stay resetd's.
    for path in [
        "/API/Services/V12/PasswordPolicy/ResetPassword",
        "/V1/acme/recovery",
    ] {
        let res = e.s.http.post(e.s.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_dialect_is_off_unless_enabled() {
    let s = Server::spawn(&TestConfig::fast());
    for path in [PATH, "/API/Services/V1/PasswordPolicy/ResetPassword"] {
        let res = s
            .http
            .post(s.url(path))
            .json(&json!({"PersonID": 1, "Password": GOOD}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{path}");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
    }
}
