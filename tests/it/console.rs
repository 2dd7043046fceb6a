//! The browser console's controls over HTTP, on both backends: the cookie's attributes and
//! lifecycle, the same-origin check and CSRF token on every write, the per-response CSP
//! nonce, CSP reports, step-up rotation, revocation and tenant isolation. The browser walk
//! itself (Chromium through WebDriver) is tests/browser/.

use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};

use crate::support::{Account, TestApp};

const COOKIE_NAME: &str = "__Host-bulwark_session";

/// A browser-like client of the console: its cookie, and the CSRF token of its last page.
struct Browser<'a> {
    app: &'a TestApp,
    cookie: Option<String>,
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        Browser { app, cookie: None }
    }

    /// A browser signed in as `who` (password only).
    async fn signed_in(app: &'a TestApp, who: &Account) -> Self {
        let mut browser = Browser::new(app);
        browser.sign_in(who, None).await;
        browser
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        let mut request = self.app.client.get(self.app.url(path));
        if let Some(cookie) = &self.cookie {
            request = request.header(COOKIE, format!("{COOKIE_NAME}={cookie}"));
        }
        request.send().await.expect("request")
    }

    /// A form post as a browser on this site sends it.
    async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.post_with(path, form, &[("sec-fetch-site", "same-origin")]).await
    }

    async fn post_with(
        &self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let body = serde_urlencoded::to_string(form).expect("a form");
        let mut request = self
            .app
            .client
            .post(self.app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(cookie) = &self.cookie {
            request = request.header(COOKIE, format!("{COOKIE_NAME}={cookie}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("request")
    }

    /// The CSRF token the page at `path` gives its forms.
    async fn csrf(&self, path: &str) -> String {
        let page = self.get(path).await;
        assert_eq!(page.status(), 200, "GET {path}");
        let html = page.text().await.expect("html");
        attribute_after(&html, "name=\"csrf_token\" value=\"").expect("a CSRF field")
    }

    /// Signs in with the password and, when asked, a backup code; keeps the cookie.
    async fn sign_in(&mut self, who: &Account, second: Option<&str>) -> reqwest::Response {
        let mut response =
            self.post("/login", &[("email", &who.email), ("password", &who.password)]).await;
        if let Some(code) = second {
            assert_eq!(response.status(), 200, "the second-factor page");
            let html = response.text().await.expect("html");
            let ticket = attribute_after(&html, "name=\"mfa_token\" value=\"").expect("ticket");
            response = self
                .post("/login/mfa", &[("mfa_token", &ticket), ("code", code), ("next", "/")])
                .await;
        }
        assert_eq!(response.status(), 303, "signed in");
        self.cookie = Some(cookie_value(&response).expect("a session cookie"));
        response
    }
}

fn attribute_after(html: &str, marker: &str) -> Option<String> {
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_owned())
}

fn set_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(COOKIE_NAME))
        .map(str::to_owned)
}

fn cookie_value(response: &reqwest::Response) -> Option<String> {
    let header = set_cookie(response)?;
    let value = header.split(';').next()?.split_once('=')?.1.to_owned();
    (!value.is_empty()).then_some(value)
}

fn location(response: &reqwest::Response) -> String {
    response.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

async fn contact_count(app: &TestApp, who: &Account) -> usize {
    let list: Value =
        app.get_as(&who.token, "/api/v1/contacts?limit=100").await.json().await.expect("json");
    list["items"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn signing_in_sets_a_host_only_secure_strict_cookie_and_signing_out_ends_it() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Console").await;
    let anonymous = Browser::new(&app);
    let home = anonymous.get("/").await;
    assert_eq!((home.status().as_u16(), location(&home)), (303, "/login?next=%2F".to_owned()));

    let mut browser = Browser::new(&app);
    let signed_in = browser.sign_in(&owner, None).await;
    let header = set_cookie(&signed_in).expect("Set-Cookie");
    let attributes: Vec<&str> = header.split(';').map(str::trim).collect();
    for wanted in ["Path=/", "HttpOnly", "SameSite=Strict", "Secure"] {
        assert!(attributes.contains(&wanted), "{wanted} in {header}");
    }
    assert!(!header.to_ascii_lowercase().contains("domain="), "host-only: {header}");

    let dashboard = browser.get("/").await;
    assert_eq!(dashboard.status(), 200);
    let headers = dashboard.headers().clone();
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers["content-type"].to_str().expect("ascii").starts_with("text/html"));
    let html = dashboard.text().await.expect("html");
    assert_eq!(html.matches("<h1>").count(), 1);
    assert!(html.contains("<h1>Dashboard</h1>"));

    // Sign-out is a POST with the token; the cookie is cleared and the session ends.
    let token = browser.csrf("/").await;
    let out = browser.post("/logout", &[("csrf_token", &token)]).await;
    assert_eq!((out.status().as_u16(), location(&out)), (303, "/login".to_owned()));
    assert!(set_cookie(&out).is_some_and(|c| c.contains("Max-Age=0")));
    let after = browser.get("/").await;
    assert_eq!(after.status(), 303, "the old cookie is refused after sign-out");
    assert!(app.audit_actions(&owner).await.iter().any(|a| a == "auth.logout"));
}

#[tokio::test]
async fn cross_site_writes_are_refused_before_the_session_is_read() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Console").await;
    let browser = Browser::signed_in(&app, &owner).await;
    let token = browser.csrf("/contacts/new").await;
    let form = [("csrf_token", token.as_str()), ("first_name", "Mallory")];
    for headers in [
        vec![("sec-fetch-site", "cross-site")],
        vec![("sec-fetch-site", "same-site")],
        vec![("origin", "null")],
        vec![("origin", "https://evil.example")],
        vec![],
    ] {
        let response = browser.post_with("/contacts", &form, &headers).await;
        assert_eq!(response.status(), 403, "{headers:?}");
        let html = response.text().await.expect("html");
        assert!(html.contains("did not come from this site"), "{headers:?}");
    }
    assert_eq!(contact_count(&app, &owner).await, 0, "nothing was created");

    // Without any cookie a cross-site post is a 403 too, not a redirect to the sign-in page.
    let anonymous = Browser::new(&app);
    let response = anonymous
        .post_with(
            "/login",
            &[("email", &owner.email), ("password", &owner.password)],
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(response.status(), 403);
    assert!(set_cookie(&response).is_none());

    // The same form from this site passes (the control refuses only what it should).
    let response = browser.post("/contacts", &form).await;
    assert_eq!(response.status(), 303);
    assert_eq!(contact_count(&app, &owner).await, 1);
}

#[tokio::test]
async fn a_write_without_the_sessions_csrf_token_is_refused() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Console").await;
    let browser = Browser::signed_in(&app, &owner).await;
    let token = browser.csrf("/contacts/new").await;

    let missing = browser.post("/contacts", &[("first_name", "Eve")]).await;
    assert_eq!(missing.status(), 403);
    let wrong = browser.post("/contacts", &[("csrf_token", "0000"), ("first_name", "Eve")]).await;
    assert_eq!(wrong.status(), 403);
    // Another session's token is no good either.
    let mut other = Browser::new(&app);
    other.sign_in(&owner, None).await;
    let others = other.csrf("/contacts/new").await;
    assert_ne!(others, token);
    let foreign =
        browser.post("/contacts", &[("csrf_token", &others), ("first_name", "Eve")]).await;
    assert_eq!(foreign.status(), 403);
    assert_eq!(contact_count(&app, &owner).await, 0, "nothing was created");

    // The header works like the field (for scripts).
    let by_header = browser
        .post_with(
            "/contacts",
            &[("first_name", "Eve")],
            &[("sec-fetch-site", "same-origin"), ("x-csrf-token", &token)],
        )
        .await;
    assert_eq!(by_header.status(), 303);
    let by_field =
        browser.post("/contacts", &[("csrf_token", &token), ("first_name", "Eve")]).await;
    assert_eq!(by_field.status(), 303);
    assert_eq!(contact_count(&app, &owner).await, 2);
}

