//! The CRM: encryption at rest, ciphertexts bound to their place, blind-index lookups,
//! masking, erasure, exports, isolation through filters and references, key rotation,
//! tenant deletion and retention.

use serde_json::{Value, json};

use crate::support::{
    Account, PASSWORD, TestApp, database_bytes, expect_problem, id_literal, raw_execute,
    unique_email,
};

const SSN: &str = "987-65-4329";

async fn contact(app: &TestApp, by: &Account, extra: Value) -> Value {
    let mut body = json!({
        "first_name": "Grace", "last_name": "Hopper",
        "email": unique_email("grace"), "phone": "+1 (555) 010-7788",
        "ssn": SSN, "date_of_birth": "1906-12-09",
        "address": {"line1": "1 Navy Yard", "city": "Arlington", "country": "US"},
        "bank_account": {"holder": "G. Hopper", "iban": "DE89370400440532013000"},
        "tags": ["vip"],
    });
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        body[k] = v;
    }
    let response = app.post_as(&by.token, "/api/v1/contacts", &body).await;
    let status = response.status();
    let created: Value = response.json().await.expect("json");
    assert_eq!(status, 201, "{created}");
    created
}

fn id(value: &Value) -> String {
    value["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn personal_data_never_reaches_the_database_in_plaintext() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let email = "plaintext.canary.7731@example.org";
    let created = contact(
        &app,
        &owner,
        json!({"email": email, "phone": "+44 20 7946 0999", "first_name": "Canaryname"}),
    )
    .await;
    let note = json!({"body": "Canary note text 5512", "contact_id": id(&created)});
    assert_eq!(app.post_as(&owner.token, "/api/v1/notes", &note).await.status(), 201);
    let bytes = database_bytes(&app.db).await;
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("Acme") || bytes.len() > 10_000, "the dump holds the database");
    for secret in [
        email,
        "7946 0999",
        "+442079460999",
        SSN,
        "Canaryname",
        "DE89370400440532013000",
        "Canary note text",
    ] {
        assert!(!text.contains(secret), "{secret} is stored in plaintext");
    }
}

#[tokio::test]
async fn a_ciphertext_moved_to_another_place_fails_to_decrypt() {
    let app = TestApp::spawn().await;
    let a = app.signup("A").await;
    let b = app.signup("B").await;
    let one = contact(&app, &a, json!({"email": "first.owner@example.com"})).await;
    let two = contact(&app, &a, json!({"email": "second.owner@example.com"})).await;
    let other = contact(&app, &b, json!({"email": "other.tenant@example.com"})).await;
    let copy = |column: &str, from: &Value, to: &Value, to_column: &str| {
        format!(
            "UPDATE contacts SET {to_column} = (SELECT {column} FROM contacts WHERE id = {}) WHERE id = {}",
            id_literal(&id(from)),
            id_literal(&id(to))
        )
    };
    // Another row of the same tenant.
    assert_eq!(raw_execute(&app.db, &copy("email_enc", &one, &two, "email_enc")).await, 1);
    let response = app.get_as(&a.token, &format!("/api/v1/contacts/{}", id(&two))).await;
    let text = response.text().await.expect("text");
    assert!(text.contains("\"status\":500") && !text.contains("first.owner@example.com"), "{text}");
    // Another column of the same row.
    raw_execute(&app.db, &copy("email_enc", &one, &one, "phone_enc")).await;
    let response = app.get_as(&a.token, &format!("/api/v1/contacts/{}", id(&one))).await;
    assert_eq!(response.status(), 500);
    // Another tenant's row.
    raw_execute(&app.db, &copy("ssn_enc", &other, &other, "ssn_enc")).await;
    raw_execute(&app.db, &copy("ssn_enc", &one, &other, "ssn_enc")).await;
    let response = app.get_as(&b.token, &format!("/api/v1/contacts/{}", id(&other))).await;
    let text = response.text().await.expect("text");
    assert!(text.contains("\"status\":500") && !text.contains(SSN), "{text}");
}

