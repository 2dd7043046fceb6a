//! Regression tests for the holes an outside security review found (issue 13). Each test
//! attacks the way the review did and fails on the code before its fix.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::passkey::{self, PUBLIC_URL, Passkey};
use crate::support::totp::{base32_decode, code_at, now};
use crate::support::{Account, PASSWORD, TestApp, expect_problem, raw_scalar_text, unique_email};

const LIMITED: (&str, &str) = ("BULWARK_RATE_LIMITS", "on");
const BEHIND_PROXY: (&str, &str) = ("BULWARK_TRUSTED_PROXIES", "127.0.0.1/32");

fn actions(events: &[Value]) -> Vec<String> {
    events.iter().filter_map(|e| e["action"].as_str().map(str::to_owned)).collect()
}

async fn password_proof(app: &TestApp, who: &Account) {
    let proof =
        app.post_as(&who.token, "/api/v1/auth/step-up", &json!({"password": PASSWORD})).await;
    assert_eq!(proof.status(), 204, "password proof");
}

/// High 1: a stolen access token alone enrols nothing; enrolling is no step-up; enrolling
/// ends the user's other sessions.
#[tokio::test]
async fn a_stolen_access_token_cannot_enrol_a_factor_and_enrolling_gives_no_step_up() {
    let app = TestApp::spawn_with(&[("BULWARK_PUBLIC_URL", PUBLIC_URL)]).await;
    let owner = app.signup("Acme").await;
    let (other_device, _) = app.login_ok(&owner.email, PASSWORD).await;
    for path in ["/api/v1/auth/mfa/totp/setup", "/api/v1/auth/webauthn/register/start"] {
        let refused = app.post_as(&owner.token, path, &json!({})).await;
        assert_eq!(expect_problem(refused, 403).await["code"], "step_up_required", "{path}");
    }
    // A wrong password proves nothing and counts like a failed login.
    let wrong = app
        .post_as(&owner.token, "/api/v1/auth/step-up", &json!({"password": "not it at all"}))
        .await;
    expect_problem(wrong, 422).await;
    password_proof(&app, &owner).await;
    // The proof unlocks enrolment only, never what needs a second factor.
    let key = app
        .post_as(
            &owner.token,
            "/api/v1/api-keys",
            &json!({"name": "k", "scopes": ["contacts:read"]}),
        )
        .await;
    assert_eq!(expect_problem(key, 403).await["code"], "step_up_required");
    let setup: Value = app
        .post_as(&owner.token, "/api/v1/auth/mfa/totp/setup", &json!({}))
        .await
        .json()
        .await
        .expect("json");
    let secret = base32_decode(setup["secret"].as_str().expect("secret"));
    let confirm = app
        .post_as(
            &owner.token,
            "/api/v1/auth/mfa/totp/confirm",
            &json!({"code": code_at(&secret, now())}),
        )
        .await;
    assert_eq!(confirm.status(), 200);
    // Enrolled, yet not stepped up: the thief's own code would have made them so.
    let key = app
        .post_as(
            &owner.token,
            "/api/v1/api-keys",
            &json!({"name": "k", "scopes": ["contacts:read"]}),
        )
        .await;
    assert_eq!(expect_problem(key, 403).await["code"], "step_up_required");
    // Every other session of the user ended; this one goes on.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(app.get_as(&other_device, "/api/v1/me").await.status(), 401);
    assert_eq!(app.get_as(&owner.token, "/api/v1/me").await.status(), 200);
    // A further factor needs the existing one, not the password.
    password_proof(&app, &owner).await;
    let passkey =
        app.post_as(&owner.token, "/api/v1/auth/webauthn/register/start", &json!({})).await;
    assert_eq!(expect_problem(passkey, 403).await["code"], "step_up_required");
}

