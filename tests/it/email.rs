//! The mail side against real servers: sending domains checked through a real DNS server.

use serde_json::{Value, json};

use crate::support::mail::{publish, unique_domain};
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
        .expect("the rotation finished");
    assert_eq!(finished["details"]["email_domains"], 2, "{finished}");

    // Deleted: gone, and audited.
    assert_eq!(app.delete_as(&owner.token, &path).await.status(), 204);
    assert_eq!(app.get_as(&owner.token, &path).await.status(), 404);
    let actions: Vec<String> = app
        .audit_events(&owner)
        .await
        .iter()
        .filter_map(|e| e["action"].as_str().map(str::to_owned))
        .collect();
    for action in ["email.domain_create", "email.domain_verify", "email.domain_delete"] {
        assert!(actions.iter().any(|a| a == action), "{action} missing: {actions:?}");
    }
}