#[tokio::test]
async fn email_and_phone_lookups_work_until_erasure_removes_them() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let email = unique_email("Lookup.Me");
    let created = contact(&app, &owner, json!({"email": email, "phone": "+1 555 010 4242"})).await;
    contact(&app, &owner, json!({})).await;
    let found = |query: String| {
        let token = owner.token.clone();
        let app = &app;
        async move {
            let body: Value = app
                .get_as(&token, &format!("/api/v1/contacts?{query}"))
                .await
                .json()
                .await
                .expect("json");
            body["items"].as_array().expect("items").iter().map(id).collect::<Vec<_>>()
        }
    };
    let upper = urlencode(&email.to_uppercase());
    assert_eq!(
        found(format!("email={upper}")).await,
        vec![id(&created)],
        "case-insensitive lookup"
    );
    assert_eq!(
        found("phone=%2B15550104242".into()).await,
        vec![id(&created)],
        "digits-only lookup"
    );
    let note = json!({"body": "met at the conference", "contact_id": id(&created)});
    assert_eq!(app.post_as(&owner.token, "/api/v1/notes", &note).await.status(), 201);

    app.step_up(&owner).await;
    let erased = app
        .post_as(&owner.token, &format!("/api/v1/contacts/{}/erase", id(&created)), &json!({}))
        .await;
    assert_eq!(erased.status(), 200);
    let one = format!("/api/v1/contacts/{}", id(&created));
    let read =
        async || -> Value { app.get_as(&owner.token, &one).await.json().await.expect("json") };
    let tombstone = read().await;
    assert!(tombstone["erased_at"].is_string());
    assert_eq!(tombstone["email"], Value::Null);
    assert_eq!(tombstone["ssn"], Value::Null);
    // No edit brings an erased person back: the tombstone is not there to change.
    let revive = json!({"email": email, "first_name": "Ada"});
    assert_eq!(app.patch_as(&owner.token, &one, &revive).await.status(), 404);
    let still = read().await;
    assert_eq!((still["email"].clone(), still["first_name"].clone()), (Value::Null, Value::Null));
    assert!(found(format!("email={upper}")).await.is_empty(), "the blind index entry is gone");
    assert!(found("phone=%2B15550104242".into()).await.is_empty());
    let notes: Value = app
        .get_as(&owner.token, &format!("/api/v1/notes?contact_id={}", id(&created)))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(notes["items"].as_array().map(Vec::len), Some(0), "notes about the person are gone");
    let csv = app
        .post_as(&owner.token, "/api/v1/exports/contacts", &json!({}))
        .await
        .text()
        .await
        .expect("csv");
    assert!(
        !csv.contains(&email) && !csv.contains(&id(&created)),
        "the export no longer has the contact"
    );
    let export: Value = app
        .get_as(&owner.token, &format!("/api/v1/contacts/{}/export", id(&created)))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(export["contact"]["email"], Value::Null);
    let bytes = database_bytes(&app.db).await;
    assert!(!String::from_utf8_lossy(&bytes).contains(&email));
    let actions: Vec<String> = app
        .audit_events(&owner)
        .await
        .iter()
        .filter_map(|e| e["action"].as_str().map(str::to_owned))
        .collect();
    assert!(actions.contains(&"contact.erase".to_owned()), "{actions:?}");
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'.' || b == b'-' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn sensitive_fields_are_masked_everywhere_and_revealed_only_with_permission_step_up_and_audit()
 {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let agent = app.add_member(&owner, "agent").await;
    let created = contact(&app, &owner, json!({})).await;
    assert_eq!(created["ssn"], "****4329", "even the owner's create answer is masked");
    let url = format!("/api/v1/contacts/{}", id(&created));
    for who in [&owner, &agent] {
        let seen: Value = app.get_as(&who.token, &url).await.json().await.expect("json");
        assert_eq!(seen["ssn"], "****4329");
        assert_eq!(seen["bank_account"]["iban"], "****3000");
        assert_eq!(seen["email"], created["email"], "other fields are readable");
        let listed = app.get_as(&who.token, "/api/v1/contacts?limit=200").await.text().await;
        let listed = listed.expect("text");
        assert!(!listed.contains(SSN) && !listed.contains("DE89370400440532013000"), "{listed}");
    }
    // Stepped up, so only the permission can refuse.
    app.step_up(&agent).await;
    let export = app.get_as(&agent.token, &format!("{url}/export")).await;
    assert_eq!(
        expect_problem(export, 403).await["code"],
        "forbidden",
        "the privacy export needs contacts:read_sensitive"
    );

    let reveal = format!("{url}?reveal=true");
    let refused = app.get_as(&agent.token, &reveal).await;
    assert_eq!(expect_problem(refused, 403).await["code"], "forbidden");
    let no_step_up = app.get_as(&owner.token, &reveal).await;
    assert_eq!(expect_problem(no_step_up, 403).await["code"], "step_up_required");
    let reads = |events: Vec<Value>| {
        events.into_iter().filter(|e| e["action"] == "contact.sensitive_read").collect::<Vec<_>>()
    };
    assert!(reads(app.audit_events(&owner).await).is_empty(), "masked reads are not audited");
    app.step_up(&owner).await;
    let revealed: Value = app.get_as(&owner.token, &reveal).await.json().await.expect("json");
    assert_eq!(revealed["ssn"], SSN);
    assert_eq!(revealed["bank_account"]["iban"], "DE89370400440532013000");
    let events = reads(app.audit_events(&owner).await);
    assert_eq!(events.len(), 1, "a reveal is audited");
    assert_eq!(events[0]["details"]["fields"], json!(["ssn", "bank_account"]));
    assert_eq!(events[0]["target_id"], created["id"]);
}