#[tokio::test]
async fn every_page_gets_a_fresh_nonce_and_no_unsafe_inline() {
    let app = TestApp::spawn().await;
    let browser = Browser::new(&app);
    let mut nonces = vec![];
    for _ in 0..2 {
        let page = browser.get("/login").await;
        assert_eq!(page.status(), 200);
        let csp = page.headers()["content-security-policy"].to_str().expect("ascii").to_owned();
        for directive in [
            "script-src 'nonce-",
            "'strict-dynamic'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
            "form-action 'self'",
            "connect-src 'self'",
            "img-src 'self' data:",
            "report-uri /csp-report",
        ] {
            assert!(csp.contains(directive), "{directive} in {csp}");
        }
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
        let nonce = csp.split("'nonce-").nth(1).and_then(|rest| rest.split('\'').next());
        let nonce = nonce.expect("a nonce").to_owned();
        assert!(nonce.len() >= 22, "128 bits: {nonce}");
        let html = page.text().await.expect("html");
        assert!(html.contains(&format!("nonce=\"{nonce}\"")), "the script carries the nonce");
        assert!(html.contains("name=\"viewport\""));
        nonces.push(nonce);
    }
    assert_ne!(nonces[0], nonces[1]);

    // The API keeps its own policy.
    let api = app.get("/healthz").await;
    assert_eq!(
        api.headers()["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'"
    );

    // Assets: hashed names, cached for a year, the right type; other names are 404.
    let html = browser.get("/login").await.text().await.expect("html");
    let css = attribute_after(&html, "rel=\"stylesheet\" href=\"").expect("stylesheet");
    let asset = browser.get(&css).await;
    assert_eq!(asset.status(), 200);
    assert!(asset.headers()["cache-control"].to_str().expect("ascii").contains("immutable"));
    assert!(asset.headers()["content-type"].to_str().expect("ascii").starts_with("text/css"));
    assert_eq!(browser.get("/assets/console.0000000000000000.css").await.status(), 404);
}

#[tokio::test]
async fn csp_reports_are_counted_and_oversized_ones_refused() {
    let app = TestApp::spawn().await;
    let report = json!({"csp-report": {"document-uri": "http://x/login", "violated-directive": "script-src-elem", "blocked-uri": "inline"}});
    let response = app
        .client
        .post(app.url("/csp-report"))
        .header("content-type", "application/csp-report")
        .body(report.to_string())
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 204);
    assert!(app.metrics().await.contains("csp_violations_total 1"));
    let large = app
        .client
        .post(app.url("/csp-report"))
        .header("content-type", "application/csp-report")
        .body(vec![b' '; 65 * 1024 + 1])
        .send()
        .await
        .expect("request");
    assert_eq!(large.status(), 413);
    assert!(app.metrics().await.contains("csp_violations_total 1"), "not counted");
}

