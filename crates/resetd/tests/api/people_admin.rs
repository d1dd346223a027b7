//! Day-two administration on the native API (issue 18 item 2): people listed by page and
//! searched (past the end is an empty page; bad paging parameters are problems), a person
//! erased (again: 404), a tenant and a client shown and removed (a tenant with people only with
//! `force`).

use serde_json::{json, Value};

use crate::helpers::config::TestConfig;
use crate::helpers::Server;

async fn call(s: &Server, method: reqwest::Method, path: &str) -> reqwest::Response {
    s.http
        .request(method, s.url(path))
        .bearer_auth(&s.key)
        .send()
        .await
        .unwrap()
}

async fn get(s: &Server, path: &str) -> (u16, Value) {
    let res = call(s, reqwest::Method::GET, path).await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn delete(s: &Server, path: &str) -> (u16, Option<String>, Value) {
    let res = call(s, reqwest::Method::DELETE, path).await;
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    (
        status,
        content_type,
        res.json().await.unwrap_or(Value::Null),
    )
}

fn logins(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["login"].as_str().unwrap())
        .collect()
}

fn problem_type(v: &Value) -> &str {
    v["type"].as_str().unwrap_or("")
}

#[tokio::test]
async fn people_are_listed_page_by_page_and_searched() {
    let s = Server::spawn(&TestConfig::fast());
    for who in ["ann", "ben", "cat", "dan", "eve"] {
        s.add_person(who, &format!("{who}@example.com"), None).await;
    }
    s.add_person("fay", "fay@Other.example", None).await;

    let (status, first) = get(&s, "/v1/default/people?limit=2").await;
    assert_eq!(status, 200);
    assert_eq!(logins(&first), ["ann", "ben"]);
    let next = first["next_after"].as_i64().expect("a next page");
    let (_, second) = get(&s, &format!("/v1/default/people?limit=2&after={next}")).await;
    assert_eq!(logins(&second), ["cat", "dan"]);
    let next = second["next_after"].as_i64().unwrap();
    let (_, last) = get(&s, &format!("/v1/default/people?limit=2&after={next}")).await;
    assert_eq!(logins(&last), ["eve", "fay"]);
    let next = last["next_after"].as_i64().unwrap();
    // Past the end: an empty page, not an error.
    let (status, past) = get(&s, &format!("/v1/default/people?limit=2&after={next}")).await;
    assert_eq!(status, 200);
    assert_eq!(past, json!({"items": [], "next_after": null}));
    let (status, far) = get(&s, "/v1/default/people?after=999999").await;
    assert_eq!((status, far["items"].as_array().unwrap().len()), (200, 0));

    let (_, all) = get(&s, "/v1/default/people").await;
    assert_eq!(logins(&all).len(), 6);
    assert_eq!(all["next_after"], Value::Null, "one page holds them all");
    assert!(all["items"][0].get("password_hash").is_none());
    let (_, found) = get(&s, "/v1/default/people?q=OTHER.example").await;
    assert_eq!(logins(&found), ["fay"]);
    let (_, none) = get(&s, "/v1/default/people?q=nobody").await;
    assert_eq!(none["items"], json!([]));

    // The lookup by login is as before: zero or one item, no paging field.
    let (_, one) = get(&s, "/v1/default/people?login=cat").await;
    assert_eq!(logins(&one), ["cat"]);
    assert!(one.get("next_after").is_none());

    for (query, status, kind) in [
        ("limit=0", 422, "invalid-input"),
        ("limit=1001", 422, "invalid-input"),
        ("after=-1", 422, "invalid-input"),
        ("limit=ten", 400, "invalid-query"),
        ("after=1.5", 400, "invalid-query"),
        ("login=cat&limit=5", 422, "invalid-input"),
        ("login=cat&email=cat@example.com", 422, "invalid-input"),
        ("page=2", 400, "invalid-query"),
    ] {
        let (got, body) = get(&s, &format!("/v1/default/people?{query}")).await;
        assert_eq!(got, status, "?{query}: {body}");
        assert!(problem_type(&body).ends_with(kind), "?{query}: {body}");
    }
    let long = "x".repeat(257);
    let (got, body) = get(&s, &format!("/v1/default/people?q={long}")).await;
    assert_eq!(got, 422, "{body}");
}

