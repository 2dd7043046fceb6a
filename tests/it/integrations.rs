//! Google and Zoom over OAuth 2.0 against a real authorization server (authlib, checking
//! PKCE itself) and fakes of their APIs built from their documented paths: the connect flow,
//! every way a `state` can be wrong, refresh on use and in the background, revocation on
//! disconnect, the vault (no token in any answer, log line, SQLite file or pg_dump), Zoom's
//! signed deauthorization with its compliance call, and the response filter.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::binary::Running;
use crate::support::integrations::{
    ZOOM_SECRET, authorize, connect, control, log, provider_settings, tokens, unique_login,
};
use crate::support::{
    Account, PASSWORD, TestApp, block_on, database_bytes, expect_problem, unique_email,
};

async fn app() -> TestApp {
    let settings = provider_settings();
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    TestApp::spawn_with(&pairs).await
}

async fn start(app: &TestApp, who: &Account, provider: &str) -> String {
    let path = format!("/api/v1/integrations/{provider}/connect");
    let started: Value =
        app.post_as(&who.token, &path, &json!({})).await.json().await.expect("json");
    started["authorize_url"].as_str().expect("authorize_url").to_owned()
}

async fn callback(
    app: &TestApp,
    who: &Account,
    provider: &str,
    code: &str,
    state: &str,
) -> reqwest::Response {
    let enc = |t: &str| form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>();
    let path =
        format!("/api/v1/integrations/{provider}/callback?code={}&state={}", enc(code), enc(state));
    app.get_as(&who.token, &path).await
}

async fn list(app: &TestApp, who: &Account) -> Vec<Value> {
    let listed: Value =
        app.get_as(&who.token, "/api/v1/integrations").await.json().await.expect("json");
    listed["items"].as_array().expect("items").clone()
}

#[tokio::test]
async fn a_zoom_connection_uses_pkce_keeps_its_tokens_sealed_and_creates_a_meeting() {
    let app = app().await;
    let owner = app.signup("Acme").await;
    let login = unique_login("zoom");
    let connected = connect(&app, &owner.token, "zoom", &login).await;
    assert_eq!(
        (
            connected["provider"].clone(),
            connected["status"].clone(),
            connected["account_email"].clone()
        ),
        (json!("zoom"), json!("connected"), json!(login))
    );
    let record = log(&login).await;
    let exchange = &record["token"][0];
    assert_eq!(
        (
            exchange["grant_type"].clone(),
            exchange["pkce_verifier_sent"].clone(),
            exchange["ok"].clone()
        ),
        (json!("authorization_code"), json!(true), json!(true)),
        "{record}"
    );
    // The authorization URL asked for the least scopes, S256 and a state.
    let url = start(&app, &owner, "zoom").await;
    for part in ["code_challenge_method=S256", "scope=meeting%3Awrite+user%3Aread", "state="] {
        assert!(url.contains(part), "{part} in {url}");
    }

    let response = app.get_as(&owner.token, "/api/v1/integrations").await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let listed: Value = response.json().await.expect("json");
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));

    // A meeting through the vault, noted on an activity.
    let activity: Value = app
        .post_as(&owner.token, "/api/v1/activities", &json!({"kind": "meeting", "subject": "Kick-off", "occurred_at": "2026-12-10T10:00:00Z"}))
        .await
        .json()
        .await
        .expect("json");
    let body = json!({"topic": "Kick-off", "start_time": "2026-12-10T10:00:00Z", "duration_minutes": 30, "activity_id": activity["id"]});
    let meeting = app.post_as(&owner.token, "/api/v1/integrations/zoom/meetings", &body).await;
    assert_eq!(meeting.status(), 201);
    assert_eq!(meeting.headers()["cache-control"], "no-store");
    let meeting: Value = meeting.json().await.expect("json");
    let join = meeting["join_url"].as_str().expect("join_url").to_owned();
    assert!(join.starts_with("https://zoom.example/j/"));
    let path = format!("/api/v1/activities/{}", activity["id"].as_str().expect("id"));
    let noted: Value = app.get_as(&owner.token, &path).await.json().await.expect("json");
    assert!(noted["details"].as_str().unwrap_or_default().contains(&join), "{noted}");
    let api = log(&login).await["api"].clone();
    assert!(
        api.as_array()
            .expect("api")
            .iter()
            .any(|c| c["path"] == "/zoom-api/v2/users/me/meetings" && c["ok"] == true),
        "{api}"
    );
    // A meeting for an activity of nobody's: 404 before anything is created at Zoom.
    let stray = json!({"topic": "x", "start_time": "2026-12-10T10:00:00Z", "duration_minutes": 30, "activity_id": uuid::Uuid::now_v7()});
    expect_problem(
        app.post_as(&owner.token, "/api/v1/integrations/zoom/meetings", &stray).await,
        404,
    )
    .await;

    // The vault: no token in plaintext in the database file or the dump.
    let issued = tokens(&login).await;
    assert!(issued.len() >= 2, "{issued:?}");
    let stored = database_bytes(&app.db).await;
    let stored = String::from_utf8_lossy(&stored);
    for token in &issued {
        assert!(!stored.contains(token.as_str()), "a token is stored in plaintext");
    }
    assert!(!stored.contains(&login), "the account's email is sealed too");

    // Another tenant sees nothing of it and cannot use it.
    let other = app.signup("Other").await;
    assert!(list(&app, &other).await.is_empty());
    expect_problem(
        app.post_as(
            &other.token,
            "/api/v1/integrations/zoom/meetings",
            &json!({"topic": "x", "start_time": "2026-12-10T10:00:00Z", "duration_minutes": 30}),
        )
        .await,
        404,
    )
    .await;
    expect_problem(app.delete_as(&other.token, "/api/v1/integrations/zoom").await, 404).await;
    assert_eq!(list(&app, &owner).await.len(), 1);
}

