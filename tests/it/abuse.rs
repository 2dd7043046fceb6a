//! Abuse resistance: rate limits (in memory and on Redis, across instances, when Redis
//! fails), client identity behind proxies, the bounded hashing pool, idempotency keys.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::redis_server::RedisServer;
use crate::support::{PASSWORD, TestApp, expect_problem, unique_email};

const LIMITED: (&str, &str) = ("BULWARK_RATE_LIMITS", "on");
const BEHIND_PROXY: (&str, &str) = ("BULWARK_TRUSTED_PROXIES", "127.0.0.1/32");

async fn login_from(
    app: &TestApp,
    client_ip: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", client_ip)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("login")
}

fn header(response: &reqwest::Response, name: &str) -> Option<u64> {
    response.headers().get(name)?.to_str().ok()?.parse().ok()
}

#[tokio::test]
async fn limited_routes_carry_the_headers_and_the_21st_auth_request_is_refused() {
    let app = TestApp::spawn_with(&[LIMITED, BEHIND_PROXY]).await;
    let email = unique_email("nobody");
    for n in 0..20u64 {
        let response = login_from(&app, "198.51.100.1", &email, "wrong password here").await;
        assert_eq!(response.status(), 401, "request {}", n + 1);
        assert_eq!(header(&response, "x-ratelimit-limit"), Some(20));
        assert_eq!(header(&response, "x-ratelimit-remaining"), Some(19 - n));
        assert!(header(&response, "x-ratelimit-reset").is_some_and(|r| (1..=3600).contains(&r)));
    }
    // The refusal is held 500 ms (a tarpit): a lower bound, not a speed target.
    let asked = std::time::Instant::now();
    let refused = login_from(&app, "198.51.100.1", &email, "wrong password here").await;
    assert!(asked.elapsed() >= std::time::Duration::from_millis(500), "refused at once");
    assert!(header(&refused, "retry-after").is_some_and(|s| s >= 1));
    assert_eq!(header(&refused, "x-ratelimit-remaining"), Some(0));
    assert_eq!(expect_problem(refused, 429).await["code"], "rate_limited");

    let other = login_from(&app, "198.51.100.2", &email, "wrong password here").await;
    assert_eq!(other.status(), 401, "another client is unaffected");

    let owner = app.signup("Acme").await;
    let me = app.get_as(&owner.token, "/api/v1/me").await;
    assert_eq!(header(&me, "x-ratelimit-limit"), Some(200), "reads carry the headers too");
    assert!(
        app.get("/healthz").await.headers().get("x-ratelimit-limit").is_none(),
        "probes are exempt"
    );
    let metrics = app.metrics().await;
    assert!(metrics.contains("rate_limit_rejections_total{rule=\"auth-per-minute\"}"), "{metrics}");
    assert!(metrics.contains("rate_limit_warnings_total"), "80 % warnings are counted");
}

#[tokio::test]
async fn a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let app = TestApp::spawn_with(&[LIMITED]).await;
    let email = unique_email("nobody");
    for n in 0..20 {
        let forged = format!("203.0.113.{n}");
        assert_eq!(login_from(&app, &forged, &email, "wrong password here").await.status(), 401);
    }
    let response = login_from(&app, "203.0.113.250", &email, "wrong password here").await;
    assert_eq!(response.status(), 429, "rotating X-Forwarded-For does not make a new client");
}

#[tokio::test]
async fn a_rule_file_replaces_the_defaults_and_a_bad_one_stops_the_start() {
    let dir = tempfile::tempdir().expect("dir");
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"tiny-reads\"\nmatch = { category = \"read\" }\nlimit = 2\nwindow = \"1m\"\nkey = \"ip+user\"\n",
    )
    .expect("write");
    let app = TestApp::spawn_with(&[
        LIMITED,
        ("BULWARK_RATE_LIMITS_FILE", rules.to_str().expect("utf-8")),
    ])
    .await;
    let owner = app.signup("Acme").await;
    assert_eq!(app.get_as(&owner.token, "/api/v1/me").await.status(), 200);
    assert_eq!(app.get_as(&owner.token, "/api/v1/me").await.status(), 200);
    assert_eq!(app.get_as(&owner.token, "/api/v1/me").await.status(), 429);

    std::fs::write(&rules, "[[rule]]\nname = \"broken\"\nmatch = { category = \"read\" }\nlimit = 0\nwindow = \"1m\"\nkey = \"ip\"\n")
        .expect("write");
    let output = crate::support::binary::run(
        dir.path(),
        &[
            ("BULWARK_RATE_LIMITS_FILE", rules.to_str().expect("utf-8")),
            ("BULWARK_LISTEN", "127.0.0.1:0"),
        ],
        &["serve"],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("BULWARK_RATE_LIMITS_FILE") && stderr.contains("broken"), "{stderr}");
}

