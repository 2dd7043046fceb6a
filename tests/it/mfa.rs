//! Second factors: TOTP with codes computed independently (RFC 6238), backup codes, passkeys
//! with a software authenticator, the tenant policy, step-up.

use serde_json::{Value, json};

use crate::support::passkey::{self, PUBLIC_URL, Passkey};
use crate::support::totp::{base32_decode, code_at, now};
use crate::support::{Account, PASSWORD, TestApp, expect_problem};

/// Enrols TOTP (after a password proof), confirming with the previous step's code so the
/// current step stays unused.
async fn enrol(app: &TestApp, who: &Account) -> (Vec<u8>, Vec<String>) {
    let proof =
        app.post_as(&who.token, "/api/v1/auth/step-up", &json!({"password": PASSWORD})).await;
    assert_eq!(proof.status(), 204, "password proof");
    let setup: Value = app
        .post_as(&who.token, "/api/v1/auth/mfa/totp/setup", &json!({}))
        .await
        .json()
        .await
        .expect("json");
    assert!(
        setup["otpauth_uri"].as_str().is_some_and(|u| u.starts_with("otpauth://totp/")),
        "{setup}"
    );
    let secret = base32_decode(setup["secret"].as_str().expect("secret"));
    let wrong =
        app.post_as(&who.token, "/api/v1/auth/mfa/totp/confirm", &json!({"code": "000000"})).await;
    expect_problem(wrong, 422).await;
    let code = code_at(&secret, now() - 30);
    let confirmed: Value = app
        .post_as(&who.token, "/api/v1/auth/mfa/totp/confirm", &json!({"code": code}))
        .await
        .json()
        .await
        .expect("json");
    let codes: Vec<String> = confirmed["backup_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .filter_map(|c| c.as_str().map(str::to_owned))
        .collect();
    assert_eq!(codes.len(), 10);
    (secret, codes)
}

async fn ticket(app: &TestApp, who: &Account) -> Value {
    let response = app.login(&who.email, PASSWORD).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["mfa_required"], true, "{body}");
    assert!(body.get("access_token").is_none(), "no tokens before the second factor");
    body
}

async fn verify(app: &TestApp, mfa_token: &Value, field: &str, code: &str) -> reqwest::Response {
    app.post_json("/api/v1/auth/mfa/verify", &json!({"mfa_token": mfa_token, field: code})).await
}

#[tokio::test]
async fn totp_login_needs_a_fresh_code_and_backup_codes_work_once() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let (secret, codes) = enrol(&app, &owner).await;

    let first = ticket(&app, &owner).await;
    assert_eq!(first["methods"], json!(["totp", "backup_code"]));
    expect_problem(verify(&app, &first["mfa_token"], "code", "123456").await, 401).await;
    let code = code_at(&secret, now());
    let ok = verify(&app, &first["mfa_token"], "code", &code).await;
    assert_eq!(ok.status(), 200, "an independently computed code works");
    let tokens: Value = ok.json().await.expect("json");
    assert_eq!(
        app.get_as(tokens["access_token"].as_str().expect("token"), "/api/v1/me").await.status(),
        200
    );
    // The ticket is single use.
    expect_problem(verify(&app, &first["mfa_token"], "code", &code).await, 401).await;

    let second = ticket(&app, &owner).await;
    let replay = verify(&app, &second["mfa_token"], "code", &code).await;
    assert_eq!(replay.status(), 401, "a code is good once per time step");
    assert_eq!(verify(&app, &second["mfa_token"], "backup_code", &codes[0]).await.status(), 200);
    let third = ticket(&app, &owner).await;
    assert_eq!(
        verify(&app, &third["mfa_token"], "backup_code", &codes[0]).await.status(),
        401,
        "a backup code works once"
    );
    assert_eq!(
        verify(&app, &third["mfa_token"], "backup_code", &codes[1].to_uppercase()).await.status(),
        200
    );

    let actions: Vec<String> = app
        .audit_events(&owner)
        .await
        .iter()
        .filter_map(|e| e["action"].as_str().map(str::to_owned))
        .collect();
    for action in ["mfa.enrolled", "mfa.backup_code_used", "auth.mfa_failed"] {
        assert!(actions.contains(&action.to_owned()), "{action} in {actions:?}");
    }
}

