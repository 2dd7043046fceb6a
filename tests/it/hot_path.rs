//! What the request path costs the database, counted (never timed): authentication and
//! authorisation together take at most one statement, and none while the caches are warm.
//! `bulwark::store::statements_sent` counts every statement (transaction begins and commits
//! included) the in-process server sends.

use std::time::Duration;

use serde_json::json;

use crate::support::TestApp;

/// Statements sent while `requests` run.
async fn cost<F: Future<Output = ()>>(requests: F) -> u64 {
    let before = bulwark::store::statements_sent();
    requests.await;
    bulwark::store::statements_sent() - before
}

#[tokio::test]
async fn authentication_costs_one_statement_cold_and_none_warm() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    app.step_up(&owner).await;
    let (_, key) = app.api_key(&owner, &["contacts:read"]).await;
    for credential in [owner.token.as_str(), key.as_str()] {
        // Warm: the first request read the session (or key), then nothing.
        assert_eq!(app.get_as(credential, "/api/v1/me").await.status(), 200);
        let warm = cost(async {
            for _ in 0..20 {
                assert_eq!(app.get_as(credential, "/api/v1/me").await.status(), 200);
            }
        })
        .await;
        assert_eq!(warm, 0, "20 warm requests sent {warm} statements");
        // Cold (the entry outlived its 500 ms): one statement reads it all again; behind a
        // transaction pooler that statement needs a transaction of its own (begin with the
        // system setting, the read, the rollback of a read-only transaction is not counted).
        tokio::time::sleep(Duration::from_millis(600)).await;
        let cold = cost(async {
            assert_eq!(app.get_as(credential, "/api/v1/me").await.status(), 200);
        })
        .await;
        let expected = if crate::support::via_pgbouncer() { 3 } else { 1 };
        assert_eq!(cold, expected, "a cold request sent {cold} statements");
    }
    // A step-up route checks the step-up from the same state: when warm it sends exactly the
    // statements of its own write — begin (with PostgreSQL's tenant setting), the key's
    // insert, the audit append, commit. The append is two statements on PostgreSQL (lock the
    // chain's head, insert the event; a trigger advances the head) and one on SQLite, whose
    // writer knows the head it left (the insert checks it; see
    // `an_append_follows_the_real_head_of_its_chain_not_a_remembered_one` in
    // audit.rs).
    assert_eq!(app.get_as(&owner.token, "/api/v1/me").await.status(), 200);
    let sensitive = json!({"name": "k2", "scopes": ["contacts:read"]});
    let warm = cost(async {
        let created = app.post_as(&owner.token, "/api/v1/api-keys", &sensitive).await;
        assert_eq!(created.status(), 201);
    })
    .await;
    let write = match crate::support::backend() {
        crate::support::Backend::Sqlite => 4,
        crate::support::Backend::Postgres => 6,
    };
    assert_eq!(warm, write, "a warm step-up route that writes");
}

/// A contact's create sends only the statements of its write: begin (PostgreSQL: and its
/// tenant setting), the insert, which returns the row instead of a read after it, the audit
/// append (one statement on SQLite, see above), commit. PostgreSQL also locks and reads the
/// current data key and reads the webhook subscriptions; SQLite's writer keeps both between
/// writes (`store::kept`) and instead asks once per group of writes whether another
/// connection committed (`PRAGMA data_version`; see
/// `what_the_writer_keeps_follows_changes_made_anywhere` in webhooks.rs).
#[tokio::test]
async fn a_contact_create_reads_nothing_back() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let create = |n: u32| {
        let body = json!({"first_name": "Ada", "email": format!("ada{n}@example.com")});
        let token = owner.token.clone();
        let app = &app;
        async move {
            let created = app.post_as(&token, "/api/v1/contacts", &body).await;
            assert_eq!(created.status(), 201);
        }
    };
    // Warm: the session, the tenant's keys and the audit chain's head are known.
    create(0).await;
    let warm = cost(create(1)).await;
    let expected = match crate::support::backend() {
        crate::support::Backend::Sqlite => 5,
        crate::support::Backend::Postgres => 9,
    };
    assert_eq!(warm, expected, "a warm contact create");
}
