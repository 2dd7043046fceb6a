//! The mail side against real servers: sending domains checked through a real DNS server.

use serde_json::{Value, json};

use crate::support::mail::{dkim_verifies, publish, unique_domain, verified_domain, wait_for};
use crate::support::{TestApp, database_bytes, expect_problem};

fn record<'a>(domain: &'a Value, purpose: &str) -> (&'a str, &'a str) {
    let record = domain["dns_records"]
        .as_array()
        .expect("records")
        .iter()
        .find(|r| r["purpose"] == purpose)
        .unwrap_or_else(|| panic!("no {purpose} record"));
    (record["name"].as_str().expect("name"), record["value"].as_str().expect("value"))
}

async fn verify(app: &TestApp, token: &str, id: &str) -> Value {
    let response =
        app.post_as(token, &format!("/api/v1/email/domains/{id}/verify"), &json!({})).await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("json")
}

#[tokio::test]
async fn a_sending_domain_gets_a_sealed_dkim_key_and_verifies_once_its_records_are_published() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let name = unique_domain("acme");
    let created =
        app.post_as(&owner.token, "/api/v1/email/domains", &json!({"domain": name})).await;
    assert_eq!(created.status(), 201);
    let domain: Value = created.json().await.expect("json");
    let id = domain["id"].as_str().expect("id").to_owned();
    assert_eq!(domain["status"], "pending");
    let purposes: Vec<&str> = domain["dns_records"]
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| r["purpose"].as_str())
        .collect();
    assert_eq!(purposes, ["dkim", "spf", "dmarc", "return_path"]);
    let (dkim_name, dkim_value) = record(&domain, "dkim");
    assert!(dkim_name.ends_with(&format!("._domainkey.{name}")), "{dkim_name}");
    assert!(dkim_value.starts_with("v=DKIM1; k=rsa; p=MII"), "{dkim_value}");
    assert!(!domain.to_string().contains("PRIVATE"), "the private key is never returned");

    // Nothing published: pending, every check false.
    let checked = verify(&app, &owner.token, &id).await;
    assert_eq!(
        checked,
        json!({"status": "pending", "checks": {"dkim": false, "spf": false, "dmarc": false}})
    );

    // Another domain's key at this name does not count; this domain's does.
    let other = app
        .post_as(&owner.token, "/api/v1/email/domains", &json!({"domain": unique_domain("other")}))
        .await;
    let other: Value = other.json().await.expect("json");
    publish(dkim_name, "TXT", &[record(&other, "dkim").1]);
    let (spf_name, spf_value) = record(&domain, "spf");
    publish(spf_name, "TXT", &["google-site-verification=abc", spf_value]);
    let checked = verify(&app, &owner.token, &id).await;
    assert_eq!(checked["checks"], json!({"dkim": false, "spf": true, "dmarc": false}));
    publish(dkim_name, "TXT", &[dkim_value]);
    let (dmarc_name, dmarc_value) = record(&domain, "dmarc");
    publish(dmarc_name, "TXT", &[dmarc_value]);
    let checked = verify(&app, &owner.token, &id).await;
    assert_eq!(
        checked,
        json!({"status": "verified", "checks": {"dkim": true, "spf": true, "dmarc": true}})
    );
    let fetched: Value = app
        .get_as(&owner.token, &format!("/api/v1/email/domains/{id}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(fetched["status"], "verified");
    assert!(fetched["verified_at"].is_string());

    // The key is sealed: the database never holds it in the clear.
    let bytes = database_bytes(&app.db).await;
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains(&name), "the dump holds the domain");
    assert!(!text.contains("PRIVATE KEY"), "a DKIM private key in the clear");

    // Refused and unchanged: a duplicate, a non-domain, an unknown field.
    let again = app
        .post_as(&owner.token, "/api/v1/email/domains", &json!({"domain": name.to_uppercase()}))
        .await;
    assert_eq!(expect_problem(again, 409).await["code"], "conflict");
    for bad in [
        json!({"domain": "localhost"}),
        json!({"domain": "a b.example"}),
        json!({"domain": "x.example", "dkim": "mine"}),
    ] {
        expect_problem(app.post_as(&owner.token, "/api/v1/email/domains", &bad).await, 422).await;
    }
    let listed: Value =
        app.get_as(&owner.token, "/api/v1/email/domains").await.json().await.expect("json");
    assert_eq!(listed["items"].as_array().expect("items").len(), 2);

    // email:manage is an admin's: an agent gets 403; another tenant gets 404 for every route.
    let agent = app.add_member(&owner, "agent").await;
    let denied = app.get_as(&agent.token, "/api/v1/email/domains").await;
    assert_eq!(expect_problem(denied, 403).await["code"], "forbidden");
    let stranger = app.signup("Other").await;
    let path = format!("/api/v1/email/domains/{id}");
    assert_eq!(app.get_as(&stranger.token, &path).await.status(), 404);
    assert_eq!(
        app.post_as(&stranger.token, &format!("{path}/verify"), &json!({})).await.status(),
        404
    );
    assert_eq!(app.delete_as(&stranger.token, &path).await.status(), 404);
    let theirs: Value =
        app.get_as(&stranger.token, "/api/v1/email/domains").await.json().await.expect("json");
    assert_eq!(theirs["items"], json!([]));

    // A data-key rotation re-seals both domains' keys (the old key is destroyed after it).
    let rotated = app.cli(&["keys", "rotate-tenant", "--tenant", &owner.tenant_id]).await;
    assert!(rotated.status.success(), "{}", String::from_utf8_lossy(&rotated.stderr));
    let events = app.audit_events(&owner).await;
    let finished = events
        .iter()
        .find(|e| e["action"] == "keys.rotate_tenant" && e["details"]["phase"] == "finished")
        .unwrap_or_else(|| {
            let said = String::from_utf8_lossy(&rotated.stdout);
            panic!("the rotation finished ({said}): {events:?}")
        });
    assert_eq!(finished["details"]["email"], 2, "both domain keys re-sealed: {finished}");

    // Deleted: gone, and audited.
    assert_eq!(app.delete_as(&owner.token, &path).await.status(), 204);
    assert_eq!(app.get_as(&owner.token, &path).await.status(), 404);
    let actions = app.audit_actions(&owner).await;
    for action in ["email.domain_create", "email.domain_verify", "email.domain_delete"] {
        assert!(actions.iter().any(|a| a == action), "{action} missing: {actions:?}");
    }
}

