//! The integration-test harness: a real Bulwark on an ephemeral port, spoken to over HTTP,
//! on a fresh database of the backend named by `BULWARK_TEST_DB` (`sqlite`, the default, or
//! `postgres`, whose cluster `scripts/test.sh` starts and describes in `BULWARK_TEST_PG_*`).

#![allow(dead_code, reason = "each test module uses a different part of the harness")]

pub mod balancer;
pub mod binary;
pub mod integrations;
pub mod mail;
pub mod passkey;
pub mod proxy;
pub mod redis_server;
pub mod totp;

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

/// The product's reqwest (the object store's client) brings no TLS provider of its own;
/// the application installs ring at start-up, and so does every test that may build a
/// client before or without one.
pub fn tls_provider() {
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
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

/// The PgBouncer pass of scripts/test.sh: PostgreSQL through PgBouncer in transaction mode.
pub fn via_pgbouncer() -> bool {
    backend() == Backend::Postgres
        && std::env::var("BULWARK_TEST_VIA_PGBOUNCER").is_ok_and(|v| v == "1")
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
        tls_provider();
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

    /// The settings that point Bulwark at this database: on the PgBouncer pass of
    /// scripts/test.sh (`BULWARK_TEST_VIA_PGBOUNCER=1`) through PgBouncer in transaction
    /// pooling mode, migrations still straight to PostgreSQL as the owner.
    pub fn settings(&self) -> Vec<(String, String)> {
        if let (true, Some(name)) = (via_pgbouncer(), &self.name) {
            return vec![
                (
                    "BULWARK_DATABASE_URL".to_owned(),
                    format!("{}/{name}", env("BULWARK_TEST_PGBOUNCER_APP_URL")),
                ),
                ("BULWARK_DATABASE_POOLER".to_owned(), "transaction".to_owned()),
                ("BULWARK_DATABASE_MIGRATE_URL".to_owned(), self.owner_url().unwrap_or_default()),
            ];
        }
        let mut pairs = vec![("BULWARK_DATABASE_URL".to_owned(), self.app_url())];
        if let Some(owner) = self.owner_url() {
            pairs.push(("BULWARK_DATABASE_MIGRATE_URL".to_owned(), owner));
        }
        pairs
    }

    /// A raw connection bypassing Bulwark, for tests that inspect or tamper with stored rows:
    /// on PostgreSQL the superuser (`as_owner`; row-level security does not bind it) or the
    /// application role. Either way the connection is in system mode (`bulwark.system`), as
    /// platform code runs: a test of row-level security as a tenant switches it off first.
    pub async fn raw(&self, as_owner: bool) -> RawDb {
        match self.backend {
            Backend::Sqlite => {
                let options = sqlx::sqlite::SqliteConnectOptions::from_str(&self.app_url())
                    .expect("sqlite url")
                    .busy_timeout(std::time::Duration::from_secs(5));
                RawDb::Sqlite(sqlx::SqliteConnection::connect_with(&options).await.expect("sqlite"))
            }
            Backend::Postgres => {
                let url = if as_owner {
                    let base = env("BULWARK_TEST_PG_SUPERUSER_URL");
                    let base =
                        base.rsplit_once('/').map_or(base.as_str(), |(head, _)| head).to_owned();
                    format!("{base}/{}", self.name.as_deref().expect("pg"))
                } else {
                    self.app_url()
                };
                let mut conn = sqlx::PgConnection::connect(&url).await.expect("pg connect");
                // Row-level security binds the owner too (FORCE): inspect as platform code does.
                sqlx::query("SELECT set_config('bulwark.system', 'on', false)")
                    .execute(&mut conn)
                    .await
                    .expect("system scope");
                RawDb::Postgres(conn)
            }
        }
    }
}

pub enum RawDb {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

/// A running application and an HTTP client for it.
/// A user's second factor, as the test knows it.
#[derive(Debug, Clone, Default)]
pub struct MfaState {
    pub secret: Vec<u8>,
    pub backup_codes: Vec<String>,
}

pub struct TestApp {
    /// Second factors the test enrolled, by email.
    pub mfa: std::sync::Mutex<std::collections::HashMap<String, MfaState>>,
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
        // BULWARK_TEST_LOG=warn (say) shows the apps' logs when a test is run alone.
        if let Ok(filter) = std::env::var("BULWARK_TEST_LOG") {
            let _ = bulwark::telemetry::logs::init(&filter);
        }
        let db = TestDb::create().await;
        Self::spawn_on(db, extra).await
    }

    /// Builds an application on `db` without starting it: the error text if it refuses.
    pub async fn build_on(db: &TestDb, extra: &[(&str, &str)]) -> Result<Application, String> {
        Self::build(&Self::settings_on(db, extra)).await
    }

    async fn build(settings: &[(String, String)]) -> Result<Application, String> {
        let input = ConfigInput::from_pairs(settings.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let loaded = config::load(&input, DevSecrets::Generate)
            .unwrap_or_else(|problems| panic!("test configuration: {problems}"));
        Application::build(loaded.config).await.map_err(|err| format!("{err:#}"))
    }

    /// Starts an application on an existing database (e.g. a restart).
    pub async fn spawn_on(db: TestDb, extra: &[(&str, &str)]) -> TestApp {
        let settings = Self::settings_on(&db, extra);
        let application = Self::build(&settings).await.expect("application builds");
        Self::start(db, settings, application).await
    }

    /// The settings of an application on `db`: the harness's, then `extra` (an empty value
    /// unsets a harness default, so the product's own default applies).
    fn settings_on(db: &TestDb, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let data_dir = db.dir.path().to_str().expect("utf-8 path").to_owned();
        let mut settings: Vec<(String, String)> = vec![
            // Fast hashing for the suite; one test checks the OWASP defaults separately.
            ("BULWARK_ARGON2_MEMORY_KIB".into(), "1024".into()),
            ("BULWARK_ARGON2_ITERATIONS".into(), "1".into()),
            ("BULWARK_HASH_WORKERS".into(), "2".into()),
            // Every test comes from 127.0.0.1; the rate-limit tests switch limits on.
            ("BULWARK_RATE_LIMITS".into(), "off".into()),
            ("BULWARK_LISTEN".into(), "127.0.0.1:0".into()),
            ("BULWARK_METRICS_LISTEN".into(), "127.0.0.1:0".into()),
            ("BULWARK_DATA_DIR".into(), data_dir),
            ("BULWARK_JWT_SECRET".into(), JWT_SECRET.into()),
            ("BULWARK_MASTER_KEYS".into(), MASTER_KEYS.into()),
        ];
        settings.extend(db.settings());
        settings.extend(mail::settings());
        // Documents: on the local disk of the data directory, but in the S3-compatible
        // server of scripts/test.sh on the PostgreSQL pass (a prefix per test). That server
        // speaks plain HTTP, which only the development profile accepts.
        let development = extra.iter().all(|(k, v)| *k != "BULWARK_ENV" || *v == "development");
        if db.backend == Backend::Postgres
            && development
            && let Ok(endpoint) = std::env::var("BULWARK_TEST_S3_ENDPOINT")
        {
            let prefix = uuid::Uuid::new_v4().simple().to_string();
            settings.extend([
                ("BULWARK_STORAGE_URL".into(), format!("s3://bulwark-test/{prefix}")),
                ("BULWARK_S3_ENDPOINT".into(), endpoint),
                ("BULWARK_S3_ACCESS_KEY_ID".into(), "test".into()),
                ("BULWARK_S3_SECRET_ACCESS_KEY".into(), "test-secret".into()),
                ("BULWARK_S3_FORCE_PATH_STYLE".into(), "on".into()),
            ]);
        }
        // An empty value unsets a harness default, so the product's own default applies.
        for (key, value) in extra {
            settings.retain(|(k, _)| k != key);
            if !value.is_empty() {
                settings.push(((*key).to_owned(), (*value).to_owned()));
            }
        }
        settings
    }

    async fn start(
        db: TestDb,
        settings: Vec<(String, String)>,
        application: Application,
    ) -> TestApp {
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
        TestApp {
            mfa: Default::default(),
            addr,
            metrics_addr,
            client,
            db,
            settings,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// A second, independent instance (own caches, own in-memory limiter) on the same
    /// database and settings, as another process behind the load balancer would be.
    pub async fn sibling(&self, extra: &[(&str, &str)]) -> TestApp {
        let mut settings = self.settings.clone();
        for (key, value) in extra {
            settings.retain(|(k, _)| k != key);
            settings.push(((*key).to_owned(), (*value).to_owned()));
        }
        let application = Self::build(&settings).await.expect("application builds");
        // The database stays with `self`; this instance only borrows it.
        let placeholder = TestDb {
            backend: self.db.backend,
            dir: tempfile::tempdir().expect("tempdir"),
            name: None,
        };
        Self::start(placeholder, settings, application).await
    }

    /// This app's view through a load balancer at `addr`: the same settings and helpers,
    /// but every request opens a new connection (no pooling), so a round-robin balancer
    /// hands consecutive requests to different instances.
    pub fn behind(&self, addr: SocketAddr) -> TestApp {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .build()
            .expect("client");
        TestApp {
            mfa: Default::default(),
            addr,
            metrics_addr: None,
            client,
            // The database stays with `self`.
            db: TestDb {
                backend: self.db.backend,
                dir: tempfile::tempdir().expect("tempdir"),
                name: None,
            },
            settings: self.settings.clone(),
            shutdown: None,
            task: None,
        }
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

    /// Stops the server and starts a new one on the same database, keeping the second
    /// factors the test enrolled so their users can still sign in.
    pub async fn restart(self, extra: &[(&str, &str)]) -> TestApp {
        let mfa = std::mem::take(&mut *self.mfa.lock().expect("lock"));
        let db = self.stop().await;
        let restarted = Self::spawn_on(db, extra).await;
        *restarted.mfa.lock().expect("lock") = mfa;
        restarted
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
    tls_provider();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

pub const PASSWORD: &str = "correct horse battery staple 7";

/// A user of a tenant, logged in.
#[derive(Debug, Clone)]
pub struct Account {
    pub tenant_id: String,
    pub user_id: String,
    pub email: String,
    pub password: String,
    pub token: String,
    pub refresh: String,
}

pub fn unique_email(tag: &str) -> String {
    format!("{tag}-{}@example.com", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

impl TestApp {
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> reqwest::Response {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request")
    }

    pub async fn get_as(&self, token: &str, path: &str) -> reqwest::Response {
        self.send(reqwest::Method::GET, path, Some(token), None).await
    }

    pub async fn post_as(&self, token: &str, path: &str, body: &Value) -> reqwest::Response {
        self.send(reqwest::Method::POST, path, Some(token), Some(body)).await
    }

    /// POST /api/v1/documents: `bytes` as the file `name` (declared PDF: the server sniffs)
    /// attached to the record of each `(field, id)` in `links` (e.g. `("contact_id", id)`).
    pub async fn upload_as(
        &self,
        token: &str,
        links: &[(&str, &str)],
        name: &str,
        bytes: Vec<u8>,
    ) -> reqwest::Response {
        let mut form = reqwest::multipart::Form::new();
        for (field, value) in links {
            form = form.text((*field).to_owned(), (*value).to_owned());
        }
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(name.to_owned())
            .mime_str("application/pdf")
            .expect("a valid media type");
        self.client
            .post(self.url("/api/v1/documents"))
            .bearer_auth(token)
            .multipart(form.part("file", part))
            .send()
            .await
            .expect("upload")
    }

    pub async fn patch_as(&self, token: &str, path: &str, body: &Value) -> reqwest::Response {
        self.send(reqwest::Method::PATCH, path, Some(token), Some(body)).await
    }

    pub async fn delete_as(&self, token: &str, path: &str) -> reqwest::Response {
        self.send(reqwest::Method::DELETE, path, Some(token), None).await
    }

    /// POST without credentials; panics unless the status matches; returns the JSON body.
    pub async fn post_ok(&self, path: &str, body: &Value, status: u16) -> Value {
        let response = self.post_json(path, body).await;
        let got = response.status().as_u16();
        let text = response.text().await.expect("body");
        assert_eq!(got, status, "POST {path}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.post_json(
            "/api/v1/auth/login",
            &serde_json::json!({"email": email, "password": password}),
        )
        .await
    }

    pub async fn login_ok(&self, email: &str, password: &str) -> (String, String) {
        let response = self.login(email, password).await;
        assert_eq!(response.status(), 200, "login of {email}");
        let mut body: Value = response.json().await.expect("json");
        if body["mfa_required"] == true {
            // Complete with a backup code of the user (found by email among known states).
            let code = self.take_backup_code(email);
            let verify = self
                .post_json(
                    "/api/v1/auth/mfa/verify",
                    &serde_json::json!({"mfa_token": body["mfa_token"], "backup_code": code}),
                )
                .await;
            assert_eq!(verify.status(), 200, "MFA verify of {email}");
            body = verify.json().await.expect("json");
        }
        (
            body["access_token"].as_str().expect("access_token").to_owned(),
            body["refresh_token"].as_str().expect("refresh_token").to_owned(),
        )
    }

    /// Signs a new tenant up and logs its owner in.
    pub async fn signup(&self, tenant: &str) -> Account {
        let email = unique_email("owner");
        // Signup answers 202 without ids whether or not the address had an account: the new
        // owner signs in and reads them from /me.
        self.post_ok(
            "/api/v1/auth/signup",
            &serde_json::json!({"tenant_name": tenant, "email": email, "password": PASSWORD, "display_name": "Owner"}),
            202,
        )
        .await;
        let (token, refresh) = self.login_ok(&email, PASSWORD).await;
        // The ids come from the token's claims, not /me, so helpers spend no read budget.
        let claims = token_claims(&token);
        Account {
            tenant_id: claims["tid"].as_str().expect("tid").to_owned(),
            user_id: claims["sub"].as_str().expect("sub").to_owned(),
            email,
            password: PASSWORD.to_owned(),
            token,
            refresh,
        }
    }

    /// Invites a user with `role` into `by`'s tenant and logs them in.
    pub async fn add_member(&self, by: &Account, role: &str) -> Account {
        let email = unique_email(role);
        if matches!(role, "admin" | "owner") {
            // Inviting to a role that manages the tenant needs a recent step-up.
            self.step_up(by).await;
        }
        let invitation = self
            .post_as(
                &by.token,
                "/api/v1/invitations",
                &serde_json::json!({"email": email, "role": role}),
            )
            .await;
        assert_eq!(invitation.status(), 201, "invite {role}");
        let invitation: Value = invitation.json().await.expect("json");
        let accepted = self
            .post_ok(
                "/api/v1/invitations/accept",
                &serde_json::json!({"token": invitation["token"], "password": PASSWORD, "display_name": role}),
                201,
            )
            .await;
        let (token, refresh) = self.login_ok(&email, PASSWORD).await;
        Account {
            tenant_id: accepted["tenant_id"].as_str().expect("tenant_id").to_owned(),
            user_id: accepted["user_id"].as_str().expect("user_id").to_owned(),
            email,
            password: PASSWORD.to_owned(),
            token,
            refresh,
        }
    }

    /// Enrols TOTP for `who` (which also counts as a step-up), or, when enrolled, steps up
    /// with a backup code, so the session may run sensitive operations for 10 minutes.
    pub async fn step_up(&self, who: &Account) {
        let known = self.mfa.lock().expect("lock").get(&who.email).cloned();
        match known {
            None => {
                // Enrolling needs a fresh proof of the password, and gives no step-up itself.
                let proof = self
                    .post_as(
                        &who.token,
                        "/api/v1/auth/step-up",
                        &serde_json::json!({"password": PASSWORD}),
                    )
                    .await;
                assert_eq!(proof.status(), 204, "password proof");
                let setup = self
                    .post_as(&who.token, "/api/v1/auth/mfa/totp/setup", &serde_json::json!({}))
                    .await;
                assert_eq!(setup.status(), 200, "TOTP setup");
                let setup: Value = setup.json().await.expect("json");
                let secret = totp::base32_decode(setup["secret"].as_str().expect("secret"));
                let code = totp::code_at(&secret, totp::now());
                let confirm = self
                    .post_as(
                        &who.token,
                        "/api/v1/auth/mfa/totp/confirm",
                        &serde_json::json!({"code": code}),
                    )
                    .await;
                assert_eq!(confirm.status(), 200, "TOTP confirm");
                let confirm: Value = confirm.json().await.expect("json");
                let mut backup_codes: Vec<String> = confirm["backup_codes"]
                    .as_array()
                    .expect("codes")
                    .iter()
                    .filter_map(|c| c.as_str().map(str::to_owned))
                    .collect();
                let code = backup_codes.pop().expect("a backup code");
                self.mfa
                    .lock()
                    .expect("lock")
                    .insert(who.email.clone(), MfaState { secret, backup_codes });
                let response = self
                    .post_as(
                        &who.token,
                        "/api/v1/auth/step-up",
                        &serde_json::json!({"backup_code": code}),
                    )
                    .await;
                assert_eq!(response.status(), 204, "step-up");
            }
            Some(_) => {
                let code = self.take_backup_code(&who.email);
                let response = self
                    .post_as(
                        &who.token,
                        "/api/v1/auth/step-up",
                        &serde_json::json!({"backup_code": code}),
                    )
                    .await;
                assert_eq!(response.status(), 204, "step-up");
            }
        }
    }

    /// The test's MFA state is kept per email address.
    pub fn take_backup_code(&self, email: &str) -> String {
        let mut states = self.mfa.lock().expect("lock");
        let state = states.get_mut(email).expect("the user has MFA");
        state.backup_codes.pop().expect("a backup code left")
    }

    /// A platform super-admin, signed in and stepped up (see `new_superadmin`).
    pub async fn superadmin(&self) -> Account {
        let root = self.new_superadmin().await;
        self.step_up(&root).await;
        root
    }

    /// A platform super-admin made by the `create-superadmin` command (off the runtime
    /// thread: this in-process server keeps running), signed in, no second factor yet.
    pub async fn new_superadmin(&self) -> Account {
        let dir = self.db.dir.path().to_str().expect("utf-8").to_owned();
        let mut env: Vec<(&str, &str)> =
            self.settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        env.retain(|(k, _)| !k.contains("LISTEN"));
        let email = unique_email("root");
        let mut command = binary::command(
            std::path::Path::new(&dir),
            &env,
            &["create-superadmin", "--email", &email],
        );
        let output = tokio::task::spawn_blocking(move || {
            use std::io::Write as _;
            let mut child = command
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(format!("{PASSWORD}\n").as_bytes())
                .expect("write");
            child.wait_with_output().expect("run")
        })
        .await
        .expect("join");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let (token, refresh) = self.login_ok(&email, PASSWORD).await;
        Account {
            tenant_id: String::new(),
            user_id: String::new(),
            email,
            password: PASSWORD.into(),
            token,
            refresh,
        }
    }

    /// Runs a `bulwark` command on this app's database and settings (off the runtime thread:
    /// the in-process server keeps running).
    pub async fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut env: Vec<(&str, &str)> =
            self.settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        env.retain(|(k, _)| !k.contains("LISTEN"));
        binary::run_async(self.db.dir.path(), &env, args).await
    }

    /// The actions of the platform audit chain, oldest first (read from the database).
    pub async fn platform_audit_actions(&self) -> Vec<String> {
        const SQL: &str = "SELECT action FROM audit_events WHERE tenant_id IS NULL ORDER BY seq";
        match self.db.raw(true).await {
            RawDb::Sqlite(mut c) => sqlx::query_scalar(SQL).fetch_all(&mut c).await,
            RawDb::Postgres(mut c) => sqlx::query_scalar(SQL).fetch_all(&mut c).await,
        }
        .expect("the platform chain")
    }

    /// Creates an API key with the given scopes as `by`; returns (id, key).
    pub async fn api_key(&self, by: &Account, scopes: &[&str]) -> (String, String) {
        self.step_up(by).await;
        let response = self
            .post_as(
                &by.token,
                "/api/v1/api-keys",
                &serde_json::json!({"name": "test", "scopes": scopes}),
            )
            .await;
        let status = response.status();
        let body: Value = response.json().await.expect("json");
        assert_eq!(status, 201, "{body}");
        (body["id"].as_str().expect("id").to_owned(), body["key"].as_str().expect("key").to_owned())
    }

    /// The actions of the tenant's audit events (as an owner or admin), newest first.
    pub async fn audit_actions(&self, by: &Account) -> Vec<String> {
        let events = self.audit_events(by).await;
        events.iter().filter_map(|e| e["action"].as_str().map(str::to_owned)).collect()
    }

    /// The tenant's audit events (as an owner or admin), newest first.
    pub async fn audit_events(&self, by: &Account) -> Vec<Value> {
        let response = self.get_as(&by.token, "/api/v1/audit-events?limit=200").await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("json");
        body["items"].as_array().cloned().unwrap_or_default()
    }
}

/// The status and body of a response, with the request id removed, for comparing two answers.
pub async fn comparable(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let mut body: Value = response.json().await.expect("json");
    if let Some(object) = body.as_object_mut() {
        object.remove("request_id");
    }
    (status, body)
}

/// One text value from the database, bypassing Bulwark (`$1` bound to `param`).
pub async fn raw_scalar_text(db: &TestDb, sql: &'static str, param: &str) -> String {
    match db.raw(true).await {
        RawDb::Sqlite(mut c) => {
            sqlx::query_scalar::<_, String>(sql).bind(param).fetch_one(&mut c).await.expect("query")
        }
        RawDb::Postgres(mut c) => {
            sqlx::query_scalar::<_, String>(sql).bind(param).fetch_one(&mut c).await.expect("query")
        }
    }
}

/// Runs a statement bypassing Bulwark as the owner role; returns the rows affected.
pub async fn raw_execute(db: &TestDb, sql: &str) -> u64 {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match db.raw(true).await {
        RawDb::Sqlite(mut c) => {
            sqlx::query(sql).execute(&mut c).await.expect("statement").rows_affected()
        }
        RawDb::Postgres(mut c) => {
            sqlx::query(sql).execute(&mut c).await.expect("statement").rows_affected()
        }
    }
}

/// A UUID as a SQL literal of the backend (BLOB on SQLite, uuid on PostgreSQL).
pub fn id_literal(id: &str) -> String {
    match backend() {
        Backend::Sqlite => format!("X'{}'", id.replace('-', "")),
        Backend::Postgres => format!("'{id}'"),
    }
}

/// Every byte the database holds for this test, as a lossy string: the SQLite file with its
/// WAL, or a `pg_dump` taken as the superuser (which row-level security does not hide).
pub async fn database_bytes(db: &TestDb) -> Vec<u8> {
    match db.backend {
        Backend::Sqlite => {
            let mut bytes = vec![];
            for suffix in ["", "-wal", "-shm"] {
                let path = format!("{}{suffix}", db.sqlite_path().display());
                bytes.extend(std::fs::read(path).unwrap_or_default());
            }
            bytes
        }
        Backend::Postgres => {
            let name = db.name.clone().expect("pg database");
            let base = env("BULWARK_TEST_PG_SUPERUSER_URL");
            let url =
                format!("{}/{name}", base.rsplit_once('/').map_or(base.as_str(), |(head, _)| head));
            let pg_dump = format!("{}/pg_dump", env("BULWARK_TEST_PG_BIN"));
            let output = tokio::task::spawn_blocking(move || {
                std::process::Command::new(pg_dump).args(["--data-only", "--dbname", &url]).output()
            })
            .await
            .expect("join")
            .expect("pg_dump runs");
            assert!(
                output.status.success(),
                "pg_dump: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            output.stdout
        }
    }
}

/// The claims of an access token, read without checking its signature (the server did).
pub fn token_claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    let bytes =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url claims");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// The application state for calling domain functions directly, on the app's database.
pub async fn app_state(app: &TestApp) -> bulwark::AppState {
    let input = bulwark::config::ConfigInput::from_pairs(
        app.settings.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
    let loaded =
        bulwark::config::load(&input, bulwark::config::DevSecrets::Generate).expect("config");
    bulwark::AppState::open(loaded.config, Default::default()).await.expect("state")
}