/// High 1: a member locked out of their factors is recovered by an admin, never by someone
/// below them; the reset ends their sessions and is audited.
#[tokio::test]
async fn an_admin_resets_a_members_factors_but_never_those_of_a_higher_role() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let admin = app.add_member(&owner, "admin").await;
    let agent = app.add_member(&owner, "agent").await;
    app.step_up(&agent).await;
    app.step_up(&admin).await;
    let ticket: Value = app.login(&agent.email, PASSWORD).await.json().await.expect("json");
    assert_eq!(ticket["mfa_required"], true, "the agent has a factor");

    let path = |who: &Account| format!("/api/v1/users/{}/factors", who.user_id);
    // An admin cannot reset an owner's factors; an agent nobody's.
    let above = app.delete_as(&admin.token, &path(&owner)).await;
    assert_eq!(expect_problem(above, 403).await["code"], "forbidden");
    let agent_try = app.delete_as(&agent.token, &path(&admin)).await;
    expect_problem(agent_try, 403).await;
    // Another tenant's admin finds nobody.
    let stranger = app.signup("Other").await;
    app.step_up(&stranger).await;
    expect_problem(app.delete_as(&stranger.token, &path(&agent)).await, 404).await;

    assert_eq!(app.delete_as(&admin.token, &path(&agent)).await.status(), 204);
    let after: Value = app.login(&agent.email, PASSWORD).await.json().await.expect("json");
    assert!(after["access_token"].is_string(), "no factor is asked for any more: {after}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(app.get_as(&agent.token, "/api/v1/me").await.status(), 401, "sessions ended");
    let events = app.audit_events(&owner).await;
    let reset = events.iter().find(|e| e["action"] == "mfa.reset").expect("audited");
    assert_eq!(reset["target_id"], agent.user_id.as_str());
    assert_eq!(reset["actor_id"], admin.user_id.as_str());
}

/// High 1: a password change signs out everywhere by default and revokes API keys on request.
#[tokio::test]
async fn a_password_change_signs_out_everywhere_and_can_revoke_api_keys() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    app.step_up(&owner).await;
    let (_, key) = app.api_key(&owner, &["contacts:read"]).await;
    let (other_device, _) = app.login_ok(&owner.email, PASSWORD).await;
    let new = "a brand new passphrase 2026";
    let change = app
        .post_as(
            &owner.token,
            "/api/v1/auth/password",
            &json!({"current_password": PASSWORD, "new_password": new, "revoke_api_keys": true}),
        )
        .await;
    assert_eq!(change.status(), 204);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(app.get_as(&other_device, "/api/v1/me").await.status(), 401);
    assert_eq!(app.get_as(&key, "/api/v1/contacts").await.status(), 401, "the key is revoked");
    assert_eq!(app.get_as(&owner.token, "/api/v1/me").await.status(), 200);
}

/// High 2: an invitation hands out a role, so admin and owner invitations need a step-up,
/// nobody invites above themselves, and an inviter's demotion withdraws what they sent.
#[tokio::test]
async fn invitations_to_admin_or_owner_need_step_up_and_die_with_the_inviters_role() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let invite = |who: &Account, role: &str| {
        let body = json!({"email": unique_email("inv"), "role": role});
        let token = who.token.clone();
        let app = &app;
        async move { app.post_as(&token, "/api/v1/invitations", &body).await }
    };
    for role in ["owner", "admin"] {
        let refused = invite(&owner, role).await;
        assert_eq!(expect_problem(refused, 403).await["code"], "step_up_required", "{role}");
    }
    assert_eq!(invite(&owner, "agent").await.status(), 201, "lower roles need no step-up");
    let admin = app.add_member(&owner, "admin").await;
    app.step_up(&admin).await;
    expect_problem(invite(&admin, "owner").await, 403).await;
    let pending = invite(&admin, "admin").await;
    assert_eq!(pending.status(), 201);
    let pending: Value = pending.json().await.expect("json");

    // The admin is demoted: the admin invitation they sent is withdrawn.
    let demote = app
        .patch_as(
            &owner.token,
            &format!("/api/v1/users/{}", admin.user_id),
            &json!({"role": "agent"}),
        )
        .await;
    assert_eq!(demote.status(), 200);
    let accept = app
        .post_json(
            "/api/v1/invitations/accept",
            &json!({"token": pending["token"], "password": PASSWORD, "display_name": "X"}),
        )
        .await;
    expect_problem(accept, 404).await;

    // Revoking an invitation is audited.
    let spare: Value = invite(&owner, "agent").await.json().await.expect("json");
    let revoke = app
        .delete_as(
            &owner.token,
            &format!("/api/v1/invitations/{}", spare["id"].as_str().expect("id")),
        )
        .await;
    assert_eq!(revoke.status(), 204);
    assert!(actions(&app.audit_events(&owner).await).contains(&"invitation.revoke".to_owned()));
}

