//! Outbound webhook subscriptions: the signing secret shown once and sealed with the URL, the
//! SSRF guard at the door, admins only, and nothing of one tenant's visible to another.

use serde_json::{Value, json};

use crate::support::{TestApp, database_bytes, expect_problem};

#[tokio::test]
async fn a_subscription_shows_its_secret_once_and_keeps_it_sealed_with_its_url() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let url = "https://hooks.example.com/in/s3cr3t-path-token";
    let body = json!({"url": url, "events": ["contact.created", "email.sent", "contact.created"]});
    let created = app.post_as(&owner.token, "/api/v1/webhooks", &body).await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.expect("json");
    let secret = created["secret"].as_str().expect("secret").to_owned();
    let key = bulwark::crypto::standard_webhooks::parse_secret(&secret).expect("whsec_");
    assert!(key.expose().len() >= 24, "at least 24 random bytes");
    assert_eq!(created["events"], json!(["contact.created", "email.sent"]));
    assert_eq!(created["status"], "active");
    let id = created["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/webhooks/{id}");
    // Never again: not in the list, not in the one.
    let one = app.get_as(&owner.token, &path).await.text().await.expect("text");
    let all = app.get_as(&owner.token, "/api/v1/webhooks").await.text().await.expect("text");
    for text in [&one, &all] {
        assert!(!text.contains(&secret) && !text.contains("secret"), "{text}");
        assert!(text.contains(url), "{text}");
    }
    // Sealed at rest, the URL too (receivers often put a secret in it).
    let bytes = database_bytes(&app.db).await;
    let stored = String::from_utf8_lossy(&bytes);
    assert!(!stored.contains(&secret[6..]) && !stored.contains("s3cr3t-path-token"));
    // Changed, disabled, re-enabled, then removed; audited.
    let changed = app
        .patch_as(
            &owner.token,
            &path,
            &json!({"events": ["deal.stage_changed"], "status": "disabled"}),
        )
        .await;
    assert_eq!(changed.status(), 200);
    let changed: Value = changed.json().await.expect("json");
    assert_eq!(
        (changed["events"].clone(), changed["status"].clone()),
        (json!(["deal.stage_changed"]), json!("disabled"))
    );
    expect_problem(app.patch_as(&owner.token, &path, &json!({"events": []})).await, 422).await;
    // A tenant key rotation re-seals it; it reads back whole.
    let rotated = app.cli(&["keys", "rotate-tenant", "--tenant", &owner.tenant_id]).await;
    assert!(rotated.status.success(), "{}", String::from_utf8_lossy(&rotated.stderr));
    let after: Value = app.get_as(&owner.token, &path).await.json().await.expect("json");
    assert_eq!(after["url"], url);
    assert_eq!(app.delete_as(&owner.token, &path).await.status(), 204);
    expect_problem(app.get_as(&owner.token, &path).await, 404).await;
    let actions = app.audit_actions(&owner).await;
    for action in ["webhook.create", "webhook.update", "webhook.delete"] {
        assert!(actions.iter().any(|a| a == action), "{action}");
    }
    // Members below admin cannot manage subscriptions.
    let agent = app.add_member(&owner, "agent").await;
    expect_problem(app.post_as(&agent.token, "/api/v1/webhooks", &body).await, 403).await;
}

