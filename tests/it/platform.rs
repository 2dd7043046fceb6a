//! Platform core: start-up, configuration, security headers, problems, readiness, metrics,
//! OpenAPI, timeouts and TLS.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::support::binary::{self, Running};
use crate::support::proxy::TcpProxy;
use crate::support::{
    Backend, JWT_SECRET, MASTER_KEYS, TestApp, TestDb, assert_security_headers, block_on,
    expect_problem,
};

#[tokio::test]
async fn healthz_answers_with_every_security_header_and_no_hsts_in_development() {
    let app = TestApp::spawn().await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), 200);
    assert_security_headers(&response);
    assert!(response.headers().get("strict-transport-security").is_none());
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_are_problems_with_every_header() {
    let app = TestApp::spawn().await;
    let body = expect_problem(app.get("/api/v1/no-such-thing").await, 404).await;
    assert_eq!(body["code"], "not_found");

    let response = app.client.delete(app.url("/healthz")).send().await.expect("request");
    let allow = response.headers().get("allow").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = expect_problem(response, 405).await;
    assert_eq!(body["code"], "method_not_allowed");
    assert!(allow.is_some_and(|a| a.contains("GET")), "405 names the allowed methods");
}

#[tokio::test]
async fn a_well_formed_request_id_is_echoed_and_a_malformed_one_replaced() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(app.url("/nowhere"))
        .header("x-request-id", "trace-42.a_b")
        .send()
        .await
        .expect("request");
    assert_eq!(response.headers()["x-request-id"], "trace-42.a_b");
    let body = expect_problem(response, 404).await;
    assert_eq!(body["request_id"], "trace-42.a_b");

    for bad in ["has space", "<script>", &"x".repeat(65)] {
        let response = app
            .client
            .get(app.url("/healthz"))
            .header("x-request-id", bad)
            .send()
            .await
            .expect("request");
        let echoed = response.headers()["x-request-id"].to_str().expect("ascii").to_owned();
        assert_ne!(echoed, bad);
        assert_eq!(echoed.len(), 36, "a generated UUID replaces {bad:?}");
    }
}

#[tokio::test]
async fn cors_answers_listed_origins_only() {
    let app = TestApp::spawn_with(&[("BULWARK_CORS_ORIGINS", "https://app.example.com")]).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/healthz"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .send()
    };
    let allowed = preflight("https://app.example.com").await.expect("preflight");
    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://app.example.com");
    assert_eq!(allowed.headers()["access-control-allow-credentials"], "true");
    let refused = preflight("https://evil.example.net").await.expect("preflight");
    assert!(refused.headers().get("access-control-allow-origin").is_none());

    let simple = app
        .client
        .get(app.url("/healthz"))
        .header("origin", "https://evil.example.net")
        .send()
        .await
        .expect("get");
    assert!(simple.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn production_sends_hsts_with_the_configured_max_age() {
    let app = TestApp::spawn_with(&[
        ("BULWARK_ENV", "production"),
        ("BULWARK_PUBLIC_URL", "https://crm.example.com"),
        ("BULWARK_HSTS_MAX_AGE", "31536000"),
        ("BULWARK_ARGON2_MEMORY_KIB", "19456"),
        ("BULWARK_ARGON2_ITERATIONS", "2"),
        ("BULWARK_RATE_LIMITS", "on"),
    ])
    .await;
    let response = app.get("/healthz").await;
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains; preload"
    );
    let response = app.get("/missing").await;
    assert!(response.headers().contains_key("strict-transport-security"), "on errors too");
}

#[tokio::test]
async fn readyz_turns_503_when_the_database_is_unreachable_and_recovers() {
    match crate::support::backend() {
        Backend::Sqlite => readyz_on_sqlite().await,
        Backend::Postgres => readyz_on_postgres().await,
    }
}

/// `/readyz` reuses one probe for a second.
async fn wait_out_the_readiness_cache() {
    tokio::time::sleep(Duration::from_millis(1100)).await;
}

async fn readyz_on_sqlite() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/readyz").await.status(), 200);
    // The file disappears under the running server (a volume unmounted, a bad cleanup job):
    // writes would go to an unlinked inode and be lost, so the instance is not ready.
    let path = app.db.sqlite_path();
    let moved = path.with_extension("moved");
    std::fs::rename(&path, &moved).expect("move the database away");
    wait_out_the_readiness_cache().await;
    let body = expect_problem(app.get("/readyz").await, 503).await;
    assert_eq!(body["code"], "not_ready");
    assert_eq!(body["checks"]["database"], "unavailable");
    std::fs::rename(&moved, &path).expect("put it back");
    wait_out_the_readiness_cache().await;
    assert_eq!(app.get("/readyz").await.status(), 200);
}