/// Medium 8: writing a sensitive field needs the permission to read it; an update's audit
/// event names the fields it changed, never their values.
#[tokio::test]
async fn agents_cannot_overwrite_sensitive_fields_and_updates_name_the_changed_fields() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let agent = app.add_member(&owner, "agent").await;
    let created: Value = app
        .post_as(
            &owner.token,
            "/api/v1/contacts",
            &json!({"first_name": "Ada", "ssn": "078-05-1120"}),
        )
        .await
        .json()
        .await
        .expect("json");
    let url = format!("/api/v1/contacts/{}", created["id"].as_str().expect("id"));
    for body in [
        json!({"ssn": "111-11-1111"}),
        json!({"bank_account": {"holder": "X", "iban": "GB33BUKB20201555555555"}}),
    ] {
        let refused = app.patch_as(&agent.token, &url, &body).await;
        expect_problem(refused, 403).await;
    }
    let create = app
        .post_as(
            &agent.token,
            "/api/v1/contacts",
            &json!({"first_name": "B", "ssn": "111-11-1111"}),
        )
        .await;
    expect_problem(create, 403).await;
    let renamed = app
        .patch_as(&agent.token, &url, &json!({"first_name": "Grace", "phone": "+1 555 0100"}))
        .await;
    assert_eq!(renamed.status(), 200);
    let events = app.audit_events(&owner).await;
    let update = events.iter().find(|e| e["action"] == "contact.update").expect("audited");
    assert_eq!(update["details"]["fields"], json!(["first_name", "phone"]));
    assert!(!update.to_string().contains("Grace"), "values stay out of the log: {update}");
}

/// Medium 4: concurrent wrong passwords are each checked against the threshold before any
/// hashing, so a burst gets no more guesses and a right password inside it does not unlock.
#[tokio::test]
async fn a_burst_of_wrong_passwords_gets_no_more_guesses_than_the_threshold() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let mut burst = tokio::task::JoinSet::new();
    for n in 0..30 {
        let request = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"email": owner.email, "password": format!("wrong password {n}")}));
        burst.spawn(async move { request.send().await.expect("request").status().as_u16() });
    }
    let right = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": owner.email, "password": PASSWORD}));
    burst.spawn(async move { right.send().await.expect("request").status().as_u16() });
    let mut statuses = vec![];
    while let Some(status) = burst.join_next().await {
        statuses.push(status.expect("join"));
    }
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(app.login(&owner.email, PASSWORD).await.status(), 401, "the account is locked");
    // Each failure that was checked is audited as a bad password; the rest were refused as
    // locked before any hashing. The owner's existing session reads the log.
    let events = app.audit_events(&owner).await;
    let checked = events
        .iter()
        .filter(|e| e["action"] == "auth.login_failed" && e["details"]["reason"] == "bad_password")
        .count();
    assert!((1..=5).contains(&checked), "{checked} passwords were checked; the threshold is 5");
}

