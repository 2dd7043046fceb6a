//! Authorization: the role table on every route, API-key scopes, tenant isolation on every
//! route that takes an id, role rules, invitations, deactivation and the super-admin.

use std::collections::BTreeMap;

use bulwark::http::{Access, endpoints};
use bulwark::tenancy::{Permission, Role};
use serde_json::{Value, json};

use crate::support::mail::unique_domain;
use crate::support::{Account, PASSWORD, TestApp, expect_problem, unique_email};

fn concrete(path: &str, id: &str) -> String {
    path.replace("{id}", id)
}

async fn call(app: &TestApp, token: &str, method: &str, path: &str) -> reqwest::Response {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let body =
        (method == reqwest::Method::POST || method == reqwest::Method::PATCH).then(|| json!({}));
    app.send(method, path, Some(token), body.as_ref()).await
}

#[tokio::test]
async fn readonly_users_get_403_on_every_write_route() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let readonly = app.add_member(&owner, "readonly").await;
    let mut checked = 0;
    for endpoint in endpoints() {
        let policy = &endpoint.policy;
        let denied = match policy.access {
            Access::Permission(p) => !Role::Readonly.may(p),
            Access::SuperAdmin => true,
            Access::Public | Access::Authenticated | Access::Session => false,
        };
        if !denied {
            continue;
        }
        let path = concrete(&policy.path, &uuid::Uuid::now_v7().to_string());
        let response = call(&app, &readonly.token, policy.method.as_str(), &path).await;
        // The permission refuses, not a missing step-up.
        let problem = expect_problem(response, 403).await;
        assert_eq!(problem["code"], "forbidden", "{} {}", policy.method, policy.path);
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} write routes checked");
}

#[tokio::test]
async fn an_api_key_scoped_contacts_read_can_do_nothing_else() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let (_, key) = app.api_key(&owner, &["contacts:read"]).await;
    let me: Value = app.get_as(&key, "/api/v1/me").await.json().await.expect("json");
    assert_eq!(me["user_id"], owner.user_id.as_str());
    assert!(me["api_key_id"].is_string());
    for endpoint in endpoints() {
        let policy = &endpoint.policy;
        let out_of_scope = match policy.access {
            Access::Permission(p) => p != Permission::ContactsRead,
            // The account's own sessions, password and factors: never through a key.
            Access::SuperAdmin | Access::Session => true,
            Access::Public | Access::Authenticated => false,
        };
        if out_of_scope {
            let path = concrete(&policy.path, &uuid::Uuid::now_v7().to_string());
            let response = call(&app, &key, policy.method.as_str(), &path).await;
            let problem = expect_problem(response, 403).await;
            assert_eq!(problem["code"], "forbidden", "{} {}", policy.method, policy.path);
        }
    }
    let logout = app.post_as(&key, "/api/v1/auth/logout", &json!({})).await;
    assert_eq!(logout.status(), 403, "a key has no session to end");
}

#[tokio::test]
async fn api_keys_are_shown_once_scoped_within_the_creator_and_revocable() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let manager = app.add_member(&owner, "manager").await;
    app.step_up(&manager).await;

    // Beyond the creator's role, or a permission no key may hold: refused.
    for scopes in
        [json!(["contacts:read_sensitive"]), json!(["api_keys:manage"]), json!(["users:manage"])]
    {
        let response = app
            .post_as(&manager.token, "/api/v1/api-keys", &json!({"name": "k", "scopes": scopes}))
            .await;
        assert_eq!(response.status(), 403, "{scopes}");
    }
    let unknown = app
        .post_as(
            &manager.token,
            "/api/v1/api-keys",
            &json!({"name": "k", "scopes": ["contacts:*"]}),
        )
        .await;
    expect_problem(unknown, 422).await;

    let (id, key) = app.api_key(&manager, &["contacts:read", "users:read"]).await;
    assert!(key.starts_with("bwk_"));
    let listed = app.get_as(&owner.token, "/api/v1/api-keys").await.text().await.expect("text");
    assert!(listed.contains(&id) && !listed.contains(&key), "the list never shows the key");
    assert_eq!(app.get_as(&key, "/api/v1/users").await.status(), 200);

    // A tampered key with a valid prefix fails.
    let mut tampered = key.clone();
    tampered.pop();
    tampered.push(if key.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(app.get_as(&tampered, "/api/v1/me").await.status(), 401);

    assert_eq!(app.delete_as(&owner.token, &format!("/api/v1/api-keys/{id}")).await.status(), 204);
    assert_eq!(app.get_as(&key, "/api/v1/me").await.status(), 401);
}