#[tokio::test]
async fn two_instances_on_one_redis_share_limits_lockouts_and_revocations() {
    let redis = RedisServer::start();
    let url = redis.url();
    let one = TestApp::spawn_with(&[LIMITED, BEHIND_PROXY, ("BULWARK_REDIS_URL", &url)]).await;
    let two = one.sibling(&[]).await;
    let owner = one.signup("Acme").await;

    // 25 attempts from one client, alternating between the instances.
    let mut statuses = vec![];
    for n in 0..25 {
        let app = if n % 2 == 0 { &one } else { &two };
        statuses.push(
            login_from(app, "198.51.100.7", &unique_email("x"), "wrong password here")
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(&statuses[..20], &[401; 20], "{statuses:?}");
    assert_eq!(
        &statuses[20..],
        &[429; 5],
        "the 21st is refused whichever instance serves it: {statuses:?}"
    );

    // A lock earned on instance one holds on instance two.
    for _ in 0..5 {
        assert_eq!(
            login_from(&one, "198.51.100.8", &owner.email, "wrong password here").await.status(),
            401
        );
    }
    let locked = login_from(&two, "198.51.100.9", &owner.email, PASSWORD).await;
    assert_eq!(locked.status(), 401, "the account is locked on instance two as well");
    // The lock lives in Redis (both instances also share a database, which alone would
    // explain the 401): the key is there, and with Redis emptied the right password works.
    let client = redis::Client::open(url.as_str()).expect("redis url");
    let mut redis_connection = client.get_multiplexed_async_connection().await.expect("redis");
    let lock: Option<String> = redis::cmd("TYPE")
        .arg(format!("bulwark:lock:user:{}", owner.user_id))
        .query_async(&mut redis_connection)
        .await
        .expect("TYPE");
    assert_ne!(lock.as_deref(), Some("none"), "no lock record in Redis");
    let _: () = redis::cmd("FLUSHALL").query_async(&mut redis_connection).await.expect("FLUSHALL");
    let unlocked = login_from(&two, "198.51.100.9", &owner.email, PASSWORD).await;
    assert_eq!(unlocked.status(), 200, "the lock was Redis's, not the database's");

    // A session revoked through instance one is refused by instance two within a second.
    let other = one.sibling(&[]).await;
    let member = other.add_member(&owner, "agent").await;
    assert_eq!(two.get_as(&member.token, "/api/v1/me").await.status(), 200);
    assert_eq!(one.post_as(&member.token, "/api/v1/auth/logout", &json!({})).await.status(), 204);
    // Within milliseconds, through the event on Redis: instance two had just seen the
    // session live, and without the event its cache would answer 200 for the next 500 ms.
    let started = Instant::now();
    while two.get_as(&member.token, "/api/v1/me").await.status() != 401 {
        assert!(
            started.elapsed() < Duration::from_millis(250),
            "instance two still accepts a revoked session"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn with_redis_down_auth_fails_closed_reads_stay_open_and_recovery_needs_no_restart() {
    let mut redis = RedisServer::start();
    let app = TestApp::spawn_with(&[LIMITED, ("BULWARK_REDIS_URL", &redis.url())]).await;
    let owner = app.signup("Acme").await;
    assert_eq!(app.get_as(&owner.token, "/api/v1/me").await.status(), 200);

    redis.stop();
    let refused = app.login(&owner.email, PASSWORD).await;
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(expect_problem(refused, 503).await["code"], "rate_limiter_unavailable");
    let read = app.get_as(&owner.token, "/api/v1/me").await;
    assert_eq!(read.status(), 200, "reads fail open");
    // `/readyz` reuses one probe for a second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let ready: Value = app.get("/readyz").await.json().await.expect("json");
    assert_eq!(ready["checks"]["redis"], "unavailable");
    assert_eq!(ready["status"], "degraded");
    assert!(app.metrics().await.contains("redis_up 0"));

    redis.restart();
    let started = Instant::now();
    loop {
        let status = app.login(&owner.email, PASSWORD).await.status();
        if status == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still {status} after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let response = app.login(&owner.email, PASSWORD).await;
    assert!(response.headers().contains_key("x-ratelimit-remaining"), "limits work again");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let ready: Value = app.get("/readyz").await.json().await.expect("json");
    assert_eq!(ready["checks"]["redis"], "ok");
}

#[tokio::test]
async fn a_login_flood_is_refused_at_once_when_the_hashing_queue_is_full() {
    let app = TestApp::spawn_with(&[
        ("BULWARK_HASH_WORKERS", "1"),
        ("BULWARK_HASH_QUEUE", "1"),
        ("BULWARK_ARGON2_MEMORY_KIB", "65536"),
        ("BULWARK_ARGON2_ITERATIONS", "4"),
    ])
    .await;
    let flood: Vec<_> = (0..16)
        .map(|_| {
            let client = app.client.clone();
            let url = app.url("/api/v1/auth/login");
            tokio::spawn(async move {
                client
                    .post(url)
                    .json(&json!({"email": unique_email("f"), "password": "flooding password"}))
                    .send()
                    .await
            })
        })
        .collect();
    // While the pool is saturated, everything else is still served.
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200);
    let mut busy = 0;
    for task in flood {
        let response = task.await.expect("task").expect("response");
        if response.status() == 503 {
            assert!(response.headers().contains_key("retry-after"));
            assert_eq!(expect_problem(response, 503).await["code"], "busy");
            busy += 1;
        } else {
            assert_eq!(response.status(), 401);
        }
    }
    assert!(busy >= 10, "only {busy} of 16 were refused with a queue of one");
}

async fn post_with_key(
    app: &TestApp,
    token: &str,
    path: &str,
    key: &str,
    body: &Value,
) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .expect("post")
}

#[tokio::test]
async fn an_idempotency_key_replays_refuses_a_different_body_and_survives_a_restart() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let body = json!({"email": unique_email("inv"), "role": "agent"});
    let first = post_with_key(&app, &owner.token, "/api/v1/invitations", "key-1", &body).await;
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.expect("json");

    let again = post_with_key(&app, &owner.token, "/api/v1/invitations", "key-1", &body).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.expect("json"), first, "the same body, token included");
    let listed: Value =
        app.get_as(&owner.token, "/api/v1/invitations").await.json().await.expect("json");
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1), "created once");

    // Keys belong to the caller: a colleague who sends the same key and body is not handed
    // the owner's response (and its invitation token); the request runs as their own.
    let admin = app.add_member(&owner, "admin").await;
    app.step_up(&admin).await;
    let colleague = post_with_key(&app, &admin.token, "/api/v1/invitations", "key-1", &body).await;
    assert!(colleague.headers().get("idempotent-replayed").is_none(), "replayed to a colleague");
    let colleague = colleague.text().await.expect("text");
    assert!(!colleague.contains(first["token"].as_str().expect("token")), "{colleague}");

    let other = json!({"email": unique_email("inv"), "role": "agent"});
    let mismatch = post_with_key(&app, &owner.token, "/api/v1/invitations", "key-1", &other).await;
    assert_eq!(expect_problem(mismatch, 422).await["code"], "idempotency_key_reused");

    // The stored response is encrypted: the invitation token is not in the database.
    let token = first["token"].as_str().expect("token");
    let sql = match crate::support::backend() {
        crate::support::Backend::Sqlite => "SELECT hex(body) FROM idempotency_keys WHERE key = $1",
        crate::support::Backend::Postgres => {
            "SELECT encode(body, 'hex') FROM idempotency_keys WHERE key = $1"
        }
    };
    let stored = crate::support::raw_scalar_text(&app.db, sql, "key-1").await;
    assert!(!stored.to_lowercase().contains(&hex(token)), "the stored body is plaintext");

    let restarted = app.restart(&[]).await;
    let (token_after, _) = restarted.login_ok(&owner.email, PASSWORD).await;
    let replay =
        post_with_key(&restarted, &token_after, "/api/v1/invitations", "key-1", &body).await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.json::<Value>().await.expect("json"), first);
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn a_duplicate_arriving_while_the_first_runs_gets_409() {
    let app = TestApp::spawn_with(&[
        ("BULWARK_ARGON2_MEMORY_KIB", "65536"),
        ("BULWARK_ARGON2_ITERATIONS", "4"),
    ])
    .await;
    let body = json!({"tenant_name": "T", "email": unique_email("dup"), "password": PASSWORD, "display_name": "D"});
    let send = || {
        app.client
            .post(app.url("/api/v1/auth/signup"))
            .header("idempotency-key", "signup-1")
            .json(&body)
            .send()
    };
    let (a, b) = tokio::join!(send(), send());
    let mut statuses = [a.expect("a").status().as_u16(), b.expect("b").status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [202, 409]);
    let replay = send().await.expect("replay");
    assert_eq!(replay.status(), 202);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
}

#[tokio::test]
async fn a_failed_request_releases_its_key_and_bad_keys_are_refused() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let invalid = json!({"email": "not-an-email", "role": "agent"});
    let failed = post_with_key(&app, &owner.token, "/api/v1/invitations", "key-2", &invalid).await;
    assert_eq!(failed.status(), 422);
    let valid = json!({"email": unique_email("inv"), "role": "agent"});
    let retried = post_with_key(&app, &owner.token, "/api/v1/invitations", "key-2", &valid).await;
    assert_eq!(retried.status(), 201, "the key was released by the failure");
    let bad =
        post_with_key(&app, &owner.token, "/api/v1/invitations", "bad key with spaces", &valid)
            .await;
    assert_eq!(expect_problem(bad, 400).await["code"], "invalid_idempotency_key");
}