/// Medium 5: an IPv6 client is its /64, so walking the host bits walks around nothing.
#[tokio::test]
async fn an_ipv6_client_cannot_walk_around_limits_within_its_64() {
    let app = TestApp::spawn_with(&[LIMITED, BEHIND_PROXY]).await;
    let email = unique_email("nobody");
    for n in 0..20u32 {
        let response = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .header("x-forwarded-for", format!("2001:db8:1:2::{n:x}"))
            .json(&json!({"email": email, "password": "wrong password here"}))
            .send()
            .await
            .expect("login");
        assert_eq!(response.status(), 401, "request {}", n + 1);
    }
    let next = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", "2001:db8:1:2:ffff:ffff:ffff:ffff")
        .json(&json!({"email": email, "password": "wrong password here"}))
        .send()
        .await
        .expect("login");
    assert_eq!(expect_problem(next, 429).await["code"], "rate_limited");
    let neighbour = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", "2001:db8:1:3::1")
        .json(&json!({"email": email, "password": "wrong password here"}))
        .send()
        .await
        .expect("login");
    assert_eq!(neighbour.status(), 401, "the next /64 is another client");
}

/// Medium 6: junk logins from a shared address never sign its users out.
#[tokio::test]
async fn failed_logins_from_an_address_never_block_the_refresh_of_its_sessions() {
    let app = TestApp::spawn_with(&[LIMITED, BEHIND_PROXY]).await;
    let owner = app.signup("Acme").await;
    let nat = "203.0.113.9";
    for _ in 0..25 {
        app.client
            .post(app.url("/api/v1/auth/login"))
            .header("x-forwarded-for", nat)
            .json(&json!({"email": unique_email("junk"), "password": "junk junk junk"}))
            .send()
            .await
            .expect("login");
    }
    let refresh = |token: String| {
        app.client
            .post(app.url("/api/v1/auth/refresh"))
            .header("x-forwarded-for", nat)
            .json(&json!({"refresh_token": token}))
            .send()
    };
    let response = refresh(owner.refresh.clone()).await.expect("refresh");
    assert_eq!(response.status(), 200, "the login budget of the address is not refresh's");
    // Refresh has its own budget, per session: ten a minute.
    let mut token = response.json::<Value>().await.expect("json")["refresh_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let mut refused = None;
    for n in 0..12 {
        let response = refresh(token.clone()).await.expect("refresh");
        if response.status() == 429 {
            refused = Some(n);
            break;
        }
        assert_eq!(response.status(), 200);
        token = response.json::<Value>().await.expect("json")["refresh_token"]
            .as_str()
            .expect("token")
            .to_owned();
    }
    assert_eq!(refused, Some(9), "the 11th refresh of one session in a minute is refused");
    // Another session behind the same address is not affected.
    let (_, other_refresh) = app.login_ok(&owner.email, PASSWORD).await;
    assert_eq!(refresh(other_refresh).await.expect("refresh").status(), 200);
}

/// Medium 7: a deleted tenant stays deleted: its invitations, sessions and API keys die.
#[tokio::test]
async fn a_deleted_tenant_does_not_come_back_through_an_invitation_a_session_or_a_key() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Doomed").await;
    app.step_up(&owner).await;
    let (_, key) = app.api_key(&owner, &["contacts:read"]).await;
    let invitation: Value = app
        .post_as(
            &owner.token,
            "/api/v1/invitations",
            &json!({"email": unique_email("late"), "role": "agent"}),
        )
        .await
        .json()
        .await
        .expect("json");
    let env: Vec<(&str, &str)> = app
        .settings
        .iter()
        .filter(|(k, _)| !k.contains("LISTEN"))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let output = crate::support::binary::run_async(
        app.db.dir.path(),
        &env,
        &["tenants", "delete", "--tenant", &owner.tenant_id],
    )
    .await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let accept = app
        .post_json(
            "/api/v1/invitations/accept",
            &json!({"token": invitation["token"], "password": PASSWORD, "display_name": "Late"}),
        )
        .await;
    expect_problem(accept, 404).await;
    // Another process deleted it: this instance sees it within its session cache's second.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(app.get_as(&owner.token, "/api/v1/me").await.status(), 401);
    assert_eq!(app.get_as(&key, "/api/v1/contacts").await.status(), 401);
    assert_eq!(app.login(&owner.email, PASSWORD).await.status(), 401);
}