/// An app whose relay is the test SMTP server.
async fn mailing_app() -> TestApp {
    crate::support::mail::mailing_app(&[]).await
}

/// Waits (at most ten seconds) until the message has `status`; the message.
pub(crate) async fn until_status(app: &TestApp, token: &str, id: &str, status: &str) -> Value {
    let started = std::time::Instant::now();
    loop {
        let message: Value =
            app.get_as(token, &format!("/api/v1/emails/{id}")).await.json().await.expect("json");
        if message["status"] == status {
            return message;
        }
        assert!(started.elapsed().as_secs() < 10, "still {} (wanted {status})", message["status"]);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

pub(crate) fn kinds(message: &Value) -> Vec<String> {
    message["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["type"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn a_message_is_queued_dkim_signed_and_delivered_once_over_starttls() {
    let app = mailing_app().await;
    let owner = app.signup("Acme").await;
    let domain = verified_domain(&app, &owner.token).await;
    let body = json!({
        "from": format!("Acme <hello@{domain}>"),
        "to": ["ada@example.com"], "cc": ["bob@example.com"], "bcc": ["carol@example.com"],
        "subject": "Welcome aboard", "text": "Hello Ada", "html": "<p>Hello <b>Ada</b></p>",
        "headers": {"X-Campaign": "spring"},
    });
    let accepted = app.post_as(&owner.token, "/api/v1/emails", &body).await;
    assert_eq!(accepted.status(), 202);
    let accepted: Value = accepted.json().await.expect("json");
    assert_eq!(accepted["status"], "queued");
    assert_eq!(accepted["recipients"].as_array().expect("recipients").len(), 3);
    let id = accepted["id"].as_str().expect("id").to_owned();
    let message_id = format!("<{id}@{domain}>");

    let received = wait_for(&message_id, 10).await;
    let mut envelope = received.rcpt_tos.clone();
    envelope.sort();
    assert_eq!(envelope, ["ada@example.com", "bob@example.com", "carol@example.com"]);
    assert!(!received.data.contains("carol"), "Bcc stays out of the message");
    assert!(received.data.contains("X-Campaign: spring"));
    // DKIM, checked by dkimpy against the published record; an altered body fails it.
    assert!(dkim_verifies(&received.data), "the signature verifies");
    assert!(!dkim_verifies(&received.data.replace("Hello Ada", "Hello Eve")), "tampering shows");

    let sent = until_status(&app, &owner.token, &id, "sent").await;
    assert_eq!(kinds(&sent), ["queued", "sent"]);
    assert!(sent["events"][1]["detail"].as_str().expect("detail").starts_with("250"), "{sent}");
    assert_eq!(sent["subject"], "Welcome aboard");
    let listed: Value =
        app.get_as(&owner.token, "/api/v1/emails").await.json().await.expect("json");
    assert_eq!(listed["items"][0]["id"], id.as_str());

    // An Idempotency-Key: the retry answers the same message, delivered once.
    let send = || {
        app.client
            .post(app.url("/api/v1/emails"))
            .bearer_auth(&owner.token)
            .header("idempotency-key", "welcome-ada-1")
            .json(&body)
            .send()
    };
    let first: Value = send().await.expect("send").json().await.expect("json");
    let second: Value = send().await.expect("send").json().await.expect("json");
    assert_eq!(first["id"], second["id"]);
    let once = format!("<{}@{domain}>", first["id"].as_str().expect("id"));
    wait_for(&once, 10).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(received_count(&once), 1, "delivered once");

    // A data-key rotation re-seals the messages; they read back whole.
    let rotated = app.cli(&["keys", "rotate-tenant", "--tenant", &owner.tenant_id]).await;
    assert!(rotated.status.success(), "{}", String::from_utf8_lossy(&rotated.stderr));
    let after: Value =
        app.get_as(&owner.token, &format!("/api/v1/emails/{id}")).await.json().await.expect("json");
    assert_eq!(after["subject"], "Welcome aboard", "{after}");

    // Nothing personal in the clear at rest.
    let bytes = database_bytes(&app.db).await;
    let text = String::from_utf8_lossy(&bytes);
    for secret in ["ada@example.com", "carol@example.com", "Welcome aboard", "Hello Ada"] {
        assert!(!text.contains(secret), "{secret} stored in the clear");
    }
}

fn received_count(message_id: &str) -> usize {
    crate::support::mail::received(message_id).len()
}

#[tokio::test]
async fn a_421_is_retried_with_the_same_message_id_and_a_550_bounces() {
    let app = mailing_app().await;
    let owner = app.signup("Acme").await;
    let domain = verified_domain(&app, &owner.token).await;
    let send = |to: &str| {
        let body =
            json!({"from": format!("hello@{domain}"), "to": [to], "subject": "Hi", "text": "x"});
        let (app, token) = (&app, owner.token.clone());
        async move {
            let response = app.post_as(&token, "/api/v1/emails", &body).await;
            assert_eq!(response.status(), 202);
            response.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_owned()
        }
    };
    let deferred = send("defer-once-ada@example.com").await;
    let message = until_status(&app, &owner.token, &deferred, "sent").await;
    assert_eq!(kinds(&message), ["queued", "deferred", "sent"]);
    assert!(message["events"][1]["detail"].as_str().expect("detail").contains("421"));
    assert_eq!(received_count(&format!("<{deferred}@{domain}>")), 1);

    let rejected = send("reject-bob@example.com").await;
    let message = until_status(&app, &owner.token, &rejected, "bounced").await;
    assert_eq!(kinds(&message), ["queued", "bounced"]);
    let detail = message["events"][1]["detail"].as_str().expect("detail");
    assert!(detail.contains("550") && !detail.contains("reject-bob"), "{detail}");
    assert_eq!(received_count(&format!("<{rejected}@{domain}>")), 0);
}

#[tokio::test]
async fn bad_sends_change_nothing_and_mail_stays_within_its_tenant() {
    let app = mailing_app().await;
    let owner = app.signup("Acme").await;
    let domain = verified_domain(&app, &owner.token).await;
    let good = json!({"from": format!("hello@{domain}"), "to": ["ada@example.com"], "subject": "Hi", "text": "x"});
    let stranger = app.signup("Other").await;
    let theirs = verified_domain(&app, &stranger.token).await;
    let unverified = unique_domain("pending");
    app.post_as(&owner.token, "/api/v1/email/domains", &json!({"domain": unverified})).await;
    let mut bad = vec![];
    for (field, value) in [
        ("from", json!(format!("hello@{unverified}"))),
        ("from", json!(format!("hello@{theirs}"))),
        ("subject", json!("Hi\r\nBcc: victim@example.com")),
        ("to", json!(["ada@example.com\r\nBcc: victim@example.com"])),
        ("headers", json!({"Bcc": "victim@example.com"})),
        ("headers", json!({"X-Note": "a\nBcc: victim@example.com"})),
        ("to", json!([])),
        ("text", Value::Null),
    ] {
        let mut body = good.clone();
        body[field] = value;
        bad.push(body);
    }
    for body in bad {
        let refused = app.post_as(&owner.token, "/api/v1/emails", &body).await;
        expect_problem(refused, 422).await;
    }
    let listed: Value =
        app.get_as(&owner.token, "/api/v1/emails").await.json().await.expect("json");
    assert_eq!(listed["items"], json!([]), "nothing was queued");

    // email:send: an agent sends, a read-only member does not.
    let agent = app.add_member(&owner, "agent").await;
    assert_eq!(app.post_as(&agent.token, "/api/v1/emails", &good).await.status(), 202);
    let readonly = app.add_member(&owner, "readonly").await;
    let denied = app.post_as(&readonly.token, "/api/v1/emails", &good).await;
    assert_eq!(expect_problem(denied, 403).await["code"], "forbidden");

    // Another tenant: 404 for the message, an empty list.
    let listed: Value =
        app.get_as(&owner.token, "/api/v1/emails").await.json().await.expect("json");
    let id = listed["items"][0]["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/emails/{id}");
    assert_eq!(app.get_as(&stranger.token, &path).await.status(), 404);
    let theirs: Value =
        app.get_as(&stranger.token, "/api/v1/emails").await.json().await.expect("json");
    assert_eq!(theirs["items"], json!([]));
}

#[tokio::test]
async fn the_email_kill_switch_refuses_sends_and_pauses_delivery_without_losing_mail() {
    let app = mailing_app().await;
    let root = app.superadmin().await;
    let owner = app.signup("Acme").await;
    let domain = verified_domain(&app, &owner.token).await;
    // The first attempt is deferred (421): the message waits in the queue for its retry.
    let body = json!({"from": format!("hello@{domain}"), "to": ["defer-once-ada@example.com"], "subject": "Hi", "text": "x"});
    let accepted: Value =
        app.post_as(&owner.token, "/api/v1/emails", &body).await.json().await.expect("json");
    let id = accepted["id"].as_str().expect("id").to_owned();
    until_status(&app, &owner.token, &id, "deferred").await;
    let off = json!({"email_sending": false});
    assert_eq!(app.patch_as(&root.token, "/api/v1/platform/features", &off).await.status(), 200);

    let refused = app.post_as(&owner.token, "/api/v1/emails", &body).await;
    assert_eq!(expect_problem(refused, 503).await["code"], "feature_disabled");
    // Paused: the retry falls due after a second and nothing goes out.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let message: Value =
        app.get_as(&owner.token, &format!("/api/v1/emails/{id}")).await.json().await.expect("json");
    assert_eq!(message["status"], "deferred");
    assert_eq!(received_count(&format!("<{id}@{domain}>")), 0);

    let on = json!({"email_sending": true});
    assert_eq!(app.patch_as(&root.token, "/api/v1/platform/features", &on).await.status(), 200);
    until_status(&app, &owner.token, &id, "sent").await;
    assert_eq!(received_count(&format!("<{id}@{domain}>")), 1);
}

#[tokio::test]
async fn suppressed_addresses_get_no_mail_and_a_hard_bounce_suppresses_its_address() {
    let app = mailing_app().await;
    let owner = app.signup("Acme").await;
    let domain = verified_domain(&app, &owner.token).await;
    let suppress = json!({"email": "Ada.Suppressed@Example.com", "reason": "manual"});
    let created = app.post_as(&owner.token, "/api/v1/email/suppressions", &suppress).await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.expect("json");
    assert_eq!(created["email"], "ada.suppressed@example.com");
    assert_eq!(created["reason"], "manual");
    let again = app.post_as(&owner.token, "/api/v1/email/suppressions", &suppress).await;
    assert_eq!(expect_problem(again, 409).await["code"], "conflict");
    for bad in [
        json!({"email": "nobody", "reason": "manual"}),
        json!({"email": "a@example.com", "reason": "complaint"}),
        json!({"email": "a@example.com", "reason": "manual", "expires_at": "2001-01-01T00:00:00Z"}),
    ] {
        expect_problem(app.post_as(&owner.token, "/api/v1/email/suppressions", &bad).await, 422)
            .await;
    }

    let send = |to: Vec<&str>| {
        let body =
            json!({"from": format!("hello@{domain}"), "to": to, "subject": "Hi", "text": "x"});
        let (app, token) = (&app, owner.token.clone());
        async move {
            let response = app.post_as(&token, "/api/v1/emails", &body).await;
            assert_eq!(response.status(), 202);
            response.json::<Value>().await.expect("json")
        }
    };
    // One suppressed, one not: only the other is sent.
    let mixed = send(vec!["ada.suppressed@example.com", "bob@example.com"]).await;
    let statuses: Vec<&str> = mixed["recipients"]
        .as_array()
        .expect("recipients")
        .iter()
        .filter_map(|r| r["status"].as_str())
        .collect();
    assert_eq!(statuses, ["suppressed", "queued"]);
    let id = mixed["id"].as_str().expect("id");
    let received = wait_for(&format!("<{id}@{domain}>"), 10).await;
    assert_eq!(received.rcpt_tos, ["bob@example.com"]);
    // Everyone suppressed (whatever the case): nothing is queued.
    let none = send(vec!["ADA.SUPPRESSED@example.com"]).await;
    assert_eq!(none["status"], "suppressed");
    let id = none["id"].as_str().expect("id");
    let message: Value =
        app.get_as(&owner.token, &format!("/api/v1/emails/{id}")).await.json().await.expect("json");
    assert_eq!(message["status"], "suppressed");
    assert_eq!(kinds(&message), ["suppressed"]);

    // A 550 for the one recipient puts the address on the list.
    let bounced = send(vec!["reject-carol@example.com"]).await;
    until_status(&app, &owner.token, bounced["id"].as_str().expect("id"), "bounced").await;
    let listed: Value = app
        .get_as(&owner.token, "/api/v1/email/suppressions?email=reject-carol@example.com")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed["items"][0]["reason"], "hard_bounce", "{listed}");
    let nonsense = app.get_as(&owner.token, "/api/v1/email/suppressions?email=nobody").await;
    expect_problem(nonsense, 422).await;
    assert_eq!(send(vec!["reject-carol@example.com"]).await["status"], "suppressed");

    // Another tenant can neither see nor lift the entry; the owner can.
    let path = format!("/api/v1/email/suppressions/{}", created["id"].as_str().expect("id"));
    let stranger = app.signup("Other").await;
    assert_eq!(app.delete_as(&stranger.token, &path).await.status(), 404);
    let theirs: Value =
        app.get_as(&stranger.token, "/api/v1/email/suppressions").await.json().await.expect("json");
    assert_eq!(theirs["items"], json!([]));
    assert_eq!(app.delete_as(&owner.token, &path).await.status(), 204);
    let lifted = send(vec!["ada.suppressed@example.com"]).await;
    assert_eq!(lifted["status"], "queued");
    let id = lifted["id"].as_str().expect("id");
    wait_for(&format!("<{id}@{domain}>"), 10).await;

    // At rest the list holds no address in the clear.
    let bytes = database_bytes(&app.db).await;
    assert!(!String::from_utf8_lossy(&bytes).contains("reject-carol@example.com"));
}

#[tokio::test]
async fn a_tenant_past_its_hourly_quota_gets_429_and_another_tenant_does_not() {
    let app = crate::support::mail::mailing_app(&[("BULWARK_EMAIL_HOURLY_LIMIT", "3")]).await;
    let owner = app.signup("Acme").await;
    let domain = verified_domain(&app, &owner.token).await;
    let body = |to: Vec<&str>| json!({"from": format!("hello@{domain}"), "to": to, "subject": "Hi", "text": "x"});
    let two = body(vec!["a@example.com", "b@example.com"]);
    assert_eq!(app.post_as(&owner.token, "/api/v1/emails", &two).await.status(), 202);
    // The 4th recipient of the hour is refused, with when to come back; nothing is queued.
    let refused = app.post_as(&owner.token, "/api/v1/emails", &two).await;
    let retry: u64 =
        refused.headers()["retry-after"].to_str().expect("ascii").parse().expect("secs");
    assert!((1..=3_600).contains(&retry), "{retry}");
    assert_eq!(expect_problem(refused, 429).await["code"], "quota_exceeded");
    let one = body(vec!["c@example.com"]);
    assert_eq!(app.post_as(&owner.token, "/api/v1/emails", &one).await.status(), 202, "the 3rd");
    let listed: Value =
        app.get_as(&owner.token, "/api/v1/emails").await.json().await.expect("json");
    assert_eq!(listed["items"].as_array().expect("items").len(), 2);
    // Another tenant has its own quota.
    let other = app.signup("Other").await;
    let theirs = verified_domain(&app, &other.token).await;
    let body = json!({"from": format!("hi@{theirs}"), "to": ["a@example.com", "b@example.com"],
        "subject": "Hi", "text": "x"});
    assert_eq!(app.post_as(&other.token, "/api/v1/emails", &body).await.status(), 202);
}
