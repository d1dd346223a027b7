//! Typed calls for the native API, so a test names what it does instead of spelling a path and a
//! JSON body. Every call is written once, on [`Tenant`] (a tenant and the admin key a test holds
//! for it); `Server` has the same calls for `default` with the bootstrap key.
//!
//! A call that names an endpoint returns the whole answer, for the test to check. The few that
//! set something up or read state (`add_person`, `api_key`, `find_people`, `outbox_items`,
//! `audit_items`...) assert that the call worked and return what it gave.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::config::TestConfig;
use super::Server;

/// One tenant of a server, with an admin API key of that tenant.
pub struct Tenant<'a> {
    pub s: &'a Server,
    pub name: String,
    pub key: String,
}

impl Server {
    /// Starts a server with `config` in a fresh data directory.
    pub fn spawn(config: &TestConfig) -> Server {
        Self::start(config.toml())
    }

    /// Starts a server with `config` in `dir` (its config file is rewritten).
    pub fn spawn_in(dir: tempfile::TempDir, config: &TestConfig) -> Server {
        Self::start_in(dir, config.toml())
    }

    /// Starts a server with `config` on the database at `database_url` (see [`Server::start_on`]).
    pub fn spawn_on(database_url: &str, config: &TestConfig) -> Server {
        Self::start_on(database_url, config.toml(), "info")
    }

    /// Stops this server and starts one with `config` on the same data directory. The admin key
    /// is printed only at the first start, so the new server is given the old one's.
    pub fn restart(self, config: &TestConfig) -> Server {
        let key = self.key.clone();
        let dir = self.stop();
        let mut s = Self::spawn_in(dir, config);
        s.key = key;
        s
    }

    /// The calls of the native API on tenant `name`, as the holder of its admin key `key`.
    pub fn tenant(&self, name: &str, key: &str) -> Tenant<'_> {
        Tenant {
            s: self,
            name: name.to_owned(),
            key: key.to_owned(),
        }
    }

    /// `default`, with the bootstrap admin key.
    pub fn default_tenant(&self) -> Tenant<'_> {
        self.tenant("default", &self.key)
    }
}