#[tokio::test]
async fn expired_keys_stop_working() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    app.step_up(&owner).await;
    let soon =
        bulwark::clock::Timestamp::now().plus(std::time::Duration::from_millis(1500)).rfc3339();
    let response = app
        .post_as(
            &owner.token,
            "/api/v1/api-keys",
            &json!({"name": "k", "scopes": ["users:read"], "expires_at": soon}),
        )
        .await;
    let body: Value = response.json().await.expect("json");
    let key = body["key"].as_str().expect("key").to_owned();
    assert_eq!(app.get_as(&key, "/api/v1/users").await.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    assert_eq!(app.get_as(&key, "/api/v1/users").await.status(), 401);
    let past = app
        .post_as(
            &owner.token,
            "/api/v1/api-keys",
            &json!({"name": "k", "scopes": ["users:read"], "expires_at": "2020-01-01T00:00:00Z"}),
        )
        .await;
    expect_problem(past, 422).await;
}

/// The ids of tenant A that tenant B will try, one per route that takes an id, with a body
/// that would be valid for a PATCH, so only the tenant boundary can refuse it.
async fn tenant_a_ids(app: &TestApp, a: &Account) -> BTreeMap<&'static str, (String, Value)> {
    let (key_id, _) = app.api_key(a, &["users:read"]).await;
    let created = |path: &'static str, body: Value| {
        let token = a.token.clone();
        async move {
            let response = app.post_as(&token, path, &body).await;
            assert_eq!(response.status(), 201, "create {path}");
            response.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_owned()
        }
    };
    let invitation =
        created("/api/v1/invitations", json!({"email": unique_email("inv"), "role": "agent"}))
            .await;
    let sessions: Value =
        app.get_as(&a.token, "/api/v1/auth/sessions").await.json().await.expect("json");
    let company = created("/api/v1/companies", json!({"name": "A Corp"})).await;
    let contact = created(
        "/api/v1/contacts",
        json!({"first_name": "Ada", "email": unique_email("a"), "company_id": company}),
    )
    .await;
    let lead = created("/api/v1/leads", json!({"title": "Lead A", "contact_id": contact})).await;
    let pipeline = created(
        "/api/v1/pipelines",
        json!({"name": "Sales", "stages": [{"name": "New"}, {"name": "Won", "kind": "won"}]}),
    )
    .await;
    let deal = created(
        "/api/v1/deals",
        json!({"title": "Deal A", "pipeline_id": pipeline, "currency": "EUR", "amount_minor": 100}),
    )
    .await;
    let note =
        created("/api/v1/notes", json!({"body": "private note", "contact_id": contact})).await;
    let activity = created(
        "/api/v1/activities",
        json!({"kind": "call", "subject": "Call A", "occurred_at": "2026-01-01T10:00:00Z"}),
    )
    .await;
    let task = created("/api/v1/tasks", json!({"title": "Task A"})).await;
    let passkey = crate::support::passkey::Passkey::new().register(app, a).await;
    let document = {
        let response = app
            .upload_as(&a.token, &[("contact_id", &contact)], "a.txt", b"private".to_vec())
            .await;
        assert_eq!(response.status(), 201, "upload a document");
        response.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_owned()
    };
    let domain = created("/api/v1/email/domains", json!({"domain": unique_domain("a")})).await;
    let sending = crate::support::mail::verified_domain(app, &a.token).await;
    let suppression = created(
        "/api/v1/email/suppressions",
        json!({"email": unique_email("gone"), "reason": "manual"}),
    )
    .await;
    let message = {
        let body = json!({"from": format!("a@{sending}"), "to": ["b@example.com"],
            "subject": "A's", "text": "private"});
        let response = app.post_as(&a.token, "/api/v1/emails", &body).await;
        assert_eq!(response.status(), 202, "send");
        response.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_owned()
    };
    let template = created(
        "/api/v1/email/templates",
        json!({"name": "A's", "subject": "Hi {{ name }}", "text": "private"}),
    )
    .await;
    let webhook = created(
        "/api/v1/webhooks",
        json!({"url": "https://hooks.example.com/a", "events": ["contact.created"]}),
    )
    .await;
    let none = json!({});
    BTreeMap::from([
        ("/api/v1/users/{id}", (a.user_id.clone(), json!({"role": "readonly"}))),
        ("/api/v1/users/{id}/factors", (a.user_id.clone(), none.clone())),
        ("/api/v1/api-keys/{id}", (key_id, none.clone())),
        ("/api/v1/invitations/{id}", (invitation, none.clone())),
        (
            "/api/v1/auth/sessions/{id}",
            (sessions["items"][0]["id"].as_str().expect("id").to_owned(), none.clone()),
        ),
        ("/api/v1/companies/{id}", (company.clone(), json!({"name": "renamed"}))),
        (
            "/api/v1/companies/{id}/credit-limit",
            (company, json!({"credit_limit": {"amount_minor": 1, "currency": "EUR"}})),
        ),
        ("/api/v1/contacts/{id}", (contact.clone(), json!({"first_name": "renamed"}))),
        ("/api/v1/contacts/{id}/export", (contact.clone(), none.clone())),
        ("/api/v1/contacts/{id}/erase", (contact, none.clone())),
        ("/api/v1/leads/{id}", (lead, json!({"title": "renamed"}))),
        ("/api/v1/pipelines/{id}", (pipeline, json!({"name": "renamed"}))),
        ("/api/v1/deals/{id}", (deal, json!({"title": "renamed"}))),
        ("/api/v1/notes/{id}", (note, json!({"body": "renamed"}))),
        ("/api/v1/activities/{id}", (activity, json!({"subject": "renamed"}))),
        ("/api/v1/tasks/{id}", (task, json!({"done": true}))),
        ("/api/v1/auth/webauthn/credentials/{id}", (passkey, none.clone())),
        ("/api/v1/documents/{id}", (document.clone(), none.clone())),
        ("/api/v1/documents/{id}/content", (document, none.clone())),
        ("/api/v1/email/domains/{id}", (domain.clone(), none.clone())),
        ("/api/v1/email/domains/{id}/verify", (domain.clone(), none.clone())),
        ("/api/v1/email/domains/{id}/rotate-dkim", (domain, none.clone())),
        ("/api/v1/email/templates/{id}", (template.clone(), json!({"subject": "renamed"}))),
        ("/api/v1/email/templates/{id}/render", (template, json!({"variables": {}}))),
        ("/api/v1/webhooks/{id}", (webhook.clone(), json!({"status": "disabled"}))),
        ("/api/v1/webhooks/{id}/deliveries", (webhook, none.clone())),
        ("/api/v1/emails/{id}", (message, none.clone())),
        ("/api/v1/email/suppressions/{id}", (suppression, none.clone())),
    ])
}

