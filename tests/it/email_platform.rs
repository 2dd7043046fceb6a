//! The mail side beyond sending: templates, late bounce and complaint events (signed
//! webhooks), one-click unsubscribe, per-tenant limits set by the super-admin, DKIM key
//! rotation and content retention — against the real SMTP, DNS and DKIM verifier processes.

use serde_json::{Value, json};

use crate::email::{kinds, until_status};
use crate::support::mail::{dkim_verifies, mailing_app, publish, verified_domain, wait_for};
use crate::support::{Account, TestApp, database_bytes, expect_problem, unique_email};

/// Sends `body` as `who`; the accepted message's id.
async fn send(app: &TestApp, who: &Account, body: &Value) -> String {
    let accepted = app.post_as(&who.token, "/api/v1/emails", body).await;
    assert_eq!(accepted.status(), 202, "send");
    let accepted: Value = accepted.json().await.expect("json");
    accepted["id"].as_str().expect("id").to_owned()
}

/// The text of a received message with quoted-printable soft breaks and `=3D` undone.
fn unfolded(data: &str) -> String {
    data.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=")
}

#[tokio::test]
async fn templates_render_in_a_sandbox_with_html_escaped_and_stay_in_their_tenant() {
    let app = mailing_app(&[]).await;
    let owner = app.signup("Acme").await;
    let domain = verified_domain(&app, &owner.token).await;
    let template = json!({"name": "welcome", "subject": "Hi {{ name }}",
        "text": "Hello {{ name }}", "html": "<p>Hello <b>{{ name }}</b></p>"});
    let created = app.post_as(&owner.token, "/api/v1/email/templates", &template).await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.expect("json");
    let id = created["id"].as_str().expect("id").to_owned();
    // One name per tenant; a template that does not compile is a 422 naming its part.
    let again = app.post_as(&owner.token, "/api/v1/email/templates", &template).await;
    expect_problem(again, 409).await;
    let broken = json!({"name": "broken", "subject": "x", "html": "{% if %}"});
    let broken = app.post_as(&owner.token, "/api/v1/email/templates", &broken).await;
    let problem = expect_problem(broken, 422).await;
    assert!(problem.to_string().contains("html"), "{problem}");
    // No loader: nothing outside the template can be read.
    let include = json!({"name": "include", "subject": "x", "text": "{% include '/etc/passwd' %}"});
    let include = app.post_as(&owner.token, "/api/v1/email/templates", &include).await;
    expect_problem(include, 422).await;

    // Variables never become markup in the HTML part; text and subject are not markup.
    let evil = json!({"variables": {"name": "<script>alert(1)</script>"}});
    let path = format!("/api/v1/email/templates/{id}/render");
    let preview: Value = app.post_as(&owner.token, &path, &evil).await.json().await.expect("json");
    assert_eq!(preview["html"], "<p>Hello <b>&lt;script&gt;alert(1)&lt;&#x2f;script&gt;</b></p>");
    assert_eq!(preview["subject"], "Hi <script>alert(1)</script>");

    // A send by template: subject and bodies rendered, the HTML part arrives escaped.
    let by_template = json!({"from": format!("hello@{domain}"), "to": ["ada@example.com"],
        "template_id": id, "variables": {"name": "<script>alert(1)</script>"}});
    let message = send(&app, &owner, &by_template).await;
    let received = wait_for(&format!("<{message}@{domain}>"), 10).await;
    let data = unfolded(&received.data);
    assert!(data.contains("&lt;script&gt;"), "escaped in the HTML part");
    assert!(!data.contains("<b><script>"), "never markup");
    assert!(dkim_verifies(&received.data));
    // A template and its own subject or body at once, or an unknown template: 422.
    let mixed = json!({"from": format!("hello@{domain}"), "to": ["ada@example.com"],
        "template_id": id, "subject": "Mine"});
    expect_problem(app.post_as(&owner.token, "/api/v1/emails", &mixed).await, 422).await;
    // A subject rendered into a header injection is refused like a written one.
    let injected = json!({"from": format!("hello@{domain}"), "to": ["ada@example.com"],
        "template_id": id, "variables": {"name": "x\r\nBcc: victim@example.com"}});
    expect_problem(app.post_as(&owner.token, "/api/v1/emails", &injected).await, 422).await;

    // Another tenant: the template is unknown everywhere.
    let other = app.signup("Other").await;
    let theirs = verified_domain(&app, &other.token).await;
    let path = format!("/api/v1/email/templates/{id}");
    expect_problem(app.get_as(&other.token, &path).await, 404).await;
    expect_problem(app.patch_as(&other.token, &path, &json!({"subject": "x"})).await, 404).await;
    expect_problem(app.delete_as(&other.token, &path).await, 404).await;
    let render = format!("{path}/render");
    expect_problem(app.post_as(&other.token, &render, &json!({})).await, 404).await;
    let stolen =
        json!({"from": format!("hi@{theirs}"), "to": ["ada@example.com"], "template_id": id});
    expect_problem(app.post_as(&other.token, "/api/v1/emails", &stolen).await, 422).await;
    let listed: Value =
        app.get_as(&other.token, "/api/v1/email/templates").await.json().await.expect("json");
    assert_eq!(listed["items"], json!([]));

    // Change and removal by the owner.
    let changed = app
        .patch_as(&owner.token, &path, &json!({"subject": "Welcome {{ name }}", "text": null}))
        .await;
    assert_eq!(changed.status(), 200);
    let changed: Value = changed.json().await.expect("json");
    assert_eq!(
        (changed["subject"].as_str(), changed["text"].is_null()),
        (Some("Welcome {{ name }}"), true)
    );
    // Sealed at rest: the subject and bodies are not in the clear.
    let bytes = database_bytes(&app.db).await;
    assert!(!String::from_utf8_lossy(&bytes).contains("Welcome {{ name }}"));
    assert_eq!(app.delete_as(&owner.token, &path).await.status(), 204);
    expect_problem(app.get_as(&owner.token, &path).await, 404).await;
    let actions = app.audit_actions(&owner).await;
    for action in ["email.template_create", "email.template_update", "email.template_delete"] {
        assert!(actions.iter().any(|a| a == action), "{action}");
    }
}

