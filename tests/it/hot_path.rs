//! What the request path costs the database, counted (never timed): authentication and
//! authorisation together take at most one statement, and none while the caches are warm.
//! `bulwark::store::statements_sent` counts every statement (transaction begins and commits
//! included) the in-process server sends.

use std::time::Duration;

use serde_json::json;

use crate::support::TestApp;

/// The figure of the backend under test.
fn on_backend(sqlite: u64, postgres: u64) -> u64 {
    match crate::support::backend() {
        crate::support::Backend::Sqlite => sqlite,
        crate::support::Backend::Postgres => postgres,
    }
}

/// Statements sent while `requests` run.
async fn cost<F: Future<Output = ()>>(requests: F) -> u64 {
    let before = bulwark::store::statements_sent();
    requests.await;
    bulwark::store::statements_sent() - before
}

/// The statements one warm request sends, measured twice and the fewer kept: the counter is
/// the process's, so a cache entry expiring meanwhile (the session's lives 500 ms, which a
/// slow run through PgBouncer can outlast) or a worker's poll adds to one measurement; a
/// request that itself sends more adds to both.
async fn warm_cost<F: Fn() -> Fut, Fut: Future<Output = ()>>(request: F) -> u64 {
    let first = cost(request()).await;
    first.min(cost(request()).await)
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
    assert_eq!(warm, on_backend(4, 6), "a warm step-up route that writes");
}

/// A record's create sends only the statements of its write: begin (PostgreSQL: and its
/// tenant setting), the insert, which returns the row instead of a read after it, the audit
/// append (on SQLite it rides along with the insert, in the same hand-off: see
/// `audit::Ahead`), commit: 3 on SQLite, 6 on PostgreSQL. On top:
/// each reference is checked (one statement: the note's contact, the activity's owner, who
/// is its author unless the body names another); an encrypted record needs the current data
/// key (PostgreSQL reads its version with the lock that holds it: one), and a contact's create is heard by webhook
/// subscribers (PostgreSQL reads them: one). SQLite's writer keeps
/// the key and the subscriptions between writes (`store::kept`) and instead asks once per
/// group of writes whether another connection committed (`PRAGMA data_version`; see
/// `what_the_writer_keeps_follows_changes_made_anywhere` in webhooks.rs). Deals are left out:
/// their row joins the stage's kind, so it is read back.
#[tokio::test]
async fn a_record_create_reads_nothing_back() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let contact = json!({"first_name": "Ada", "email": "ada@example.com"});
    let created = app.post_as(&owner.token, "/api/v1/contacts", &contact).await;
    let contact_id = created.json::<serde_json::Value>().await.expect("json")["id"].clone();
    let at = "2026-01-01T00:00:00Z";
    // (path, body, statements on SQLite, on PostgreSQL)
    let records = [
        ("contacts", json!({"first_name": "Bo", "email": "bo@example.com"}), 4, 8),
        ("companies", json!({"name": "Initech"}), 3, 6),
        ("leads", json!({"title": "Renewal"}), 3, 6),
        ("tasks", json!({"title": "Call back"}), 3, 6),
        ("activities", json!({"kind": "call", "subject": "Intro", "occurred_at": at}), 5, 8),
        ("notes", json!({"body": "Met at the fair", "contact_id": contact_id}), 5, 8),
    ];
    for (path, body, sqlite, postgres) in records {
        let create = || async {
            let created = app.post_as(&owner.token, &format!("/api/v1/{path}"), &body).await;
            assert_eq!(created.status(), 201, "{path}");
        };
        // Warm: the session, the tenant's keys and the audit chain's head are known.
        create().await;
        let warm = warm_cost(create).await;
        assert_eq!(warm, on_backend(sqlite, postgres), "a warm create of {path}");
    }
}

/// A record's update reads the row once (to merge the patch and to refuse a missing or
/// foreign id with a 404) and writes it with a statement that returns it: no read after the
/// write. On SQLite: begin, the read, the update (the audit append rides along with it),
/// commit (4); PostgreSQL sends the append on its own and adds its tenant setting and the
/// audit head's lock (7). On top: an encrypted record opens
/// its sealed values to merge the patch and seals them again: PostgreSQL reads the current
/// key's version for the one and holds it for the other (two), SQLite's writer asks
/// `PRAGMA data_version` whether what it keeps still holds (one); an activity checks its
/// owner (one); a contact's update is heard by webhook subscribers (PostgreSQL reads them:
/// one).
#[tokio::test]
async fn a_record_update_reads_its_row_once_and_nothing_after_the_write() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let at = "2026-01-01T00:00:00Z";
    let contact = app
        .post_as(&owner.token, "/api/v1/contacts", &json!({"first_name": "Ada"}))
        .await
        .json::<serde_json::Value>()
        .await
        .expect("json")["id"]
        .clone();
    // (path, body of the create, patch, statements on SQLite, on PostgreSQL)
    let records = [
        (
            "contacts",
            json!({"first_name": "Bo", "email": "bo@example.com"}),
            json!({"last_name": "Lind"}),
            5,
            10,
        ),
        ("companies", json!({"name": "Initech"}), json!({"name": "Initrode"}), 4, 7),
        ("leads", json!({"title": "Renewal"}), json!({"title": "Upsell"}), 4, 7),
        ("tasks", json!({"title": "Call back"}), json!({"done": true}), 4, 7),
        (
            "activities",
            json!({"kind": "call", "subject": "Intro", "occurred_at": at}),
            json!({"subject": "Follow-up"}),
            6,
            10,
        ),
        (
            "notes",
            json!({"body": "Met at the fair", "contact_id": contact}),
            json!({"body": "Met twice"}),
            5,
            9,
        ),
    ];
    for (path, body, patch, sqlite, postgres) in records {
        let created = app.post_as(&owner.token, &format!("/api/v1/{path}"), &body).await;
        assert_eq!(created.status(), 201, "{path}");
        let id = created.json::<serde_json::Value>().await.expect("json")["id"].clone();
        let url = format!("/api/v1/{path}/{}", id.as_str().expect("an id"));
        // Warm: the first update found the session, the tenant's keys and the audit head.
        assert_eq!(app.patch_as(&owner.token, &url, &patch).await.status(), 200, "{path}");
        let warm = warm_cost(|| async {
            assert_eq!(app.patch_as(&owner.token, &url, &patch).await.status(), 200, "{path}");
        })
        .await;
        assert_eq!(warm, on_backend(sqlite, postgres), "a warm update of {path}");
    }
}