#[tokio::test]
async fn a_person_is_erased_once_and_then_unknown() {
    let s = Server::spawn(&TestConfig::fast());
    let id = s
        .add_person("gone", "gone@example.com", Some("amber falcon quartz 91"))
        .await;
    let kept = s.add_person("kept", "kept@example.com", None).await;

    let (status, _, _) = delete(&s, &format!("/v1/default/people/{id}")).await;
    assert_eq!(status, 204);
    assert_eq!(s.person(&id).await.status(), 404);
    assert_eq!(s.find_people("gone").await["items"], json!([]));
    assert_eq!(s.auth_status("gone", "amber falcon quartz 91").await, 401);

    // Deleting twice: a clear problem+json 404.
    let (status, content_type, body) = delete(&s, &format!("/v1/default/people/{id}")).await;
    assert_eq!(status, 404);
    assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    assert!(problem_type(&body).ends_with("not-found"), "{body}");
    assert_eq!(body["detail"], "No person has this id.");
    let (status, _, _) = delete(&s, "/v1/default/people/not-an-id").await;
    assert_eq!(status, 404);

    // The audit trail stays, under another id.
    let events = s.audit_items("?limit=1000").await;
    assert!(
        events.iter().all(|e| e["person"] != json!(id)),
        "{events:#?}"
    );
    let erased = events
        .iter()
        .find(|e| e["kind"] == "person_erased")
        .expect("a person_erased event");
    let pseudonym = erased["person"].as_str().unwrap();
    assert_eq!(pseudonym.len(), 32);
    let created = events
        .iter()
        .find(|e| e["kind"] == "person_created" && e["person"] == json!(pseudonym))
        .expect("the creation, under the replacement id");
    assert!(created["detail"].get("login").is_none(), "{created}");
    assert_eq!(s.person_json(&kept).await["login"], "kept");
}

#[tokio::test]
async fn tenants_and_clients_are_shown_and_removed() {
    let s = Server::spawn(&TestConfig::fast());
    let (status, tenant) = get(&s, "/v1/default").await;
    assert_eq!(status, 200);
    assert_eq!(tenant["id"], "default");
    assert!(tenant["settings"]["min_password_length"].is_number());
    // Another tenant's name: the key is not for it (answered like any tenant it cannot see).
    let (status, unknown) = get(&s, "/v1/nosuch").await;
    assert_eq!(status, 403, "{unknown}");

    s.add_portal_client().await;
    let (_, clients) = get(&s, "/v1/default/clients").await;
    let name = clients["items"][0]["name"].as_str().unwrap().to_owned();
    let (status, client) = get(&s, &format!("/v1/default/clients/{name}")).await;
    assert_eq!(status, 200);
    assert_eq!(client, clients["items"][0]);
    let (status, _, _) = delete(&s, &format!("/v1/default/clients/{name}")).await;
    assert_eq!(status, 204);
    let (status, body) = get(&s, &format!("/v1/default/clients/{name}")).await;
    assert_eq!(status, 404, "{body}");
    let (status, _, body) = delete(&s, &format!("/v1/default/clients/{name}")).await;
    assert_eq!(status, 404);
    assert!(problem_type(&body).ends_with("not-found"), "{body}");
    let (status, _, _) = delete(&s, "/v1/default/clients/%20bad%20name%20").await;
    assert_eq!(status, 404);
    let (_, clients) = get(&s, "/v1/default/clients").await;
    assert_eq!(clients["items"], json!([]));

    s.add_person("ann", "ann@example.com", None).await;
    let (status, _, body) = delete(&s, "/v1/default").await;
    assert_eq!(status, 409, "{body}");
    assert!(problem_type(&body).ends_with("tenant-has-people"), "{body}");
    assert!(body["detail"].as_str().unwrap().contains("force=true"));
    let (status, _, body) = delete(&s, "/v1/default?force=maybe").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(s.find_people("ann").await["items"][0]["login"], "ann");

    let (status, _, body) = delete(&s, "/v1/default?force=true").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"id": "default", "people_erased": 1}));
    // The tenant is gone, and with it the key that removed it.
    let (status, _) = get(&s, "/v1/default").await;
    assert!(matches!(status, 401 | 404), "{status}");
}