/// The tenant's suppression list.
async fn suppressions(app: &TestApp, who: &Account) -> Vec<Value> {
    let page: Value =
        app.get_as(&who.token, "/api/v1/email/suppressions").await.json().await.expect("json");
    page["items"].as_array().expect("items").clone()
}

const EVENTS_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// POSTs a signed email event; the response.
async fn post_event(
    app: &TestApp,
    id: &str,
    age_secs: i64,
    body: &Value,
    key: &[u8],
) -> reqwest::Response {
    let body = serde_json::to_vec(body).expect("json");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let timestamp = now - age_secs;
    let signature = bulwark::crypto::standard_webhooks::sign(key, id, timestamp, &body);
    app.client
        .post(app.url("/hooks/email/events"))
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn a_signed_late_bounce_suppresses_once_and_forged_stale_or_replayed_events_change_nothing() {
    let app = mailing_app(&[("BULWARK_EMAIL_EVENTS_SECRET", EVENTS_SECRET)]).await;
    let key = bulwark::crypto::standard_webhooks::parse_secret(EVENTS_SECRET).expect("secret");
    let key = key.expose().clone();
    let owner = app.signup("Acme").await;
    let domain = verified_domain(&app, &owner.token).await;
    let ada = unique_email("ada");
    let id = send(
        &app,
        &owner,
        &json!({"from": format!("hi@{domain}"), "to": [ada], "subject": "Hi", "text": "x"}),
    )
    .await;
    until_status(&app, &owner.token, &id, "sent").await;
    let bounce = json!({"message_id": id, "recipient": ada, "type": "hard_bounce",
        "detail": format!("550 5.1.1 <{ada}> mailbox gone")});

    // Forged, stale, malformed: refused, nothing changes.
    let forged = post_event(&app, "evt-1", 0, &bounce, b"another key of enough bytes").await;
    expect_problem(forged, 401).await;
    expect_problem(post_event(&app, "evt-1", 600, &bounce, &key).await, 401).await;
    let unsigned = app.post_json("/hooks/email/events", &bounce).await;
    expect_problem(unsigned, 401).await;
    assert!(suppressions(&app, &owner).await.is_empty());

    // A good one: processed, the address suppressed, the message bounced; its replay is
    // acknowledged and changes nothing.
    let first = post_event(&app, "evt-1", 0, &bounce, &key).await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.json::<Value>().await.expect("json")["status"], "processed");
    let replay = post_event(&app, "evt-1", 0, &bounce, &key).await;
    assert_eq!(replay.json::<Value>().await.expect("json")["status"], "duplicate");
    let listed = suppressions(&app, &owner).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0]["email"].as_str(), listed[0]["reason"].as_str()),
        (Some(ada.as_str()), Some("hard_bounce"))
    );
    let message: Value =
        app.get_as(&owner.token, &format!("/api/v1/emails/{id}")).await.json().await.expect("json");
    assert_eq!(message["status"], "bounced");
    assert_eq!(kinds(&message).iter().filter(|k| *k == "bounced").count(), 1, "{message}");
    let bounced =
        message["events"].as_array().expect("events").iter().find(|e| e["type"] == "bounced");
    assert_eq!(bounced.map(|e| e["recipient"].clone()), Some(json!(ada)), "{message}");
    assert!(!message.to_string().contains(&format!("<{ada}>")), "no address in event details");
    // The next send to the address is suppressed.
    let again = app
        .post_as(
            &owner.token,
            "/api/v1/emails",
            &json!({"from": format!("hi@{domain}"), "to": [ada], "subject": "Hi", "text": "x"}),
        )
        .await;
    assert_eq!(again.json::<Value>().await.expect("json")["status"], "suppressed");

    // A complaint suppresses too; an address that was not a recipient is ignored.
    let bob = unique_email("bob");
    let id = send(
        &app,
        &owner,
        &json!({"from": format!("hi@{domain}"), "to": [bob], "subject": "Hi", "text": "x"}),
    )
    .await;
    let stranger = json!({"message_id": id, "recipient": "eve@example.com", "type": "complaint"});
    let ignored = post_event(&app, "evt-2", 0, &stranger, &key).await;
    assert_eq!(ignored.json::<Value>().await.expect("json")["status"], "ignored");
    let complaint = json!({"message_id": id, "recipient": bob, "type": "complaint"});
    assert_eq!(post_event(&app, "evt-3", 0, &complaint, &key).await.status(), 200);
    let reasons: Vec<String> = suppressions(&app, &owner)
        .await
        .iter()
        .filter_map(|s| s["reason"].as_str().map(str::to_owned))
        .collect();
    assert!(reasons.contains(&"complaint".to_owned()), "{reasons:?}");

    // Without a configured secret the route refuses everything.
    let plain = mailing_app(&[]).await;
    expect_problem(post_event(&plain, "evt-4", 0, &complaint, &key).await, 401).await;
}

