//! Identity: signup, login, lockout, tokens, refresh rotation, sessions, password change.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{JWT_SECRET, PASSWORD, TestApp, comparable, expect_problem, unique_email};

#[tokio::test]
async fn signup_then_login_then_me() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let response = app.get_as(&owner.token, "/api/v1/me").await;
    assert_eq!(response.status(), 200);
    let me: Value = response.json().await.expect("json");
    assert_eq!(me["user_id"], owner.user_id.as_str());
    assert_eq!(me["tenant_id"], owner.tenant_id.as_str());
    assert_eq!(me["email"], owner.email.as_str());
    assert_eq!(me["role"], "owner");

    let login: Value = app.login(&owner.email, PASSWORD).await.json().await.expect("json");
    assert_eq!(login["token_type"], "Bearer");
    assert_eq!(login["expires_in"], 900);
    assert_eq!(login["refresh_token"].as_str().map(str::len), Some(43));
}

#[tokio::test]
async fn signup_refuses_weak_passwords_taken_emails_and_can_be_closed() {
    let app = TestApp::spawn().await;
    let email = unique_email("dup");
    let weak = app
        .post_json(
            "/api/v1/auth/signup",
            &json!({"tenant_name": "T", "email": email, "password": "password1234", "display_name": "D"}),
        )
        .await;
    let body = expect_problem(weak, 422).await;
    assert_eq!(body["errors"][0]["field"], "password");
    assert!(!body.to_string().contains("password1234"), "the password is echoed: {body}");

    let ok = json!({"tenant_name": "T", "email": email, "password": PASSWORD, "display_name": "D"});
    let first = app.post_ok("/api/v1/auth/signup", &ok, 202).await;
    // A taken address gets the same answer as a new one (no account enumeration) and
    // changes nothing: the first password still signs in, the second does not.
    let other = "another long passphrase 42";
    let taken =
        json!({"tenant_name": "T2", "email": email, "password": other, "display_name": "E"});
    let again = app.post_ok("/api/v1/auth/signup", &taken, 202).await;
    assert_eq!(first, again);
    assert_eq!(first, json!({"status": "accepted"}), "no ids are handed out");
    let (token, _) = app.login_ok(&email, PASSWORD).await;
    assert_eq!(app.login(&email, other).await.status(), 401);
    let me: Value = app.get_as(&token, "/api/v1/me").await.json().await.expect("json");
    assert_eq!(me["display_name"], "D");
    assert_eq!(me["email_verified"], false);

    let closed = TestApp::spawn_with(&[("BULWARK_SIGNUP", "closed")]).await;
    let refused = closed.post_json("/api/v1/auth/signup", &ok).await;
    assert_eq!(expect_problem(refused, 403).await["code"], "signup_closed");
}

#[tokio::test]
async fn login_with_an_unknown_email_and_with_a_wrong_password_answer_the_same() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let wrong = comparable(app.login(&owner.email, "not the password at all").await).await;
    let unknown =
        comparable(app.login(&unique_email("nobody"), "not the password at all").await).await;
    assert_eq!(wrong, unknown);
    assert_eq!(wrong.0, 401);
    assert_eq!(wrong.1["code"], "invalid_credentials");
}

#[tokio::test]
async fn five_failures_lock_the_account_and_the_lock_expires() {
    let app = TestApp::spawn_with(&[("BULWARK_LOCKOUT_SECONDS", "2")]).await;
    let owner = app.signup("Acme").await;
    let wrong_answer = comparable(app.login(&owner.email, "wrong password one").await).await;
    for _ in 0..4 {
        assert_eq!(app.login(&owner.email, "wrong password two").await.status(), 401);
    }
    // Locked: even the right password fails, and the answer is the wrong-password answer.
    let locked = comparable(app.login(&owner.email, PASSWORD).await).await;
    assert_eq!(locked, wrong_answer);

    let events = app.audit_events(&owner).await;
    let actions: Vec<&str> = events.iter().filter_map(|e| e["action"].as_str()).collect();
    assert!(actions.contains(&"auth.lockout"), "{actions:?}");
    assert!(actions.iter().filter(|a| **a == "auth.login_failed").count() >= 6, "{actions:?}");
    assert!(app.metrics().await.contains("auth_lockouts_total"));

    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(app.login(&owner.email, PASSWORD).await.status(), 200, "the lock expired");
}