#[tokio::test]
async fn wrong_second_factors_count_towards_the_lockout() {
    let app = TestApp::spawn().await;
    let (owner, victim) = owner_and_victim(&app).await;
    let (secret, _) = enrol(&app, &victim).await;
    let body = ticket(&app, &victim).await;
    for _ in 0..5 {
        assert_eq!(verify(&app, &body["mfa_token"], "code", "999999").await.status(), 401);
    }
    let locked = verify(&app, &body["mfa_token"], "code", &code_at(&secret, now())).await;
    assert_eq!(locked.status(), 401, "the account is locked now, even for the right code");
    assert_eq!(app.login(&victim.email, PASSWORD).await.status(), 401, "and for the password");
    let events = audit_of(&app, &owner).await;
    assert!(events.iter().any(|e| e["action"] == "auth.lockout"), "the lockout is audited");
}

/// A tenant whose owner reads the audit log while `victim`, an agent, gets locked out.
async fn owner_and_victim(app: &TestApp) -> (Account, Account) {
    let owner = app.signup("Acme").await;
    let victim = app.add_member(&owner, "agent").await;
    (owner, victim)
}

async fn audit_of(app: &TestApp, owner: &Account) -> Vec<Value> {
    app.step_up(owner).await;
    app.audit_events(owner).await
}

#[tokio::test]
async fn the_password_does_not_refill_the_budget_of_code_guesses() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let (secret, _) = enrol(&app, &owner).await;
    for _ in 0..4 {
        let body = ticket(&app, &owner).await;
        assert_eq!(verify(&app, &body["mfa_token"], "code", "999999").await.status(), 401);
    }
    // Each fresh password login above would have reset a naive counter; this one keeps it.
    let body = ticket(&app, &owner).await;
    assert_eq!(verify(&app, &body["mfa_token"], "code", "999999").await.status(), 401);
    // Five wrong codes across five tickets locked the account: neither the password nor a
    // right code gets through now.
    assert_eq!(app.login(&owner.email, PASSWORD).await.status(), 401);
    let right = verify(&app, &body["mfa_token"], "code", &code_at(&secret, now())).await;
    assert_eq!(right.status(), 401, "the account is locked");
}

#[tokio::test]
async fn concurrent_guesses_get_no_more_checks_than_the_threshold() {
    let app = TestApp::spawn().await;
    let (owner, victim) = owner_and_victim(&app).await;
    enrol(&app, &victim).await;
    let body = ticket(&app, &victim).await;
    let mut guesses = tokio::task::JoinSet::new();
    for n in 0..20 {
        let request = app
            .client
            .post(app.url("/api/v1/auth/mfa/verify"))
            .json(&json!({"mfa_token": body["mfa_token"], "code": format!("{:06}", 100_000 + n)}));
        guesses.spawn(async move { request.send().await.expect("request").status() });
    }
    while let Some(status) = guesses.join_next().await {
        assert_eq!(status.expect("join"), 401);
    }
    let events = audit_of(&app, &owner).await;
    let checked = events.iter().filter(|e| e["action"] == "auth.mfa_failed").count();
    assert!((1..=5).contains(&checked), "{checked} guesses were checked; the budget is 5");
}

#[tokio::test]
async fn a_further_factor_needs_a_step_up_with_an_existing_one() {
    let app = TestApp::spawn_with(&[
        ("BULWARK_PUBLIC_URL", PUBLIC_URL),
        ("BULWARK_STEP_UP_SECONDS", "1"),
    ])
    .await;
    // TOTP first (after a password proof; enrolling it is no step-up), then a passkey.
    let owner = app.signup("Acme").await;
    app.step_up(&owner).await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let refused =
        app.post_as(&owner.token, "/api/v1/auth/webauthn/register/start", &json!({})).await;
    assert_eq!(expect_problem(refused, 403).await["code"], "step_up_required");
    app.step_up(&owner).await;
    Passkey::new().register(&app, &owner).await;

    // A passkey first, then TOTP.
    let other = app.signup("Other").await;
    Passkey::new().register(&app, &other).await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let refused = app.post_as(&other.token, "/api/v1/auth/mfa/totp/setup", &json!({})).await;
    assert_eq!(expect_problem(refused, 403).await["code"], "step_up_required");
}

