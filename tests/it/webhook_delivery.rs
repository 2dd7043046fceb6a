//! Outbound webhook deliveries against a real receiver on loopback that verifies signatures
//! with the `standardwebhooks` package: thin signed payloads, the same `webhook-id` on every
//! retry, the retry schedule, no redirects, a subscription disabled after failing, and the
//! SSRF guard at connect time (every resolved address checked, one lookup per attempt, so a
//! rebinding DNS answer gets nowhere).

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::integrations::{Hook, dns_queries};
use crate::support::mail::{publish, unique_domain};
use crate::support::{Account, TestApp, expect_problem};

/// An app whose webhooks may reach loopback (the receiver), resolving names through the
/// test DNS server, retrying after `schedule`.
async fn app_with(schedule: &str, extra: &[(&str, &str)]) -> TestApp {
    let dns = crate::support::mail::settings();
    let mut settings: Vec<(&str, &str)> =
        dns.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    settings.push(("BULWARK_WEBHOOK_RETRY_SCHEDULE", schedule));
    settings.push(("BULWARK_WEBHOOK_TIMEOUT", "2s"));
    settings.extend_from_slice(extra);
    TestApp::spawn_with(&settings).await
}

/// Subscribes `url` to `events` as `who`; the subscription and its secret, which `hook`
/// is given to verify with.
async fn subscribe(app: &TestApp, who: &Account, hook: &Hook, url: &str, events: Value) -> Value {
    let body = json!({"url": url, "events": events});
    let created = app.post_as(&who.token, "/api/v1/webhooks", &body).await;
    assert_eq!(created.status(), 201, "subscribe {url}");
    let created: Value = created.json().await.expect("json");
    hook.set_secret(created["secret"].as_str().expect("secret"));
    created
}

/// A host name the test DNS server answers with `answers` (one line per lookup).
fn host(tag: &str, kind: &str, answers: &[&str]) -> String {
    let name = unique_domain(tag);
    publish(&name, kind, answers);
    name
}

async fn deliveries(app: &TestApp, who: &Account, subscription: &Value) -> Vec<Value> {
    let path = format!("/api/v1/webhooks/{}/deliveries", subscription["id"].as_str().expect("id"));
    let page: Value = app.get_as(&who.token, &path).await.json().await.expect("json");
    page["items"].as_array().expect("items").clone()
}

