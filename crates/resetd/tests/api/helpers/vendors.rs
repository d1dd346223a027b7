//! Typed calls for each dialect's main endpoints, for the tests that cross every surface (the
//! dialects' own contract tests send raw bodies, to compare whole answers).

use serde_json::{json, Value};

use super::Server;

/// Alfresco's people, on the `-default-` network.
pub const PEOPLE: &str = "/alfresco/api/-default-/public/alfresco/versions/1/people";
/// Crafter Profile's profiles, at the default base path.
pub const CRAFTER: &str = "/crafter-profile/api/1/profile";
/// EmpowerID's password set.
pub const EMPOWERID: &str = "/api/services/v1/PasswordPolicy/ResetPassword";

impl Server {
    /// Alfresco: `POST …/people/{person}/request-password-reset` for the client `client`.
    pub async fn alfresco_request_reset(&self, person: &str, client: &str) -> reqwest::Response {
        self.post(
            &format!("{PEOPLE}/{person}/request-password-reset"),
            json!({ "client": client }),
        )
        .await
    }

    /// Alfresco: `POST …/people/{person}/reset-password` with the emailed `id` and `key`.
    pub async fn alfresco_reset_password(
        &self,
        person: &str,
        password: &str,
        id: &str,
        key: &str,
    ) -> reqwest::Response {
        self.post(
            &format!("{PEOPLE}/{person}/reset-password"),
            json!({"password": password, "id": id, "key": key}),
        )
        .await
    }

    /// Unleash: `POST /auth/reset/password-email`.
    pub async fn unleash_password_email(&self, email: &str) -> reqwest::Response {
        self.post("/auth/reset/password-email", json!({ "email": email }))
            .await
    }

    /// Unleash: `POST /auth/reset/password` with the emailed token.
    pub async fn unleash_reset_password(&self, token: &str, password: &str) -> reqwest::Response {
        self.post(
            "/auth/reset/password",
            json!({"token": token, "password": password}),
        )
        .await
    }

    /// Payabli: `POST /api/User/authreset` with the `requestToken` header.
    pub async fn payabli_authreset(&self, request_token: &str, email: &str) -> reqwest::Response {
        self.http
            .post(self.url("/api/User/authreset"))
            .header("requestToken", request_token)
            .json(&json!({ "email": email }))
            .send()
            .await
            .unwrap()
    }

    /// Crafter Profile: `POST …/profile/{oid}/reset_password` (a form).
    pub async fn crafter_reset_password(
        &self,
        oid: &str,
        access_token: &str,
        reset_password_url: &str,
    ) -> reqwest::Response {
        self.http
            .post(self.url(&format!("{CRAFTER}/{oid}/reset_password")))
            .form(&[
                ("accessTokenId", access_token),
                ("resetPasswordUrl", reset_password_url),
            ])
            .send()
            .await
            .unwrap()
    }

    /// Crafter Profile: `POST …/profile/change_password` with the emailed token (a form).
    pub async fn crafter_change_password(
        &self,
        access_token: &str,
        reset_token: &str,
        password: &str,
    ) -> reqwest::Response {
        self.http
            .post(self.url(&format!("{CRAFTER}/change_password")))
            .form(&[
                ("accessTokenId", access_token),
                ("resetTokenId", reset_token),
                ("newPassword", password),
            ])
            .send()
            .await
            .unwrap()
    }

    /// EmpowerID: `POST /api/services/v1/PasswordPolicy/ResetPassword` with the application key
    /// and the bearer key.
    pub async fn empowerid_reset_password(
        &self,
        app_key: &str,
        bearer: &str,
        body: Value,
    ) -> reqwest::Response {
        self.http
            .post(self.url(EMPOWERID))
            .header("X-EmpowerID-API-Key", app_key)
            .bearer_auth(bearer)
            .json(&body)
            .send()
            .await
            .unwrap()
    }
}