#[tokio::test]
async fn passkeys_work_as_second_factor_and_passwordless_and_refuse_strangers_and_phishing() {
    let app = TestApp::spawn_with(&[("BULWARK_PUBLIC_URL", PUBLIC_URL)]).await;
    let owner = app.signup("Acme").await;
    let mut token = Passkey::new();
    token.register(&app, &owner).await;
    let listed: Value = app
        .get_as(&owner.token, "/api/v1/auth/webauthn/credentials")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));

    // Second factor after the password.
    let body = ticket(&app, &owner).await;
    assert_eq!(body["methods"], json!(["webauthn"]));
    let challenge: Value = app
        .post_json("/api/v1/auth/webauthn/login/start", &json!({"mfa_token": body["mfa_token"]}))
        .await
        .json()
        .await
        .expect("json");
    let (id, credential) = token.assert(challenge, &passkey::origin());
    let done = app
        .post_json(
            "/api/v1/auth/webauthn/login/finish",
            &json!({"challenge_id": id, "credential": credential}),
        )
        .await;
    assert_eq!(done.status(), 200);
    let tokens: Value = done.json().await.expect("json");
    assert!(tokens["access_token"].is_string());
    // A challenge is single use.
    let again = app
        .post_json(
            "/api/v1/auth/webauthn/login/finish",
            &json!({"challenge_id": id, "credential": credential}),
        )
        .await;
    assert_eq!(again.status(), 401);

    // Passwordless.
    let challenge: Value = app
        .post_json("/api/v1/auth/webauthn/login/start", &json!({}))
        .await
        .json()
        .await
        .expect("json");
    let (id, credential) = token.assert(challenge, &passkey::origin());
    let done = app
        .post_json(
            "/api/v1/auth/webauthn/login/finish",
            &json!({"challenge_id": id, "credential": credential}),
        )
        .await;
    assert_eq!(done.status(), 200, "passwordless login");

    // A phishing relay: the attacker forwards our challenge to a look-alike site, whose origin
    // and RP id the authenticator then signs. The server refuses that assertion.
    let mut challenge: Value = app
        .post_json("/api/v1/auth/webauthn/login/start", &json!({}))
        .await
        .json()
        .await
        .expect("json");
    challenge["publicKey"]["rpId"] = json!("bulwark-login.example");
    let evil = webauthn_rs::prelude::Url::parse("https://bulwark-login.example").expect("url");
    let (id, credential) = token.assert(challenge, &evil);
    let refused = app
        .post_json(
            "/api/v1/auth/webauthn/login/finish",
            &json!({"challenge_id": id, "credential": credential}),
        )
        .await;
    assert_eq!(refused.status(), 401, "wrong origin");

    // A credential registered to another account does not stand in for this one.
    let intruder = app.signup("Other").await;
    let mut stranger = Passkey::new();
    stranger.register(&app, &intruder).await;
    let body = ticket(&app, &owner).await;
    let mut challenge: Value = app
        .post_json("/api/v1/auth/webauthn/login/start", &json!({"mfa_token": body["mfa_token"]}))
        .await
        .json()
        .await
        .expect("json");
    challenge["publicKey"]["allowCredentials"] = json!([]);
    let (id, credential) = stranger.assert(challenge, &passkey::origin());
    let refused = app
        .post_json(
            "/api/v1/auth/webauthn/login/finish",
            &json!({"challenge_id": id, "credential": credential}),
        )
        .await;
    assert_eq!(refused.status(), 401, "an unregistered credential");

    // With a passkey in place, adding another needs a step-up: the signup session has none.
    let second =
        app.post_as(&owner.token, "/api/v1/auth/webauthn/register/start", &json!({})).await;
    assert_eq!(expect_problem(second, 403).await["code"], "step_up_required");

    // Step-up with the passkey.
    let session: Value = done_json(&app, &mut token).await;
    let access = session["access_token"].as_str().expect("token").to_owned();
    let challenge: Value = app
        .post_as(&access, "/api/v1/auth/step-up/webauthn/start", &json!({}))
        .await
        .json()
        .await
        .expect("json");
    let (id, credential) = token.assert(challenge, &passkey::origin());
    let stepped = app
        .post_as(
            &access,
            "/api/v1/auth/step-up",
            &json!({"challenge_id": id, "credential": credential}),
        )
        .await;
    assert_eq!(stepped.status(), 204, "passkey step-up");
    let mut challenge: Value = app
        .post_as(&access, "/api/v1/auth/step-up/webauthn/start", &json!({}))
        .await
        .json()
        .await
        .expect("json");
    challenge["publicKey"]["allowCredentials"] = json!([]);
    let (id, credential) = stranger.assert(challenge, &passkey::origin());
    let refused = app
        .post_as(
            &access,
            "/api/v1/auth/step-up",
            &json!({"challenge_id": id, "credential": credential}),
        )
        .await;
    assert_eq!(refused.status(), 401, "someone else's passkey is no step-up");

    // Removing a passkey is audited; afterwards it no longer signs anyone in.
    let listed: Value =
        app.get_as(&access, "/api/v1/auth/webauthn/credentials").await.json().await.expect("json");
    let id = listed["items"][0]["id"].as_str().expect("id").to_owned();
    let removed = app.delete_as(&access, &format!("/api/v1/auth/webauthn/credentials/{id}")).await;
    assert_eq!(removed.status(), 204);
    assert_eq!(
        app.get_as(&owner.token, "/api/v1/me").await.status(),
        401,
        "removing a factor ends the other sessions"
    );
    let again = app.post_as(&access, "/api/v1/api-keys", &json!({"name": "k", "scopes": []})).await;
    assert_eq!(
        expect_problem(again, 403).await["code"],
        "step_up_required",
        "and this session must step up again"
    );
    let challenge: Value = app
        .post_json("/api/v1/auth/webauthn/login/start", &json!({}))
        .await
        .json()
        .await
        .expect("json");
    let (id, credential) = token.assert(challenge, &passkey::origin());
    let refused = app
        .post_json(
            "/api/v1/auth/webauthn/login/finish",
            &json!({"challenge_id": id, "credential": credential}),
        )
        .await;
    assert_eq!(refused.status(), 401, "a removed passkey");
    let owner = crate::support::Account { token: access, ..owner };
    let actions: Vec<String> = app
        .audit_events(&owner)
        .await
        .iter()
        .filter_map(|e| e["action"].as_str().map(str::to_owned))
        .collect();
    for action in ["passkey.added", "passkey.removed", "auth.step_up"] {
        assert!(actions.contains(&action.to_owned()), "{action} in {actions:?}");
    }
}

