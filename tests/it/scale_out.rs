//! Several instances behave as one: three instances behind a round-robin balancer share one
//! database (through PgBouncer in transaction mode in the suite's PgBouncer pass) and one
//! Redis. Limits, lockouts, revocations, idempotency, blocks and kill switches hold whichever
//! instance answers; a key rotation on one loses nothing the others write; a Redis outage
//! and a database outage behave as documented and heal without a restart.
//!
//! The propagation times are printed (`--no-capture`) for the scale-out figures.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::balancer::Balancer;
use crate::support::proxy::TcpProxy;
use crate::support::redis_server::RedisServer;
use crate::support::{Backend, PASSWORD, TestApp, TestDb, backend, expect_problem, unique_email};

const LIMITED: (&str, &str) = ("BULWARK_RATE_LIMITS", "on");
const BEHIND_PROXY: (&str, &str) = ("BULWARK_TRUSTED_PROXIES", "127.0.0.1/32");

struct Fleet {
    instances: Vec<TestApp>,
    balancer: Balancer,
    /// The fleet as a client sees it: every request through the balancer, to the next one.
    lb: TestApp,
}

async fn fleet(db: Option<TestDb>, extra: &[(&str, &str)]) -> Fleet {
    let first = match db {
        Some(db) => TestApp::spawn_on(db, extra).await,
        None => TestApp::spawn_with(extra).await,
    };
    let second = first.sibling(&[]).await;
    let third = first.sibling(&[]).await;
    let instances = vec![first, second, third];
    let balancer = Balancer::start(instances.iter().map(|i| i.addr).collect()).await;
    let lb = instances[0].behind(balancer.addr);
    Fleet { instances, balancer, lb }
}

