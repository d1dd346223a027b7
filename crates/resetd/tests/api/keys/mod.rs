//! API keys (issue 18, item 1): the lifecycle on the native API (`native`), the same refusal of a
//! revoked, expired or rotated-out key on every surface that takes keys (`surfaces`), and the
//! `resetd apikey` commands (`cli`).

mod cli;
mod native;
mod surfaces;

use resetd_core::model::Timestamp;
use serde_json::{json, Value};

use crate::helpers::app::Tenant;

/// An RFC 3339 instant `secs` seconds from now (the server runs on the same clock).
pub fn in_secs(secs: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    Timestamp(now).plus_secs(secs).rfc3339()
}

/// A created key: its id and secret.
pub struct Made {
    pub id: String,
    pub key: String,
}

/// Creates a key with `body` through the admin API; asserts 201.
pub async fn make(t: &Tenant<'_>, body: Value) -> Made {
    let res = t.create_api_key(body).await;
    assert_eq!(res.status(), 201);
    let v: Value = res.json().await.unwrap();
    Made {
        id: v["id"].as_str().unwrap().to_owned(),
        key: v["key"].as_str().unwrap().to_owned(),
    }
}

/// A key of `scopes` named `name`, without expiry.
pub async fn make_scoped(t: &Tenant<'_>, name: &str, scopes: &[&str]) -> Made {
    make(t, json!({"name": name, "scopes": scopes})).await
}

/// The key-lifecycle calls of the native API, as the holder of `t.key` (kept here, beside the
/// tests that use them, rather than in the shared harness).
pub(crate) trait KeyCalls {
    /// `GET /v1/{t}/api-keys`.
    async fn list_keys(&self) -> reqwest::Response;
    /// `GET /v1/{t}/api-keys`, asserting 200; the items.
    async fn key_items(&self) -> Vec<Value>;
    /// `GET /v1/{t}/api-keys/{id}`.
    async fn show_key(&self, id: &str) -> reqwest::Response;
    /// `POST /v1/{t}/api-keys/{id}/revoke`.
    async fn revoke_key(&self, id: &str) -> reqwest::Response;
    /// `POST /v1/{t}/api-keys/{id}/rotate` with `query` (e.g. `?overlap_secs=0`).
    async fn rotate_key(&self, id: &str, query: &str) -> reqwest::Response;
    /// `GET /v1/{t}/audit` with `bearer` instead of the tenant's key.
    async fn audit_as(&self, bearer: &str) -> reqwest::Response;
}

impl KeyCalls for Tenant<'_> {
    async fn list_keys(&self) -> reqwest::Response {
        call(self, reqwest::Method::GET, "/api-keys", &self.key).await
    }

    async fn key_items(&self) -> Vec<Value> {
        let res = self.list_keys().await;
        assert_eq!(res.status(), 200);
        let v: Value = res.json().await.unwrap();
        v["items"].as_array().unwrap().clone()
    }

    async fn show_key(&self, id: &str) -> reqwest::Response {
        call(
            self,
            reqwest::Method::GET,
            &format!("/api-keys/{id}"),
            &self.key,
        )
        .await
    }

    async fn revoke_key(&self, id: &str) -> reqwest::Response {
        let path = format!("/api-keys/{id}/revoke");
        call(self, reqwest::Method::POST, &path, &self.key).await
    }

    async fn rotate_key(&self, id: &str, query: &str) -> reqwest::Response {
        let path = format!("/api-keys/{id}/rotate{query}");
        call(self, reqwest::Method::POST, &path, &self.key).await
    }

    async fn audit_as(&self, bearer: &str) -> reqwest::Response {
        call(self, reqwest::Method::GET, "/audit", bearer).await
    }
}

async fn call(
    t: &Tenant<'_>,
    method: reqwest::Method,
    rest: &str,
    bearer: &str,
) -> reqwest::Response {
    t.s.http
        .request(method, t.s.url(&format!("/v1/{}{rest}", t.name)))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap()
}

/// A problem+json answer's status and slug (the end of its `type`).
pub async fn problem(res: reqwest::Response) -> (u16, String, Value) {
    let status = res.status().as_u16();
    assert_eq!(
        res.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    let v: Value = res.json().await.unwrap();
    let slug = v["type"]
        .as_str()
        .unwrap()
        .trim_start_matches("urn:resetd:problem:")
        .to_owned();
    (status, slug, v)
}