/// A passwordless login with `token`; returns the token pair.
async fn done_json(app: &TestApp, token: &mut Passkey) -> Value {
    let challenge: Value = app
        .post_json("/api/v1/auth/webauthn/login/start", &json!({}))
        .await
        .json()
        .await
        .expect("json");
    let (id, credential) = token.assert(challenge, &passkey::origin());
    let done = app
        .post_json(
            "/api/v1/auth/webauthn/login/finish",
            &json!({"challenge_id": id, "credential": credential}),
        )
        .await;
    assert_eq!(done.status(), 200);
    done.json().await.expect("json")
}

#[tokio::test]
async fn under_the_all_policy_users_must_enrol_before_anything_else() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let agent = app.add_member(&owner, "agent").await;
    let bogus = app
        .patch_as(&owner.token, "/api/v1/tenant/security", &json!({"mfa_required": "most"}))
        .await;
    assert_eq!(expect_problem(bogus, 403).await["code"], "step_up_required");
    // Inviting an admin steps the owner up.
    let admin = app.add_member(&owner, "admin").await;
    let bogus = app
        .patch_as(&owner.token, "/api/v1/tenant/security", &json!({"mfa_required": "most"}))
        .await;
    expect_problem(bogus, 422).await;

    // `admins`: owners and admins must enrol, agents need not.
    let set = app
        .patch_as(&owner.token, "/api/v1/tenant/security", &json!({"mfa_required": "admins"}))
        .await;
    assert_eq!(set.status(), 200);
    let blocked = app.get_as(&admin.token, "/api/v1/contacts").await;
    assert_eq!(expect_problem(blocked, 403).await["code"], "mfa_enrollment_required");
    assert_eq!(app.get_as(&agent.token, "/api/v1/contacts").await.status(), 200);
    enrol(&app, &admin).await;
    assert_eq!(app.get_as(&admin.token, "/api/v1/contacts").await.status(), 200);

    let set = app
        .patch_as(&owner.token, "/api/v1/tenant/security", &json!({"mfa_required": "all"}))
        .await;
    assert_eq!(set.status(), 200);
    let security: Value =
        app.get_as(&owner.token, "/api/v1/tenant/security").await.json().await.expect("json");
    assert_eq!(security["mfa_required"], "all");

    let blocked = app.get_as(&agent.token, "/api/v1/contacts").await;
    assert_eq!(expect_problem(blocked, 403).await["code"], "mfa_enrollment_required");
    assert_eq!(app.get_as(&agent.token, "/api/v1/me").await.status(), 200, "/me stays reachable");
    enrol(&app, &agent).await;
    assert_eq!(
        app.get_as(&agent.token, "/api/v1/contacts").await.status(),
        200,
        "normal access after enrolling"
    );
    assert_eq!(
        app.get_as(&owner.token, "/api/v1/contacts").await.status(),
        200,
        "the owner enrolled already"
    );
    let events = app.audit_events(&owner).await;
    assert!(
        events
            .iter()
            .any(|e| e["action"] == "tenant.mfa_policy_change" && e["details"]["to"] == "all")
    );
}