#[tokio::test]
async fn revealing_needs_a_step_up_which_replaces_the_cookie() {
    let app = TestApp::spawn_with(&[("BULWARK_STEP_UP_SECONDS", "1")]).await;
    let owner = app.signup("Console").await;
    app.step_up(&owner).await; // enrols TOTP; the sign-in below needs a second factor
    let contact: Value = app
        .post_as(
            &owner.token,
            "/api/v1/contacts",
            &json!({"first_name": "Ada", "ssn": "123-45-6789"}),
        )
        .await
        .json()
        .await
        .expect("json");
    let id = contact["id"].as_str().expect("id").to_owned();
    let mut browser = Browser::new(&app);
    let code = app.take_backup_code(&owner.email);
    browser.sign_in(&owner, Some(&code)).await;
    let first = browser.cookie.clone().expect("cookie");

    let detail = browser.get(&format!("/contacts/{id}")).await.text().await.expect("html");
    assert!(!detail.contains("123-45-6789"), "masked on the detail page");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let reveal = format!("/contacts/{id}/reveal");
    let refused = browser.get(&reveal).await;
    assert_eq!(refused.status(), 303);
    let to_step_up = location(&refused);
    assert!(to_step_up.starts_with("/step-up?next="), "{to_step_up}");
    assert!(!app.audit_actions(&owner).await.iter().any(|a| a == "contact.sensitive_read"));

    // A wrong code changes nothing; a right one gives a new cookie and the old one dies.
    let token = browser.csrf(&to_step_up).await;
    let wrong = browser.post("/step-up", &[("csrf_token", &token), ("code", "000000")]).await;
    assert_ne!(wrong.status(), 303);
    let code = app.take_backup_code(&owner.email);
    let stepped = browser
        .post("/step-up", &[("csrf_token", &token), ("code", &code), ("next", &reveal)])
        .await;
    assert_eq!((stepped.status().as_u16(), location(&stepped)), (303, reveal.clone()));
    let second = cookie_value(&stepped).expect("a new cookie");
    assert_ne!(first, second);
    browser.cookie = Some(first);
    assert_eq!(browser.get("/").await.status(), 303, "the pre-step-up cookie is refused");
    browser.cookie = Some(second);
    let revealed = browser.get(&reveal).await;
    assert_eq!(revealed.status(), 200);
    assert!(revealed.text().await.expect("html").contains("123-45-6789"));
    assert!(app.audit_actions(&owner).await.iter().any(|a| a == "contact.sensitive_read"));
}

#[tokio::test]
async fn a_console_session_revoked_from_another_device_is_refused() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Console").await;
    let browser = Browser::signed_in(&app, &owner).await;
    let sessions: Value =
        app.get_as(&owner.token, "/api/v1/auth/sessions").await.json().await.expect("json");
    let console = sessions["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|s| s["current"] == false)
        .expect("the console session is listed")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let revoked = app.delete_as(&owner.token, &format!("/api/v1/auth/sessions/{console}")).await;
    assert_eq!(revoked.status(), 204);
    assert_eq!(browser.get("/").await.status(), 303, "signed out at once on this instance");
}

#[tokio::test]
async fn a_cookie_naming_an_api_session_or_a_forged_secret_is_refused() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Console").await;
    let sid = crate::support::token_claims(&owner.token)["sid"].as_str().expect("sid").to_owned();
    let mut browser = Browser::new(&app);
    for forged in [format!("{sid}.{}", "A".repeat(43)), format!("{sid}."), "garbage".to_owned()] {
        browser.cookie = Some(forged.clone());
        assert_eq!(browser.get("/").await.status(), 303, "{forged}");
    }
    browser.sign_in(&owner, None).await;
    let real = browser.cookie.clone().expect("cookie");
    let (console_sid, _) = real.split_once('.').expect("sid.secret");
    browser.cookie = Some(format!("{console_sid}.{}", "A".repeat(43)));
    assert_eq!(browser.get("/").await.status(), 303, "another secret for the same session");
    // A console session has no refresh token for an API client to find.
    browser.cookie = Some(real);
    assert_eq!(browser.get("/").await.status(), 200);
}