#[tokio::test]
async fn the_csv_export_neutralises_formulas_and_is_permissioned_and_audited() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let agent = app.add_member(&owner, "agent").await;
    contact(&app, &owner, json!({"first_name": "=HYPERLINK(\"http://evil.example\",\"x\")", "last_name": "@SUM(A1)", "tags": ["vip"]})).await;
    contact(&app, &owner, json!({"first_name": "Other", "tags": ["cold"]})).await;
    app.step_up(&owner).await;
    let response = app
        .post_as(&owner.token, "/api/v1/exports/contacts", &json!({"filter": {"tag": "vip"}}))
        .await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().expect("ascii").starts_with("text/csv"));
    assert_eq!(response.headers()["x-export-rows"], "1");
    let csv = response.text().await.expect("csv");
    assert!(csv.contains("\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\""), "{csv}");
    assert!(csv.contains(",'@SUM(A1),"), "{csv}");
    assert!(
        csv.contains(",'+1 (555) 010-7788,"),
        "phone numbers starting with + are neutralised too: {csv}"
    );
    assert!(!csv.contains("Other"));
    let empty_body = app
        .client
        .post(app.url("/api/v1/exports/contacts"))
        .bearer_auth(&owner.token)
        .send()
        .await
        .expect("send");
    assert_eq!(empty_body.headers()["x-export-rows"], "2", "no body exports everything");
    app.step_up(&agent).await;
    let refused = app.post_as(&agent.token, "/api/v1/exports/contacts", &json!({})).await;
    assert_eq!(expect_problem(refused, 403).await["code"], "forbidden", "export:run is missing");
    let rows: Vec<Value> = app
        .audit_events(&owner)
        .await
        .into_iter()
        .filter(|e| e["action"] == "export.contacts")
        .map(|e| e["details"]["rows"].clone())
        .collect();
    assert_eq!(rows, [json!(2), json!(1)], "each export is audited with its row count");
}