#[tokio::test]
async fn another_tenant_gets_404_for_every_id_of_this_one() {
    let app =
        TestApp::spawn_with(&[("BULWARK_PUBLIC_URL", crate::support::passkey::PUBLIC_URL)]).await;
    let a = app.signup("Tenant A").await;
    let b = app.signup("Tenant B").await;
    // Both step up, so nothing but the tenant boundary can refuse B.
    app.step_up(&b).await;
    let ids = tenant_a_ids(&app, &a).await;
    let before = snapshot(&app, &a, &ids).await;
    let mut covered = 0;
    for endpoint in endpoints() {
        let policy = &endpoint.policy;
        // Platform routes hold no tenant's data: a tenant's user gets 403 there
        // (tests/it/containment.rs shows it for each of them).
        if !policy.path.contains("{id}") || policy.access == bulwark::http::Access::SuperAdmin {
            continue;
        }
        let (id, body) = ids
            .get(&*policy.path)
            .unwrap_or_else(|| panic!("add {} to the cross-tenant matrix", policy.path));
        let path = concrete(&policy.path, id);
        let method =
            reqwest::Method::from_bytes(policy.method.as_str().as_bytes()).expect("method");
        let response = app.send(method, &path, Some(&b.token), Some(body)).await;
        let body = expect_problem(response, 404).await;
        assert_eq!(body["code"], "not_found", "{} {}", policy.method, policy.path);
        covered += 1;
    }
    assert!(covered >= 20, "only {covered} routes with ids");
    // Nothing of A changed.
    assert_eq!(snapshot(&app, &a, &ids).await, before);
    let me: Value = app.get_as(&a.token, "/api/v1/me").await.json().await.expect("json");
    assert_eq!(me["role"], "owner");
    // B's lists hold none of A's rows.
    for path in [
        "/api/v1/users",
        "/api/v1/audit-events?limit=200",
        "/api/v1/contacts",
        "/api/v1/companies",
        "/api/v1/leads",
        "/api/v1/deals",
        "/api/v1/pipelines",
        "/api/v1/notes",
        "/api/v1/activities",
        "/api/v1/tasks",
        "/api/v1/email/domains",
        "/api/v1/emails",
        "/api/v1/email/suppressions",
        "/api/v1/email/templates",
        "/api/v1/webhooks",
        "/api/v1/payments",
    ] {
        let text = app.get_as(&b.token, path).await.text().await.expect("text");
        assert!(!text.contains(&a.user_id) && !text.contains(&a.email), "{path} leaks A");
        for (id, _) in ids.values() {
            assert!(!text.contains(id.as_str()), "{path} lists A's {id}");
        }
    }
}