#[tokio::test]
async fn another_tenants_records_are_not_found_on_any_console_route() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Ours").await;
    let other = app.signup("Theirs").await;
    let create = |path: &'static str, body: Value| {
        let (app, token) = (&app, other.token.clone());
        async move {
            let created: Value = app.post_as(&token, path, &body).await.json().await.expect("json");
            created["id"].as_str().expect("id").to_owned()
        }
    };
    let contact =
        create("/api/v1/contacts", json!({"first_name": "Theirs", "ssn": "987-65-4321"})).await;
    let company = create("/api/v1/companies", json!({"name": "Theirs Inc"})).await;
    let lead = create("/api/v1/leads", json!({"title": "Theirs lead"})).await;
    let task = create("/api/v1/tasks", json!({"title": "Theirs task"})).await;
    let pipeline: Value = app
        .post_as(
            &other.token,
            "/api/v1/pipelines",
            &json!({"name": "P", "stages": [{"name": "A"}, {"name": "B"}]}),
        )
        .await
        .json()
        .await
        .expect("json");
    let deal = create(
        "/api/v1/deals",
        json!({"title": "Theirs deal", "pipeline_id": pipeline["id"], "currency": "USD"}),
    )
    .await;
    let their_stage = pipeline["stages"][1]["id"].as_str().expect("stage").to_owned();
    let their_sid =
        crate::support::token_claims(&other.token)["sid"].as_str().expect("sid").to_owned();

    // A sign-in with a second factor counts as a step-up, so even reveal reaches the lookup.
    app.step_up(&owner).await;
    let mut browser = Browser::new(&app);
    let code = app.take_backup_code(&owner.email);
    browser.sign_in(&owner, Some(&code)).await;
    let token = browser.csrf("/").await;
    let records = [
        ("contacts", &contact),
        ("companies", &company),
        ("leads", &lead),
        ("deals", &deal),
        ("tasks", &task),
    ];
    for (kind, id) in records {
        for path in [format!("/{kind}/{id}"), format!("/{kind}/{id}/edit")] {
            let response = browser.get(&path).await;
            assert_eq!(response.status(), 404, "{path}");
            assert!(!response.text().await.expect("html").contains("Theirs"), "{path}");
        }
        let update = browser
            .post(
                &format!("/{kind}/{id}"),
                &[("csrf_token", &token), ("title", "Owned"), ("name", "Owned")],
            )
            .await;
        assert_eq!(update.status(), 404, "POST /{kind}/{id}");
        if kind != "tasks" {
            let note = browser
                .post(
                    &format!("/{kind}/{id}/notes"),
                    &[("csrf_token", &token), ("body", "mine now")],
                )
                .await;
            assert!(
                matches!(note.status().as_u16(), 404 | 422),
                "notes of {kind}: {}",
                note.status()
            );
        }
    }
    assert_eq!(browser.get(&format!("/contacts/{contact}/reveal")).await.status(), 404);
    for kind in ["contacts", "deals"] {
        let id = if kind == "contacts" { &contact } else { &deal };
        let activity = browser
            .post(
                &format!("/{kind}/{id}/activities"),
                &[
                    ("csrf_token", &token),
                    ("kind", "call"),
                    ("subject", "mine now"),
                    ("occurred_at", "2026-01-01T10:00"),
                ],
            )
            .await;
        assert!(matches!(activity.status().as_u16(), 404 | 422), "activities of {kind}");
    }
    let moved = browser
        .post(
            &format!("/deals/{deal}/stage"),
            &[("csrf_token", &token), ("stage_id", &their_stage)],
        )
        .await;
    assert_eq!(moved.status(), 404);
    let board =
        browser.get(&format!("/deals?pipeline={}", pipeline["id"].as_str().expect("id"))).await;
    assert!(!board.text().await.expect("html").contains("Theirs deal"), "their board is not shown");
    let revoke = browser
        .post(&format!("/account/sessions/{their_sid}/revoke"), &[("csrf_token", &token)])
        .await;
    assert_eq!(revoke.status(), 404);

    // Their email domain, suppression, document, member, invitation and API key.
    let domain = create("/api/v1/email/domains", json!({"domain": "mail.theirs.example"})).await;
    let suppression = create(
        "/api/v1/email/suppressions",
        json!({"email": "x@theirs.example", "reason": "manual"}),
    )
    .await;
    let upload = app
        .upload_as(
            &other.token,
            &[("contact_id", contact.as_str())],
            "t.pdf",
            b"%PDF-1.4\n%%EOF\n".to_vec(),
        )
        .await;
    let document: Value = upload.json().await.expect("json");
    let document = document["id"].as_str().expect("document").to_owned();
    app.step_up(&other).await;
    let invitation =
        create("/api/v1/invitations", json!({"email": "i@theirs.example", "role": "agent"})).await;
    let key =
        create("/api/v1/api-keys", json!({"name": "theirs", "scopes": ["contacts:read"]})).await;
    let their_user = other.user_id.clone();
    assert_eq!(browser.get(&format!("/email/domains/{domain}")).await.status(), 404);
    assert_eq!(browser.get(&format!("/documents/{document}/content")).await.status(), 404);
    for (path, form) in [
        (format!("/email/domains/{domain}/verify"), vec![]),
        (format!("/email/domains/{domain}/delete"), vec![]),
        (format!("/email/suppressions/{suppression}/delete"), vec![]),
        (format!("/documents/{document}/delete"), vec![]),
        (format!("/admin/members/{their_user}/role"), vec![("role", "readonly")]),
        (format!("/admin/members/{their_user}/deactivate"), vec![]),
        (format!("/admin/invitations/{invitation}/revoke"), vec![]),
        (format!("/admin/api-keys/{key}/revoke"), vec![]),
    ] {
        let mut fields = vec![("csrf_token", token.as_str())];
        fields.extend(form);
        let response = browser.post(&path, &fields).await;
        assert_eq!(response.status(), 404, "{path}");
    }
    let theirs_left = |path: &'static str| {
        let (app, token) = (&app, other.token.clone());
        async move {
            let list: Value = app.get_as(&token, path).await.json().await.expect("json");
            list["items"].as_array().map_or(0, Vec::len)
        }
    };
    assert_eq!(theirs_left("/api/v1/email/domains").await, 1);
    assert_eq!(theirs_left("/api/v1/email/suppressions").await, 1);
    assert_eq!(theirs_left("/api/v1/invitations").await, 1);
    let keys: Value =
        app.get_as(&other.token, "/api/v1/api-keys").await.json().await.expect("json");
    assert!(keys["items"][0]["revoked_at"].is_null(), "their key lives");
    let docs: Value = app
        .get_as(&other.token, &format!("/api/v1/documents?contact_id={contact}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(docs["items"].as_array().map(Vec::len), Some(1), "their document stays");

    // Nothing of theirs changed.
    for (kind, id) in records {
        let still: Value = app
            .get_as(&other.token, &format!("/api/v1/{kind}/{id}"))
            .await
            .json()
            .await
            .expect("json");
        assert!(!still.to_string().contains("Owned"), "{kind} unchanged");
    }
    let deal_now: Value = app
        .get_as(&other.token, &format!("/api/v1/deals/{deal}"))
        .await
        .json()
        .await
        .expect("json");
    assert_ne!(deal_now["stage_id"], their_stage.as_str(), "not moved");
    let notes: Value = app.get_as(&other.token, "/api/v1/notes").await.json().await.expect("json");
    assert_eq!(notes["items"].as_array().map(Vec::len), Some(0), "no note was added");
    assert_eq!(app.get_as(&other.token, "/api/v1/me").await.status(), 200, "their session lives");
}

#[tokio::test]
async fn the_board_shows_every_deal_past_one_api_page_with_amounts_in_major_units() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Board").await;
    let pipeline: Value = app
        .post_as(
            &owner.token,
            "/api/v1/pipelines",
            &json!({"name": "Big", "stages": [{"name": "Open"}]}),
        )
        .await
        .json()
        .await
        .expect("json");
    // One more than the API's largest page: the board must read a second page.
    for n in 0..101 {
        let body = json!({"title": format!("Deal {n}"), "pipeline_id": pipeline["id"],
                          "currency": "EUR", "amount_minor": 123_456_789});
        assert_eq!(app.post_as(&owner.token, "/api/v1/deals", &body).await.status(), 201);
    }
    let browser = Browser::signed_in(&app, &owner).await;
    let board = browser.get("/deals").await.text().await.expect("html");
    assert_eq!(
        board.matches("<article class=\"deal\">").count(),
        101,
        "every deal is on the board"
    );
    assert!(board.contains("Deal 0<") && board.contains("Deal 100<"));
    assert!(board.contains("1,234,567.89 EUR"), "amounts in major units");
    assert!(!board.contains("The board shows the first"), "nothing was left out");
}