#[tokio::test]
async fn many_failures_from_one_ip_throttle_that_ip() {
    let app = TestApp::spawn_with(&[("BULWARK_LOCKOUT_IP_THRESHOLD", "3")]).await;
    for _ in 0..3 {
        assert_eq!(app.login(&unique_email("spray"), "some password here").await.status(), 401);
    }
    let response = app.login(&unique_email("spray"), "some password here").await;
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(expect_problem(response, 429).await["code"], "too_many_attempts");
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_session() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let first = owner.refresh.clone();
    let rotated: Value =
        app.post_ok("/api/v1/auth/refresh", &json!({"refresh_token": first}), 200).await;
    let second = rotated["refresh_token"].as_str().expect("refresh").to_owned();
    let access = rotated["access_token"].as_str().expect("access").to_owned();
    assert_ne!(second, first);
    assert_eq!(app.get_as(&access, "/api/v1/me").await.status(), 200);

    // The spent token comes back: theft. The family dies, including the newest token.
    let reuse = app.post_json("/api/v1/auth/refresh", &json!({"refresh_token": first})).await;
    expect_problem(reuse, 401).await;
    let newest = app.post_json("/api/v1/auth/refresh", &json!({"refresh_token": second})).await;
    expect_problem(newest, 401).await;
    assert_eq!(app.get_as(&access, "/api/v1/me").await.status(), 401, "access token of the family");

    let (token, _) = app.login_ok(&owner.email, PASSWORD).await;
    let actions: Vec<String> = app
        .audit_events(&crate::support::Account { token, ..owner })
        .await
        .iter()
        .filter_map(|e| e["action"].as_str().map(str::to_owned))
        .collect();
    assert!(actions.contains(&"auth.refresh_reuse".to_owned()), "{actions:?}");
}

#[tokio::test]
async fn logout_ends_the_session_and_its_refresh_token() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let response = app.post_as(&owner.token, "/api/v1/auth/logout", &json!({})).await;
    assert_eq!(response.status(), 204);
    assert_eq!(app.get_as(&owner.token, "/api/v1/me").await.status(), 401);
    let refresh =
        app.post_json("/api/v1/auth/refresh", &json!({"refresh_token": owner.refresh})).await;
    assert_eq!(refresh.status(), 401);
}

#[tokio::test]
async fn users_list_and_revoke_their_own_sessions() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let (laptop, _) = app.login_ok(&owner.email, PASSWORD).await;
    let sessions: Value =
        app.get_as(&owner.token, "/api/v1/auth/sessions").await.json().await.expect("json");
    let items = sessions["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items.iter().filter(|s| s["current"] == true).count(), 1);
    assert!(items.iter().all(|s| s["ip"] == "127.0.0.1"));
    let other = items.iter().find(|s| s["current"] == false).expect("the laptop session");
    let path = format!("/api/v1/auth/sessions/{}", other["id"].as_str().expect("id"));
    assert_eq!(app.delete_as(&owner.token, &path).await.status(), 204);
    assert_eq!(app.get_as(&laptop, "/api/v1/me").await.status(), 401);
    assert_eq!(app.get_as(&owner.token, "/api/v1/me").await.status(), 200);
    assert_eq!(app.delete_as(&owner.token, &path).await.status(), 404, "already revoked");
}

#[tokio::test]
async fn a_password_change_revokes_every_other_session() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let (other, other_refresh) = app.login_ok(&owner.email, PASSWORD).await;
    let new_password = "a brand new passphrase 2026";
    let wrong = app
        .post_as(
            &owner.token,
            "/api/v1/auth/password",
            &json!({"current_password": "not it at all", "new_password": new_password}),
        )
        .await;
    expect_problem(wrong, 422).await;
    let weak = app
        .post_as(
            &owner.token,
            "/api/v1/auth/password",
            &json!({"current_password": PASSWORD, "new_password": "short"}),
        )
        .await;
    expect_problem(weak, 422).await;
    let changed = app
        .post_as(
            &owner.token,
            "/api/v1/auth/password",
            &json!({"current_password": PASSWORD, "new_password": new_password}),
        )
        .await;
    assert_eq!(changed.status(), 204);
    assert_eq!(app.get_as(&other, "/api/v1/me").await.status(), 401);
    let refresh =
        app.post_json("/api/v1/auth/refresh", &json!({"refresh_token": other_refresh})).await;
    assert_eq!(refresh.status(), 401);
    assert_eq!(app.get_as(&owner.token, "/api/v1/me").await.status(), 200, "this session stays");
    assert_eq!(app.login(&owner.email, PASSWORD).await.status(), 401);
    assert_eq!(app.login(&owner.email, new_password).await.status(), 200);
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn sign(header: &Value, claims: &Value, key: &[u8]) -> String {
    use hmac::{KeyInit as _, Mac as _};
    let input =
        format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("key");
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(&mac.finalize().into_bytes()))
}