/// What tenant A can see of its own records, to prove nothing changed.
async fn snapshot(
    app: &TestApp,
    a: &Account,
    ids: &BTreeMap<&'static str, (String, Value)>,
) -> Vec<String> {
    let mut seen = vec![];
    for (path, (id, _)) in ids {
        if path.starts_with("/api/v1/auth")
            || path.starts_with("/api/v1/users")
            || path.ends_with("/erase")
            || path.ends_with("/content")
            || path.ends_with("/verify")
            || path.ends_with("/rotate-dkim")
            || path.ends_with("/render")
            || path.ends_with("/credit-limit")
            || path.contains("suppressions")
            || path.contains("api-keys")
            || path.contains("invitations")
        {
            continue;
        }
        let response = app.get_as(&a.token, &concrete(path, id)).await;
        assert_eq!(response.status(), 200, "{path}");
        let mut body: Value = response.json().await.expect("json");
        if let Some(o) = body.as_object_mut() {
            o.remove("exported_at");
        }
        seen.push(body.to_string());
    }
    let keys: Value = app.get_as(&a.token, "/api/v1/api-keys").await.json().await.expect("json");
    seen.push(keys["items"][0]["revoked_at"].to_string());
    let invitations: Value =
        app.get_as(&a.token, "/api/v1/invitations").await.json().await.expect("json");
    seen.push(invitations["items"][0]["expires_at"].to_string());
    seen
}

#[tokio::test]
async fn nobody_raises_anyone_above_their_own_role_and_the_last_owner_stays() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let admin = app.add_member(&owner, "admin").await;
    let agent = app.add_member(&owner, "agent").await;
    let path = |user: &Account| format!("/api/v1/users/{}", user.user_id);
    app.step_up(&admin).await;
    app.step_up(&owner).await;

    let raise = app.patch_as(&admin.token, &path(&agent), &json!({"role": "owner"})).await;
    assert_eq!(expect_problem(raise, 403).await["code"], "forbidden");
    let demote_owner = app.patch_as(&admin.token, &path(&owner), &json!({"role": "agent"})).await;
    expect_problem(demote_owner, 403).await;
    let invite_owner = app
        .post_as(
            &admin.token,
            "/api/v1/invitations",
            &json!({"email": unique_email("x"), "role": "owner"}),
        )
        .await;
    expect_problem(invite_owner, 403).await;
    let last_owner = app.patch_as(&owner.token, &path(&owner), &json!({"role": "admin"})).await;
    assert_eq!(expect_problem(last_owner, 409).await["code"], "conflict");
    let remove_last = app.delete_as(&owner.token, &path(&owner)).await;
    expect_problem(remove_last, 409).await;

    // A role change takes effect at once: the user's sessions end.
    let promoted = app.patch_as(&admin.token, &path(&agent), &json!({"role": "manager"})).await;
    assert_eq!(promoted.status(), 200);
    let promoted: Value = promoted.json().await.expect("json");
    assert_eq!(promoted["role"], "manager");
    assert_eq!(app.get_as(&agent.token, "/api/v1/me").await.status(), 401);
    let (token, _) = app.login_ok(&agent.email, PASSWORD).await;
    let me: Value = app.get_as(&token, "/api/v1/me").await.json().await.expect("json");
    assert_eq!(me["role"], "manager");

    let events = app.audit_events(&owner).await;
    let change = events.iter().find(|e| e["action"] == "user.role_change").expect("audited");
    assert_eq!(change["details"]["from"], "agent");
    assert_eq!(change["details"]["to"], "manager");
    assert_eq!(change["actor_id"], admin.user_id.as_str());
}