#[tokio::test]
async fn companies_leads_tasks_and_deals_on_a_board_through_the_forms() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Console").await;
    let browser = Browser::signed_in(&app, &owner).await;
    let token = browser.csrf("/companies/new").await;

    let company = browser
        .post(
            "/companies",
            &[("csrf_token", &token), ("name", "Initech"), ("domain", "initech.example")],
        )
        .await;
    assert_eq!(company.status(), 303);
    let company_page = location(&company);
    let list = browser.get("/companies?q=Initech").await.text().await.expect("html");
    // The escaper writes `/` as `&#x2f;` in attributes; a browser reads it back.
    assert!(list.replace("&#x2f;", "/").contains(&company_page), "the list links the company");
    let renamed =
        browser.post(&company_page, &[("csrf_token", &token), ("name", "Initrode")]).await;
    assert_eq!(renamed.status(), 303);
    assert!(browser.get(&company_page).await.text().await.expect("html").contains("Initrode"));
    let bad = browser
        .post("/companies", &[("csrf_token", &token), ("name", ""), ("domain", "not a domain")])
        .await;
    assert_eq!(bad.status(), 422, "the API's rules, next to the fields");

    // A note on the company's page.
    let note = browser
        .post(
            &format!("{company_page}/notes"),
            &[("csrf_token", &token), ("body", "Met at the fair")],
        )
        .await;
    assert_eq!((note.status().as_u16(), location(&note)), (303, company_page.clone()));
    assert!(
        browser.get(&company_page).await.text().await.expect("html").contains("Met at the fair")
    );

    let lead = browser
        .post("/leads", &[("csrf_token", &token), ("title", "Big one"), ("status", "qualified")])
        .await;
    assert_eq!(lead.status(), 303);
    assert!(browser.get(&location(&lead)).await.text().await.expect("html").contains("qualified"));
    let task = browser
        .post(
            "/tasks",
            &[
                ("csrf_token", &token),
                ("title", "Call back"),
                ("due_date", "2027-01-15"),
                ("done", "false"),
            ],
        )
        .await;
    assert_eq!(task.status(), 303);
    let done = browser.post(&location(&task), &[("csrf_token", &token), ("done", "true")]).await;
    assert_eq!(done.status(), 303);
    let tasks: Value = app.get_as(&owner.token, "/api/v1/tasks").await.json().await.expect("json");
    assert_eq!(tasks["items"][0]["done"], true);

    // A pipeline, a deal on its board, a move between stages.
    let pipeline = browser
        .post(
            "/pipelines",
            &[
                ("csrf_token", &token),
                ("name", "Sales"),
                ("stages", "Lead\nProposal\nWon:won\nLost:lost"),
            ],
        )
        .await;
    assert_eq!(pipeline.status(), 303);
    let board_path = location(&pipeline);
    let pipeline_id = board_path.rsplit('=').next().expect("id").to_owned();
    let deal = browser
        .post(
            "/deals",
            &[
                ("csrf_token", &token),
                ("title", "Renewal"),
                ("pipeline_id", &pipeline_id),
                ("amount_minor", "125000"),
                ("currency", "EUR"),
            ],
        )
        .await;
    assert_eq!(deal.status(), 303, "{}", deal.text().await.unwrap_or_default());
    let deal_id = location(&deal).rsplit('/').next().expect("id").to_owned();
    let pipelines: Value =
        app.get_as(&owner.token, "/api/v1/pipelines").await.json().await.expect("json");
    let proposal = pipelines["items"][0]["stages"][1]["id"].as_str().expect("stage").to_owned();
    let board = browser.get(&board_path).await.text().await.expect("html");
    assert!(board.contains("Renewal") && board.contains("Proposal"));
    let moved = browser
        .post(
            &format!("/deals/{deal_id}/stage"),
            &[("csrf_token", &token), ("stage_id", &proposal)],
        )
        .await;
    assert_eq!(moved.status(), 303);
    let now: Value = app
        .get_as(&owner.token, &format!("/api/v1/deals/{deal_id}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(now["stage_id"], proposal.as_str());
    let activity = browser
        .post(
            &format!("/deals/{deal_id}/activities"),
            &[
                ("csrf_token", &token),
                ("kind", "meeting"),
                ("subject", "Kick-off"),
                ("occurred_at", "2026-11-30T09:30"),
            ],
        )
        .await;
    assert_eq!(activity.status(), 303);
    assert!(
        browser
            .get(&format!("/deals/{deal_id}"))
            .await
            .text()
            .await
            .expect("html")
            .contains("Kick-off")
    );
    assert!(app.audit_actions(&owner).await.iter().any(|a| a == "deal.update"));
}

#[tokio::test]
async fn contacts_are_created_found_by_email_and_edited_through_the_forms() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Console").await;
    let browser = Browser::signed_in(&app, &owner).await;
    let token = browser.csrf("/contacts/new").await;
    let bad = browser
        .post(
            "/contacts",
            &[("csrf_token", &token), ("first_name", "Ada"), ("email", "not-an-email")],
        )
        .await;
    assert_eq!(bad.status(), 422);
    let html = bad.text().await.expect("html");
    assert!(html.contains("field-error"), "the problem is shown next to its field");
    assert_eq!(contact_count(&app, &owner).await, 0);

    let created = browser
        .post(
            "/contacts",
            &[("csrf_token", &token), ("first_name", "<b>Ada</b>"), ("email", "ada@example.com")],
        )
        .await;
    assert_eq!(created.status(), 303);
    let found = browser.get("/contacts?q=ADA%40example.com").await.text().await.expect("html");
    assert!(found.contains("&lt;b&gt;Ada&lt;") && !found.contains("<b>Ada</b>"), "escaped");
    let none = browser.get("/contacts?q=bob%40example.com").await.text().await.expect("html");
    assert!(!none.contains("Ada"));
    let detail = location(&created);
    let edited = browser
        .post(&detail, &[("csrf_token", &token), ("first_name", "Ada"), ("last_name", "Lovelace")])
        .await;
    assert_eq!(edited.status(), 303);
    let page = browser.get(&detail).await.text().await.expect("html");
    assert!(page.contains("Lovelace") && page.contains("ada@example.com"));
}