/// Medium 9: an address held by an account that never proved it cannot be invited anywhere.
#[tokio::test]
async fn an_address_held_by_an_unverified_account_cannot_be_invited() {
    let app = TestApp::spawn().await;
    let squatter = app.signup("Squat").await;
    let me: Value = app.get_as(&squatter.token, "/api/v1/me").await.json().await.expect("json");
    assert_eq!(me["email_verified"], false, "open signup leaves the address unproven");
    let owner = app.signup("Real").await;
    let invite = app
        .post_as(
            &owner.token,
            "/api/v1/invitations",
            &json!({"email": squatter.email, "role": "agent"}),
        )
        .await;
    assert_eq!(expect_problem(invite, 409).await["code"], "conflict");
    let listed: Value =
        app.get_as(&owner.token, "/api/v1/invitations").await.json().await.expect("json");
    assert_eq!(listed["items"], json!([]), "nothing was created");
}

/// Low: two owners demoting each other at once leave one owner (PostgreSQL locks them).
#[tokio::test]
async fn two_owners_demoting_each_other_at_once_leave_an_owner() {
    let app = TestApp::spawn().await;
    let first = app.signup("Acme").await;
    let second = app.add_member(&first, "owner").await;
    app.step_up(&second).await;
    let demote = |by: &Account, whom: &Account| {
        let (token, path) = (by.token.clone(), format!("/api/v1/users/{}", whom.user_id));
        let app = &app;
        async move { app.patch_as(&token, &path, &json!({"role": "admin"})).await.status().as_u16() }
    };
    let (a, b) = tokio::join!(demote(&first, &second), demote(&second, &first));
    // One demotion wins; the other finds the last owner (409), or finds its own session
    // ended by the first (401).
    let mut statuses = [a, b];
    statuses.sort_unstable();
    assert!(statuses[0] == 200 && [401, 409].contains(&statuses[1]), "{statuses:?}");
    let owners = raw_scalar_text(
        &app.db,
        "SELECT count(*) || '' FROM users WHERE role = 'owner' AND tenant_id = \
         (SELECT tenant_id FROM users WHERE email = $1)",
        &first.email,
    )
    .await;
    assert_eq!(owners, "1");
}

/// Low: a passwordless login that names another tenant's user writes nothing into that
/// tenant's audit chain.
#[tokio::test]
async fn a_failed_passwordless_login_naming_another_tenants_user_writes_nothing_there() {
    let app = TestApp::spawn_with(&[("BULWARK_PUBLIC_URL", PUBLIC_URL)]).await;
    let victim = app.signup("Victim").await;
    let attacker = app.signup("Attacker").await;
    let mut token = Passkey::new();
    token.register(&app, &attacker).await;
    let before = app.audit_events(&victim).await.len();
    let victim_handle = {
        use base64::Engine as _;
        let id: uuid::Uuid = victim.user_id.parse().expect("uuid");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
    };
    for _ in 0..3 {
        let challenge: Value = app
            .post_json("/api/v1/auth/webauthn/login/start", &json!({}))
            .await
            .json()
            .await
            .expect("json");
        let (id, mut assertion) = token.assert(challenge, &passkey::origin());
        assertion["response"]["userHandle"] = json!(victim_handle);
        let done = app
            .post_json(
                "/api/v1/auth/webauthn/login/finish",
                &json!({"challenge_id": id, "credential": assertion}),
            )
            .await;
        assert_eq!(done.status(), 401);
    }
    let after = app.audit_events(&victim).await;
    assert_eq!(after.len(), before, "{:?}", actions(&after));
}