/// Polls every instance directly until `check` holds on each; the slowest instance's time.
async fn on_every_instance(
    fleet: &Fleet,
    what: &str,
    check: impl AsyncFn(&TestApp) -> bool,
) -> Duration {
    let started = Instant::now();
    let mut pending: Vec<&TestApp> = fleet.instances.iter().collect();
    let mut slowest = Duration::ZERO;
    while !pending.is_empty() {
        let mut still = vec![];
        for instance in pending {
            if check(instance).await {
                slowest = started.elapsed();
            } else {
                still.push(instance);
            }
        }
        pending = still;
        assert!(started.elapsed() < Duration::from_secs(3), "{what}: not on every instance");
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    eprintln!("scale-out: {what} on every instance after {slowest:?}");
    slowest
}

async fn login_from(app: &TestApp, ip: &str, email: &str, password: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", ip)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("login")
}

#[tokio::test]
async fn three_instances_behind_a_balancer_behave_as_one() {
    let redis = RedisServer::start();
    let url = redis.url();
    let fleet = fleet(None, &[LIMITED, BEHIND_PROXY, ("BULWARK_REDIS_URL", &url)]).await;
    let lb = &fleet.lb;

    // A rate limit counts once: 25 failed logins from one client, spread over the three.
    let mut statuses = vec![];
    for _ in 0..25 {
        let response = login_from(lb, "198.51.100.7", &unique_email("x"), "wrong password").await;
        statuses.push(response.status().as_u16());
    }
    assert_eq!(&statuses[..20], &[401; 20], "{statuses:?}");
    assert_eq!(&statuses[20..], &[429; 5], "{statuses:?}");
    assert!(fleet.balancer.served().iter().all(|n| *n >= 8), "{:?}", fleet.balancer.served());

    // A lockout started through one instance holds on the others.
    let owner = lb.signup("Acme").await;
    let member = lb.add_member(&owner, "agent").await;
    for _ in 0..5 {
        let failed = login_from(lb, "198.51.100.8", &member.email, "wrong password").await;
        assert_eq!(failed.status(), 401);
    }
    for instance in &fleet.instances {
        let locked = login_from(instance, "198.51.100.9", &member.email, PASSWORD).await;
        assert_eq!(locked.status(), 401, "the lock holds on {}", instance.addr);
    }

    // A session revoked through one instance is refused by all within a second.
    for instance in &fleet.instances {
        assert_eq!(instance.get_as(&member.token, "/api/v1/me").await.status(), 200, "warm");
    }
    assert_eq!(lb.post_as(&member.token, "/api/v1/auth/logout", &json!({})).await.status(), 204);
    let took = on_every_instance(&fleet, "session revocation", async |i| {
        i.get_as(&member.token, "/api/v1/me").await.status() == 401
    })
    .await;
    assert!(took < Duration::from_secs(1), "{took:?}");

    // An Idempotency-Key replays whichever instance answers.
    let body = json!({"first_name": "Once", "email": unique_email("once")});
    let mut ids = vec![];
    for _ in 0..3 {
        let response = lb
            .client
            .post(lb.url("/api/v1/contacts"))
            .bearer_auth(&owner.token)
            .header("idempotency-key", "scale-out-contact-1")
            .json(&body)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 201);
        let created: Value = response.json().await.expect("json");
        ids.push(created["id"].as_str().expect("id").to_owned());
    }
    assert!(ids.iter().all(|id| *id == ids[0]), "one contact, replayed: {ids:?}");
    let listed: Value =
        lb.get_as(&owner.token, "/api/v1/contacts").await.json().await.expect("json");
    assert_eq!(listed["items"].as_array().expect("items").len(), 1);

    // A block and a kill switch apply everywhere within a second.
    let root = fleet.instances[0].superadmin().await;
    let block = json!({"cidr": "203.0.113.0/24", "reason": "scale-out test"});
    let blocked = lb.post_as(&root.token, "/api/v1/platform/blocked-ips", &block).await;
    assert_eq!(blocked.status(), 201);
    let took = on_every_instance(&fleet, "block", async |i| {
        let request = i.client.get(i.url("/healthz")).header("x-forwarded-for", "203.0.113.9");
        request.send().await.expect("request").status() == 403
    })
    .await;
    assert!(took < Duration::from_secs(1), "{took:?}");
    let off = json!({"exports": false});
    assert_eq!(lb.patch_as(&root.token, "/api/v1/platform/features", &off).await.status(), 200);
    let took = on_every_instance(&fleet, "kill switch", async |i| {
        let response = i.post_as(&owner.token, "/api/v1/exports/contacts", &json!({})).await;
        response.status() == 503
    })
    .await;
    assert!(took < Duration::from_secs(1), "{took:?}");
    for instance in &fleet.instances {
        let ready: Value = instance.get("/readyz").await.json().await.expect("json");
        assert_eq!(ready["features_disabled"], json!(["exports"]));
    }

    // A Redis outage: sign-in fails closed and reads stay open on every instance; when Redis
    // returns, every instance recovers without a restart.
    let mut redis = redis;
    redis.stop();
    for instance in &fleet.instances {
        let refused = login_from(instance, "192.0.2.10", &owner.email, PASSWORD).await;
        assert_eq!(expect_problem(refused, 503).await["code"], "rate_limiter_unavailable");
        assert_eq!(instance.get_as(&owner.token, "/api/v1/contacts").await.status(), 200);
    }
    redis.restart();
    // Each attempt from an address of its own: the polling must not trip the limit it waits for.
    let started = Instant::now();
    for (n, instance) in fleet.instances.iter().enumerate() {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let ip = format!("192.0.{}.{attempt}", 100 + n);
            if login_from(instance, &ip, &owner.email, PASSWORD).await.status() == 200 {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "no recovery on {n}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    eprintln!(
        "scale-out: every instance signs in again {:?} after Redis returned",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_tenant_key_rotation_on_one_instance_loses_nothing_the_others_write() {
    let fleet = fleet(None, &[]).await;
    let lb = &fleet.lb;
    let owner = lb.signup("Acme").await;
    let mut written = vec![];
    for n in 0..20 {
        let body = json!({"first_name": format!("Before {n}"), "email": unique_email("b")});
        let created: Value =
            lb.post_as(&owner.token, "/api/v1/contacts", &body).await.json().await.expect("json");
        written.push((created["id"].as_str().expect("id").to_owned(), format!("Before {n}")));
    }

    // The rotation runs as a command beside the fleet while the balancer spreads writes.
    let args = ["keys", "rotate-tenant", "--tenant", &owner.tenant_id];
    let rotation = fleet.instances[0].cli(&args);
    let writes = async {
        let mut acknowledged = vec![];
        for n in 0..40 {
            let name = format!("During {n}");
            let body = json!({"first_name": name, "email": unique_email("d")});
            let response = lb.post_as(&owner.token, "/api/v1/contacts", &body).await;
            if response.status() == 201 {
                let created: Value = response.json().await.expect("json");
                acknowledged.push((created["id"].as_str().expect("id").to_owned(), name));
            }
        }
        acknowledged
    };
    let (output, during) = tokio::join!(rotation, writes);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(during.len(), 40, "every write was acknowledged");
    written.extend(during);

    // Every acknowledged contact reads back whole, on every instance.
    for instance in &fleet.instances {
        for (id, name) in &written {
            let response = instance.get_as(&owner.token, &format!("/api/v1/contacts/{id}")).await;
            assert_eq!(response.status(), 200, "{id}");
            let contact: Value = response.json().await.expect("json");
            assert_eq!(contact["first_name"], *name);
        }
    }
}

#[tokio::test]
async fn a_database_outage_fails_readiness_everywhere_and_loses_no_acknowledged_write_postgres_only()
 {
    if backend() != Backend::Postgres {
        eprintln!("PostgreSQL only: SQLite is a file in the instance's own process");
        return;
    }
    // The instances reach the database (or PgBouncer) through a proxy the test can cut: to
    // them, a restart of the database server.
    let db = TestDb::create().await;
    let app_url = url::Url::parse(&db.app_url()).expect("url");
    let target = format!("{}:{}", app_url.host_str().expect("host"), app_url.port().expect("port"));
    let proxy = TcpProxy::start(target.parse().expect("socket address")).await;
    let mut through = app_url.clone();
    through.set_port(Some(proxy.addr.port())).expect("port");
    let fleet = fleet(Some(db), &[("BULWARK_DATABASE_URL", through.as_str())]).await;
    let lb = &fleet.lb;
    let owner = lb.signup("Acme").await;

    let mut acknowledged = vec![];
    let mut write = async |n: usize| {
        let body = json!({"first_name": format!("Contact {n}"), "email": unique_email("c")});
        let response = lb
            .client
            .post(lb.url("/api/v1/contacts"))
            .bearer_auth(&owner.token)
            .json(&body)
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        if let Ok(response) = response
            && response.status() == 201
        {
            let created: Value = response.json().await.expect("json");
            acknowledged.push(created["id"].as_str().expect("id").to_owned());
        }
    };
    for n in 0..10 {
        write(n).await;
    }
    proxy.set_enabled(false);
    for n in 10..16 {
        write(n).await;
    }
    on_every_instance(&fleet, "unready while the database is down", async |i| {
        i.get("/readyz").await.status() == 503
    })
    .await;
    proxy.set_enabled(true);
    on_every_instance(&fleet, "ready again", async |i| i.get("/readyz").await.status() == 200)
        .await;
    for n in 16..26 {
        write(n).await;
    }
    assert!(acknowledged.len() >= 20, "writes before and after the outage: {}", acknowledged.len());
    for id in &acknowledged {
        let response = lb.get_as(&owner.token, &format!("/api/v1/contacts/{id}")).await;
        assert_eq!(response.status(), 200, "an acknowledged write was lost: {id}");
    }
}

/// Stops instance `n` and starts a new one in its place (the one holding the database is
/// restarted on it; the others are replaced by new siblings).
async fn bounce(fleet: &mut Fleet, n: usize, extra: &[(&str, &str)]) {
    let old = fleet.instances.remove(n);
    let new = if n == 0 {
        old.restart(extra).await
    } else {
        drop(old.stop().await);
        fleet.instances[0].sibling(&[]).await
    };
    fleet.balancer.replace(n, new.addr);
    fleet.instances.insert(n, new);
}

#[tokio::test]
async fn the_email_outbox_delivers_each_message_once_while_instances_restart() {
    let smtp = crate::support::mail::smtp_settings();
    let extra: Vec<(&str, &str)> = smtp.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut fleet = fleet(None, &extra).await;
    let owner = fleet.lb.signup("Acme").await;
    let domain = crate::support::mail::verified_domain(&fleet.lb, &owner.token).await;
    // Slow recipients keep deliveries in flight long enough to be interrupted.
    let mut ids = vec![];
    for n in 0..90 {
        let body = json!({"from": format!("news@{domain}"), "to": [format!("slow-{n}@example.com")],
            "subject": format!("Issue {n}"), "text": "x"});
        let response = fleet.lb.post_as(&owner.token, "/api/v1/emails", &body).await;
        assert_eq!(response.status(), 202);
        let accepted: Value = response.json().await.expect("json");
        ids.push(accepted["id"].as_str().expect("id").to_owned());
    }
    // Instances stop and start again at random while the queue drains.
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let n = usize::from(uuid::Uuid::new_v4().as_bytes()[0]) % fleet.instances.len();
        bounce(&mut fleet, n, &extra).await;
    }
    let started = Instant::now();
    loop {
        let sent: Value = fleet
            .lb
            .get_as(&owner.token, "/api/v1/emails?status=sent&limit=200")
            .await
            .json()
            .await
            .expect("json");
        let count = sent["items"].as_array().expect("items").len();
        if count == ids.len() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{count} of {} sent", ids.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "scale-out: {} messages delivered across restarts in {:?}",
        ids.len(),
        started.elapsed()
    );
    for id in &ids {
        let received = crate::support::mail::received(&format!("<{id}@{domain}>"));
        assert_eq!(received.len(), 1, "message {id} arrived {} times", received.len());
    }
}