#[tokio::test]
async fn totp_is_enrolled_through_the_console_with_a_qr_code_and_backup_codes() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Console").await;
    let browser = Browser::signed_in(&app, &owner).await;
    let token = browser.csrf("/account/security").await;

    // The API's rule: a first factor needs a fresh password proof.
    let early = browser.post("/account/security/totp/setup", &[("csrf_token", &token)]).await;
    assert_eq!(early.status(), 403);
    let wrong = browser
        .post("/account/security/password", &[("csrf_token", &token), ("password", "wrong")])
        .await;
    assert_eq!(wrong.status(), 200);
    assert!(wrong.text().await.expect("html").contains("role=\"alert\""));
    let proof = browser
        .post(
            "/account/security/password",
            &[("csrf_token", &token), ("password", &owner.password)],
        )
        .await;
    assert_eq!(proof.status(), 303);
    let setup = browser.post("/account/security/totp/setup", &[("csrf_token", &token)]).await;
    assert_eq!(setup.status(), 200);
    let html = setup.text().await.expect("html");
    assert!(html.contains("<svg") && html.contains("<path"), "a QR code drawn on the server");
    assert!(!html.contains("<?xml"));
    let secret = html.split("<code class=\"secret\">").nth(1).and_then(|r| r.split('<').next());
    let secret = crate::support::totp::base32_decode(secret.expect("the key as text"));
    let code = crate::support::totp::code_at(&secret, crate::support::totp::now());
    let confirmed = browser
        .post("/account/security/totp/confirm", &[("csrf_token", &token), ("code", &code)])
        .await;
    assert_eq!(confirmed.status(), 200);
    let codes = confirmed.text().await.expect("html").matches("<li><code>").count();
    assert_eq!(codes, 10, "ten backup codes, shown once");

    // The next sign-in asks for the second factor.
    let again = Browser::new(&app);
    let login =
        again.post("/login", &[("email", &owner.email), ("password", &owner.password)]).await;
    assert_eq!(login.status(), 200);
    assert!(login.text().await.expect("html").contains("name=\"mfa_token\""));
}

#[tokio::test]
async fn admin_pages_take_the_api_routes_policies() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Console").await;
    let agent = app.add_member(&owner, "agent").await;
    let mut as_agent = Browser::new(&app);
    as_agent.sign_in(&agent, None).await;
    for path in ["/admin/audit", "/admin/api-keys", "/admin/security"] {
        let response = as_agent.get(path).await;
        assert_eq!(response.status(), 403, "{path} for an agent");
    }
    let nav = as_agent.get("/").await.text().await.expect("html");
    assert!(
        !nav.contains("Audit log") && nav.contains("Contacts"),
        "the navigation lists what the agent may open"
    );

    // Without a step-up (no factor to give one), the routes the API guards with one send
    // the owner to the step-up page and change nothing.
    let mut unproven = Browser::new(&app);
    unproven.sign_in(&owner, None).await;
    let token = unproven.csrf("/admin/security").await;
    for (path, form) in [
        ("/admin/security", vec![("csrf_token", token.as_str()), ("mfa_required", "all")]),
        (
            "/admin/api-keys",
            vec![("csrf_token", token.as_str()), ("name", "x"), ("scopes", "contacts:read")],
        ),
    ] {
        let refused = unproven.post(path, &form).await;
        assert_eq!(refused.status(), 303, "{path}");
        assert!(location(&refused).starts_with("/step-up"), "{path}: {}", location(&refused));
    }
    let security: Value =
        app.get_as(&owner.token, "/api/v1/tenant/security").await.json().await.expect("json");
    assert_eq!(security["mfa_required"], "none", "unchanged");
    let keys: Value =
        app.get_as(&owner.token, "/api/v1/api-keys").await.json().await.expect("json");
    assert_eq!(keys["items"].as_array().map(Vec::len), Some(0), "no key");

    // With a second factor at sign-in (a step-up), the same forms work.
    app.step_up(&owner).await;
    let mut browser = Browser::new(&app);
    let code = app.take_backup_code(&owner.email);
    browser.sign_in(&owner, Some(&code)).await;
    let audit = browser.get("/admin/audit?action=auth.login").await;
    assert_eq!(audit.status(), 200);
    let html = audit.text().await.expect("html");
    assert!(html.contains("auth.login") && !html.contains("contact.create"));

    // An API key: shown once, works on the API, revoked from the console.
    let token = browser.csrf("/admin/api-keys").await;
    let created = browser
        .post(
            "/admin/api-keys",
            &[
                ("csrf_token", &token),
                ("name", "ci"),
                ("scopes", "contacts:read"),
                ("scopes", "companies:read"),
            ],
        )
        .await;
    assert_eq!(created.status(), 200);
    let html = created.text().await.expect("html");
    let key = html
        .split("id=\"secret\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .expect("the key")
        .to_owned();
    assert!(key.starts_with("bwk_"));
    assert_eq!(app.get_as(&key, "/api/v1/contacts").await.status(), 200);
    assert_eq!(app.get_as(&key, "/api/v1/leads").await.status(), 403, "only its scopes");
    let list = browser.get("/admin/api-keys").await.text().await.expect("html");
    assert!(!list.contains(&key), "never shown again");
    let keys: Value =
        app.get_as(&owner.token, "/api/v1/api-keys").await.json().await.expect("json");
    let id = keys["items"][0]["id"].as_str().expect("id");
    let revoked =
        browser.post(&format!("/admin/api-keys/{id}/revoke"), &[("csrf_token", &token)]).await;
    assert_eq!(revoked.status(), 303);
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(app.get_as(&key, "/api/v1/contacts").await.status(), 401);

    let policy = browser
        .post("/admin/security", &[("csrf_token", &token), ("mfa_required", "admins")])
        .await;
    assert_eq!(policy.status(), 303);
    let security: Value =
        app.get_as(&owner.token, "/api/v1/tenant/security").await.json().await.expect("json");
    assert_eq!(security["mfa_required"], "admins");

    // Members: an invitation, its link shown once.
    let invited = browser
        .post(
            "/admin/invitations",
            &[("csrf_token", &token), ("email", "new.person@example.com"), ("role", "agent")],
        )
        .await;
    assert_eq!(invited.status(), 200);
    let html = invited.text().await.expect("html");
    let link = html.split("id=\"secret\">").nth(1).and_then(|r| r.split('<').next()).expect("link");
    assert!(link.contains("#token="), "the accept link, shown once: {link}");
    let members = browser.get("/admin/members").await.text().await.expect("html");
    assert!(members.contains("new.person@example.com") && members.contains(&agent.email));
}

