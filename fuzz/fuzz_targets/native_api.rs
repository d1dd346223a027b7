//! Every API surface in process (native and all five dialects), on a real SQLite file: arbitrary
//! methods, paths, content types, credentials and bodies never produce a 500 or a panic, and every
//! native error is problem+json.
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::Request;
use libfuzzer_sys::fuzz_target;
use resetd_core::hash::{Argon2id, HashParams};
use resetd_core::model::{Scope, SystemClock, TenantSettings};
use resetd_core::service::{Actor, NewPersonInput};
use resetd_core::store::Store;
use resetd_core::types::{Email, Login, TenantId};
use resetd_core::{Service, ServiceConfig};
use resetd_server::hasher::PooledHasher;
use resetd_server::{AppState, HttpConfig};
use tower::ServiceExt;

struct App {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
    key: String,
    person: String,
    _dir: tempfile::TempDir,
}

static APP: OnceLock<App> = OnceLock::new();

fn app() -> &'static App {
    APP.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (router, key, person) = rt.block_on(async {
            let store: Arc<dyn Store> = Arc::new(resetd_store::sqlite::SqliteStore::open(&dir.path().join("f.db")).unwrap());
            store.migrate().await.unwrap();
            let argon = Argon2id::new(HashParams { m_cost: 64, t_cost: 1, p_cost: 1 }).unwrap();
            let renderer = resetd_mail::TemplateRenderer::new(None, None, "resetd".into()).unwrap();
            let service = Arc::new(Service::new(
                store,
                Arc::new(PooledHasher::new(argon, 1, 4)),
                Arc::new(renderer),
                Arc::new(SystemClock),
                ServiceConfig {
                    public_url: "http://127.0.0.1:1".into(),
                    message_id_domain: "fuzz.test".into(),
                    notice_retry_secs: resetd_core::service::DEFAULT_NOTICE_RETRY_SECS,
                },
            ));
            let t = TenantId::parse("default").unwrap();
            service.create_tenant(t.clone(), TenantSettings::default()).await.unwrap();
            let (api_key, key) = service.create_api_key(&t, "fuzz", vec![Scope::Admin], &Actor::Cli).await.unwrap();
            let input = NewPersonInput {
                login: Login::parse("jdoe").unwrap(),
                email: Email::parse("jdoe@example.com").unwrap(),
                display_name: None,
                locale: None,
                enabled: true,
                roles: vec![],
                attributes: serde_json::json!({}),
                password: None,
                verified: false,
            };
            let p = service.create_person(&t, input, &Actor::Cli).await.unwrap();
            let http = HttpConfig { recovery_per_minute: 0, auth_per_minute: 0, ..HttpConfig::default() };
            let state = AppState::new(service.clone(), http, Arc::new(tokio::sync::Notify::new()), Arc::new(String::new));
            let dialects: resetd_server::dialects::DialectsConfig = serde_json::from_value(serde_json::json!({
                "alfresco": {"enabled": true, "tenant": "default", "clients": {"share": {"reset_password_page_url": "https://share.example.com/reset"}}},
                "crafter": {"enabled": true, "tenant": "default"},
                "empowerid": {"enabled": true, "tenant": "default"},
                "unleash": {"enabled": true, "tenant": "default", "unleash_url": "https://unleash.example.com"},
                "payabli": {"enabled": true, "tenant": "default", "request_tokens": [api_key.id]},
            }))
            .unwrap();
            let dialects = dialects.check().unwrap();
            dialects.provision(&service).await.unwrap();
            (resetd_server::router(state, &dialects), key.expose().to_owned(), p.id.as_str().to_owned())
        });
        App { rt, router, key, person, _dir: dir }
    })
}

const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/default/recovery"),
    ("GET", "/v1/default/recovery/{token}"),
    ("POST", "/v1/default/recovery/{token}"),
    ("POST", "/v1/default/password/check"),
    ("POST", "/v1/default/authenticate"),
    ("POST", "/v1/default/people"),
    ("GET", "/v1/default/people?{query}"),
    ("GET", "/v1/default/people/{id}"),
    ("PATCH", "/v1/default/people/{id}"),
    ("POST", "/v1/default/people/{id}/password"),
    ("POST", "/v1/default/people/{id}/unlock"),
    ("POST", "/v1/default/api-keys"),
    ("POST", "/v1/default/clients"),
    ("GET", "/v1/default/audit?{query}"),
    ("DELETE", "/v1/{query}/people"),
    ("POST", "/alfresco/api/-default-/public/alfresco/versions/1/people/{id}/request-password-reset"),
    ("POST", "/alfresco/api/-default-/public/alfresco/versions/1/people/{id}/reset-password"),
    ("POST", "/auth/reset/password-email"),
    ("GET", "/auth/reset/validate?{query}"),
    ("POST", "/auth/reset/password"),
    ("POST", "/auth/reset/validate-password"),
    ("POST", "/api/User/authreset"),
    ("POST", "/crafter-profile/api/1/profile/{id}/reset_password?{query}"),
    ("POST", "/crafter-profile/api/1/profile/change_password?{query}"),
    ("GET", "/crafter-profile/api/1/profile/verification_token/{token}?{query}"),
    ("POST", "/api/services/v1/PasswordPolicy/ResetPassword"),
    ("POST", "/reset/default"),
    ("POST", "/forgot/default"),
];

const TYPES: &[&str] = &["application/json", "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded", ""];

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let a = app();
    let (method, template) = ROUTES[data[0] as usize % ROUTES.len()];
    let ctype = TYPES[data[1] as usize % TYPES.len()];
    let body = &data[3..];
    let text = String::from_utf8_lossy(body);
    let segment: String = text.chars().filter(|c| c.is_ascii_alphanumeric() || "-_.~%".contains(*c)).take(80).collect();
    let path = template
        .replace("{token}", if data[2] & 4 == 0 { &segment } else { "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" })
        .replace("{id}", if data[2] & 8 == 0 { &segment } else { &a.person })
        .replace("{query}", &segment);
    let mut req = Request::builder().method(method).uri(&path);
    if !ctype.is_empty() {
        req = req.header("content-type", ctype);
    }
    match data[2] & 3 {
        0 => {
            req = req
                .header("authorization", format!("Bearer {}", a.key))
                .header("requestToken", &a.key)
                .header("X-EmpowerID-API-Key", &a.key)
        }
        1 => req = req.header("authorization", format!("Bearer {segment}")),
        _ => {}
    }
    let Ok(req) = req.body(Body::from(body.to_vec())) else { return };
    let res = a.rt.block_on(a.router.clone().oneshot(req)).unwrap();
    let status = res.status().as_u16();
    assert!(status < 500, "{method} {path} -> {status}");
    if status >= 400 && path.starts_with("/v1/") {
        let ct = res.headers().get("content-type").map(|v| v.to_str().unwrap_or("").to_owned());
        assert_eq!(ct.as_deref(), Some("application/problem+json"), "{method} {path} -> {status}");
    }
});
