//! Stripe's signed events record payments once, for the tenant and company their metadata
//! names and nowhere else; a crash between the receipt and the payment loses nothing; credit
//! limits change only with `credit:manage` and a step-up, audited with both values.

use serde_json::{Value, json};

use crate::support::integrations::{post_stripe, stripe_event, stripe_signature};
use crate::support::{Account, Backend, TestApp, backend, expect_problem, raw_execute};

const SECRETS: &str = "whsec_current_0123456789,whsec_previous_0123456789";

async fn company(app: &TestApp, who: &Account, name: &str) -> String {
    let created = app.post_as(&who.token, "/api/v1/companies", &json!({"name": name})).await;
    assert_eq!(created.status(), 201);
    created.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_owned()
}

async fn payments(app: &TestApp, who: &Account, company: &str) -> Vec<Value> {
    let path = format!("/api/v1/payments?company_id={company}");
    let page: Value = app.get_as(&who.token, &path).await.json().await.expect("json");
    page["items"].as_array().expect("items").clone()
}

fn event_id() -> String {
    format!("evt_{}", uuid::Uuid::new_v4().simple())
}

async fn status_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or_default();
    (status, body["status"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn stripe_events_are_verified_recorded_once_and_only_in_the_tenant_they_name() {
    let app = TestApp::spawn_with(&[("BULWARK_STRIPE_WEBHOOK_SECRETS", SECRETS)]).await;
    let a = app.signup("Tenant A").await;
    let b = app.signup("Tenant B").await;
    let a_company = company(&app, &a, "A Corp").await;
    let b_company = company(&app, &b, "B Corp").await;

    // Signed with the current secret: recorded; replayed: acknowledged, nothing more.
    let paid = stripe_event(&event_id(), "payment_intent.succeeded", &a.tenant_id, &a_company);
    assert_eq!(
        status_of(post_stripe(&app, "whsec_current_0123456789", &paid).await).await,
        (200, "processed".into())
    );
    assert_eq!(
        status_of(post_stripe(&app, "whsec_current_0123456789", &paid).await).await,
        (200, "duplicate".into())
    );
    let listed = payments(&app, &a, &a_company).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (
            listed[0]["kind"].clone(),
            listed[0]["amount_minor"].clone(),
            listed[0]["currency"].clone()
        ),
        (json!("payment"), json!(4200), json!("EUR"))
    );
    // The previous secret still verifies (a rotation misses nothing); refunds and invoices.
    for kind in ["charge.refunded", "invoice.paid"] {
        let event = stripe_event(&event_id(), kind, &a.tenant_id, &a_company);
        assert_eq!(
            status_of(post_stripe(&app, "whsec_previous_0123456789", &event).await).await,
            (200, "processed".into()),
            "{kind}"
        );
    }
    let kinds: Vec<Value> =
        payments(&app, &a, &a_company).await.iter().map(|p| p["kind"].clone()).collect();
    assert_eq!(kinds, vec![json!("invoice"), json!("refund"), json!("payment")]);

    // Refused: an unknown secret, an old timestamp, an altered body, no signature.
    let fresh = stripe_event(&event_id(), "payment_intent.succeeded", &a.tenant_id, &a_company);
    expect_problem(post_stripe(&app, "whsec_unknown_0123456789", &fresh).await, 401).await;
    let send = |signature: String, body: String| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/hooks/stripe"))
                .header("content-type", "application/json")
                .header("stripe-signature", signature)
                .body(body)
                .send()
                .await
                .expect("request")
        }
    };
    let now = time_now();
    let old = stripe_signature("whsec_current_0123456789", now - 600, &fresh);
    expect_problem(send(old, fresh.clone()).await, 401).await;
    let signed = stripe_signature("whsec_current_0123456789", now, &fresh);
    let altered = fresh.replace("4200", "999999");
    expect_problem(send(signed.clone(), altered).await, 401).await;
    expect_problem(send(String::new(), fresh.clone()).await, 401).await;
    assert_eq!(payments(&app, &a, &a_company).await.len(), 3, "nothing refused was recorded");
    // The refused event, properly signed, still goes through (it was never claimed).
    assert_eq!(status_of(send(signed, fresh).await).await, (200, "processed".into()));

    // Naming tenant A with B's company (or B with A's): touches nobody.
    for (tenant, company) in [(&a.tenant_id, &b_company), (&b.tenant_id, &a_company)] {
        let crossed = stripe_event(&event_id(), "payment_intent.succeeded", tenant, company);
        assert_eq!(
            status_of(post_stripe(&app, "whsec_current_0123456789", &crossed).await).await,
            (200, "ignored".into())
        );
    }
    assert!(payments(&app, &b, &b_company).await.is_empty());
    assert!(payments(&app, &b, &a_company).await.is_empty(), "B cannot list A's payments");
    assert_eq!(payments(&app, &a, &a_company).await.len(), 4);
    // Partial refunds of one charge: Stripe sends the running total; each records its part.
    for (total, id) in [(1000, event_id()), (3000, event_id()), (3000, event_id())] {
        let refund = json!({"id": id, "object": "event", "type": "charge.refunded", "created": 1_765_000_000,
            "data": {"object": {"id": "ch_partial", "object": "charge", "amount_refunded": total,
                "currency": "eur", "metadata": {"tenant_id": a.tenant_id, "company_id": a_company}}}})
        .to_string();
        post_stripe(&app, "whsec_current_0123456789", &refund).await;
    }
    let refunds: Vec<i64> = payments(&app, &a, &a_company)
        .await
        .iter()
        .filter(|p| p["stripe_object_id"] == "ch_partial")
        .filter_map(|p| p["amount_minor"].as_i64())
        .collect();
    assert_eq!(refunds, vec![2000, 1000], "the running total is recorded as its parts");
    // Other event types are acknowledged and ignored.
    let other = stripe_event(&event_id(), "customer.created", &a.tenant_id, &a_company);
    assert_eq!(
        status_of(post_stripe(&app, "whsec_current_0123456789", &other).await).await,
        (200, "ignored".into())
    );
    assert!(app.audit_actions(&a).await.iter().any(|action| action == "payment.record"));

    // Reading needs payments:read (managers and up).
    let agent = app.add_member(&a, "agent").await;
    expect_problem(app.get_as(&agent.token, "/api/v1/payments").await, 403).await;
    let manager = app.add_member(&a, "manager").await;
    assert_eq!(app.get_as(&manager.token, "/api/v1/payments").await.status(), 200);
}