#[tokio::test]
async fn a_webhook_cannot_be_aimed_inward_unless_the_operator_allows_the_range() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    for inward in [
        "https://127.0.0.1/hook",
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://localhost:8443/hook",
        "https://user:password@hooks.example.com/hook",
        "ftp://hooks.example.com/hook",
    ] {
        let body = json!({"url": inward, "events": ["contact.created"]});
        let refused = app.post_as(&owner.token, "/api/v1/webhooks", &body).await;
        let problem = expect_problem(refused, 422).await;
        assert_eq!(problem["errors"][0]["field"], "url", "{inward}: {problem}");
    }
    let listed: Value =
        app.get_as(&owner.token, "/api/v1/webhooks").await.json().await.expect("json");
    assert_eq!(listed["items"], json!([]), "nothing was created");
    // A changed URL is checked the same way.
    let good = json!({"url": "https://hooks.example.com/in", "events": ["contact.created"]});
    let created: Value =
        app.post_as(&owner.token, "/api/v1/webhooks", &good).await.json().await.expect("json");
    let path = format!("/api/v1/webhooks/{}", created["id"].as_str().expect("id"));
    expect_problem(
        app.patch_as(&owner.token, &path, &json!({"url": "https://10.1.2.3/x"})).await,
        422,
    )
    .await;

    // The operator's allowlist is the one exception, and only for its ranges.
    let allowed = TestApp::spawn_with(&[("BULWARK_WEBHOOK_ALLOW_PRIVATE", "127.0.0.0/8")]).await;
    let owner = allowed.signup("Acme").await;
    let local = json!({"url": "https://127.0.0.1:8443/hook", "events": ["contact.created"]});
    assert_eq!(allowed.post_as(&owner.token, "/api/v1/webhooks", &local).await.status(), 201);
    let other = json!({"url": "https://10.0.0.1/hook", "events": ["contact.created"]});
    expect_problem(allowed.post_as(&owner.token, "/api/v1/webhooks", &other).await, 422).await;
}

/// SQLite's writer keeps a tenant's webhook subscriptions and current data key between
/// writes (`store::kept`). Whatever changes them reaches the very next write: a subscription
/// made through another instance (another connection, as another process would), one turned
/// off through this instance, and a key rotation run by the CLI beside the server (which
/// destroys the old key: a contact sealed under it would be lost).
#[tokio::test]
async fn what_the_writer_keeps_follows_changes_made_anywhere() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let other = app.sibling(&[]).await;
    let create = async |n: u32| {
        let body = json!({"first_name": "Ada", "email": format!("ada{n}@example.com")});
        assert_eq!(app.post_as(&owner.token, "/api/v1/contacts", &body).await.status(), 201);
    };
    // Kept: no subscriptions, data key 1.
    create(0).await;
    let body = json!({"url": "https://hooks.example.com/in", "events": ["contact.created"]});
    let made = other.post_as(&owner.token, "/api/v1/webhooks", &body).await;
    assert_eq!(made.status(), 201);
    let made: Value = made.json().await.expect("json");
    let path = format!("/api/v1/webhooks/{}", made["id"].as_str().expect("id"));
    let queued = async || {
        let page: Value = app
            .get_as(&owner.token, &format!("{path}/deliveries"))
            .await
            .json()
            .await
            .expect("json");
        page["items"].as_array().expect("items").len()
    };
    create(1).await;
    assert_eq!(queued().await, 1, "the other instance's subscription was not heard");
    let off = app.patch_as(&owner.token, &path, &json!({"status": "disabled"})).await;
    assert_eq!(off.status(), 200);
    create(2).await;
    assert_eq!(queued().await, 1, "a disabled subscription got a delivery");
    let on = other.patch_as(&owner.token, &path, &json!({"status": "active"})).await;
    assert_eq!(on.status(), 200);
    create(3).await;
    assert_eq!(queued().await, 2, "the re-enabled subscription was not heard");
    let rotated = app.cli(&["keys", "rotate-tenant", "--tenant", &owner.tenant_id]).await;
    assert!(rotated.status.success(), "{}", String::from_utf8_lossy(&rotated.stderr));
    create(4).await;
    let newest = crate::support::raw_scalar_text(
        &app.db,
        "SELECT key_version || '' FROM contacts WHERE tenant_id = \
         (SELECT tenant_id FROM users WHERE email = $1) ORDER BY created_at DESC, id LIMIT 1",
        &owner.email,
    )
    .await;
    assert_eq!(newest, "2", "the contact after the rotation was sealed under the old key");
}