#[tokio::test]
async fn documents_are_uploaded_downloaded_and_deleted_on_a_record_page() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Console").await;
    let contact: Value = app
        .post_as(&owner.token, "/api/v1/contacts", &json!({"first_name": "Ada"}))
        .await
        .json()
        .await
        .expect("json");
    let id = contact["id"].as_str().expect("id").to_owned();
    let browser = Browser::signed_in(&app, &owner).await;
    let token = browser.csrf(&format!("/contacts/{id}")).await;
    let pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n".to_vec();
    let upload = |csrf: Option<String>| {
        let part = reqwest::multipart::Part::bytes(pdf.clone()).file_name("notes.pdf");
        let form =
            reqwest::multipart::Form::new().text("contact_id", id.clone()).part("file", part);
        let path = match csrf {
            Some(token) => format!("/documents?csrf_token={token}"),
            None => "/documents".to_owned(),
        };
        app.client
            .post(app.url(&path))
            .header(COOKIE, format!("{COOKIE_NAME}={}", browser.cookie.clone().unwrap_or_default()))
            .header("sec-fetch-site", "same-origin")
            .multipart(form)
            .send()
    };
    assert_eq!(upload(None).await.expect("upload").status(), 403, "no token, no upload");
    assert_eq!(upload(Some("0".repeat(64))).await.expect("upload").status(), 403);
    let listed: Value = app
        .get_as(&owner.token, &format!("/api/v1/documents?contact_id={id}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(0));
    let uploaded = upload(Some(token.clone())).await.expect("upload");
    assert_eq!((uploaded.status().as_u16(), location(&uploaded)), (303, format!("/contacts/{id}")));
    let page = browser.get(&format!("/contacts/{id}")).await.text().await.expect("html");
    assert!(page.contains("notes.pdf"));
    let listed: Value = app
        .get_as(&owner.token, &format!("/api/v1/documents?contact_id={id}"))
        .await
        .json()
        .await
        .expect("json");
    let doc = listed["items"][0]["id"].as_str().expect("a document").to_owned();
    let download = browser.get(&format!("/documents/{doc}/content")).await;
    assert_eq!(download.status(), 200);
    assert!(
        download.headers()["content-disposition"]
            .to_str()
            .expect("ascii")
            .starts_with("attachment")
    );
    assert_eq!(download.bytes().await.expect("bytes").to_vec(), pdf);
    let deleted =
        browser.post(&format!("/documents/{doc}/delete"), &[("csrf_token", &token)]).await;
    assert_eq!((deleted.status().as_u16(), location(&deleted)), (303, format!("/contacts/{id}")));
    assert_eq!(browser.get(&format!("/documents/{doc}/content")).await.status(), 404);
}

#[tokio::test]
async fn email_domains_suppressions_and_messages_through_the_console() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Console").await;
    let browser = Browser::signed_in(&app, &owner).await;
    let token = browser.csrf("/email/domains").await;
    let added = browser
        .post("/email/domains", &[("csrf_token", &token), ("domain", "mail.console.example")])
        .await;
    assert_eq!(added.status(), 303);
    let page = browser.get(&location(&added)).await.text().await.expect("html");
    assert!(
        page.contains("DNS records to publish") && page.contains("_domainkey"),
        "the DKIM record is listed"
    );
    let bad =
        browser.post("/email/domains", &[("csrf_token", &token), ("domain", "not a domain")]).await;
    assert_eq!(bad.status(), 422);

    let suppressed = browser
        .post("/email/suppressions", &[("csrf_token", &token), ("email", "gone@example.com")])
        .await;
    assert_eq!(suppressed.status(), 303);
    let list = browser.get("/email/suppressions").await.text().await.expect("html");
    assert!(list.contains("gone@example.com"));

    // Sending needs a verified domain: the API's 422, shown on the form, nothing queued.
    let sent = browser
        .post(
            "/email/messages",
            &[
                ("csrf_token", &token),
                ("from", "me@mail.console.example"),
                ("to", "you@example.com"),
                ("subject", "Hello"),
                ("text", "Hi"),
            ],
        )
        .await;
    assert!(matches!(sent.status().as_u16(), 403 | 422), "{}", sent.status());
    let messages: Value =
        app.get_as(&owner.token, "/api/v1/emails").await.json().await.expect("json");
    assert_eq!(messages["items"].as_array().map(Vec::len), Some(0));
    assert_eq!(browser.get("/email/messages").await.status(), 200);
}