async fn readyz_on_postgres() {
    let db = TestDb::create().await;
    let app_url = url::Url::parse(&db.app_url()).expect("url");
    let target = format!("{}:{}", app_url.host_str().expect("host"), app_url.port().expect("port"));
    let proxy = TcpProxy::start(target.parse().expect("socket address")).await;
    let mut through_proxy = app_url.clone();
    through_proxy.set_port(Some(proxy.addr.port())).expect("port");
    let app = TestApp::spawn_on(db, &[("BULWARK_DATABASE_URL", through_proxy.as_str())]).await;
    assert_eq!(app.get("/readyz").await.status(), 200);

    proxy.set_enabled(false);
    wait_out_the_readiness_cache().await;
    let body = expect_problem(app.get("/readyz").await, 503).await;
    assert_eq!(body["checks"]["database"], "unavailable");
    assert_eq!(app.get("/healthz").await.status(), 200, "liveness does not depend on the database");

    proxy.set_enabled(true);
    let mut status = 0;
    for _ in 0..50 {
        status = app.get("/readyz").await.status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "ready again once the database is back");
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_on_their_own_listener() {
    let app = TestApp::spawn().await;
    app.get("/healthz").await;
    app.get("/does-not-exist-42").await;
    let text = app.metrics().await;
    assert!(
        text.contains(r#"http_requests_total{route="/healthz",method="GET",status="200"}"#),
        "{text}"
    );
    assert!(text.contains("http_request_duration_seconds_bucket"), "{text}");
    assert!(!text.contains("does-not-exist-42"), "unmatched paths must not become labels");
    // Not on the API port.
    assert_eq!(app.get("/metrics").await.status(), 404);
}

/// Every metric the shipped alert rules and the dashboard read is exported, from start-up
/// (before any event it counts): a rule on a metric nobody exports never fires. Reads the
/// names from deploy/prometheus/alerts.yml and deploy/grafana/bulwark.json themselves.
#[tokio::test]
async fn every_metric_the_alert_rules_name_is_exported_from_start_up() {
    let redis = crate::support::redis_server::RedisServer::start();
    let app = TestApp::spawn_with(&[("BULWARK_REDIS_URL", &redis.url())]).await;
    app.get("/healthz").await;
    let text = app.metrics().await;
    let rules = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/prometheus/alerts.yml"
    ))
    .expect("alerts.yml");
    let dashboard = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/grafana/bulwark.json"
    ))
    .expect("bulwark.json");
    let dashboard: Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    let exprs: Vec<&str> = panels
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["expr"].as_str())
        .collect();
    assert!(exprs.len() >= 10, "the dashboard queries {exprs:?}");
    let mut named: Vec<&str> = rules
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .chain(exprs.iter().copied())
        .flat_map(|line| line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
        .filter(|word| {
            word.ends_with("_total")
                || word.ends_with("_bucket")
                || ["redis_up", "audit_checkpoints_enabled"].contains(word)
        })
        .collect();
    named.sort_unstable();
    named.dedup();
    assert!(named.len() >= 10, "the rules name {named:?}");
    for metric in named {
        let exported = text
            .lines()
            .any(|line| line.strip_prefix(metric).is_some_and(|rest| rest.starts_with(['{', ' '])));
        assert!(
            exported,
            "a rule or panel reads {metric}, which /metrics does not export:\n{text}"
        );
    }
    // Labelled counters exist for every configured rate-limit rule.
    assert!(text.contains(r#"rate_limit_rejections_total{rule="auth-per-minute"} 0"#), "{text}");
    // Every alert links a section of the runbook that exists.
    let runbook = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/RUNBOOK.md"))
        .expect("RUNBOOK.md");
    let anchors: Vec<String> = runbook
        .lines()
        .filter_map(|line| line.strip_prefix("## "))
        .map(|heading| heading.to_lowercase().replace(' ', "-"))
        .collect();
    let links: Vec<&str> =
        rules.lines().filter_map(|line| line.split("docs/RUNBOOK.md#").nth(1)).collect();
    assert_eq!(links.len(), rules.matches("- alert:").count(), "every alert links the runbook");
    for link in links {
        let anchor = link.trim_end_matches('"');
        assert!(anchors.iter().any(|a| a == anchor), "docs/RUNBOOK.md has no section #{anchor}");
    }
}

#[tokio::test]
async fn the_openapi_document_is_3_1_and_lists_every_endpoint() {
    let app = TestApp::spawn().await;
    let response = app.get("/api/openapi.json").await;
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.expect("json");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "{}", doc["openapi"]);
    for endpoint in bulwark::http::endpoints() {
        let method = endpoint.policy.method.as_str().to_ascii_lowercase();
        let operation = &doc["paths"][&*endpoint.policy.path][&method];
        assert!(operation.is_object(), "{method} {} is not documented", endpoint.policy.path);
        let documented_security = operation.get("security").is_some();
        let public = endpoint.policy.access == bulwark::http::Access::Public;
        assert_eq!(documented_security, !public, "security of {method} {}", endpoint.policy.path);
    }
}

/// A `$ref` that names no component leaves that part of the document undescribed to clients
/// and to schemathesis (which skips it: the list filter's `status` did once).
#[tokio::test]
async fn every_reference_in_the_openapi_document_resolves() {
    fn references<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    out.push(target);
                }
                map.values().for_each(|v| references(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| references(v, out)),
            _ => {}
        }
    }
    let app = TestApp::spawn().await;
    let doc: Value = app.get("/api/openapi.json").await.json().await.expect("json");
    let mut targets = Vec::new();
    references(&doc, &mut targets);
    assert!(targets.len() > 100, "the document refers to its components: {}", targets.len());
    let dangling: Vec<_> = targets
        .into_iter()
        .filter(|target| {
            let pointer = target.strip_prefix('#').unwrap_or("not a local reference");
            doc.pointer(pointer).is_none()
        })
        .collect();
    assert!(dangling.is_empty(), "references to nothing: {dangling:?}");
}

