//! Typed calls for the endpoints the suite uses most, so a test names what it does instead of
//! spelling a path and a JSON body (on the `default` tenant; other tenants use `post`).

use serde_json::{json, Value};

use super::config::TestConfig;
use super::Server;

impl Server {
    /// Starts a server with `config` in a fresh data directory.
    pub fn spawn(config: &TestConfig) -> Server {
        Self::start(config.toml())
    }

    /// `POST /v1/default/recovery`: asks for a reset link for `login`.
    pub async fn request_reset(&self, login: &str) -> reqwest::Response {
        self.post("/v1/default/recovery", json!({ "login": login }))
            .await
    }

    /// `POST /v1/default/recovery/{token}`: sets `password` with an emailed token.
    pub async fn complete_reset(&self, token: &str, password: &str) -> reqwest::Response {
        self.post(
            &format!("/v1/default/recovery/{token}"),
            json!({ "password": password }),
        )
        .await
    }

    /// `POST /v1/default/authenticate`.
    pub async fn authenticate(&self, login: &str, password: &str) -> reqwest::Response {
        self.post(
            "/v1/default/authenticate",
            json!({ "login": login, "password": password }),
        )
        .await
    }

    /// `POST /v1/default/people` with the admin key; `add_person` is the shortcut that expects
    /// a 201 and returns the id.
    pub async fn create_person(&self, body: Value) -> reqwest::Response {
        self.admin_post("/v1/default/people", body).await
    }
}