/// Low: the sign counter is checked against the stored credential, so a cloned
/// authenticator answering a challenge issued before the original's login is refused.
#[tokio::test]
async fn a_cloned_passkey_is_refused_even_when_both_challenges_came_first() {
    let app = TestApp::spawn_with(&[("BULWARK_PUBLIC_URL", PUBLIC_URL)]).await;
    let owner = app.signup("Acme").await;
    let mut original = Passkey::new();
    original.register(&app, &owner).await;
    let mut clone = original.clone_authenticator();
    let mut challenges = vec![];
    for _ in 0..2 {
        let ticket: Value = app.login(&owner.email, PASSWORD).await.json().await.expect("json");
        assert_eq!(ticket["methods"], json!(["webauthn"]), "{ticket}");
        let challenge: Value = app
            .post_json(
                "/api/v1/auth/webauthn/login/start",
                &json!({"mfa_token": ticket["mfa_token"]}),
            )
            .await
            .json()
            .await
            .expect("json");
        challenges.push(challenge);
    }
    let (first_id, first) = original.assert(challenges.remove(0), &passkey::origin());
    let (second_id, second) = clone.assert(challenges.remove(0), &passkey::origin());
    let finish = |id: String, credential: Value| {
        let app = &app;
        async move {
            app.post_json(
                "/api/v1/auth/webauthn/login/finish",
                &json!({"challenge_id": id, "credential": credential}),
            )
            .await
            .status()
            .as_u16()
        }
    };
    assert_eq!(finish(first_id, first).await, 200);
    assert_eq!(finish(second_id, second).await, 401, "the clone repeats a used counter");
}

/// Low: writes racing the end of `rotate-tenant` are never left under the destroyed key.
#[tokio::test]
async fn writes_racing_a_tenant_key_rotation_stay_readable() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let state = crate::support::app_state(&app).await;
    let tenant: bulwark::ids::TenantId = owner.tenant_id.parse().expect("tenant id");
    let mut created = vec![];
    for round in 0..3 {
        let rotation = bulwark::maintenance::rotation::rotate_tenant(&state, tenant);
        let writes = async {
            let mut ids = vec![];
            for n in 0..15 {
                let body = json!({"first_name": format!("R{round}-{n}"), "ssn": "078-05-1120"});
                let response = app.post_as(&owner.token, "/api/v1/contacts", &body).await;
                assert_eq!(response.status(), 201);
                ids.push(
                    response.json::<Value>().await.expect("json")["id"]
                        .as_str()
                        .expect("id")
                        .to_owned(),
                );
            }
            ids
        };
        let (rotated, ids) = tokio::join!(rotation, writes);
        rotated.expect("rotation");
        created.extend(ids);
    }
    app.step_up(&owner).await;
    for id in &created {
        let response =
            app.get_as(&owner.token, &format!("/api/v1/contacts/{id}?reveal=true")).await;
        let status = response.status();
        let body: Value = response.json().await.expect("json");
        assert_eq!(status, 200, "{id}: {body}");
        assert_eq!(body["ssn"], "078-05-1120");
    }
}