#[tokio::test]
async fn broadcast_mail_carries_a_signed_one_click_unsubscribe_that_only_post_uses() {
    let app = mailing_app(&[]).await;
    let owner = app.signup("Acme").await;
    let domain = verified_domain(&app, &owner.token).await;
    let ada = unique_email("ada");
    let body = json!({"from": format!("news@{domain}"), "to": [ada], "subject": "News",
        "text": "Spring news", "stream": "broadcast"});
    let id = send(&app, &owner, &body).await;
    let received = wait_for(&format!("<{id}@{domain}>"), 10).await;
    let data = received.data.replace("\r\n", "\n");
    assert!(data.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"), "{data}");
    let unfolded = data.replace("\n ", " ").replace("\n\t", " ");
    let link = unfolded
        .lines()
        .find_map(|l| l.strip_prefix("List-Unsubscribe: <"))
        .and_then(|l| l.strip_suffix('>'))
        .expect("a List-Unsubscribe header")
        .to_owned();
    let path = link.split_once("/u/").map(|(_, t)| format!("/u/{t}")).expect("a /u/ link");
    // The signature covers the unsubscribe headers (RFC 8058): altering one breaks it.
    assert!(dkim_verifies(&received.data));
    let signature = unfolded.lines().find(|l| l.starts_with("DKIM-Signature:")).expect("signed");
    assert!(signature.to_ascii_lowercase().contains("list-unsubscribe-post"), "{signature}");
    assert!(!dkim_verifies(&received.data.replace(&path, "/u/AAAA")), "tampering shows");
    // Transactional mail has no such link.
    let plain = send(&app, &owner, &json!({"from": format!("hi@{domain}"), "to": [unique_email("x")], "subject": "Receipt", "text": "x"})).await;
    let plain = wait_for(&format!("<{plain}@{domain}>"), 10).await;
    assert!(!plain.data.contains("List-Unsubscribe"));
    // A broadcast goes to one recipient, whose link it carries.
    let two = json!({"from": format!("news@{domain}"), "to": ["a@example.com", "b@example.com"],
        "subject": "News", "text": "x", "stream": "broadcast"});
    expect_problem(app.post_as(&owner.token, "/api/v1/emails", &two).await, 422).await;

    // GET shows a confirmation page and changes nothing (a link scanner unsubscribes nobody).
    let page = app.get(&path).await;
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().expect("ascii").starts_with("text/html"));
    assert!(page.text().await.expect("text").contains("method=\"post\""));
    let listed: Value =
        app.get_as(&owner.token, "/api/v1/email/suppressions").await.json().await.expect("json");
    assert_eq!(listed["items"], json!([]));
    // An altered token or another tenant's id in it: 404, nothing changes.
    let mut forged = path.clone();
    let last = forged.pop().expect("a character");
    forged.push(if last == 'A' { 'B' } else { 'A' });
    expect_problem(app.client.post(app.url(&forged)).send().await.expect("post"), 404).await;
    expect_problem(app.get("/u/not-a-token").await, 404).await;

    // POST (what mailbox providers send): suppressed as `unsubscribe`, once.
    let one_click = || {
        app.client
            .post(app.url(&path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
    };
    assert_eq!(one_click().await.expect("post").status(), 200);
    assert_eq!(one_click().await.expect("post").status(), 200, "again: nothing more");
    let listed: Value =
        app.get_as(&owner.token, "/api/v1/email/suppressions").await.json().await.expect("json");
    assert_eq!(listed["items"].as_array().expect("items").len(), 1);
    assert_eq!(listed["items"][0]["reason"], "unsubscribe");
    let message: Value =
        app.get_as(&owner.token, &format!("/api/v1/emails/{id}")).await.json().await.expect("json");
    assert_eq!(kinds(&message).iter().filter(|k| *k == "unsubscribed").count(), 1);
    let again = app.post_as(&owner.token, "/api/v1/emails", &body).await;
    assert_eq!(again.json::<Value>().await.expect("json")["status"], "suppressed");
    // Another tenant's list is untouched.
    let other = app.signup("Other").await;
    let theirs: Value =
        app.get_as(&other.token, "/api/v1/email/suppressions").await.json().await.expect("json");
    assert_eq!(theirs["items"], json!([]));
}

#[tokio::test]
async fn the_super_admin_sets_a_tenants_limits_and_passing_90_percent_warns_once() {
    let app = mailing_app(&[]).await;
    let owner = app.signup("Acme").await;
    let other = app.signup("Other").await;
    let root = app.superadmin().await;
    let path = format!("/api/v1/platform/tenants/{}/email-limits", owner.tenant_id);
    // Only the super-admin: a tenant's owner cannot raise its own limits.
    let mine = app
        .send(
            reqwest::Method::PUT,
            &path,
            Some(&owner.token),
            Some(&json!({"hourly_limit": 1000000})),
        )
        .await;
    assert!(matches!(mine.status().as_u16(), 403 | 404), "{}", mine.status());
    let set = app
        .send(
            reqwest::Method::PUT,
            &path,
            Some(&root.token),
            Some(&json!({"hourly_limit": 10, "daily_limit": null})),
        )
        .await;
    assert_eq!(set.status(), 200);
    let set: Value = set.json().await.expect("json");
    assert_eq!(
        (set["hourly_limit"].as_i64(), set["hourly_custom"].as_bool()),
        (Some(10), Some(true))
    );
    assert_eq!(
        (set["daily_limit"].as_i64(), set["daily_custom"].as_bool()),
        (Some(10_000), Some(false))
    );
    let bad = app
        .send(reqwest::Method::PUT, &path, Some(&root.token), Some(&json!({"hourly_limit": -1})))
        .await;
    expect_problem(bad, 422).await;
    let unknown = format!("/api/v1/platform/tenants/{}/email-limits", uuid::Uuid::now_v7());
    let unknown = app
        .send(reqwest::Method::PUT, &unknown, Some(&root.token), Some(&json!({"hourly_limit": 5})))
        .await;
    expect_problem(unknown, 404).await;

    let domain = verified_domain(&app, &owner.token).await;
    let body = |n: usize| {
        let to: Vec<String> = (0..n).map(|i| format!("r{i}@example.com")).collect();
        json!({"from": format!("hi@{domain}"), "to": to, "subject": "Hi", "text": "x"})
    };
    send(&app, &owner, &body(8)).await;
    let warnings =
        |events: Vec<Value>| events.iter().filter(|e| e["action"] == "email.quota_warning").count();
    assert_eq!(warnings(app.audit_events(&owner).await), 0, "8 of 10");
    send(&app, &owner, &body(1)).await;
    assert_eq!(warnings(app.audit_events(&owner).await), 1, "9 of 10: past 90 %");
    send(&app, &owner, &body(1)).await;
    assert_eq!(warnings(app.audit_events(&owner).await), 1, "once per window");
    let refused = app.post_as(&owner.token, "/api/v1/emails", &body(1)).await;
    assert_eq!(expect_problem(refused, 429).await["code"], "quota_exceeded");
    // The other tenant keeps the default.
    let theirs = verified_domain(&app, &other.token).await;
    let many: Vec<String> = (0..20).map(|i| format!("r{i}@example.com")).collect();
    let ok = app.post_as(&other.token, "/api/v1/emails",
        &json!({"from": format!("hi@{theirs}"), "to": many[..20].to_vec(), "subject": "Hi", "text": "x"})).await;
    assert_eq!(ok.status(), 202);
    assert!(app.platform_audit_actions().await.iter().any(|a| a == "platform.email_limits"));
}

#[tokio::test]
async fn a_dkim_rotation_keeps_the_old_key_signing_until_the_new_record_verifies() {
    let app = mailing_app(&[]).await;
    let owner = app.signup("Acme").await;
    let domain = verified_domain(&app, &owner.token).await;
    let domains: Value =
        app.get_as(&owner.token, "/api/v1/email/domains").await.json().await.expect("json");
    let id = domains["items"][0]["id"].as_str().expect("id").to_owned();
    let old = domains["items"][0]["dkim_selector"].as_str().expect("selector").to_owned();
    let rotated = app
        .post_as(&owner.token, &format!("/api/v1/email/domains/{id}/rotate-dkim"), &json!({}))
        .await;
    assert_eq!(rotated.status(), 200);
    let rotated: Value = rotated.json().await.expect("json");
    let new = rotated["next_dkim_selector"].as_str().expect("next").to_owned();
    assert_ne!(new, old);
    let records: Vec<&Value> = rotated["dns_records"]
        .as_array()
        .expect("records")
        .iter()
        .filter(|r| r["purpose"] == "dkim")
        .collect();
    assert_eq!(records.len(), 2, "both keys' records");
    let selector_of = |data: &str| {
        let data = data.replace("\r\n ", " ").replace("\r\n\t", " ");
        data.lines()
            .find(|l| l.starts_with("DKIM-Signature:"))
            .and_then(|l| l.split(';').find_map(|p| p.trim().strip_prefix("s=").map(str::to_owned)))
            .expect("a selector")
    };
    let mail = || json!({"from": format!("hi@{domain}"), "to": [unique_email("r")], "subject": "Hi", "text": "x"});
    // Before the new record is published the old key signs.
    let before = send(&app, &owner, &mail()).await;
    let before = wait_for(&format!("<{before}@{domain}>"), 10).await;
    assert_eq!(selector_of(&before.data), old);
    assert!(dkim_verifies(&before.data));
    let verify = format!("/api/v1/email/domains/{id}/verify");
    let still: Value =
        app.post_as(&owner.token, &verify, &json!({})).await.json().await.expect("json");
    assert_eq!(still["status"], "verified");
    let view: Value = app
        .get_as(&owner.token, &format!("/api/v1/email/domains/{id}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(view["dkim_selector"], old.as_str(), "not yet");
    // Published: verify promotes the new key, which signs from then on.
    let record = records
        .iter()
        .find(|r| r["name"].as_str().is_some_and(|n| n.starts_with(&new)))
        .expect("new record");
    publish(
        record["name"].as_str().expect("name"),
        "TXT",
        &[record["value"].as_str().expect("value")],
    );
    app.post_as(&owner.token, &verify, &json!({})).await;
    let view: Value = app
        .get_as(&owner.token, &format!("/api/v1/email/domains/{id}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        (view["dkim_selector"].as_str(), view["next_dkim_selector"].is_null()),
        (Some(new.as_str()), true)
    );
    let after = send(&app, &owner, &mail()).await;
    let after = wait_for(&format!("<{after}@{domain}>"), 10).await;
    assert_eq!(selector_of(&after.data), new);
    assert!(dkim_verifies(&after.data));
    // Another tenant cannot rotate it.
    let other = app.signup("Other").await;
    let theirs = app
        .post_as(&other.token, &format!("/api/v1/email/domains/{id}/rotate-dkim"), &json!({}))
        .await;
    expect_problem(theirs, 404).await;
}

#[tokio::test]
async fn content_retention_purges_bodies_and_keeps_the_record() {
    let app = mailing_app(&[("BULWARK_RETENTION_EMAIL_CONTENT", "1s")]).await;
    let owner = app.signup("Acme").await;
    let domain = verified_domain(&app, &owner.token).await;
    let id = send(
        &app,
        &owner,
        &json!({"from": format!("hi@{domain}"), "to": ["ada@example.com"],
        "subject": "Kept", "text": "Purged body"}),
    )
    .await;
    until_status(&app, &owner.token, &id, "sent").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    app.step_up(&owner).await;
    let report: Value = app
        .post_as(&owner.token, "/api/v1/privacy/purge", &json!({}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(report["email_bodies"], 1, "{report}");
    let message: Value =
        app.get_as(&owner.token, &format!("/api/v1/emails/{id}")).await.json().await.expect("json");
    assert_eq!(
        (message["subject"].as_str(), message["status"].as_str()),
        (Some("Kept"), Some("sent"))
    );
    let again: Value = app
        .post_as(&owner.token, "/api/v1/privacy/purge", &json!({}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(again["email_bodies"], 0, "once");
}