#[tokio::test]
async fn a_slow_client_is_cut_off_by_the_header_read_timeout() {
    let app = TestApp::spawn_with(&[("BULWARK_HEADER_READ_TIMEOUT", "500ms")]).await;
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.expect("connect");
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.expect("partial headers");
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the server closed the connection");
    let text = String::from_utf8_lossy(&buf);
    assert!(text.is_empty() || text.starts_with("HTTP/1.1 408"), "{text}");
}

#[tokio::test]
async fn built_in_tls_speaks_tls_1_3_only_and_sends_hsts() {
    use tokio_rustls::rustls;
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let dir = tempfile::tempdir().expect("tempdir");
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).expect("write key");
    let app = TestApp::spawn_with(&[
        ("BULWARK_TLS_CERT_FILE", cert_path.to_str().expect("utf-8")),
        ("BULWARK_TLS_KEY_FILE", key_path.to_str().expect("utf-8")),
    ])
    .await;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).expect("root");
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let client_config = |versions: &[&'static rustls::SupportedProtocolVersion]| {
        rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .expect("versions")
            .with_root_certificates(roots.clone())
            .with_no_client_auth()
    };
    let server_name = rustls::pki_types::ServerName::try_from("localhost").expect("name");

    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(client_config(&[
        &rustls::version::TLS13,
    ])));
    let tcp = tokio::net::TcpStream::connect(app.addr).await.expect("connect");
    let mut tls = connector.connect(server_name.clone(), tcp).await.expect("TLS 1.3 handshake");
    assert_eq!(tls.get_ref().1.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_3));
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut response = String::new();
    tls.read_to_string(&mut response).await.ok();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("strict-transport-security: max-age=63072000; includesubdomains; preload"),
        "{response}"
    );

    let old = tokio_rustls::TlsConnector::from(std::sync::Arc::new(client_config(&[
        &rustls::version::TLS12,
    ])));
    let tcp = tokio::net::TcpStream::connect(app.addr).await.expect("connect");
    assert!(old.connect(server_name, tcp).await.is_err(), "TLS 1.2 is refused");
}