/// A write that seals under the tenant's data key holds the key's row until it commits
/// (`crypto::store::current_data_version` with `hold`): the end of a rotation, which takes the
/// data keys FOR UPDATE before destroying the old one, waits for it. The race above passes
/// without the hold on most runs; this shows the hold itself.
#[tokio::test]
async fn a_sealing_write_holds_the_current_data_key_until_it_commits_postgres_only() {
    if crate::support::backend() != crate::support::Backend::Postgres {
        eprintln!("PostgreSQL only: SQLite admits one writer at a time, which orders them");
        return;
    }
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let state = crate::support::app_state(&app).await;
    let tenant = bulwark::ids::TenantId::from_uuid(owner.tenant_id.parse().expect("tenant id"));
    let scope = bulwark::tenancy::TenantScope::system(tenant, "key hold test");
    let crate::support::RawDb::Postgres(mut rotation) = app.db.raw(false).await else {
        unreachable!("PostgreSQL")
    };
    const TAKE: &str = "SELECT version FROM tenant_keys WHERE tenant_id = $1::uuid \
                        AND purpose = 'data' FOR UPDATE NOWAIT";
    let mut write = state.store().tenant_tx(&scope).await.expect("a write transaction");
    bulwark::crm::sealing_keys(&state, &mut write).await.expect("the sealing keys");
    let refused = sqlx::query(TAKE)
        .bind(&owner.tenant_id)
        .fetch_all(&mut rotation)
        .await
        .expect_err("a rotation took the key a write is sealing under");
    let code = refused.as_database_error().and_then(|e| e.code()).map(|c| c.into_owned());
    assert_eq!(code.as_deref(), Some("55P03"), "{refused}");
    write.commit().await.expect("commit");
    let taken = sqlx::query(TAKE).bind(&owner.tenant_id).fetch_all(&mut rotation).await;
    assert_eq!(taken.expect("taken once the write committed").len(), 1);
}

/// Low (SQLite): audited reads (the CSV export, a reveal) read beside a writer. While another
/// connection holds SQLite's write lock, the export still sends its reads; only its audit
/// event waits. Before the fix the whole export was one write transaction, stuck at its
/// `BEGIN IMMEDIATE` until the lock came free.
#[tokio::test]
async fn an_export_reads_while_the_sqlite_writer_is_busy_sqlite_only() {
    if crate::support::backend() != crate::support::Backend::Sqlite {
        return;
    }
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    app.step_up(&owner).await;
    for n in 0..3 {
        let body = json!({"first_name": format!("C{n}"), "ssn": "078-05-1120"});
        assert_eq!(app.post_as(&owner.token, "/api/v1/contacts", &body).await.status(), 201);
    }
    // Warm the session cache so the request itself reads nothing to authenticate.
    assert_eq!(app.get_as(&owner.token, "/api/v1/me").await.status(), 200);
    // Another connection holds SQLite's write lock (as a long write would).
    let crate::support::RawDb::Sqlite(mut writer) = app.db.raw(false).await else {
        unreachable!("SQLite")
    };
    sqlx::query("BEGIN IMMEDIATE").execute(&mut writer).await.expect("write lock");
    let before = bulwark::store::statements_sent();
    let export = {
        let (client, url, token) =
            (app.client.clone(), app.url("/api/v1/exports/contacts"), owner.token.clone());
        tokio::spawn(
            async move { client.post(url).bearer_auth(token).json(&json!({})).send().await },
        )
    };
    let mut read = 0;
    for _ in 0..40 {
        read = bulwark::store::statements_sent() - before;
        if read >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(read >= 2, "the export sent {read} statements while the writer was held");
    sqlx::query("ROLLBACK").execute(&mut writer).await.expect("release");
    let response = export.await.expect("task").expect("response");
    assert_eq!(response.status(), 200);
}

/// Low (config): staging sends HSTS like production, and readiness names the profile.
#[tokio::test]
async fn staging_sends_hsts_and_readiness_names_the_profile() {
    let app = TestApp::spawn_with(&[
        ("BULWARK_ENV", "staging"),
        ("BULWARK_PUBLIC_URL", "https://staging.example.com"),
        ("BULWARK_ARGON2_MEMORY_KIB", "19456"),
        ("BULWARK_ARGON2_ITERATIONS", "2"),
        ("BULWARK_RATE_LIMITS", "on"),
    ])
    .await;
    let response = app.get("/readyz").await;
    assert!(response.headers().contains_key("strict-transport-security"));
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["profile"], "staging", "{body}");
}