#[tokio::test]
async fn forged_and_expired_access_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let stranger = app.signup("Globex").await;
    let parts: Vec<&str> = owner.token.split('.').collect();
    use base64::Engine as _;
    let decode = |part: &str| -> Value {
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).expect("b64"),
        )
        .expect("json")
    };
    let header = decode(parts[0]);
    let claims = decode(parts[1]);
    let now = claims["iat"].as_i64().expect("iat");
    let with = |patch: Value| {
        let mut c = claims.clone();
        for (k, v) in patch.as_object().expect("object") {
            c[k] = v.clone();
        }
        c
    };
    let mut forged = vec![
        // alg none, unsigned.
        format!(
            "{}.{}.",
            b64(json!({"alg": "none", "typ": "JWT"}).to_string().as_bytes()),
            parts[1]
        ),
        format!(
            "{}.{}.",
            b64(json!({"alg": "none", "kid": header["kid"]}).to_string().as_bytes()),
            parts[1]
        ),
        // Edited payload under the original signature: promote to a different tenant.
        format!(
            "{}.{}.{}",
            parts[0],
            b64(with(json!({"role": "owner", "tid": uuid::Uuid::nil()})).to_string().as_bytes()),
            parts[2]
        ),
        // Re-signed with another key under the same kid.
        sign(&header, &with(json!({})), b"an-attacker-key-0123456789abcdef-xyz"),
        // Another algorithm with the right key.
        sign(&json!({"alg": "HS384", "kid": header["kid"]}), &claims, JWT_SECRET.as_bytes()),
        sign(&json!({"alg": "RS256", "kid": header["kid"]}), &claims, JWT_SECRET.as_bytes()),
        // Right key, but expired, not yet valid, wrong audience, wrong issuer, unknown kid.
        sign(
            &header,
            &with(json!({"iat": now - 3600, "nbf": now - 3600, "exp": now - 1800})),
            JWT_SECRET.as_bytes(),
        ),
        sign(&header, &with(json!({"nbf": now + 600, "exp": now + 1200})), JWT_SECRET.as_bytes()),
        sign(&header, &with(json!({"aud": "another-service"})), JWT_SECRET.as_bytes()),
        sign(&header, &with(json!({"iss": "https://evil.example"})), JWT_SECRET.as_bytes()),
        sign(&json!({"alg": "HS256", "kid": "unknown-kid"}), &claims, JWT_SECRET.as_bytes()),
        // Right key, live session, but the claims name someone else: the session is bound to
        // its user, tenant and role, so even the signing key cannot borrow a session.
        sign(&header, &with(json!({"sub": stranger.user_id})), JWT_SECRET.as_bytes()),
        sign(
            &header,
            &with(json!({"sub": stranger.user_id, "tid": stranger.tenant_id})),
            JWT_SECRET.as_bytes(),
        ),
        sign(&header, &with(json!({"tid": stranger.tenant_id})), JWT_SECRET.as_bytes()),
        sign(&header, &with(json!({"role": "readonly"})), JWT_SECRET.as_bytes()),
        "not-a-jwt".to_owned(),
        String::new(),
    ];
    // The control: the same construction with nothing changed is accepted.
    let genuine = sign(&header, &claims, JWT_SECRET.as_bytes());
    assert_eq!(app.get_as(&genuine, "/api/v1/me").await.status(), 200, "the test signer works");
    for (n, token) in forged.drain(..).enumerate() {
        let response = app.get_as(&token, "/api/v1/me").await;
        assert_eq!(response.status(), 401, "forgery {n} was accepted: {token}");
        assert!(response.headers().contains_key("www-authenticate"));
    }
    let no_header = app.get("/api/v1/me").await;
    expect_problem(no_header, 401).await;
    let basic = app
        .client
        .get(app.url("/api/v1/me"))
        .basic_auth("a", Some("b"))
        .send()
        .await
        .expect("send");
    assert_eq!(basic.status(), 401);
}