#[tokio::test]
async fn sensitive_operations_need_a_recent_step_up() {
    let app = TestApp::spawn_with(&[("BULWARK_STEP_UP_SECONDS", "2")]).await;
    let owner = app.signup("Acme").await;
    let key = json!({"name": "k", "scopes": ["contacts:read"]});
    for (path, body) in [("/api/v1/api-keys", key.clone()), ("/api/v1/exports/contacts", json!({}))]
    {
        let refused = app.post_as(&owner.token, path, &body).await;
        assert_eq!(expect_problem(refused, 403).await["code"], "step_up_required", "{path}");
    }
    // The per-contact (privacy) export shows every field unmasked: an export like the CSV.
    let contact: Value = app
        .post_as(
            &owner.token,
            "/api/v1/contacts",
            &json!({"first_name": "Ada", "ssn": "078-05-1120"}),
        )
        .await
        .json()
        .await
        .expect("json");
    let export = format!("/api/v1/contacts/{}/export", contact["id"].as_str().expect("id"));
    let refused = app.get_as(&owner.token, &export).await;
    assert_eq!(expect_problem(refused, 403).await["code"], "step_up_required", "{export}");
    app.step_up(&owner).await;
    assert_eq!(app.get_as(&owner.token, &export).await.status(), 200);
    assert_eq!(app.post_as(&owner.token, "/api/v1/api-keys", &key).await.status(), 201);
    assert_eq!(
        app.post_as(&owner.token, "/api/v1/exports/contacts", &json!({})).await.status(),
        200
    );
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    let expired = app.post_as(&owner.token, "/api/v1/api-keys", &key).await;
    assert_eq!(
        expect_problem(expired, 403).await["code"],
        "step_up_required",
        "the step-up expired"
    );
    // A step-up with a backup code works too, and is audited.
    app.step_up(&owner).await;
    assert_eq!(app.post_as(&owner.token, "/api/v1/api-keys", &key).await.status(), 201);
    let failed =
        app.post_as(&owner.token, "/api/v1/auth/step-up", &json!({"code": "000000"})).await;
    assert_eq!(failed.status(), 401);
    let actions: Vec<String> = app
        .audit_events(&owner)
        .await
        .iter()
        .filter_map(|e| e["action"].as_str().map(str::to_owned))
        .collect();
    assert!(actions.contains(&"auth.step_up".to_owned()), "{actions:?}");
    // An API key can never step up.
    let (_, api_key) = app.api_key(&owner, &["export:run", "contacts:read"]).await;
    let by_key = app.post_as(&api_key, "/api/v1/exports/contacts", &json!({})).await;
    assert_eq!(by_key.status(), 403);
}

#[tokio::test]
async fn removing_totp_needs_a_step_up_and_ends_other_sessions() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let (secret, codes) = enrol(&app, &owner).await;
    let body = ticket(&app, &owner).await;
    let other: Value = verify(&app, &body["mfa_token"], "backup_code", &codes[9])
        .await
        .json()
        .await
        .expect("json");
    let other = other["access_token"].as_str().expect("token").to_owned();

    // Enrolling is no step-up: regenerating codes needs one first, and kills the old codes.
    let refused = app.post_as(&owner.token, "/api/v1/auth/mfa/backup-codes", &json!({})).await;
    assert_eq!(expect_problem(refused, 403).await["code"], "step_up_required");
    let step_up =
        app.post_as(&owner.token, "/api/v1/auth/step-up", &json!({"backup_code": codes[8]})).await;
    assert_eq!(step_up.status(), 204);
    let fresh: Value = app
        .post_as(&owner.token, "/api/v1/auth/mfa/backup-codes", &json!({}))
        .await
        .json()
        .await
        .expect("json");
    let fresh: Vec<String> = fresh["backup_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .filter_map(|c| c.as_str().map(str::to_owned))
        .collect();
    let body = ticket(&app, &owner).await;
    assert_eq!(
        verify(&app, &body["mfa_token"], "backup_code", &codes[0]).await.status(),
        401,
        "old codes are dead"
    );
    assert_eq!(verify(&app, &body["mfa_token"], "backup_code", &fresh[0]).await.status(), 200);

    let removed = app.delete_as(&owner.token, "/api/v1/auth/mfa/totp").await;
    assert_eq!(removed.status(), 204);
    assert_eq!(
        app.get_as(&other, "/api/v1/me").await.status(),
        401,
        "an MFA reset ends other sessions"
    );
    let login: Value = app.login(&owner.email, PASSWORD).await.json().await.expect("json");
    assert!(login["access_token"].is_string(), "no second factor any more");
    let _ = secret;
}