fn time_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

#[tokio::test]
async fn a_crash_between_storing_and_acting_leaves_nothing_and_stripes_retry_records_once() {
    let app = TestApp::spawn_with(&[("BULWARK_STRIPE_WEBHOOK_SECRETS", SECRETS)]).await;
    let a = app.signup("Tenant A").await;
    let a_company = company(&app, &a, "A Corp").await;
    // The payment's INSERT fails after the receipt's, in the same transaction.
    let (install, remove): (&[&str], &[&str]) = match backend() {
        Backend::Sqlite => (
            &[
                "CREATE TRIGGER crash BEFORE INSERT ON payments BEGIN SELECT RAISE(ABORT, 'crash'); END",
            ],
            &["DROP TRIGGER crash"],
        ),
        Backend::Postgres => (
            &[
                "CREATE FUNCTION crash() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                 RAISE EXCEPTION 'crash'; END $$",
                "CREATE TRIGGER crash BEFORE INSERT ON payments FOR EACH ROW EXECUTE FUNCTION crash()",
            ],
            &["DROP TRIGGER crash ON payments", "DROP FUNCTION crash()"],
        ),
    };
    for sql in install {
        raw_execute(&app.db, sql).await;
    }
    let event = stripe_event(&event_id(), "invoice.paid", &a.tenant_id, &a_company);
    let crashed = post_stripe(&app, "whsec_current_0123456789", &event).await;
    assert!(crashed.status().is_server_error(), "{}", crashed.status());
    assert!(payments(&app, &a, &a_company).await.is_empty());
    for sql in remove {
        raw_execute(&app.db, sql).await;
    }
    // Stripe retries: the receipt was rolled back with the payment, so this one acts, once.
    assert_eq!(
        status_of(post_stripe(&app, "whsec_current_0123456789", &event).await).await,
        (200, "processed".into())
    );
    assert_eq!(
        status_of(post_stripe(&app, "whsec_current_0123456789", &event).await).await,
        (200, "duplicate".into())
    );
    assert_eq!(payments(&app, &a, &a_company).await.len(), 1);
}

#[tokio::test]
async fn a_credit_limit_needs_credit_manage_and_a_step_up_and_is_audited_with_both_values() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let id = company(&app, &owner, "Big Customer").await;
    let path = format!("/api/v1/companies/{id}/credit-limit");
    let limit = json!({"credit_limit": {"amount_minor": 500_000, "currency": "EUR"}});
    // An agent (stepped up, so only the permission can refuse) may not.
    let agent = app.add_member(&owner, "agent").await;
    app.step_up(&agent).await;
    assert_eq!(
        expect_problem(
            app.send(reqwest::Method::PUT, &path, Some(&agent.token), Some(&limit)).await,
            403
        )
        .await["code"],
        "forbidden"
    );
    // A manager holds credit:manage but must step up first.
    let manager = app.add_member(&owner, "manager").await;
    let refused = app.send(reqwest::Method::PUT, &path, Some(&manager.token), Some(&limit)).await;
    assert_eq!(expect_problem(refused, 403).await["code"], "step_up_required");
    app.step_up(&manager).await;
    let set = app.send(reqwest::Method::PUT, &path, Some(&manager.token), Some(&limit)).await;
    assert_eq!(set.status(), 200);
    let set: Value = set.json().await.expect("json");
    assert_eq!(set["credit_limit"], limit["credit_limit"]);
    // Bad values change nothing; the limit is not part of an ordinary edit.
    for bad in [
        json!({"credit_limit": {"amount_minor": -1, "currency": "EUR"}}),
        json!({"credit_limit": {"amount_minor": 1, "currency": "euro"}}),
    ] {
        expect_problem(
            app.send(reqwest::Method::PUT, &path, Some(&manager.token), Some(&bad)).await,
            422,
        )
        .await;
    }
    let sneaky = json!({"credit_limit": {"amount_minor": 1, "currency": "EUR"}});
    expect_problem(
        app.patch_as(&owner.token, &format!("/api/v1/companies/{id}"), &sneaky).await,
        422,
    )
    .await;
    // Removed; each change audited with the old and new values.
    let cleared = app
        .send(
            reqwest::Method::PUT,
            &path,
            Some(&manager.token),
            Some(&json!({"credit_limit": null})),
        )
        .await;
    assert_eq!(cleared.json::<Value>().await.expect("json")["credit_limit"], Value::Null);
    let events: Vec<Value> = app
        .audit_events(&owner)
        .await
        .into_iter()
        .filter(|e| e["action"] == "company.credit_limit_change")
        .collect();
    assert_eq!(events.len(), 2, "{events:?}");
    let details: Vec<(Value, Value)> =
        events.iter().map(|e| (e["details"]["old"].clone(), e["details"]["new"].clone())).collect();
    assert!(details.contains(&(Value::Null, limit["credit_limit"].clone())), "{details:?}");
    assert!(details.contains(&(limit["credit_limit"].clone(), Value::Null)), "{details:?}");
}
