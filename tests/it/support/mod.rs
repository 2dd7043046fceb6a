//! The integration-test harness: a real Bulwark on an ephemeral port, spoken to over HTTP,
//! on a fresh database of the backend named by `BULWARK_TEST_DB` (`sqlite`, the default, or
//! `postgres`, whose cluster `scripts/test.sh` starts and describes in `BULWARK_TEST_PG_*`).

#![allow(dead_code, reason = "each test module uses a different part of the harness")]
#![allow(clippy::disallowed_methods, reason = "tests inspect the database directly")]

pub mod binary;
pub mod proxy;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr as _;

use bulwark::Application;
use bulwark::config::{self, ConfigInput, DevSecrets};
use serde_json::Value;
use sqlx::Connection as _;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const JWT_SECRET: &str = "integration-test-jwt-secret-0123456789abcdef";
pub const MASTER_KEYS: &str = "test1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn backend() -> Backend {
    match std::env::var("BULWARK_TEST_DB").as_deref() {
        Ok("postgres") => Backend::Postgres,
        Ok("sqlite") | Err(_) => Backend::Sqlite,
        Ok(other) => panic!("BULWARK_TEST_DB={other}: use sqlite or postgres"),
    }
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the suite through scripts/test.sh, which starts PostgreSQL")
    })
}

/// A fresh database for one test.
pub struct TestDb {
    pub backend: Backend,
    pub dir: TempDir,
    /// PostgreSQL: the database name.
    pub name: Option<String>,
}

impl TestDb {
    pub async fn create() -> TestDb {
        let dir = tempfile::tempdir().expect("tempdir");
        match backend() {
            Backend::Sqlite => TestDb { backend: Backend::Sqlite, dir, name: None },
            Backend::Postgres => {
                let name = format!("bw_{}", uuid::Uuid::new_v4().simple());
                let mut admin = sqlx::PgConnection::connect(&env("BULWARK_TEST_PG_OWNER_URL"))
                    .await
                    .expect("connect to the test cluster as the owner role");
                let create = format!("CREATE DATABASE \"{name}\"");
                sqlx::query(sqlx::AssertSqlSafe(create))
                    .execute(&mut admin)
                    .await
                    .expect("create database");
                TestDb { backend: Backend::Postgres, dir, name: Some(name) }
            }
        }
    }

    pub fn sqlite_path(&self) -> PathBuf {
        self.dir.path().join("bulwark.db")
    }

    /// The URL the application connects with (PostgreSQL: the non-owner role).
    pub fn app_url(&self) -> String {
        match &self.name {
            None => format!("sqlite://{}", self.sqlite_path().display()),
            Some(name) => format!("{}/{name}", env("BULWARK_TEST_PG_APP_URL")),
        }
    }

    /// PostgreSQL: the owner role's URL for this database.
    pub fn owner_url(&self) -> Option<String> {
        self.name.as_ref().map(|name| {
            let base = env("BULWARK_TEST_PG_OWNER_URL");
            let base = base.rsplit_once('/').map_or(base.as_str(), |(head, _)| head).to_owned();
            format!("{base}/{name}")
        })
    }

    /// The settings that point Bulwark at this database.
    pub fn settings(&self) -> Vec<(String, String)> {
        let mut pairs = vec![("BULWARK_DATABASE_URL".to_owned(), self.app_url())];
        if let Some(owner) = self.owner_url() {
            pairs.push(("BULWARK_DATABASE_MIGRATE_URL".to_owned(), owner));
        }
        pairs
    }

    /// A raw connection as the given role, bypassing Bulwark, for tests that inspect or
    /// tamper with stored rows.
    pub async fn raw(&self, as_owner: bool) -> RawDb {
        match self.backend {
            Backend::Sqlite => {
                let options = sqlx::sqlite::SqliteConnectOptions::from_str(&self.app_url())
                    .expect("sqlite url")
                    .busy_timeout(std::time::Duration::from_secs(5));
                RawDb::Sqlite(sqlx::SqliteConnection::connect_with(&options).await.expect("sqlite"))
            }
            Backend::Postgres => {
                let url = if as_owner { self.owner_url().expect("pg") } else { self.app_url() };
                RawDb::Postgres(sqlx::PgConnection::connect(&url).await.expect("pg connect"))
            }
        }
    }
}