#[tokio::test]
async fn deactivation_kills_sessions_and_keys_and_login() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let manager = app.add_member(&owner, "manager").await;
    let (_, key) = app.api_key(&manager, &["users:read"]).await;
    let wrong =
        crate::support::comparable(app.login(&manager.email, "definitely wrong pw").await).await;
    app.step_up(&owner).await;
    let response = app.delete_as(&owner.token, &format!("/api/v1/users/{}", manager.user_id)).await;
    assert_eq!(response.status(), 204);
    assert_eq!(app.get_as(&manager.token, "/api/v1/me").await.status(), 401);
    assert_eq!(app.get_as(&key, "/api/v1/users").await.status(), 401);
    let login = crate::support::comparable(app.login(&manager.email, PASSWORD).await).await;
    assert_eq!(login, wrong, "a deactivated account answers like a wrong password");
    let refresh =
        app.post_json("/api/v1/auth/refresh", &json!({"refresh_token": manager.refresh})).await;
    assert_eq!(refresh.status(), 401);
}

#[tokio::test]
async fn invitations_are_single_use() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let email = unique_email("new");
    let invitation: Value = app
        .post_as(&owner.token, "/api/v1/invitations", &json!({"email": email, "role": "agent"}))
        .await
        .json()
        .await
        .expect("json");
    assert!(invitation["accept_url"].as_str().is_some_and(|u| u.contains("#token=")));
    let accept = json!({"token": invitation["token"], "password": PASSWORD, "display_name": "New"});
    let first = app.post_ok("/api/v1/invitations/accept", &accept, 201).await;
    assert_eq!(first["tenant_id"], owner.tenant_id.as_str());
    let second = app.post_json("/api/v1/invitations/accept", &accept).await;
    expect_problem(second, 404).await;
    let forged = app
        .post_json(
            "/api/v1/invitations/accept",
            &json!({"token": "x".repeat(43), "password": PASSWORD, "display_name": "X"}),
        )
        .await;
    expect_problem(forged, 404).await;
    let (token, _) = app.login_ok(&email, PASSWORD).await;
    let me: Value = app.get_as(&token, "/api/v1/me").await.json().await.expect("json");
    assert_eq!(me["role"], "agent");
    let stored = app.get_as(&owner.token, "/api/v1/invitations").await.text().await.expect("text");
    assert!(
        !stored.contains(invitation["token"].as_str().expect("token")),
        "tokens are not listed"
    );
}

#[tokio::test]
async fn the_super_admin_sees_tenants_and_no_tenant_data() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let root_account = app.new_superadmin().await;
    let root = root_account.token.clone();
    let me: Value = app.get_as(&root, "/api/v1/me").await.json().await.expect("json");
    assert_eq!(me["role"], "superadmin");
    assert_eq!(me["tenant_id"], Value::Null);
    // The super-admin always needs a second factor: nothing but enrolment until then.
    let blocked = app.get_as(&root, "/api/v1/platform/tenants").await;
    assert_eq!(expect_problem(blocked, 403).await["code"], "mfa_enrollment_required");
    app.step_up(&root_account).await;
    let tenants = app.get_as(&root, "/api/v1/platform/tenants").await;
    assert_eq!(tenants.status(), 200);
    assert!(tenants.text().await.expect("text").contains(&owner.tenant_id));
    for path in ["/api/v1/users", "/api/v1/audit-events", "/api/v1/api-keys"] {
        assert_eq!(app.get_as(&root, path).await.status(), 403, "{path}");
    }
    assert_eq!(app.get_as(&owner.token, "/api/v1/platform/tenants").await.status(), 403);
}

#[tokio::test]
async fn imported_bcrypt_hashes_work_and_are_rehashed_with_argon2id() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let email = unique_email("legacy");
    let hash = bcrypt::hash("an old but long password", 4).expect("bcrypt");
    let dir = app.db.dir.path().to_owned();
    let file = dir.join("users.jsonl");
    std::fs::write(
        &file,
        format!("{}\n", json!({"email": email, "display_name": "Legacy", "role": "agent", "password_hash": hash})),
    )
    .expect("write");
    let env: Vec<(&str, &str)> =
        app.settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let output = crate::support::binary::run_async(
        &dir,
        &env,
        &["import-users", "--tenant", &owner.tenant_id, "--file", file.to_str().expect("utf-8")],
    )
    .await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    app.login_ok(&email, "an old but long password").await;
    let stored = crate::support::raw_scalar_text(
        &app.db,
        "SELECT password_hash FROM users WHERE email = $1",
        &email,
    )
    .await;
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    app.login_ok(&email, "an old but long password").await;
}