#[test]
fn production_without_secrets_refuses_to_start_and_check_config_agrees() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [("BULWARK_ENV", "production"), ("BULWARK_LISTEN", "127.0.0.1:0")];
    let serve = binary::run(dir.path(), &env, &["serve"]);
    assert!(!serve.status.success());
    let check = binary::run(dir.path(), &env, &["check-config"]);
    assert_eq!(check.status.code(), Some(1));
    let serve_err = String::from_utf8_lossy(&serve.stderr);
    let check_out = String::from_utf8_lossy(&check.stdout);
    for item in ["BULWARK_JWT_SECRET", "BULWARK_MASTER_KEYS", "BULWARK_PUBLIC_URL"] {
        assert!(serve_err.contains(item), "serve does not name {item}:\n{serve_err}");
        assert!(check_out.contains(item), "check-config does not name {item}:\n{check_out}");
    }
    let problems = |text: &str| text.lines().filter(|l| l.trim_start().starts_with("- ")).count();
    assert_eq!(problems(&serve_err), problems(&check_out));
    assert!(!dir.path().join("bulwark-data").exists(), "nothing was created before refusing");

    let good = [
        ("BULWARK_ENV", "production"),
        ("BULWARK_JWT_SECRET", JWT_SECRET),
        ("BULWARK_MASTER_KEYS", MASTER_KEYS),
        ("BULWARK_PUBLIC_URL", "https://crm.example.com"),
    ];
    let check = binary::run(dir.path(), &good, &["check-config"]);
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
}

/// `bulwark healthcheck` (the container's HEALTHCHECK: no curl in the image) answers 0 while
/// `serve` answers `/healthz` on the configured address, and 1 once it is gone.
#[test]
fn the_healthcheck_command_follows_the_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    // Every address, as in a container: the check must probe loopback.
    let listen = format!("0.0.0.0:{port}");
    let env = [("BULWARK_LISTEN", listen.as_str()), ("BULWARK_METRICS_LISTEN", "off")];
    let mut server = Running::serve(dir.path(), &env);
    let healthy = binary::run(dir.path(), &env, &["healthcheck"]);
    assert!(healthy.status.success(), "{}", String::from_utf8_lossy(&healthy.stderr));
    server.stop();
    let gone = binary::run(dir.path(), &env, &["healthcheck"]);
    assert!(!gone.status.success());
    assert!(String::from_utf8_lossy(&gone.stderr).contains("unhealthy"));
}

/// The README's first command: no configuration at all gives a development instance on
/// SQLite in ./bulwark-data, on 127.0.0.1:8080, reusing its generated secrets on restart.
#[test]
fn serve_with_no_configuration_runs_on_sqlite_in_the_data_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut first = Running::serve(dir.path(), &[]);
    assert_eq!(first.url, "http://127.0.0.1:8080");
    let url = format!("{}/healthz", first.url);
    let response = block_on(async { reqwest::get(&url).await.map(|r| r.status().as_u16()) });
    assert_eq!(response.ok(), Some(200));
    let data = dir.path().join("bulwark-data");
    assert!(data.join("bulwark.db").is_file());
    let secret = std::fs::read(data.join("secrets/jwt_secret")).expect("generated secret");
    let banner = first.stderr.lock().expect("lock").join("\n");
    assert!(
        banner.contains("DEVELOPMENT PROFILE"),
        "serve says it runs the development profile: {banner}"
    );
    first.stop();

    let mut second = Running::serve(dir.path(), &[]);
    assert_eq!(std::fs::read(data.join("secrets/jwt_secret")).expect("secret"), secret);
    second.stop();
}

/// Neither a bearer token nor a password in a JSON body reaches the logs.
#[test]
fn credentials_in_headers_and_bodies_never_reach_the_logs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Running::serve(
        dir.path(),
        &[
            ("BULWARK_LISTEN", "127.0.0.1:0"),
            ("BULWARK_METRICS_LISTEN", "off"),
            ("BULWARK_LOG", "debug"),
        ],
    );
    let body = r#"{"email":"someone@example.com","password":"Sup3r-Secret-Passw0rd!"}"#;
    block_on(async {
        let client = reqwest::Client::new();
        for path in ["/api/v1/auth/login", "/api/v1/me", "/healthz"] {
            let sent = client
                .post(format!("{}{path}", server.url))
                .header("authorization", "Bearer abc.def.ghi")
                .header("cookie", "session=cookie-value-123")
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            assert!(sent.is_ok(), "{path}");
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    server.stop();
    let logs = server.stdout_text();
    assert!(logs.contains("request completed"), "requests were logged:\n{logs}");
    for secret in ["abc.def.ghi", "Sup3r-Secret-Passw0rd!", "cookie-value-123"] {
        assert!(!logs.contains(secret), "{secret} leaked into the logs:\n{logs}");
    }
    for line in logs.lines() {
        serde_json::from_str::<Value>(line)
            .unwrap_or_else(|_| panic!("not a JSON log line: {line}"));
    }
}