impl Tenant<'_> {
    fn url(&self, rest: &str) -> String {
        self.s.url(&format!("/v1/{}{rest}", self.name))
    }

    async fn anonymous_post(&self, rest: &str, body: Value) -> reqwest::Response {
        self.s
            .http
            .post(self.url(rest))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn admin(
        &self,
        method: reqwest::Method,
        rest: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut req = self
            .s
            .http
            .request(method, self.url(rest))
            .bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }

    async fn admin_get(&self, rest: &str) -> reqwest::Response {
        self.admin(reqwest::Method::GET, rest, None).await
    }

    async fn admin_post(&self, rest: &str, body: Value) -> reqwest::Response {
        self.admin(reqwest::Method::POST, rest, Some(body)).await
    }

    // ---- anonymous

    /// `POST /v1/{t}/recovery`: asks for a reset link for `login`.
    pub async fn request_reset(&self, login: &str) -> reqwest::Response {
        self.request_reset_with(json!({ "login": login })).await
    }

    /// `POST /v1/{t}/recovery` with a body of the test's own (by email, with a client...).
    pub async fn request_reset_with(&self, body: Value) -> reqwest::Response {
        self.anonymous_post("/recovery", body).await
    }

    /// `GET /v1/{t}/recovery/{token}`: what the token is for, while it lives.
    pub async fn token_info(&self, token: &str) -> reqwest::Response {
        self.s
            .http
            .get(self.url(&format!("/recovery/{token}")))
            .send()
            .await
            .unwrap()
    }

    /// `POST /v1/{t}/recovery/{token}`: sets `password` with an emailed token.
    pub async fn complete_reset(&self, token: &str, password: &str) -> reqwest::Response {
        self.anonymous_post(
            &format!("/recovery/{token}"),
            json!({ "password": password }),
        )
        .await
    }

    /// `POST /v1/{t}/authenticate`.
    pub async fn authenticate(&self, login: &str, password: &str) -> reqwest::Response {
        self.anonymous_post(
            "/authenticate",
            json!({ "login": login, "password": password }),
        )
        .await
    }

    /// The status of [`Tenant::authenticate`].
    pub async fn auth_status(&self, login: &str, password: &str) -> u16 {
        self.authenticate(login, password).await.status().as_u16()
    }

    /// `POST /v1/{t}/password/check`.
    pub async fn check_password(&self, body: Value) -> reqwest::Response {
        self.anonymous_post("/password/check", body).await
    }

    // ---- people (admin)

    /// `POST /v1/{t}/people`; `add_person` is the shortcut that expects a 201.
    pub async fn create_person(&self, body: Value) -> reqwest::Response {
        self.admin_post("/people", body).await
    }

    /// Creates a person (display name "Test Person") and returns their id.
    pub async fn add_person(&self, login: &str, email: &str, password: Option<&str>) -> String {
        let mut body = json!({"login": login, "email": email, "display_name": "Test Person"});
        if let Some(p) = password {
            body["password"] = json!(p);
        }
        let res = self.create_person(body).await;
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
        res.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// `GET /v1/{t}/people/{id}`.
    pub async fn person(&self, id: &str) -> reqwest::Response {
        self.admin_get(&format!("/people/{id}")).await
    }

    /// The person `id` as the API shows them (expects a 200).
    pub async fn person_json(&self, id: &str) -> Value {
        let res = self.person(id).await;
        assert_eq!(res.status(), 200, "GET person {id}");
        res.json().await.unwrap()
    }

    /// `PATCH /v1/{t}/people/{id}`.
    pub async fn update_person(&self, id: &str, body: Value) -> reqwest::Response {
        self.admin(reqwest::Method::PATCH, &format!("/people/{id}"), Some(body))
            .await
    }

    /// `GET /v1/{t}/people?login=…`: the list answer (expects a 200).
    pub async fn find_people(&self, login: &str) -> Value {
        let res = self.admin_get(&format!("/people?login={login}")).await;
        assert_eq!(res.status(), 200, "GET people?login={login}");
        res.json().await.unwrap()
    }

    /// `POST /v1/{t}/people/{id}/disable`.
    pub async fn disable_person(&self, id: &str) -> reqwest::Response {
        self.admin_post(&format!("/people/{id}/disable"), json!({}))
            .await
    }

    /// `POST /v1/{t}/people/{id}/enable`.
    pub async fn enable_person(&self, id: &str) -> reqwest::Response {
        self.admin_post(&format!("/people/{id}/enable"), json!({}))
            .await
    }

    /// `POST /v1/{t}/people/{id}/unlock`.
    pub async fn unlock_person(&self, id: &str) -> reqwest::Response {
        self.admin_post(&format!("/people/{id}/unlock"), json!({}))
            .await
    }

    /// `POST /v1/{t}/people/{id}/password`: the administrative set (`password`, `unlock`,
    /// `must_change_password`).
    pub async fn set_password(&self, id: &str, body: Value) -> reqwest::Response {
        self.admin_post(&format!("/people/{id}/password"), body)
            .await
    }

    // ---- keys and clients (admin)

    /// `POST /v1/{t}/api-keys`.
    pub async fn create_api_key(&self, body: Value) -> reqwest::Response {
        self.admin_post("/api-keys", body).await
    }

    /// Creates an API key named `name`; returns (id, key).
    pub async fn api_key(&self, name: &str) -> (String, String) {
        let res = self.create_api_key(json!({ "name": name })).await;
        assert_eq!(res.status(), 201);
        let v: Value = res.json().await.unwrap();
        (
            v["id"].as_str().unwrap().to_owned(),
            v["key"].as_str().unwrap().to_owned(),
        )
    }

    /// `POST /v1/{t}/clients`.
    pub async fn create_client(&self, body: Value) -> reqwest::Response {
        self.admin_post("/clients", body).await
    }

    /// Registers the client `portal` (links to `https://portal.example.com/reset?token=…`,
    /// caller-supplied URLs under `https://portal.example.com/account/`), expecting a 201.
    pub async fn add_portal_client(&self) {
        let res = self
            .create_client(json!({
                "name": "portal",
                "link_template": "https://portal.example.com/reset?token={token}",
                "allowed_prefixes": ["https://portal.example.com/account/"],
            }))
            .await;
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    }

    // ---- audit and outbox (admin)

    /// `GET /v1/{t}/audit{query}`.
    pub async fn audit(&self, query: &str) -> reqwest::Response {
        self.admin_get(&format!("/audit{query}")).await
    }

    /// The audit events of `GET /v1/{t}/audit{query}`, newest first (expects a 200).
    pub async fn audit_items(&self, query: &str) -> Vec<Value> {
        let res = self.audit(query).await;
        assert_eq!(res.status(), 200, "GET audit{query}");
        let body: Value = res.json().await.unwrap();
        body["items"].as_array().cloned().expect("audit items")
    }

    /// `GET /v1/{t}/outbox{query}`.
    pub async fn outbox(&self, query: &str) -> reqwest::Response {
        self.admin_get(&format!("/outbox{query}")).await
    }

    /// The messages of `GET /v1/{t}/outbox{query}` (expects a 200).
    pub async fn outbox_items(&self, query: &str) -> Vec<Value> {
        let res = self.outbox(query).await;
        assert_eq!(res.status(), 200, "GET outbox{query}");
        let body: Value = res.json().await.unwrap();
        body["items"].as_array().cloned().expect("outbox items")
    }

    /// Waits (up to `secs`) until `check` holds for the whole outbox, and returns it.
    pub async fn wait_outbox(
        &self,
        secs: u64,
        what: &str,
        check: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let items = self.outbox_items("?limit=1000").await;
            if check(&items) {
                return items;
            }
            assert!(
                Instant::now() < deadline,
                "the outbox never showed {what}: {items:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `POST /v1/{t}/outbox/{id}/retry` (`id` as the outbox list shows it).
    pub async fn retry_outbox(&self, id: impl std::fmt::Display) -> reqwest::Response {
        self.admin_post(&format!("/outbox/{id}/retry"), json!({}))
            .await
    }
}

impl Server {
    /// [`Tenant::add_portal_client`] on `default`.
    pub async fn add_portal_client(&self) {
        self.default_tenant().add_portal_client().await;
    }
}

/// The calls of [`Tenant`] on `Server` itself, for `default` with the bootstrap key.
macro_rules! on_default_tenant {
    ($( fn $name:ident(&self $(, $arg:ident: $ty:ty)* ) -> $ret:ty; )*) => {
        impl Server {
            $(
                #[doc = concat!("[`Tenant::", stringify!($name), "`] on `default`.")]
                pub async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    self.default_tenant().$name($($arg),*).await
                }
            )*
        }
    };
}

on_default_tenant! {
    fn request_reset(&self, login: &str) -> reqwest::Response;
    fn request_reset_with(&self, body: Value) -> reqwest::Response;
    fn token_info(&self, token: &str) -> reqwest::Response;
    fn complete_reset(&self, token: &str, password: &str) -> reqwest::Response;
    fn authenticate(&self, login: &str, password: &str) -> reqwest::Response;
    fn auth_status(&self, login: &str, password: &str) -> u16;
    fn check_password(&self, body: Value) -> reqwest::Response;
    fn create_person(&self, body: Value) -> reqwest::Response;
    fn add_person(&self, login: &str, email: &str, password: Option<&str>) -> String;
    fn person(&self, id: &str) -> reqwest::Response;
    fn person_json(&self, id: &str) -> Value;
    fn update_person(&self, id: &str, body: Value) -> reqwest::Response;
    fn find_people(&self, login: &str) -> Value;
    fn disable_person(&self, id: &str) -> reqwest::Response;
    fn enable_person(&self, id: &str) -> reqwest::Response;
    fn unlock_person(&self, id: &str) -> reqwest::Response;
    fn set_password(&self, id: &str, body: Value) -> reqwest::Response;
    fn create_api_key(&self, body: Value) -> reqwest::Response;
    fn api_key(&self, name: &str) -> (String, String);
    fn create_client(&self, body: Value) -> reqwest::Response;
    fn audit(&self, query: &str) -> reqwest::Response;
    fn audit_items(&self, query: &str) -> Vec<Value>;
    fn outbox(&self, query: &str) -> reqwest::Response;
    fn outbox_items(&self, query: &str) -> Vec<Value>;
    fn wait_outbox(&self, secs: u64, what: &str, check: impl Fn(&[Value]) -> bool) -> Vec<Value>;
    fn retry_outbox(&self, id: impl std::fmt::Display) -> reqwest::Response;
}