/// Waits until every delivery of `subscription` is finished (none `pending`).
async fn settled(app: &TestApp, who: &Account, subscription: &Value, n: usize) -> Vec<Value> {
    for _ in 0..300 {
        let all = deliveries(app, who, subscription).await;
        if all.len() >= n && all.iter().all(|d| d["status"] != "pending") {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("deliveries did not settle: {:?}", deliveries(app, who, subscription).await);
}

fn body(request: &Value) -> Value {
    serde_json::from_str(request["body"].as_str().expect("body")).expect("a JSON body")
}

#[tokio::test]
async fn deliveries_are_signed_thin_retried_under_one_id_and_verified_by_the_receiver() {
    let app = app_with("1s,2s", &[("BULWARK_WEBHOOK_ALLOW_PRIVATE", "127.0.0.0/8")]).await;
    let owner = app.signup("Acme").await;
    let hook = Hook::new("signed");
    // A name that resolves to the receiver: the guarded resolver's path, allowed by the list.
    let name = host("hooks", "A", &["127.0.0.1"]);
    let events =
        json!(["contact.created", "contact.updated", "contact.deleted", "deal.stage_changed"]);
    let subscription = subscribe(&app, &owner, &hook, &hook.url(&name), events).await;
    // Two failures, then accepted.
    hook.answer(&[500, 503, 204]);
    let contact = app
        .post_as(
            &owner.token,
            "/api/v1/contacts",
            &json!({"first_name": "Ada", "email": "ada@example.com"}),
        )
        .await;
    assert_eq!(contact.status(), 201);
    let contact: Value = contact.json().await.expect("json");
    let got = hook.wait_for(3, 30).await;
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got.iter().all(|r| r["verified"] == true), "every attempt verifies: {got:?}");
    assert!(got.iter().all(|r| r["id"] == got[0]["id"]), "one webhook-id across retries");
    assert!(got[0]["id"].as_str().is_some_and(|id| id.starts_with("msg_")));
    // The schedule (1 s, then 2 s, each ±10 %).
    let at: Vec<f64> = got.iter().map(|r| r["at"].as_f64().expect("at")).collect();
    assert!(at[1] - at[0] >= 0.85 && at[2] - at[1] >= 1.75, "retry gaps {at:?}");
    // Thin: the id, never the contact's data.
    let sent = body(&got[0]);
    assert_eq!(
        (sent["type"].clone(), sent["data"]["id"].clone()),
        (json!("contact.created"), contact["id"].clone())
    );
    assert!(!got[0]["body"].as_str().unwrap_or_default().contains("ada@example.com"));
    let listed = settled(&app, &owner, &subscription, 1).await;
    assert_eq!(listed[0]["status"], "delivered", "{listed:?}");
    assert_eq!(
        (listed[0]["attempts"].clone(), listed[0]["response_status"].clone()),
        (json!(3), json!(204))
    );
    assert!(listed[0].get("secret").is_none() && listed[0].get("url").is_none());

    // Updated (the names of the changed fields), a deal moved, deleted.
    let path = format!("/api/v1/contacts/{}", contact["id"].as_str().expect("id"));
    assert_eq!(
        app.patch_as(&owner.token, &path, &json!({"last_name": "Lovelace"})).await.status(),
        200
    );
    let pipeline: Value = app
        .post_as(
            &owner.token,
            "/api/v1/pipelines",
            &json!({"name": "Sales", "stages": [{"name": "New"}, {"name": "Won", "kind": "won"}]}),
        )
        .await
        .json()
        .await
        .expect("json");
    let stages = pipeline["stages"].as_array().expect("stages");
    let deal: Value = app
        .post_as(&owner.token, "/api/v1/deals", &json!({"title": "Big", "pipeline_id": pipeline["id"], "amount_minor": 100, "currency": "EUR"}))
        .await
        .json()
        .await
        .expect("json");
    let deal_path = format!("/api/v1/deals/{}", deal["id"].as_str().expect("id"));
    let moved = app.patch_as(&owner.token, &deal_path, &json!({"stage_id": stages[1]["id"]})).await;
    assert_eq!(moved.status(), 200);
    // A change that does not move it emits nothing.
    assert_eq!(
        app.patch_as(&owner.token, &deal_path, &json!({"title": "Bigger"})).await.status(),
        200
    );
    assert_eq!(app.delete_as(&owner.token, &path).await.status(), 204);
    let got = hook.wait_for(6, 30).await;
    let kinds: Vec<Value> = got[3..].iter().map(|r| body(r)["type"].clone()).collect();
    assert_eq!(kinds.len(), 3, "{kinds:?}");
    for kind in ["contact.updated", "deal.stage_changed", "contact.deleted"] {
        assert!(kinds.contains(&json!(kind)), "{kind} in {kinds:?}");
    }
    let updated =
        got[3..].iter().map(body).find(|b| b["type"] == "contact.updated").expect("updated");
    assert_eq!(updated["data"]["fields"], json!(["last_name"]));
    let stage =
        got[3..].iter().map(body).find(|b| b["type"] == "deal.stage_changed").expect("moved");
    assert_eq!(
        (stage["data"]["from_stage_id"].clone(), stage["data"]["to_stage_id"].clone()),
        (stages[0]["id"].clone(), stages[1]["id"].clone())
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(hook.received().len(), 6, "nothing more (the title change emits nothing)");

    // Another tenant sees none of it.
    let other = app.signup("Other").await;
    let path = format!("/api/v1/webhooks/{}/deliveries", subscription["id"].as_str().expect("id"));
    expect_problem(app.get_as(&other.token, &path).await, 404).await;
}

#[tokio::test]
async fn redirects_are_not_followed_and_a_failing_subscription_is_disabled_and_its_owner_told() {
    let relay = crate::support::mail::smtp_settings();
    let dns = crate::support::mail::settings();
    let mut settings: Vec<(&str, &str)> =
        relay.iter().chain(&dns).map(|(k, v)| (k.as_str(), v.as_str())).collect();
    settings.extend_from_slice(&[
        ("BULWARK_WEBHOOK_ALLOW_PRIVATE", "127.0.0.0/8"),
        ("BULWARK_WEBHOOK_RETRY_SCHEDULE", "1s"),
        ("BULWARK_WEBHOOK_DISABLE_AFTER", "2"),
        ("BULWARK_EMAIL_FROM", "Bulwark <no-reply@bulwark.test>"),
    ]);
    let app = TestApp::spawn_with(&settings).await;
    let owner = app.signup("Acme").await;
    let hook = Hook::new("redirect");
    hook.answer(&[307]);
    let subscription =
        subscribe(&app, &owner, &hook, &hook.url("127.0.0.1"), json!(["contact.created"])).await;
    for name in ["One", "Two"] {
        let created =
            app.post_as(&owner.token, "/api/v1/contacts", &json!({"first_name": name})).await;
        assert_eq!(created.status(), 201, "{}", created.text().await.unwrap_or_default());
    }
    let all = settled(&app, &owner, &subscription, 2).await;
    assert!(
        all.iter()
            .all(|d| d["status"] == "failed" && d["attempts"] == 2 && d["response_status"] == 307),
        "{all:?}"
    );
    // The Location was never followed.
    let redirected = Hook { name: format!("{}-redirected", hook.name) };
    assert!(redirected.received().is_empty());
    assert_eq!(hook.received().len(), 4);
    // Two deliveries in a row failed for good: disabled, audited, the owner mailed.
    let path = format!("/api/v1/webhooks/{}", subscription["id"].as_str().expect("id"));
    let now: Value = app.get_as(&owner.token, &path).await.json().await.expect("json");
    assert_eq!(now["status"], "disabled");
    assert!(app.audit_actions(&owner).await.iter().any(|a| a == "webhook.disable"));
    let mut told = false;
    for _ in 0..100 {
        told = crate::support::mail::received_by(&owner.email)
            .iter()
            .any(|m| m.data.contains("A webhook was disabled"));
        if told {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(told, "the owner was mailed");
    // Disabled: nothing more is queued; re-enabled, events flow again.
    hook.answer(&[204]);
    app.post_as(&owner.token, "/api/v1/contacts", &json!({"first_name": "Three"})).await;
    assert_eq!(app.patch_as(&owner.token, &path, &json!({"status": "active"})).await.status(), 200);
    app.post_as(&owner.token, "/api/v1/contacts", &json!({"first_name": "Four"})).await;
    let got = hook.wait_for(5, 20).await;
    assert_eq!(got.len(), 5, "only the event after re-enabling");
}

#[tokio::test]
async fn a_webhook_host_resolving_inward_is_refused_at_connect_time_and_rebinding_gets_nowhere() {
    // No allowlist: nothing private is reachable, whatever the name.
    let app = app_with("1s", &[]).await;
    let owner = app.signup("Acme").await;
    let hook = Hook::new("inward");
    let inward = [
        host("loop", "A", &["127.0.0.1"]),
        host("ten", "A", &["10.0.0.1"]),
        host("meta", "A", &["169.254.169.254"]),
        host("six", "AAAA", &["::1"]),
        host("mapped", "AAAA", &["::ffff:127.0.0.1"]),
        // One public address beside a private one: every address is checked.
        host("mixed", "A", &["93.184.216.34,127.0.0.1"]),
    ];
    // A rebinding server: a public answer first, loopback for every later question.
    let rebind = host("rebind", "A", &["93.184.216.34", "127.0.0.1"]);
    let mut subscriptions = vec![];
    for name in inward.iter().chain([&rebind]) {
        // The name passes at creation (only IP literals are judged there).
        let created =
            subscribe(&app, &owner, &hook, &hook.url(name), json!(["contact.created"])).await;
        subscriptions.push((name.clone(), created));
    }
    assert_eq!(
        app.post_as(&owner.token, "/api/v1/contacts", &json!({"first_name": "Ada"})).await.status(),
        201
    );
    for (name, subscription) in &subscriptions {
        let done = settled(&app, &owner, subscription, 1).await;
        let last = done[0]["last_error"].as_str().unwrap_or_default().to_owned();
        assert_eq!(done[0]["status"], "failed", "{name}: {done:?}");
        assert_eq!(done[0]["attempts"], 2, "{name}");
        if *name == rebind {
            // The first attempt connected to the public address it checked (and failed: no
            // route here); the second lookup's loopback answer was refused, not connected to.
            assert!(last.contains("refused"), "{name}: {last}");
            assert_eq!(dns_queries(name, "A"), 2, "one lookup per attempt, none in between");
        } else {
            assert!(last.contains("refused"), "{name}: {last}");
        }
    }
    assert!(hook.received().is_empty(), "the receiver on loopback was never reached");
}