#[tokio::test]
async fn another_tenant_cannot_reach_records_through_filters_lookups_exports_or_references() {
    let app = TestApp::spawn().await;
    let a = app.signup("A").await;
    let b = app.signup("B").await;
    let company: Value = app
        .post_as(&a.token, "/api/v1/companies", &json!({"name": "A Corp"}))
        .await
        .json()
        .await
        .expect("json");
    let email = unique_email("a-person");
    let person = contact(
        &app,
        &a,
        json!({"email": email, "company_id": id(&company), "owner_id": a.user_id}),
    )
    .await;
    let pipeline: Value = app
        .post_as(&a.token, "/api/v1/pipelines", &json!({"name": "P", "stages": [{"name": "S"}]}))
        .await
        .json()
        .await
        .expect("json");

    for query in [
        format!("company_id={}", id(&company)),
        format!("owner_id={}", a.user_id),
        format!("email={}", urlencode(&email)),
        "tag=vip".to_owned(),
    ] {
        let body: Value = app
            .get_as(&b.token, &format!("/api/v1/contacts?{query}"))
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(body["items"], json!([]), "{query}");
    }
    app.step_up(&b).await;
    let export = app
        .post_as(&b.token, "/api/v1/exports/contacts", &json!({"filter": {"email": email}}))
        .await;
    assert_eq!(export.headers()["x-export-rows"], "0");
    assert!(!export.text().await.expect("csv").contains(&id(&person)));

    let attempts = [
        ("/api/v1/contacts", json!({"first_name": "X", "company_id": id(&company)}), "company_id"),
        ("/api/v1/contacts", json!({"first_name": "X", "owner_id": a.user_id}), "owner_id"),
        (
            "/api/v1/deals",
            json!({"title": "X", "pipeline_id": id(&pipeline), "currency": "EUR"}),
            "pipeline_id",
        ),
        ("/api/v1/notes", json!({"body": "X", "contact_id": id(&person)}), "contact_id"),
        ("/api/v1/tasks", json!({"title": "X", "contact_id": id(&person)}), "contact_id"),
        ("/api/v1/leads", json!({"title": "X", "company_id": id(&company)}), "company_id"),
    ];
    for (path, body, field) in attempts {
        let response = app.post_as(&b.token, path, &body).await;
        let problem = expect_problem(response, 422).await;
        assert_eq!(problem["errors"][0]["field"], field, "{path}");
    }
}

#[tokio::test]
async fn an_api_key_scoped_contacts_read_reads_contacts() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let created = contact(&app, &owner, json!({})).await;
    let (_, key) = app.api_key(&owner, &["contacts:read"]).await;
    assert_eq!(app.get_as(&key, "/api/v1/contacts").await.status(), 200);
    let one: Value = app
        .get_as(&key, &format!("/api/v1/contacts/{}", id(&created)))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(one["ssn"], "****4329", "the key does not hold contacts:read_sensitive");
    assert_eq!(
        app.post_as(&key, "/api/v1/contacts", &json!({"first_name": "X"})).await.status(),
        403
    );
    assert_eq!(app.get_as(&key, "/api/v1/companies").await.status(), 403);
}

#[tokio::test]
async fn contacts_are_validated_field_by_field() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let bad = json!({"first_name": "", "email": "nope", "phone": "call me", "date_of_birth": "2999-01-01",
                     "ssn": "12<script>", "address": {"country": "Germany"}, "tags": ["a,b"]});
    let problem =
        expect_problem(app.post_as(&owner.token, "/api/v1/contacts", &bad).await, 422).await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    for field in ["first_name", "email", "phone", "date_of_birth", "ssn", "address.country", "tags"]
    {
        assert!(fields.contains(&field), "{field} missing from {fields:?}");
    }
    assert!(!problem.to_string().contains("script"), "values are not echoed");
    let unknown = app
        .post_as(&owner.token, "/api/v1/contacts", &json!({"first_name": "A", "is_admin": true}))
        .await;
    expect_problem(unknown, 422).await;
    let listed: Value =
        app.get_as(&owner.token, "/api/v1/contacts").await.json().await.expect("json");
    assert_eq!(listed["items"], json!([]), "nothing was created");
}