/// Low (secrets): an HTTP/2 connection that starts no request is closed after the idle
/// timeout, although its client answers every ping (which keeps it alive otherwise).
#[tokio::test]
async fn an_idle_http2_connection_is_closed() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let app = TestApp::spawn_with(&[("BULWARK_IDLE_TIMEOUT", "1s")]).await;
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.expect("connect");
    // The client preface and an empty SETTINGS frame: an HTTP/2 connection, no request.
    stream.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.expect("preface");
    stream.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.expect("settings");
    // A well-behaved peer: acknowledges SETTINGS and PINGs (RFC 9113 §6.5, §6.7) until the
    // server closes the connection.
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let mut header = [0u8; 9];
            if stream.read_exact(&mut header).await.is_err() {
                return;
            }
            let length =
                usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
            let (kind, flags) = (header[3], header[4]);
            let mut payload = vec![0u8; length];
            if stream.read_exact(&mut payload).await.is_err() {
                return;
            }
            let ack = flags & 1 == 1;
            let reply: Option<Vec<u8>> = match kind {
                4 if !ack => Some(vec![0, 0, 0, 4, 1, 0, 0, 0, 0]),
                6 if !ack => Some([&[0, 0, 8, 6, 1, 0, 0, 0, 0][..], &payload].concat()),
                _ => None,
            };
            if let Some(reply) = reply
                && stream.write_all(&reply).await.is_err()
            {
                return;
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server kept an idle HTTP/2 connection open");
}

/// Low: with a token configured, a scrape of /metrics must present it.
#[tokio::test]
async fn metrics_need_the_token_when_one_is_set() {
    let token = "metrics-token-0123456789abcdefghijklmnop";
    let app = TestApp::spawn_with(&[("BULWARK_METRICS_TOKEN", token)]).await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    let url = format!("http://{}/metrics", app.metrics_addr.expect("metrics listener"));
    let bare = app.client.get(&url).send().await.expect("scrape");
    assert_eq!(bare.status(), 401);
    assert!(bare.headers().contains_key("www-authenticate"));
    let wrong =
        app.client.get(&url).bearer_auth("metrics-token-0123456789abcdefghijklmnoX").send().await;
    assert_eq!(wrong.expect("scrape").status(), 401);
    let right = app.client.get(&url).bearer_auth(token).send().await.expect("scrape");
    assert_eq!(right.status(), 200);
    assert!(right.text().await.expect("text").contains("http_requests_total"));
}

/// Low (transport): `rediss://` works against a server whose certificate a private CA
/// vouches for, and a certificate nobody vouches for is refused (logins then fail closed).
#[tokio::test]
async fn redis_over_tls_trusts_the_configured_ca_and_nothing_else() {
    let redis = crate::support::redis_server::RedisServer::start_tls();
    let url = format!("rediss://localhost:{}", redis.port);
    let ca = redis.ca_file();
    let app = TestApp::spawn_with(&[
        ("BULWARK_REDIS_URL", url.as_str()),
        ("BULWARK_REDIS_CA_FILE", ca.to_str().expect("utf-8")),
    ])
    .await;
    let ready: Value = app.get("/readyz").await.json().await.expect("json");
    assert_eq!(ready["checks"]["redis"], "ok", "{ready}");
    let owner = app.signup("Acme").await;
    assert_eq!(app.login(&owner.email, PASSWORD).await.status(), 200, "lockout runs on Redis");

    let untrusting = TestApp::spawn_with(&[("BULWARK_REDIS_URL", url.as_str())]).await;
    let ready: Value = untrusting.get("/readyz").await.json().await.expect("json");
    assert_eq!(ready["checks"]["redis"], "unavailable", "an unknown certificate is refused");
    let plain = format!("redis://localhost:{}", redis.port);
    let cleartext = TestApp::spawn_with(&[("BULWARK_REDIS_URL", plain.as_str())]).await;
    let ready: Value = cleartext.get("/readyz").await.json().await.expect("json");
    assert_eq!(ready["checks"]["redis"], "unavailable");
}