pub enum RawDb {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

/// A running application and an HTTP client for it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    pub client: reqwest::Client,
    pub db: TestDb,
    pub settings: Vec<(String, String)>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

pub struct Options {
    pub settings: Vec<(String, String)>,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(&[]).await
    }

    pub async fn spawn_with(extra: &[(&str, &str)]) -> TestApp {
        let db = TestDb::create().await;
        Self::spawn_on(db, extra).await
    }

    /// Starts an application on an existing database (e.g. a restart).
    pub async fn spawn_on(db: TestDb, extra: &[(&str, &str)]) -> TestApp {
        let data_dir = db.dir.path().to_str().expect("utf-8 path").to_owned();
        let mut settings: Vec<(String, String)> = vec![
            ("BULWARK_LISTEN".into(), "127.0.0.1:0".into()),
            ("BULWARK_METRICS_LISTEN".into(), "127.0.0.1:0".into()),
            ("BULWARK_DATA_DIR".into(), data_dir),
            ("BULWARK_JWT_SECRET".into(), JWT_SECRET.into()),
            ("BULWARK_MASTER_KEYS".into(), MASTER_KEYS.into()),
        ];
        settings.extend(db.settings());
        for (key, value) in extra {
            settings.retain(|(k, _)| k != key);
            settings.push(((*key).to_owned(), (*value).to_owned()));
        }
        let input = ConfigInput::from_pairs(settings.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let loaded = config::load(&input, DevSecrets::Generate)
            .unwrap_or_else(|problems| panic!("test configuration: {problems}"));
        let application = Application::build(loaded.config).await.expect("application builds");
        let addr = application.local_addr().expect("bound");
        let metrics_addr = application.metrics_addr();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(application.run(async move {
            let _ = rx.await;
        }));
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        TestApp { addr, metrics_addr, client, db, settings, shutdown: Some(tx), task: Some(task) }
    }

    /// Stops the server and hands back its database, for restart tests.
    pub async fn stop(mut self) -> TestDb {
        self.shutdown_now().await;
        std::mem::replace(
            &mut self.db,
            TestDb {
                backend: Backend::Sqlite,
                dir: tempfile::tempdir().expect("tempdir"),
                name: None,
            },
        )
    }

    async fn shutdown_now(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("request")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client.post(self.url(path)).json(body).send().await.expect("request")
    }

    pub async fn metrics(&self) -> String {
        let addr = self.metrics_addr.expect("metrics listener");
        reqwest::get(format!("http://{addr}/metrics"))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The security headers every response must carry (spec §5, API flavour).
pub fn assert_security_headers(response: &reqwest::Response) {
    let headers = response.headers();
    let expect = |name: &str, value: &str| {
        let got = headers.get(name).and_then(|v| v.to_str().ok());
        assert_eq!(got, Some(value), "header {name} on {} {}", response.status(), response.url());
    };
    expect("content-security-policy", "default-src 'none'; frame-ancestors 'none'");
    expect("x-content-type-options", "nosniff");
    expect("x-frame-options", "DENY");
    expect("referrer-policy", "strict-origin-when-cross-origin");
    expect("permissions-policy", "camera=(), microphone=(), geolocation=(), payment=()");
    expect("cross-origin-opener-policy", "same-origin");
    expect("x-xss-protection", "0");
    expect("cache-control", "no-store");
    assert!(headers.contains_key("x-request-id"), "x-request-id on {}", response.url());
}

/// Reads a problem+json response and checks its shape; returns the body.
pub async fn expect_problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status, "status of {}", response.url());
    assert_security_headers(&response);
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok());
    assert_eq!(content_type, Some("application/problem+json"));
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .expect("x-request-id");
    let body: Value = response.json().await.expect("problem body is JSON");
    assert_eq!(body["status"], status);
    assert_eq!(body["request_id"], request_id.as_str());
    let code = body["code"].as_str().expect("code");
    assert_eq!(body["type"], format!("https://bulwark.dev/problems/{code}"));
    assert!(body["title"].is_string() && body["detail"].is_string(), "{body}");
    body
}

/// Runs a future to completion from a plain (non-async) test.
pub fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}