#[tokio::test]
async fn a_state_that_is_altered_expired_replayed_or_someone_elses_is_refused_and_audited() {
    let app = app().await;
    let owner = app.signup("Acme").await;
    let colleague = app.add_member(&owner, "agent").await;
    let login = unique_login("state");

    // Altered: one character of the payload changed.
    let (code, state) = authorize(&start(&app, &owner, "google").await, &login).await;
    let mut altered = state.clone().into_bytes();
    altered[3] = if altered[3] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).expect("ascii");
    assert_eq!(
        expect_problem(callback(&app, &owner, "google", &code, &altered).await, 400).await["code"],
        "invalid_state"
    );
    // Another provider's callback, another user's session.
    expect_problem(callback(&app, &owner, "zoom", &code, &state).await, 400).await;
    expect_problem(callback(&app, &colleague, "google", &code, &state).await, 400).await;
    // The real one still works (nothing above consumed it), once.
    assert_eq!(callback(&app, &owner, "google", &code, &state).await.status(), 200);
    expect_problem(callback(&app, &owner, "google", &code, &state).await, 400).await;
    // Missing pieces.
    expect_problem(
        app.get_as(&owner.token, "/api/v1/integrations/google/callback?code=x").await,
        400,
    )
    .await;

    // Another session of the same user.
    let (code, state) = authorize(&start(&app, &owner, "google").await, &login).await;
    let second = app.login_ok(&owner.email, PASSWORD).await.0;
    let other_session = Account { token: second, ..owner.clone() };
    expect_problem(callback(&app, &other_session, "google", &code, &state).await, 400).await;
    // Expired: past its 10 minutes.
    let (code2, state2) = authorize(&start(&app, &owner, "google").await, &login).await;
    crate::support::raw_execute(&app.db, "UPDATE oauth_states SET expires_at = 0").await;
    expect_problem(callback(&app, &owner, "google", &code2, &state2).await, 400).await;
    let refused = app
        .audit_events(&owner)
        .await
        .into_iter()
        .filter(|e| e["action"] == "integration.state_refused")
        .count();
    assert!(refused >= 6, "each refusal is audited ({refused})");
    assert_eq!(list(&app, &owner).await.len(), 1, "only the one good callback connected");
}

