//! The outbox under failure, with the real binary and the real relay: a `kill -9` during a
//! burst of sends loses no accepted message, and two instances on one PostgreSQL deliver a
//! thousand queued messages once each.

use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt as _;
use serde_json::{Value, json};

use crate::support::binary::Running;
use crate::support::mail::{message_id_counts, smtp_settings, verified_domain};
use crate::support::{Backend, TestApp, backend};

/// The settings of `app` for a real `bulwark serve` on the same database.
fn serve_env(app: &TestApp, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    app.settings
        .iter()
        .filter(|(k, _)| !k.contains("LISTEN") && !extra.iter().any(|(e, _)| e == k))
        .cloned()
        .chain([
            ("BULWARK_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
            ("BULWARK_METRICS_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        ])
        .chain(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
        .collect()
}

async fn serve(dir: std::path::PathBuf, env: Vec<(String, String)>) -> Running {
    tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Running::serve(&dir, &env)
    })
    .await
    .expect("join")
}

/// Waits (at most `seconds`) until every id in `ids` was received.
fn wait_received(
    ids: &[String],
    domain: &str,
    seconds: u64,
) -> std::collections::HashMap<String, (usize, SystemTime)> {
    let started = Instant::now();
    loop {
        let counts = message_id_counts();
        let missing =
            ids.iter().filter(|id| !counts.contains_key(&format!("<{id}@{domain}>"))).count();
        if missing == 0 {
            return counts;
        }
        assert!(started.elapsed().as_secs() < seconds, "{missing} of {} never arrived", ids.len());
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test]
async fn a_kill_9_during_a_burst_of_sends_loses_no_accepted_message() {
    let smtp = smtp_settings();
    let mut extra: Vec<(&str, &str)> = smtp.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    extra.extend([("BULWARK_EMAIL_LEASE", "2s"), ("BULWARK_EMAIL_WORKERS", "4")]);
    let app = TestApp::spawn_with(&extra).await;
    let owner = app.signup("Acme").await;
    let domain = verified_domain(&app, &owner.token).await;
    let env = serve_env(&app, &extra);
    let db = app.stop().await;
    let dir = db.dir.path().to_owned();
    let mut server = serve(dir.clone(), env.clone()).await;
    let client = reqwest::Client::new();

    // A burst of sends to slow recipients (the relay takes 200 ms each), so deliveries are
    // in flight; the process is killed (SIGKILL) while sends and deliveries run.
    let (url, token) = (server.url.clone(), owner.token.clone());
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let burst = tokio::spawn({
        let count = count.clone();
        let client = client.clone();
        let domain = domain.clone();
        async move {
            let mut accepted = vec![];
            for n in 0..1000 {
                let body = json!({"from": format!("news@{domain}"), "to": [format!("slow-{n}@example.com")],
                    "subject": format!("Burst {n}"), "text": "x"});
                let sent = client
                    .post(format!("{url}/api/v1/emails"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status() == 202 => {
                        let view: Value = response.json().await.expect("json");
                        accepted.push(view["id"].as_str().expect("id").to_owned());
                        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    // Killed mid-request: not acknowledged, so not counted.
                    _ => break,
                }
            }
            accepted
        }
    });
    // Killed once 60 sends were acknowledged: the burst is still running.
    while count.load(std::sync::atomic::Ordering::SeqCst) < 60 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let killed_at = SystemTime::now();
    server.stop();
    let accepted = burst.await.expect("join");
    assert!(accepted.len() < 1000, "the burst ended before the kill: nothing was interrupted");
    let delivered_before = message_id_counts();
    let pending = accepted
        .iter()
        .filter(|id| !delivered_before.contains_key(&format!("<{id}@{domain}>")))
        .count();
    assert!(pending > 0, "the kill came after every delivery: nothing was tested");

    // After a restart every accepted message arrives; a copy twice only where the relay had
    // taken the first before the kill (the status write was lost with the process).
    let restarted = serve(dir, env).await;
    let counts = tokio::task::spawn_blocking({
        let (accepted, domain) = (accepted.clone(), domain.clone());
        move || wait_received(&accepted, &domain, 120)
    })
    .await
    .expect("join");
    // The relay finishes a transaction whose data it had whole when the client died (and
    // takes 200 ms for these recipients), so "before the kill" is judged with a second's slack.
    let taken_by = killed_at + Duration::from_secs(1);
    for id in &accepted {
        let (times, first) = counts[&format!("<{id}@{domain}>")];
        assert!(times == 1 || first < taken_by, "{id} arrived {times} times, first after the kill");
        assert!(times <= 2, "{id} arrived {times} times");
    }
    eprintln!(
        "durability: {} accepted, {pending} undelivered at the kill, all delivered after restart",
        accepted.len()
    );
    drop(restarted);
    drop(db);
}

#[tokio::test]
async fn two_instances_on_postgres_deliver_a_thousand_queued_messages_once_postgres_only() {
    if backend() != Backend::Postgres {
        eprintln!("PostgreSQL only: the claim uses FOR UPDATE SKIP LOCKED across instances");
        return;
    }
    // Queued without a relay, then delivered by two instances at once.
    let app = TestApp::spawn_with(&[("BULWARK_EMAIL_HOURLY_LIMIT", "5000")]).await;
    let owner = app.signup("Acme").await;
    let domain = verified_domain(&app, &owner.token).await;
    let ids = futures_util::stream::iter(0..1000)
        .map(|n| {
            let (app, token, domain) = (&app, &owner.token, &domain);
            async move {
                let body = json!({"from": format!("news@{domain}"), "to": [format!("bulk-{n}@example.com")],
                    "subject": format!("Bulk {n}"), "text": "x"});
                let response = app.post_as(token, "/api/v1/emails", &body).await;
                assert_eq!(response.status(), 202);
                let view: Value = response.json().await.expect("json");
                view["id"].as_str().expect("id").to_owned()
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<String>>()
        .await;
    let smtp = smtp_settings();
    let mut extra: Vec<(&str, &str)> = smtp.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    extra.extend([("BULWARK_EMAIL_WORKERS", "8"), ("BULWARK_EMAIL_HOURLY_LIMIT", "5000")]);
    let first = app.restart(&extra).await;
    let second = first.sibling(&[]).await;
    let started = Instant::now();
    let counts = tokio::task::spawn_blocking({
        let (ids, domain) = (ids.clone(), domain.clone());
        move || wait_received(&ids, &domain, 300)
    })
    .await
    .expect("join");
    eprintln!("durability: 1000 messages delivered by two instances in {:?}", started.elapsed());
    let twice: Vec<&String> =
        ids.iter().filter(|id| counts[&format!("<{id}@{domain}>")].0 != 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    drop(second);
    drop(first);
}