#[tokio::test]
async fn bad_bodies_are_problems_and_change_nothing() {
    let app = TestApp::spawn().await;
    let login = app.url("/api/v1/auth/login");
    let big = "x".repeat(2 * 1024 * 1024);
    let too_large = app
        .client
        .post(&login)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .expect("send");
    assert_eq!(expect_problem(too_large, 413).await["code"], "payload_too_large");
    let malformed = app
        .client
        .post(&login)
        .header("content-type", "application/json")
        .body("{\"email\":")
        .send()
        .await
        .expect("send");
    assert_eq!(expect_problem(malformed, 400).await["code"], "malformed_json");
    let unknown = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": "a@b.co", "password": "x", "admin": true}),
        )
        .await;
    let body = expect_problem(unknown, 422).await;
    assert_eq!(body["errors"][0]["field"], "admin");
    let form = app
        .client
        .post(&login)
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .expect("send");
    assert_eq!(expect_problem(form, 415).await["code"], "unsupported_media_type");
    let long_path = format!("/api/v1/users/{}", "9".repeat(5000));
    assert!(app.get(&long_path).await.status().is_client_error());
}

#[tokio::test]
async fn a_request_past_its_timeout_gets_408() {
    let app = TestApp::spawn_with(&[
        ("BULWARK_REQUEST_TIMEOUT", "1ms"),
        ("BULWARK_ARGON2_MEMORY_KIB", "65536"),
        ("BULWARK_ARGON2_ITERATIONS", "3"),
    ])
    .await;
    let response = app.login(&unique_email("slow"), "whatever password here").await;
    assert_eq!(expect_problem(response, 408).await["code"], "request_timeout");
}

#[tokio::test]
async fn the_default_hash_is_argon2id_with_owasp_parameters() {
    // The harness hashes fast; unsetting its values leaves the product's defaults.
    let app = TestApp::spawn_with(&[
        ("BULWARK_ARGON2_MEMORY_KIB", ""),
        ("BULWARK_ARGON2_ITERATIONS", ""),
        ("BULWARK_ARGON2_PARALLELISM", ""),
    ])
    .await;
    let owner = app.signup("Acme").await;
    let hash = crate::support::raw_scalar_text(
        &app.db,
        "SELECT password_hash FROM users WHERE email = $1",
        &owner.email,
    )
    .await;
    assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
    // It is a salted hash of this password: it verifies it, and only it.
    use argon2::PasswordVerifier as _;
    let parsed = argon2::PasswordHash::new(&hash).expect("a PHC string");
    assert!(parsed.salt.is_some_and(|salt| salt.len() >= 16), "a 16-byte salt at least");
    assert!(argon2::Argon2::default().verify_password(PASSWORD.as_bytes(), &parsed).is_ok());
    assert!(argon2::Argon2::default().verify_password(b"another password", &parsed).is_err());
}

#[tokio::test]
async fn the_openapi_document_describes_bodies_responses_and_security() {
    let app = TestApp::spawn().await;
    let doc: Value = app.get("/api/openapi.json").await.json().await.expect("json");
    let with_bodies = [
        ("post", "/api/v1/auth/signup"),
        ("post", "/api/v1/auth/login"),
        ("post", "/api/v1/auth/refresh"),
        ("post", "/api/v1/auth/password"),
        ("post", "/api/v1/api-keys"),
        ("post", "/api/v1/invitations"),
        ("post", "/api/v1/invitations/accept"),
        ("patch", "/api/v1/users/{id}"),
    ];
    for (method, path) in with_bodies {
        let operation = &doc["paths"][path][method];
        let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
        assert!(schema.is_object(), "{method} {path} has no request schema");
        assert!(operation["responses"]["422"].is_object(), "{method} {path} documents 422");
    }
    for (method, path, status) in [
        ("get", "/api/v1/me", "200"),
        ("post", "/api/v1/auth/login", "200"),
        ("get", "/api/v1/users", "200"),
        ("get", "/api/v1/api-keys", "200"),
        ("get", "/api/v1/audit-events", "200"),
        ("post", "/api/v1/api-keys", "201"),
    ] {
        let content =
            &doc["paths"][path][method]["responses"][status]["content"]["application/json"];
        assert!(content["schema"].is_object(), "{method} {path} {status} has no response schema");
    }
    let me = &doc["paths"]["/api/v1/me"]["get"];
    assert_eq!(me["security"][0]["bearer"], json!([]));
    assert!(me["responses"]["401"].is_object());
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    let text = doc.to_string();
    assert!(!text.contains("password_hash") && !text.contains("secret_hash"));
}