#[tokio::test]
async fn tokens_are_refreshed_near_expiry_and_in_the_background_and_a_failed_refresh_marks_error() {
    let app = app().await;
    let owner = app.signup("Acme").await;
    let login = unique_login("refresh");
    // Tokens that expire in 200 s: inside the 5-minute window at once.
    control("/control/expires_in", json!({"user": login, "seconds": 200})).await;
    connect(&app, &owner.token, "zoom", &login).await;
    let body =
        json!({"topic": "Sync", "start_time": "2026-12-10T10:00:00Z", "duration_minutes": 15});
    assert_eq!(
        app.post_as(&owner.token, "/api/v1/integrations/zoom/meetings", &body).await.status(),
        201
    );
    let grants = |record: &Value| -> Vec<String> {
        record["token"]
            .as_array()
            .expect("token")
            .iter()
            .filter(|t| t["ok"] == true)
            .map(|t| t["grant_type"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let record = log(&login).await;
    assert!(grants(&record).iter().any(|g| g == "refresh_token"), "refreshed on use: {record}");
    // The meeting used the new token (Zoom rotates the refresh token; the old one is void).
    assert!(record["api"].as_array().expect("api").iter().all(|c| c["ok"] == true), "{record}");

    // In the background: the refresher picks it up within its 30 s round.
    let before = grants(&log(&login).await).len();
    let mut refreshed = false;
    for _ in 0..45 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if grants(&log(&login).await).len() > before {
            refreshed = true;
            break;
        }
    }
    assert!(refreshed, "the background task refreshed the connection");

    // A refused refresh: the connection is in error, audited, and says so.
    control("/control/fail", json!({"user": login, "what": "refresh", "count": 10})).await;
    let failed = app.post_as(&owner.token, "/api/v1/integrations/zoom/meetings", &body).await;
    assert_eq!(expect_problem(failed, 502).await["code"], "integration_error");
    let items = list(&app, &owner).await;
    assert_eq!(items[0]["status"], "error", "{items:?}");
    assert!(app.audit_actions(&owner).await.iter().any(|a| a == "integration.refresh_failed"));
}

#[tokio::test]
async fn disconnecting_revokes_at_the_provider_first_and_deletes_the_tokens_even_when_that_fails() {
    let app = app().await;
    let owner = app.signup("Acme").await;
    let login = unique_login("revoke");
    connect(&app, &owner.token, "google", &login).await;
    assert_eq!(app.delete_as(&owner.token, "/api/v1/integrations/google").await.status(), 204);
    let record = log(&login).await;
    assert!(
        record["revoke"].as_array().expect("revoke").iter().any(|r| r["ok"] == true),
        "{record}"
    );
    // The revoked token no longer works at the provider; nothing is listed here.
    assert!(list(&app, &owner).await.is_empty());
    assert!(app.audit_actions(&owner).await.iter().any(|a| a == "integration.disconnect"));

    // The provider is down for revocation: retried, audited, and the tokens go anyway.
    let login = unique_login("revoke-fails");
    connect(&app, &owner.token, "google", &login).await;
    control("/control/fail", json!({"user": login, "what": "revoke", "count": 10})).await;
    assert_eq!(app.delete_as(&owner.token, "/api/v1/integrations/google").await.status(), 204);
    let attempts = log(&login).await["revoke"].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(attempts, 3, "three tries");
    assert!(list(&app, &owner).await.is_empty());
    assert!(app.audit_actions(&owner).await.iter().any(|a| a == "integration.revoke_failed"));
    // A member who is deactivated loses their connections, revoked at the provider.
    let agent = app.add_member(&owner, "agent").await;
    let login = unique_login("deactivated");
    connect(&app, &agent.token, "zoom", &login).await;
    app.step_up(&owner).await;
    let path = format!("/api/v1/users/{}", agent.user_id);
    assert_eq!(app.delete_as(&owner.token, &path).await.status(), 204, "deactivate");
    let record = log(&login).await;
    assert!(
        record["revoke"].as_array().is_some_and(|r| r.iter().any(|e| e["ok"] == true)),
        "{record}"
    );
    // A Google event needs a connection now.
    let event =
        json!({"summary": "x", "start": "2026-12-10T10:00:00Z", "end": "2026-12-10T11:00:00Z"});
    expect_problem(
        app.post_as(&owner.token, "/api/v1/integrations/google/events", &event).await,
        404,
    )
    .await;
}

#[tokio::test]
async fn a_google_event_is_created_through_the_vault_and_an_unconfigured_provider_is_404() {
    let app = app().await;
    let owner = app.signup("Acme").await;
    let login = unique_login("google");
    connect(&app, &owner.token, "google", &login).await;
    let event = json!({"summary": "Review", "start": "2026-12-10T10:00:00Z", "end": "2026-12-10T11:00:00Z", "attendees": ["ada@example.com"]});
    let created = app.post_as(&owner.token, "/api/v1/integrations/google/events", &event).await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.expect("json");
    assert!(
        created["html_link"].as_str().unwrap_or_default().starts_with("https://calendar.example/")
    );
    let backwards =
        json!({"summary": "x", "start": "2026-12-10T11:00:00Z", "end": "2026-12-10T10:00:00Z"});
    expect_problem(
        app.post_as(&owner.token, "/api/v1/integrations/google/events", &backwards).await,
        422,
    )
    .await;
    // Read-only members create nothing through anyone's connection.
    let readonly = app.add_member(&owner, "readonly").await;
    expect_problem(
        app.post_as(&readonly.token, "/api/v1/integrations/google/events", &event).await,
        403,
    )
    .await;
    // Tenant-wide connections need integrations:manage.
    let agent = app.add_member(&owner, "agent").await;
    let wide = app
        .post_as(&agent.token, "/api/v1/integrations/zoom/connect", &json!({"tenant_wide": true}))
        .await;
    expect_problem(wide, 403).await;

    let bare = TestApp::spawn().await;
    let someone = bare.signup("Bare").await;
    let off = bare.post_as(&someone.token, "/api/v1/integrations/zoom/connect", &json!({})).await;
    assert_eq!(expect_problem(off, 404).await["code"], "integration_disabled");
}

fn zoom_signature(secret: &str, timestamp: i64, body: &str) -> String {
    use hmac::{KeyInit as _, Mac as _};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("v0:{timestamp}:{body}").as_bytes());
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("v0={hex}")
}

async fn zoom_send(
    app: &TestApp,
    body: &str,
    signature: &str,
    timestamp: i64,
) -> reqwest::Response {
    app.client
        .post(app.url("/hooks/zoom"))
        .header("content-type", "application/json")
        .header("x-zm-signature", signature)
        .header("x-zm-request-timestamp", timestamp.to_string())
        .body(body.to_owned())
        .send()
        .await
        .expect("request")
}

async fn zoom_post(app: &TestApp, body: &str, secret: &str, timestamp: i64) -> reqwest::Response {
    zoom_send(app, body, &zoom_signature(secret, timestamp, body), timestamp).await
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

#[tokio::test]
async fn zoom_deauthorization_is_verified_deletes_the_tokens_once_and_confirms_compliance() {
    let app = app().await;
    let owner = app.signup("Acme").await;
    let login = unique_login("deauth");
    connect(&app, &owner.token, "zoom", &login).await;
    let zoom_user = format!(
        "zu-{}",
        login.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect::<String>()
    );

    // A meeting noted on an activity: data fetched through the connection.
    let activity: Value = app
        .post_as(&owner.token, "/api/v1/activities", &json!({"kind": "meeting", "subject": "Sync", "details": "Agenda", "occurred_at": "2026-12-10T10:00:00Z"}))
        .await
        .json()
        .await
        .expect("json");
    let activity_path = format!("/api/v1/activities/{}", activity["id"].as_str().expect("id"));
    let body = json!({"topic": "Sync", "start_time": "2026-12-10T10:00:00Z", "duration_minutes": 15, "activity_id": activity["id"]});
    assert_eq!(
        app.post_as(&owner.token, "/api/v1/integrations/zoom/meetings", &body).await.status(),
        201
    );
    let noted: Value = app.get_as(&owner.token, &activity_path).await.json().await.expect("json");
    assert!(noted["details"].as_str().unwrap_or_default().contains("zoom.example/j/"), "{noted}");
    // URL validation: the HMAC of the plain token.
    let validation = json!({"event": "endpoint.url_validation", "payload": {"plainToken": "qgg8vlvZRS6UYooatFL8Aw"}, "event_ts": 1}).to_string();
    let answer: Value =
        zoom_post(&app, &validation, ZOOM_SECRET, now()).await.json().await.expect("json");
    assert_eq!(answer["plainToken"], "qgg8vlvZRS6UYooatFL8Aw");
    assert_eq!(answer["encryptedToken"].as_str().map(str::len), Some(64));

    let deauth = json!({"event": "app_deauthorized", "event_ts": now() * 1000, "payload": {
        "account_id": "za-x", "user_id": zoom_user, "signature": "s", "deauthorization_time": "2026-12-06T10:00:00Z", "client_id": "zoom-test-client"}}).to_string();
    // Refused: a bad signature, an old timestamp, an unknown secret. Nothing changes.
    expect_problem(zoom_post(&app, &deauth, "wrong-secret", now()).await, 401).await;
    expect_problem(zoom_post(&app, &deauth, ZOOM_SECRET, now() - 600).await, 401).await;
    let signed = zoom_signature(ZOOM_SECRET, now(), &deauth);
    expect_problem(zoom_send(&app, &deauth.replace("za-x", "za-y"), &signed, now()).await, 401)
        .await;
    assert_eq!(list(&app, &owner).await.len(), 1, "nothing refused changed anything");
    let first = zoom_post(&app, &deauth, ZOOM_SECRET, now()).await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.json::<Value>().await.expect("json")["status"], "processed");
    let again: Value =
        zoom_post(&app, &deauth, ZOOM_SECRET, now()).await.json().await.expect("json");
    assert_eq!(again["status"], "duplicate", "each event once");
    assert!(list(&app, &owner).await.is_empty(), "the tokens are gone");
    let noted: Value = app.get_as(&owner.token, &activity_path).await.json().await.expect("json");
    assert_eq!(
        noted["details"],
        json!("Agenda"),
        "the meeting's link went, the rest stayed: {noted}"
    );
    assert!(app.audit_actions(&owner).await.iter().any(|a| a == "integration.deauthorized"));
    // The compliance confirmation, with the client credentials, retried until accepted.
    let mut confirmed = None;
    for _ in 0..40 {
        let entries = log(&login).await["compliance"].clone();
        if let Some(ok) = entries.as_array().and_then(|e| e.iter().find(|c| c["ok"] == true)) {
            confirmed = Some(ok.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let confirmed = confirmed.expect("Zoom got its compliance confirmation");
    assert_eq!(confirmed["body"]["user_id"], zoom_user.as_str());
    assert_eq!(confirmed["body"]["compliance_completed"], true);
}

#[tokio::test]
async fn the_zoom_compliance_call_is_retried_until_zoom_accepts_it() {
    let app = app().await;
    let owner = app.signup("Acme").await;
    let login = unique_login("compliance");
    connect(&app, &owner.token, "zoom", &login).await;
    let zoom_user = format!(
        "zu-{}",
        login.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect::<String>()
    );
    control("/control/fail", json!({"user": login, "what": "compliance", "count": 2})).await;
    let deauth = json!({"event": "app_deauthorized", "event_ts": now() * 1000, "payload": {
        "account_id": "za-x", "user_id": zoom_user, "deauthorization_time": "2026-12-06T10:00:00Z"}}).to_string();
    assert_eq!(zoom_post(&app, &deauth, ZOOM_SECRET, now()).await.status(), 200);
    let mut entries = vec![];
    for _ in 0..80 {
        entries = log(&login).await["compliance"].as_array().cloned().unwrap_or_default();
        if entries.iter().any(|c| c["ok"] == true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let failed = entries.iter().filter(|c| c["ok"] == false).count();
    assert_eq!(failed, 2, "{entries:?}");
    assert!(entries.iter().any(|c| c["ok"] == true), "accepted at the third try: {entries:?}");
}

/// The real binary, logging at debug: after a connect, a meeting, a refresh and a
/// disconnect, no token the provider issued appears in any answer, header or log line.
#[test]
fn no_token_reaches_an_answer_a_header_or_a_log_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = provider_settings();
    let mut env: Vec<(&str, &str)> =
        settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    env.extend([
        ("BULWARK_LISTEN", "127.0.0.1:0"),
        ("BULWARK_METRICS_LISTEN", "off"),
        ("BULWARK_LOG", "debug"),
    ]);
    let mut server = Running::serve(dir.path(), &env);
    let login = unique_login("scan");
    let seen = block_on(async {
        control("/control/expires_in", json!({"user": login, "seconds": 200})).await;
        let client = reqwest::Client::new();
        let url = |path: &str| format!("{}{path}", server.url);
        let mut seen = String::new();
        let email = unique_email("scan");
        let signup = json!({"tenant_name": "Scan", "email": email, "password": PASSWORD, "display_name": "O"});
        client.post(url("/api/v1/auth/signup")).json(&signup).send().await.expect("signup");
        let login_body: Value = client
            .post(url("/api/v1/auth/login"))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("json");
        let token = login_body["access_token"].as_str().expect("token").to_owned();
        let record = |response: reqwest::Response| async {
            let headers = format!("{:?}", response.headers());
            let body = response.text().await.unwrap_or_default();
            format!("{headers}\n{body}\n")
        };
        let started: Value = client
            .post(url("/api/v1/integrations/zoom/connect"))
            .bearer_auth(&token)
            .json(&json!({}))
            .send()
            .await
            .expect("connect")
            .json()
            .await
            .expect("json");
        let (code, state) =
            authorize(started["authorize_url"].as_str().expect("url"), &login).await;
        let enc = |t: &str| form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>();
        let callback = url(&format!(
            "/api/v1/integrations/zoom/callback?code={}&state={}",
            enc(&code),
            enc(&state)
        ));
        seen +=
            &record(client.get(callback).bearer_auth(&token).send().await.expect("callback")).await;
        seen += &record(
            client.get(url("/api/v1/integrations")).bearer_auth(&token).send().await.expect("list"),
        )
        .await;
        let meeting =
            json!({"topic": "Scan", "start_time": "2026-12-10T10:00:00Z", "duration_minutes": 15});
        seen += &record(
            client
                .post(url("/api/v1/integrations/zoom/meetings"))
                .bearer_auth(&token)
                .json(&meeting)
                .send()
                .await
                .expect("meeting"),
        )
        .await;
        seen += &record(
            client
                .get(url("/api/v1/audit-events?limit=200"))
                .bearer_auth(&token)
                .send()
                .await
                .expect("audit"),
        )
        .await;
        seen += &record(
            client
                .delete(url("/api/v1/integrations/zoom"))
                .bearer_auth(&token)
                .send()
                .await
                .expect("disconnect"),
        )
        .await;
        seen
    });
    std::thread::sleep(Duration::from_millis(300));
    server.stop();
    let logs = server.stdout_text() + &server.stderr.lock().expect("lock").join("\n");
    let issued = block_on(tokens(&login));
    assert!(issued.len() >= 3, "a connect and a refresh issued tokens: {issued:?}");
    assert!(seen.contains("join_url"), "the calls went through: {seen}");
    for token in &issued {
        assert!(!seen.contains(token.as_str()), "a token is in an answer");
        assert!(!logs.contains(token.as_str()), "a token is in the logs");
    }
    let db = std::fs::read(dir.path().join("bulwark-data/bulwark.db")).unwrap_or_default();
    let db = String::from_utf8_lossy(&db);
    for token in &issued {
        assert!(!db.contains(token.as_str()), "a token is in the SQLite file");
    }
}