#[tokio::test]
async fn password_reset_and_invitation_pages_follow_the_api() {
    let app = TestApp::spawn().await;
    let browser = Browser::new(&app);
    assert_eq!(browser.get("/forgot-password").await.status(), 200);
    let asked = browser.post("/forgot-password", &[("email", "nobody@example.com")]).await;
    assert_eq!(asked.status(), 200);
    assert!(
        asked.text().await.expect("html").contains("on its way"),
        "the same answer for everyone"
    );
    let reset = browser
        .post(
            "/reset-password",
            &[("token", "not-a-token"), ("new_password", "correct horse battery staple 9")],
        )
        .await;
    assert_eq!(reset.status(), 422);
    let accept = browser
        .post(
            "/invitations/accept",
            &[
                ("token", "nope"),
                ("password", "correct horse battery staple 9"),
                ("display_name", "X"),
            ],
        )
        .await;
    assert_eq!(accept.status(), 404);
    for path in ["/reset-password", "/verify-email", "/invitations/accept"] {
        let html = browser.get(path).await.text().await.expect("html");
        assert!(
            html.contains("class=\"from-link\""),
            "{path}: the script fills the token from the link"
        );
    }
}

#[tokio::test]
async fn an_integration_connects_through_the_console_round_trip() {
    let app = TestApp::spawn_with(
        &crate::support::integrations::provider_settings()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
    )
    .await;
    let owner = app.signup("Console").await;
    let browser = Browser::signed_in(&app, &owner).await;
    let token = browser.csrf("/integrations").await;
    let started = browser.post("/integrations/google/connect", &[("csrf_token", &token)]).await;
    assert_eq!(started.status(), 200);
    let html = started.text().await.expect("html");
    // A page that moves on to the provider (form-action 'self' forbids a redirect).
    let to = html
        .split("http-equiv=\"refresh\" content=\"0;url=")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a refresh")
        .replace("&amp;", "&")
        .replace("&#x2f;", "/");
    assert!(to.contains("code_challenge=") && to.contains("state="), "{to}");
    let login = crate::support::integrations::unique_login("console");
    let (code, state) = crate::support::integrations::authorize(&to, &login).await;

    // Back from the provider: a cross-site navigation carries no strict cookie, so the
    // callback page only forwards, same-site, to the page that finishes with the session.
    let query = format!("code={}&state={}", urlencode(&code), urlencode(&state));
    let bounce = Browser::new(&app).get(&format!("/integrations/google/callback?{query}")).await;
    assert_eq!(bounce.status(), 200);
    let bounce = bounce.text().await.expect("html").replace("&amp;", "&").replace("&#x2f;", "/");
    let finish = bounce
        .split("content=\"0;url=")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a refresh")
        .to_owned();
    assert!(finish.starts_with("/integrations/google/finish?"), "{finish}");
    // Without the session the finish page is refused and nothing connects.
    assert_eq!(Browser::new(&app).get(&finish).await.status(), 303);
    let done = browser.get(&finish).await;
    assert_eq!(
        (done.status().as_u16(), location(&done)),
        (303, "/integrations?connected=google".to_owned())
    );
    let page = browser.get("/integrations?connected=google").await.text().await.expect("html");
    assert!(page.contains(&login) && page.contains("google is connected"));
    // The state is single use.
    assert_eq!(browser.get(&finish).await.status(), 400);
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn the_console_session_has_the_api_sessions_idle_timeout() {
    let app = TestApp::spawn_with(&[("BULWARK_SESSION_IDLE_TIMEOUT", "4s")]).await;
    let owner = app.signup("Console").await;
    let browser = Browser::signed_in(&app, &owner).await;
    // In use, it stays: each request moves the idle clock.
    for _ in 0..3 {
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        assert_eq!(browser.get("/").await.status(), 200, "used within the idle timeout");
    }
    tokio::time::sleep(std::time::Duration::from_millis(4600)).await;
    assert_eq!(browser.get("/").await.status(), 303, "idle too long: signed out");
}

#[tokio::test]
async fn without_secure_cookies_the_cookie_drops_the_host_prefix_and_secure() {
    let app = TestApp::spawn_with(&[("BULWARK_COOKIE_SECURE", "off")]).await;
    let owner = app.signup("Console").await;
    let response = Browser::new(&app)
        .post("/login", &[("email", &owner.email), ("password", &owner.password)])
        .await;
    assert_eq!(response.status(), 303);
    let header = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("bulwark_session="))
        .expect("a cookie without the __Host- prefix (which needs Secure)")
        .to_owned();
    assert!(
        !header.contains("Secure")
            && header.contains("HttpOnly")
            && header.contains("SameSite=Strict")
    );
    let value = header.split(';').next().expect("pair").to_owned();
    let home = app.client.get(app.url("/")).header(COOKIE, value).send().await.expect("request");
    assert_eq!(home.status(), 200, "the bare name is read back");
}

#[tokio::test]
async fn an_account_is_created_from_the_sign_up_page_under_the_apis_rules() {
    let app = TestApp::spawn().await;
    let browser = Browser::new(&app);
    let email = crate::support::unique_email("signup");
    let form = |password: &'static str| {
        vec![("tenant_name", "Acme"), ("display_name", "Ada"), ("password", password)]
    };
    let mut weak = form("password");
    weak.push(("email", &email));
    let refused = browser.post("/signup", &weak).await;
    assert_eq!(refused.status(), 422, "the API's password policy");
    let mut good = form("correct horse battery staple 7");
    good.push(("email", &email));
    let created = browser.post("/signup", &good).await;
    assert_eq!(created.status(), 200);
    assert_eq!(app.login(&email, "correct horse battery staple 7").await.status(), 200);
    // A second signup with the address answers the same and changes nothing.
    let again = browser.post("/signup", &good).await;
    assert_eq!(again.status(), 200);
    let cross_site =
        browser.post_with("/signup", &good, &[("origin", "https://evil.example")]).await;
    assert_eq!(cross_site.status(), 403);
}
