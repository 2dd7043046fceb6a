//! Containment: addresses blocked by the platform super-admin, before anything else runs,
//! on every instance within a second.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{TestApp, expect_problem};

const BEHIND_PROXY: (&str, &str) = ("BULWARK_TRUSTED_PROXIES", "127.0.0.1/32");

/// A request as the proxy reports it for `client`.
async fn from(app: &TestApp, client: &str, path: &str) -> reqwest::Response {
    app.client.get(app.url(path)).header("x-forwarded-for", client).send().await.expect("request")
}

/// Waits (at most two seconds) until `client`'s requests to `app` get `status`; how long.
async fn until_status(app: &TestApp, client: &str, status: u16) -> Duration {
    let started = Instant::now();
    while from(app, client, "/healthz").await.status() != status {
        assert!(started.elapsed() < Duration::from_secs(2), "{client} never got {status}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    started.elapsed()
}

#[tokio::test]
async fn a_blocked_network_is_refused_first_on_every_instance_within_a_second() {
    let app = TestApp::spawn_with(&[BEHIND_PROXY]).await;
    let other = app.sibling(&[]).await;
    let root = app.superadmin().await;
    let owner = app.signup("Acme").await;

    let created = app
        .post_as(
            &root.token,
            "/api/v1/platform/blocked-ips",
            &json!({"cidr": "203.0.113.77/24", "reason": "credential stuffing from this range"}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.expect("json");
    assert_eq!(created["cidr"], "203.0.113.0/24", "host bits cleared");
    let id = created["id"].as_str().expect("id").to_owned();

    // At once where it was made; within a second on the other instance.
    assert_eq!(from(&app, "203.0.113.5", "/healthz").await.status(), 403);
    assert!(until_status(&other, "203.0.113.5", 403).await < Duration::from_secs(1));
    // First in the stack: before authentication (a valid token does not help) and routing.
    for target in [&app, &other] {
        let refused = target
            .client
            .get(target.url("/api/v1/me"))
            .header("x-forwarded-for", "203.0.113.200")
            .bearer_auth(&owner.token)
            .send()
            .await
            .expect("request");
        assert_eq!(expect_problem(refused, 403).await["code"], "blocked");
        let unknown = from(target, "203.0.113.9", "/no/such/route").await;
        assert_eq!(expect_problem(unknown, 403).await["code"], "blocked");
        // Its neighbours and everyone else are served.
        assert_eq!(from(target, "203.0.114.5", "/healthz").await.status(), 200);
    }
    let listed: Value =
        app.get_as(&root.token, "/api/v1/platform/blocked-ips").await.json().await.expect("json");
    assert_eq!(listed["items"][0]["reason"], "credential stuffing from this range");

    // Lifted: served again everywhere within a second.
    let lifted = app.delete_as(&root.token, &format!("/api/v1/platform/blocked-ips/{id}")).await;
    assert_eq!(lifted.status(), 204);
    assert_eq!(from(&app, "203.0.113.5", "/healthz").await.status(), 200);
    assert!(until_status(&other, "203.0.113.5", 200).await < Duration::from_secs(1));

    // Both changes are in the platform chain, with who made them.
    let events = app.platform_audit_actions().await;
    for action in ["platform.ip_block", "platform.ip_unblock"] {
        assert!(events.iter().any(|a| a == action), "{action} missing from {events:?}");
    }
}

#[tokio::test]
async fn a_block_ends_by_itself_when_it_expires() {
    let app = TestApp::spawn_with(&[BEHIND_PROXY]).await;
    let root = app.superadmin().await;
    let soon = bulwark::clock::Timestamp::now().plus(Duration::from_millis(700)).rfc3339();
    let created = app
        .post_as(
            &root.token,
            "/api/v1/platform/blocked-ips",
            &json!({"cidr": "198.51.100.7", "reason": "a short cool-down", "expires_at": soon}),
        )
        .await;
    assert_eq!(created.status(), 201);
    assert_eq!(from(&app, "198.51.100.7", "/healthz").await.status(), 403);
    until_status(&app, "198.51.100.7", 200).await;
}

#[tokio::test]
async fn only_a_stepped_up_super_admin_blocks_and_nonsense_changes_nothing() {
    let app = TestApp::spawn_with(&[BEHIND_PROXY]).await;
    let owner = app.signup("Acme").await;
    app.step_up(&owner).await;
    let body = json!({"cidr": "192.0.2.0/24", "reason": "probe"});
    // A tenant's owner, stepped up, is not the platform: 403 on every route.
    let denied = app.post_as(&owner.token, "/api/v1/platform/blocked-ips", &body).await;
    assert_eq!(expect_problem(denied, 403).await["code"], "forbidden");
    assert_eq!(app.get_as(&owner.token, "/api/v1/platform/blocked-ips").await.status(), 403);
    let someone = uuid::Uuid::now_v7();
    let path = format!("/api/v1/platform/blocked-ips/{someone}");
    assert_eq!(app.delete_as(&owner.token, &path).await.status(), 403);
    // Without a token: 401.
    assert_eq!(app.post_json("/api/v1/platform/blocked-ips", &body).await.status(), 401);

    let root = app.superadmin().await;
    for (bad, field) in [
        (json!({"cidr": "not an address", "reason": "x"}), "cidr"),
        (json!({"cidr": "0.0.0.0/0", "reason": "x"}), "cidr"),
        // The request itself comes from 127.0.0.1: a super-admin cannot lock themselves out.
        (json!({"cidr": "127.0.0.0/8", "reason": "x"}), "cidr"),
        (json!({"cidr": "192.0.2.0/24", "reason": "  "}), "reason"),
        (
            json!({"cidr": "192.0.2.0/24", "reason": "x", "expires_at": "2001-01-01T00:00:00Z"}),
            "expires_at",
        ),
    ] {
        let refused = app.post_as(&root.token, "/api/v1/platform/blocked-ips", &bad).await;
        let problem = expect_problem(refused, 422).await;
        assert!(problem.to_string().contains(field), "{bad}: {problem}");
    }
    let listed: Value =
        app.get_as(&root.token, "/api/v1/platform/blocked-ips").await.json().await.expect("json");
    assert_eq!(listed["items"], json!([]), "a refused block was stored");
    let missing = app.delete_as(&root.token, &path).await;
    assert_eq!(missing.status(), 404);
}

/// Waits (at most two seconds) until `token` is refused by `app`; how long it took.
async fn until_refused(app: &TestApp, token: &str) -> Duration {
    let started = Instant::now();
    while app.get_as(token, "/api/v1/me").await.status() != 401 {
        assert!(started.elapsed() < Duration::from_secs(2), "the session still works");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    started.elapsed()
}

#[tokio::test]
async fn sessions_are_revoked_by_user_by_tenant_or_all_on_every_instance_within_a_second() {
    let app = TestApp::spawn().await;
    let other = app.sibling(&[]).await;
    let root = app.superadmin().await;
    let a_owner = app.signup("Tenant A").await;
    let a_agent = app.add_member(&a_owner, "agent").await;
    let b_owner = app.signup("Tenant B").await;
    // Every session is warm on both instances first: their caches must let go.
    for who in [&a_owner, &a_agent, &b_owner] {
        assert_eq!(app.get_as(&who.token, "/api/v1/me").await.status(), 200);
        assert_eq!(other.get_as(&who.token, "/api/v1/me").await.status(), 200);
    }
    let revoke = |body: Value| {
        let (app, token) = (&app, root.token.clone());
        async move {
            let response = app.post_as(&token, "/api/v1/platform/sessions/revoke", &body).await;
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.expect("json")["revoked"].as_u64().expect("count")
        }
    };

    // One user: their session only.
    assert_eq!(revoke(json!({"user_id": a_agent.user_id})).await, 1);
    assert_eq!(app.get_as(&a_agent.token, "/api/v1/me").await.status(), 401, "at once here");
    assert!(until_refused(&other, &a_agent.token).await < Duration::from_secs(1));
    assert_eq!(other.get_as(&a_owner.token, "/api/v1/me").await.status(), 200);

    // One tenant: all of A, none of B; audited in A's chain as well as the platform's.
    assert_eq!(revoke(json!({"tenant_id": a_owner.tenant_id})).await, 1);
    assert!(until_refused(&other, &a_owner.token).await < Duration::from_secs(1));
    assert_eq!(other.get_as(&b_owner.token, "/api/v1/me").await.status(), 200);
    let (a_again, _) = app.login_ok(&a_owner.email, crate::support::PASSWORD).await;
    let events = app.get_as(&a_again, "/api/v1/audit-events?limit=200").await;
    let events: Value = events.json().await.expect("json");
    let in_a = events["items"]
        .as_array()
        .expect("items")
        .iter()
        .any(|e| e["action"] == "platform.sessions_revoke");
    assert!(in_a, "the tenant's own chain shows the revocation");

    // Everyone but the caller.
    let revoked = revoke(json!({})).await;
    assert!(revoked >= 2, "{revoked}");
    assert!(until_refused(&other, &b_owner.token).await < Duration::from_secs(1));
    assert_eq!(app.get_as(&a_again, "/api/v1/me").await.status(), 401);
    assert_eq!(other.get_as(&root.token, "/api/v1/me").await.status(), 200, "the caller stays");
    let platform = app.platform_audit_actions().await;
    assert_eq!(platform.iter().filter(|a| *a == "platform.sessions_revoke").count(), 3);

    // Not the platform: 403, and nothing revoked.
    let (b_again, _) = app.login_ok(&b_owner.email, crate::support::PASSWORD).await;
    app.step_up(&crate::support::Account { token: b_again.clone(), ..b_owner.clone() }).await;
    let denied = app.post_as(&b_again, "/api/v1/platform/sessions/revoke", &json!({})).await;
    assert_eq!(expect_problem(denied, 403).await["code"], "forbidden");
    assert_eq!(other.get_as(&root.token, "/api/v1/me").await.status(), 200);
    let malformed = app
        .post_as(&root.token, "/api/v1/platform/sessions/revoke", &json!({"user_id": "x"}))
        .await;
    expect_problem(malformed, 422).await;
}

#[tokio::test]
async fn a_tenants_api_keys_are_revoked_on_every_instance_within_a_second() {
    let app = TestApp::spawn().await;
    let other = app.sibling(&[]).await;
    let root = app.superadmin().await;
    let a = app.signup("Tenant A").await;
    let b = app.signup("Tenant B").await;
    let (_, a_key) = app.api_key(&a, &["contacts:read"]).await;
    let (_, b_key) = app.api_key(&b, &["contacts:read"]).await;
    // Every key is warm on both instances: their caches must let go.
    for (instance, key) in [(&app, &a_key), (&app, &b_key), (&other, &a_key), (&other, &b_key)] {
        assert_eq!(instance.get_as(key, "/api/v1/contacts").await.status(), 200, "warm");
    }
    let body = json!({"tenant_id": a.tenant_id});
    let response = app.post_as(&root.token, "/api/v1/platform/api-keys/revoke", &body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.expect("json")["revoked"], 1);
    assert_eq!(app.get_as(&a_key, "/api/v1/contacts").await.status(), 401, "at once here");
    let started = Instant::now();
    while other.get_as(&a_key, "/api/v1/contacts").await.status() != 401 {
        assert!(started.elapsed() < Duration::from_secs(1), "the key still works elsewhere");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(other.get_as(&b_key, "/api/v1/contacts").await.status(), 200, "B's key");
    let actions = app.platform_audit_actions().await;
    assert!(actions.iter().any(|a| a == "platform.api_keys_revoke"), "{actions:?}");
    let (a_token, _) = app.login_ok(&a.email, crate::support::PASSWORD).await;
    let events: Value =
        app.get_as(&a_token, "/api/v1/audit-events?limit=200").await.json().await.expect("json");
    let items = events["items"].as_array().expect("items");
    assert!(items.iter().any(|e| e["action"] == "platform.api_keys_revoke"), "A's chain");

    // Not the platform: 403; a body without the tenant: 422.
    let denied = app.post_as(&b.token, "/api/v1/platform/api-keys/revoke", &body).await;
    assert_eq!(expect_problem(denied, 403).await["code"], "forbidden");
    let missing = app.post_as(&root.token, "/api/v1/platform/api-keys/revoke", &json!({})).await;
    expect_problem(missing, 422).await;
    assert_eq!(other.get_as(&b_key, "/api/v1/contacts").await.status(), 200);
}

/// Waits (at most two seconds) until `check` holds; how long it took.
async fn until<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) -> Duration {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < Duration::from_secs(2), "never: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    started.elapsed()
}

async fn readyz_disabled(app: &TestApp) -> Vec<String> {
    let body: Value = app.get("/readyz").await.json().await.expect("json");
    serde_json::from_value(body["features_disabled"].clone()).expect("a list")
}

#[tokio::test]
async fn a_switched_off_feature_answers_503_on_every_instance_within_a_second() {
    let app = TestApp::spawn().await;
    let other = app.sibling(&[]).await;
    let root = app.superadmin().await;
    let owner = app.signup("Acme").await;
    let body = json!({"first_name": "Ada"});
    let contact: Value =
        app.post_as(&owner.token, "/api/v1/contacts", &body).await.json().await.expect("json");
    let documents = format!("/api/v1/documents?contact_id={}", contact["id"].as_str().expect("id"));
    let documents = documents.as_str();
    assert!(readyz_disabled(&other).await.is_empty(), "everything starts on");
    assert_eq!(other.get_as(&owner.token, documents).await.status(), 200);

    let off = json!({"documents": false, "signup": false});
    let changed = app.patch_as(&root.token, "/api/v1/platform/features", &off).await;
    assert_eq!(changed.status(), 200);
    let state: Value = changed.json().await.expect("json");
    assert_eq!(state["documents"], false);
    assert_eq!(state["signup"], false);
    assert_eq!(state["exports"], true, "a feature not named stays as it was");

    // At once here; within a second on the other instance, with Retry-After.
    let refused = app.get_as(&owner.token, documents).await;
    assert_eq!(refused.headers()["retry-after"], "60");
    assert_eq!(expect_problem(refused, 503).await["code"], "feature_disabled");
    let took = until("documents off on the other instance", || async {
        other.get_as(&owner.token, documents).await.status() == 503
    })
    .await;
    assert!(took < Duration::from_secs(1), "{took:?}");
    // Before authentication: an anonymous signup is refused too, without its code running.
    let signup = json!({"tenant_name": "X", "email": crate::support::unique_email("x"),
        "password": crate::support::PASSWORD, "display_name": "X"});
    let refused = other.post_json("/api/v1/auth/signup", &signup).await;
    assert_eq!(expect_problem(refused, 503).await["code"], "feature_disabled");
    assert_eq!(readyz_disabled(&other).await, ["signup", "documents"]);
    assert_eq!(other.get("/readyz").await.status(), 200, "a switch is no outage");
    // Everything else is served.
    assert_eq!(other.get_as(&owner.token, "/api/v1/contacts").await.status(), 200);
    let listed: Value =
        other.get_as(&root.token, "/api/v1/platform/features").await.json().await.expect("json");
    assert_eq!(listed["documents"], false);

    // Back on: served again everywhere within a second.
    let on = json!({"documents": true});
    assert_eq!(app.patch_as(&root.token, "/api/v1/platform/features", &on).await.status(), 200);
    let took = until("documents on again", || async {
        other.get_as(&owner.token, documents).await.status() == 200
    })
    .await;
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert_eq!(readyz_disabled(&other).await, ["signup"]);
    let actions = app.platform_audit_actions().await;
    assert_eq!(actions.iter().filter(|a| *a == "platform.features_change").count(), 2);

    // Not the platform: 403 for both routes; nonsense: 422; neither changes anything.
    app.step_up(&owner).await;
    let denied = app.patch_as(&owner.token, "/api/v1/platform/features", &off).await;
    assert_eq!(expect_problem(denied, 403).await["code"], "forbidden");
    assert_eq!(app.get_as(&owner.token, "/api/v1/platform/features").await.status(), 403);
    for bad in [json!({}), json!({"teleport": false}), json!({"documents": "no"})] {
        let refused = app.patch_as(&root.token, "/api/v1/platform/features", &bad).await;
        expect_problem(refused, 422).await;
    }
    assert_eq!(readyz_disabled(&app).await, ["signup"]);
}

#[tokio::test]
async fn break_glass_is_a_time_boxed_audited_grant_and_nothing_without_one() {
    // With a relay and a platform sender: the tenant's owners are mailed about each grant.
    let from = ("BULWARK_EMAIL_FROM", "Bulwark <security@platform.bulwark.test>");
    let app = crate::support::mail::mailing_app(&[from]).await;
    let root = app.superadmin().await;
    let a = app.signup("Tenant A").await;
    let b = app.signup("Tenant B").await;
    let body = json!({"first_name": "Ada", "email": crate::support::unique_email("ada")});
    let contact: Value =
        app.post_as(&a.token, "/api/v1/contacts", &body).await.json().await.expect("json");
    let contact_path = format!("/api/v1/contacts/{}", contact["id"].as_str().expect("id"));
    let as_root_in = |tenant: &str, method: reqwest::Method, path: &str| {
        let request = app.client.request(method, app.url(path)).bearer_auth(&root.token);
        request.header("x-bulwark-tenant", tenant.to_owned())
    };

    // No grant: the super-admin is outside every tenant (403 without the header, 404 with).
    assert_eq!(app.get_as(&root.token, "/api/v1/contacts").await.status(), 403);
    let refused = as_root_in(&a.tenant_id, reqwest::Method::GET, &contact_path).send().await;
    assert_eq!(expect_problem(refused.expect("request"), 404).await["code"], "not_found");
    let refused = as_root_in("not-a-tenant", reqwest::Method::GET, "/api/v1/contacts").send().await;
    assert_eq!(refused.expect("request").status(), 404);

    // A read-only grant on A: A's data reads, writes are refused, B stays closed.
    let grant_path = format!("/api/v1/platform/tenants/{}/access", a.tenant_id);
    let grant = json!({"reason": "ticket 4711: customer reports missing contacts", "minutes": 15});
    let granted = app.post_as(&root.token, &grant_path, &grant).await;
    assert_eq!(granted.status(), 201);
    let granted: Value = granted.json().await.expect("json");
    assert_eq!(granted["write"], false);
    // A's owner is told, by mail, who may read what and why; B's owner is not.
    let started = Instant::now();
    let notice = loop {
        let mut mail = crate::support::mail::received_by(&a.email).into_iter();
        if let Some(notice) = mail.find(|m| m.data.contains("ticket 4711")) {
            break notice;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no notice reached A's owner");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(notice.data.contains("ticket 4711"), "{}", notice.data);
    assert!(notice.data.contains("From: Bulwark <security@platform.bulwark.test>"));
    let to_b = crate::support::mail::received_by(&b.email);
    assert!(!to_b.iter().any(|m| m.data.contains("ticket 4711")), "B's owner is not told");
    let read = as_root_in(&a.tenant_id, reqwest::Method::GET, &contact_path).send().await;
    let read: Value = read.expect("request").json().await.expect("json");
    assert_eq!(read["first_name"], "Ada");
    let write = as_root_in(&a.tenant_id, reqwest::Method::POST, "/api/v1/contacts")
        .json(&json!({"first_name": "Mallory"}))
        .send()
        .await;
    assert_eq!(expect_problem(write.expect("request"), 403).await["code"], "forbidden");
    let other = as_root_in(&b.tenant_id, reqwest::Method::GET, "/api/v1/contacts").send().await;
    assert_eq!(other.expect("request").status(), 404, "a grant on A opens nothing of B");

    // A write grant: the change is A's, by the super-admin, in A's own audit log.
    let grant = json!({"reason": "ticket 4711: restore the contact", "minutes": 5, "write": true});
    assert_eq!(app.post_as(&root.token, &grant_path, &grant).await.status(), 201);
    let write = as_root_in(&a.tenant_id, reqwest::Method::POST, "/api/v1/contacts")
        .json(&json!({"first_name": "Restored"}))
        .send()
        .await;
    assert_eq!(write.expect("request").status(), 201);
    // Never who gets in: an invitation would outlive the grant.
    let invite = as_root_in(&a.tenant_id, reqwest::Method::POST, "/api/v1/invitations")
        .json(&json!({"email": crate::support::unique_email("mole"), "role": "admin"}))
        .send()
        .await;
    assert_eq!(expect_problem(invite.expect("request"), 403).await["code"], "forbidden");
    let events = app.audit_events(&a).await;
    let grants = events.iter().filter(|e| e["action"] == "platform.access_grant").count();
    assert_eq!(grants, 2, "both grants show in the tenant's log");
    let me: Value = app.get_as(&root.token, "/api/v1/me").await.json().await.expect("json");
    let created =
        events.iter().find(|e| e["action"] == "contact.create" && e["actor_id"] == me["user_id"]);
    assert!(created.is_some(), "the super-admin's write is in A's log: {events:?}");
    let platform = app.platform_audit_actions().await;
    assert_eq!(platform.iter().filter(|a| *a == "platform.access_grant").count(), 2);

    // Ended early by the super-admin: 404 at once; ending again finds nothing; a tenant's
    // owner cannot end (or see) grants.
    let end = app.delete_as(&b.token, &grant_path).await;
    assert_eq!(expect_problem(end, 403).await["code"], "forbidden");
    assert_eq!(app.delete_as(&root.token, &grant_path).await.status(), 204);
    let after = as_root_in(&a.tenant_id, reqwest::Method::GET, &contact_path).send().await;
    assert_eq!(after.expect("request").status(), 404, "ended early");
    assert_eq!(app.delete_as(&root.token, &grant_path).await.status(), 404);
    let platform = app.platform_audit_actions().await;
    assert!(platform.iter().any(|a| a == "platform.access_end"), "{platform:?}");
    let grant = json!({"reason": "ticket 4711: one more look", "minutes": 5});
    assert_eq!(app.post_as(&root.token, &grant_path, &grant).await.status(), 201);

    // It ends by itself: once expired, 404 again.
    let ended = crate::support::raw_execute(
        &app.db,
        &format!(
            "UPDATE access_grants SET expires_at = created_at + 1 WHERE tenant_id = {}",
            crate::support::id_literal(&a.tenant_id)
        ),
    )
    .await;
    assert_eq!(ended, 3);
    let after = as_root_in(&a.tenant_id, reqwest::Method::GET, &contact_path).send().await;
    assert_eq!(after.expect("request").status(), 404);

    // Limits, and only the platform grants.
    for bad in [
        json!({"reason": "x", "minutes": 61}),
        json!({"reason": "x", "minutes": 0}),
        json!({"reason": " ", "minutes": 5}),
        json!({"minutes": 5}),
    ] {
        expect_problem(app.post_as(&root.token, &grant_path, &bad).await, 422).await;
    }
    let missing = format!("/api/v1/platform/tenants/{}/access", uuid::Uuid::now_v7());
    let body = json!({"reason": "x", "minutes": 5});
    assert_eq!(app.post_as(&root.token, &missing, &body).await.status(), 404);
    app.step_up(&b).await;
    let denied = app.post_as(&b.token, &grant_path, &body).await;
    assert_eq!(expect_problem(denied, 403).await["code"], "forbidden");
    // A tenant user naming another tenant gets their own tenant's data, never A's.
    let listed = app
        .client
        .get(app.url("/api/v1/contacts"))
        .bearer_auth(&b.token)
        .header("x-bulwark-tenant", a.tenant_id.clone())
        .send()
        .await
        .expect("request");
    let listed: Value = listed.json().await.expect("json");
    assert_eq!(listed["items"], json!([]), "B sees B's (empty) contacts: {listed}");
    let platform = app.platform_audit_actions().await;
    assert_eq!(platform.iter().filter(|a| *a == "platform.access_grant").count(), 3);
}

#[tokio::test]
async fn the_cli_revokes_sessions_and_api_keys_on_a_running_instance() {
    let app = TestApp::spawn().await;
    let a = app.signup("Tenant A").await;
    let b = app.signup("Tenant B").await;
    let (_, a_key) = app.api_key(&a, &["contacts:read"]).await;
    for (who, path) in
        [(&a.token, "/api/v1/me"), (&b.token, "/api/v1/me"), (&a_key, "/api/v1/contacts")]
    {
        assert_eq!(app.get_as(who, path).await.status(), 200, "warm");
    }

    let output = app.cli(&["api-keys", "revoke", "--tenant", &a.tenant_id]).await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("1 API key(s) revoked"));
    until("A's key refused", || async {
        app.get_as(&a_key, "/api/v1/contacts").await.status() == 401
    })
    .await;

    let output = app.cli(&["sessions", "revoke", "--tenant", &a.tenant_id]).await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let took = until("A's session refused", || async {
        app.get_as(&a.token, "/api/v1/me").await.status() == 401
    })
    .await;
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert_eq!(app.get_as(&b.token, "/api/v1/me").await.status(), 200, "B untouched");

    // Both are in A's chain, by the command line.
    let (a_again, _) = app.login_ok(&a.email, crate::support::PASSWORD).await;
    let events = app.get_as(&a_again, "/api/v1/audit-events?limit=200").await;
    let events: Value = events.json().await.expect("json");
    for action in ["platform.api_keys_revoke", "platform.sessions_revoke"] {
        let event =
            events["items"].as_array().expect("items").iter().find(|e| e["action"] == action);
        let event = event.unwrap_or_else(|| panic!("{action} missing from A's chain"));
        assert_eq!(event["actor_type"], "system", "{event}");
        assert_eq!(event["actor_id"], "cli", "{event}");
    }

    // Exactly one of --all, --tenant, --user; a bad id changes nothing.
    for args in [
        &["sessions", "revoke"][..],
        &["sessions", "revoke", "--all", "--tenant", &b.tenant_id],
        &["sessions", "revoke", "--user", "nobody"],
    ] {
        let output = app.cli(args).await;
        assert!(!output.status.success(), "{args:?} was accepted");
    }
    assert_eq!(app.get_as(&b.token, "/api/v1/me").await.status(), 200);

    let output = app.cli(&["sessions", "revoke", "--all"]).await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    for token in [&b.token, &a_again] {
        let took = until("everyone refused", || async {
            app.get_as(token, "/api/v1/me").await.status() == 401
        })
        .await;
        assert!(took < Duration::from_secs(1), "{took:?}");
    }
}