#[tokio::test]
async fn lists_paginate_without_gaps_and_sort_both_ways() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let mut ids = vec![];
    for n in 0..5 {
        ids.push(id(&contact(&app, &owner, json!({"first_name": format!("P{n}")})).await));
    }
    let mut seen = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/contacts?limit=2&cursor={c}"),
            None => "/api/v1/contacts?limit=2".to_owned(),
        };
        let page: Value = app.get_as(&owner.token, &path).await.json().await.expect("json");
        seen.extend(page["items"].as_array().expect("items").iter().map(id));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let desc: Value = app
        .get_as(&owner.token, "/api/v1/contacts?sort=-created_at")
        .await
        .json()
        .await
        .expect("json");
    let desc: Vec<String> = desc["items"].as_array().expect("items").iter().map(id).collect();
    assert_eq!(desc, ids.iter().rev().cloned().collect::<Vec<_>>());
    for name in ["Zeta", "Alpha", "Mu"] {
        app.post_as(&owner.token, "/api/v1/companies", &json!({"name": name})).await;
    }
    let by_name: Value = app
        .get_as(&owner.token, "/api/v1/companies?sort=name&limit=2")
        .await
        .json()
        .await
        .expect("json");
    let names: Vec<&str> = by_name["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["Alpha", "Mu"]);
    let next = by_name["next_cursor"].as_str().expect("cursor");
    let rest: Value = app
        .get_as(&owner.token, &format!("/api/v1/companies?sort=name&limit=2&cursor={next}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(rest["items"][0]["name"], "Zeta");
    for bad in [
        "sort=ssn",
        "limit=500",
        "cursor=garbage",
        "created_after=yesterday",
        "owner_id=not-a-uuid",
        "colour=red",
    ] {
        assert_eq!(
            app.get_as(&owner.token, &format!("/api/v1/contacts?{bad}")).await.status(),
            422,
            "{bad}"
        );
    }
}

#[tokio::test]
async fn deals_move_through_their_pipeline_stages() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let pipeline: Value = app
        .post_as(&owner.token, "/api/v1/pipelines", &json!({"name": "Sales", "stages": [
            {"name": "Lead"}, {"name": "Proposal"}, {"name": "Won", "kind": "won"}, {"name": "Lost", "kind": "lost"}]}))
        .await
        .json()
        .await
        .expect("json");
    let stages = pipeline["stages"].as_array().expect("stages");
    let won = stages[2]["id"].as_str().expect("id");
    let deal: Value = app
        .post_as(&owner.token, "/api/v1/deals", &json!({"title": "Big one", "pipeline_id": id(&pipeline), "currency": "EUR", "amount_minor": 125_000}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(deal["stage_id"], stages[0]["id"], "a new deal starts at the first stage");
    assert_eq!(deal["status"], "open");
    let moved: Value = app
        .patch_as(&owner.token, &format!("/api/v1/deals/{}", id(&deal)), &json!({"stage_id": won}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(moved["status"], "won");
    let won_deals: Value =
        app.get_as(&owner.token, "/api/v1/deals?status=won").await.json().await.expect("json");
    assert_eq!(won_deals["items"].as_array().map(Vec::len), Some(1));
    // A stage with deals cannot go; a stage of another pipeline is refused.
    let keep_others: Vec<Value> = stages
        .iter()
        .filter(|s| s["id"] != won)
        .map(|s| json!({"id": s["id"], "name": s["name"], "kind": s["kind"]}))
        .collect();
    let removal = app
        .patch_as(
            &owner.token,
            &format!("/api/v1/pipelines/{}", id(&pipeline)),
            &json!({"stages": keep_others}),
        )
        .await;
    assert_eq!(removal.status(), 409);
    let other: Value = app
        .post_as(
            &owner.token,
            "/api/v1/pipelines",
            &json!({"name": "Other", "stages": [{"name": "X"}]}),
        )
        .await
        .json()
        .await
        .expect("json");
    let foreign_stage = other["stages"][0]["id"].clone();
    let wrong = app
        .patch_as(
            &owner.token,
            &format!("/api/v1/deals/{}", id(&deal)),
            &json!({"stage_id": foreign_stage}),
        )
        .await;
    assert_eq!(expect_problem(wrong, 422).await["errors"][0]["field"], "stage_id");
    assert_eq!(
        app.delete_as(&owner.token, &format!("/api/v1/pipelines/{}", id(&pipeline))).await.status(),
        409
    );
}

async fn readable(app: &TestApp, token: &str, contacts: &[String], note: &str, activity: &str) {
    for contact in contacts {
        let c: Value = app
            .get_as(token, &format!("/api/v1/contacts/{contact}"))
            .await
            .json()
            .await
            .expect("json");
        // Masked, but derived from the decrypted value: the contact still opens.
        assert_eq!(c["ssn"], "****4329", "contact {contact} reads back");
    }
    let n: Value =
        app.get_as(token, &format!("/api/v1/notes/{note}")).await.json().await.expect("json");
    assert_eq!(n["body"], "rotation note");
    let a: Value = app
        .get_as(token, &format!("/api/v1/activities/{activity}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(a["details"], "rotation details");
}

#[tokio::test]
async fn keys_rotate_online_and_old_keys_can_then_be_dropped() {
    let old_master = crate::support::MASTER_KEYS;
    let new_master = "test2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let contacts: Vec<String> =
        [contact(&app, &owner, json!({})).await, contact(&app, &owner, json!({})).await]
            .iter()
            .map(id)
            .collect();
    let note = id(&app
        .post_as(
            &owner.token,
            "/api/v1/notes",
            &json!({"body": "rotation note", "contact_id": contacts[0]}),
        )
        .await
        .json::<Value>()
        .await
        .expect("json"));
    let activity = id(&app
        .post_as(&owner.token, "/api/v1/activities", &json!({"kind": "call", "subject": "s", "details": "rotation details", "occurred_at": "2026-01-01T00:00:00Z"}))
        .await
        .json::<Value>()
        .await
        .expect("json"));

    // Master rotation: the new key first, the old one still listed, then the CLI re-wraps.
    let both = format!("{new_master},{old_master}");
    let mut env: Vec<(&str, &str)> = app
        .settings
        .iter()
        .filter(|(k, _)| !k.contains("LISTEN"))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    env.retain(|(k, _)| *k != "BULWARK_MASTER_KEYS");
    env.push(("BULWARK_MASTER_KEYS", &both));
    let output =
        crate::support::binary::run_async(app.db.dir.path(), &env, &["keys", "rotate-master"])
            .await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    readable(&app, &owner.token, &contacts, &note, &activity).await;
    let db = app.stop().await;
    let app = TestApp::spawn_on(db, &[("BULWARK_MASTER_KEYS", new_master)]).await;
    let (token, _) = app.login_ok(&owner.email, PASSWORD).await;
    readable(&app, &token, &contacts, &note, &activity).await;

    // Tenant rotation, interrupted after its first step (as a crash would), then resumed.
    let state = crate::support::app_state(&app).await;
    let tenant: bulwark::ids::TenantId = owner.tenant_id.parse().expect("tenant id");
    let (version, resumed) =
        bulwark::maintenance::rotation::begin_rotation(&state, tenant).await.expect("begin");
    assert_eq!((version, resumed), (2, false));
    readable(&app, &token, &contacts, &note, &activity).await;
    let created_midway =
        id(&contact(&app, &Account { token: token.clone(), ..owner.clone() }, json!({})).await);
    let mut env: Vec<(&str, &str)> = app
        .settings
        .iter()
        .filter(|(k, _)| !k.contains("LISTEN"))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    env.retain(|(k, _)| *k != "BULWARK_MASTER_KEYS");
    env.push(("BULWARK_MASTER_KEYS", new_master));
    let output = crate::support::binary::run_async(
        app.db.dir.path(),
        &env,
        &["keys", "rotate-tenant", "--tenant", &owner.tenant_id],
    )
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("resumed") && stdout.contains("2 contact"), "{stdout}");
    let mut all = contacts.clone();
    all.push(created_midway);
    readable(&app, &token, &all, &note, &activity).await;
    let versions = crate::support::raw_scalar_text(
        &app.db,
        "SELECT min(key_version) || '-' || max(key_version) FROM contacts \
         WHERE tenant_id = (SELECT tenant_id FROM users WHERE email = $1)",
        &owner.email,
    )
    .await;
    assert_eq!(versions, "2-2", "every contact is under the new key");
    let destroyed = crate::support::raw_scalar_text(
        &app.db,
        "SELECT state FROM tenant_keys WHERE purpose = 'data' AND version = 1 AND tenant_id = (SELECT tenant_id FROM users WHERE email = $1)",
        &owner.email,
    )
    .await;
    assert_eq!(destroyed, "destroyed", "the old data key is gone");
    let events: Vec<String> = app
        .audit_events(&Account { token, ..owner })
        .await
        .iter()
        .filter_map(|e| e["action"].as_str().map(str::to_owned))
        .collect();
    assert!(events.iter().filter(|a| *a == "keys.rotate_tenant").count() >= 2, "{events:?}");
}

#[tokio::test]
async fn deleting_a_tenant_destroys_its_keys_records_and_accounts() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Doomed").await;
    let survivor = app.signup("Survivor").await;
    let doomed = contact(&app, &owner, json!({})).await;
    contact(&app, &survivor, json!({})).await;
    let doomed = doomed["id"].as_str().expect("id");
    let uploaded =
        app.upload_as(&owner.token, &[("contact_id", doomed)], "a.txt", b"doomed".to_vec()).await;
    assert_eq!(uploaded.status(), 201);
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
    assert_eq!(app.login(&owner.email, PASSWORD).await.status(), 401);
    let wrapped = crate::support::raw_scalar_text(
        &app.db,
        "SELECT count(*) || '' FROM tenant_keys WHERE wrapped IS NOT NULL AND tenant_id = (SELECT tenant_id FROM users WHERE email = $1)",
        &owner.email,
    )
    .await;
    assert_eq!(wrapped, "0", "no key of the tenant is left");
    // Its documents' rows are gone at once, their objects within seconds (the worker empties
    // the removal queue only after deleting each object).
    // (Only the deleted tenant had a document.)
    let left = |sql: &'static str| crate::support::raw_scalar_text(&app.db, sql, "");
    let documents = "SELECT count(*) || '' FROM documents WHERE $1 = ''";
    assert_eq!(left(documents).await, "0", "the tenant's documents are deleted");
    let queued = "SELECT count(*) || '' FROM document_deletions WHERE $1 = ''";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while left(queued).await != "0" {
        assert!(std::time::Instant::now() < deadline, "objects still stored after 30 s");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let listed: Value =
        app.get_as(&survivor.token, "/api/v1/contacts").await.json().await.expect("json");
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1), "other tenants are untouched");
}

#[tokio::test]
async fn retention_purges_old_records_and_audits_it() {
    let app = TestApp::spawn_with(&[("BULWARK_RETENTION_ACTIVITIES", "365d")]).await;
    let owner = app.signup("Acme").await;
    for when in ["2020-01-01T00:00:00Z", "2099-01-01T00:00:00Z"] {
        let body = json!({"kind": "meeting", "subject": "s", "occurred_at": when});
        assert_eq!(app.post_as(&owner.token, "/api/v1/activities", &body).await.status(), 201);
    }
    app.step_up(&owner).await;
    let report: Value = app
        .post_as(&owner.token, "/api/v1/privacy/purge", &json!({}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(report["activities"], 1);
    let left: Value =
        app.get_as(&owner.token, "/api/v1/activities").await.json().await.expect("json");
    assert_eq!(left["items"].as_array().map(Vec::len), Some(1));
    let event = app
        .audit_events(&owner)
        .await
        .into_iter()
        .find(|e| e["action"] == "data.purge")
        .expect("audited");
    assert_eq!(event["details"]["activities"], 1);
    let agent = app.add_member(&owner, "agent").await;
    app.step_up(&agent).await;
    let refused = app.post_as(&agent.token, "/api/v1/privacy/purge", &json!({})).await;
    assert_eq!(expect_problem(refused, 403).await["code"], "forbidden");
}

/// Every field a create or a PATCH sets reads back as written, references included (each
/// resource's write statement binds its values by position: a swapped pair must show here).
#[tokio::test]
async fn every_field_a_write_sets_reads_back_as_written() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let other = app.add_member(&owner, "agent").await;
    let created = async |path: &str, body: Value| -> Value {
        let response = app.post_as(&owner.token, path, &body).await;
        assert_eq!(response.status(), 201, "{path}");
        response.json().await.expect("json")
    };
    let (me, them) = (owner.user_id.as_str(), other.user_id.as_str());
    let company = id(&created("/api/v1/companies", json!({"name": "Acme"})).await);
    let company2 = id(&created("/api/v1/companies", json!({"name": "Globex"})).await);
    let contact1 = id(&contact(&app, &owner, json!({})).await);
    let contact2 = id(&contact(&app, &owner, json!({})).await);
    let pipeline = created(
        "/api/v1/pipelines",
        json!({"name": "Sales", "stages": [{"name": "One"}, {"name": "Two"}]}),
    )
    .await;
    let stages: Vec<String> =
        pipeline["stages"].as_array().expect("stages").iter().map(id).collect();
    let deal = |title: &str| json!({"title": title, "pipeline_id": id(&pipeline), "currency": "EUR", "amount_minor": 1});
    let deal1 = id(&created("/api/v1/deals", deal("D1")).await);
    let deal2 = id(&created("/api/v1/deals", deal("D2")).await);
    let cases = [
        (
            "/api/v1/companies",
            json!({"name": "Initech", "domain": "initech.example", "industry": "Software",
                   "owner_id": me, "tags": ["a", "b"], "custom_fields": {"tier": "gold"}}),
            json!({"name": "Initrode", "domain": "initrode.example", "industry": "Hardware",
                   "owner_id": them, "tags": ["c"], "custom_fields": {"tier": "silver"}}),
        ),
        (
            "/api/v1/leads",
            json!({"title": "L", "status": "contacted", "source": "web", "contact_id": contact1,
                   "company_id": company, "owner_id": me}),
            json!({"title": "L2", "status": "qualified", "source": "referral",
                   "contact_id": contact2, "company_id": company2, "owner_id": them}),
        ),
        (
            "/api/v1/deals",
            json!({"title": "D", "pipeline_id": id(&pipeline), "stage_id": stages[1],
                   "amount_minor": 500, "currency": "EUR", "expected_close_date": "2027-01-15",
                   "contact_id": contact1, "company_id": company, "owner_id": me}),
            json!({"title": "D'", "stage_id": stages[0], "amount_minor": 700, "currency": "USD",
                   "expected_close_date": "2027-02-16", "contact_id": contact2,
                   "company_id": company2, "owner_id": them}),
        ),
        (
            "/api/v1/tasks",
            json!({"title": "T", "due_date": "2027-01-15", "assignee_id": me, "done": true,
                   "contact_id": contact1, "deal_id": deal1}),
            json!({"title": "T2", "due_date": "2027-02-16", "assignee_id": them, "done": false,
                   "contact_id": contact2, "deal_id": deal2}),
        ),
        (
            "/api/v1/activities",
            json!({"kind": "call", "subject": "S", "details": "said yes",
                   "occurred_at": "2026-12-01T10:00:00Z", "contact_id": contact1,
                   "deal_id": deal1, "owner_id": me}),
            json!({"kind": "meeting", "subject": "S2", "details": "said no",
                   "occurred_at": "2026-12-02T11:00:00Z", "contact_id": contact2,
                   "deal_id": deal2, "owner_id": them}),
        ),
        ("/api/v1/notes", json!({"body": "first", "deal_id": deal1}), json!({"body": "second"})),
        (
            "/api/v1/pipelines",
            json!({"name": "P", "stages": [{"name": "S"}]}),
            json!({"name": "Q"}),
        ),
    ];
    let same = |path: &str, sent: &Value, shown: &Value| {
        for (field, value) in sent.as_object().expect("object") {
            if field == "stages" {
                continue;
            }
            let got = &shown[field];
            match (field.as_str(), value.as_str(), got.as_str()) {
                // Times come back in the server's own RFC 3339 form.
                ("occurred_at", Some(v), Some(g)) => {
                    assert!(g.starts_with(&v[..19]), "{path} {field}")
                }
                _ => assert_eq!(got, value, "{path} {field}"),
            }
        }
    };
    for (path, create, change) in cases {
        let record = created(path, create.clone()).await;
        let one = format!("{path}/{}", id(&record));
        let read: Value = app.get_as(&owner.token, &one).await.json().await.expect("json");
        same(path, &create, &record);
        same(path, &create, &read);
        let patched = app.patch_as(&owner.token, &one, &change).await;
        assert_eq!(patched.status(), 200, "{path}");
        let read: Value = app.get_as(&owner.token, &one).await.json().await.expect("json");
        same(path, &change, &read);
    }
}
