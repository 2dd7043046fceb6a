//! The audit log: hash chains that `bulwark audit verify` checks, append-only at the
//! database, tenant isolation enforced by PostgreSQL row-level security, and revocation seen
//! by another instance within a second.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::binary::{self, Running};
use crate::support::{Backend, PASSWORD, RawDb, TestApp, backend, id_literal, raw_execute};

fn cli_env(app: &TestApp) -> Vec<(&str, &str)> {
    app.settings
        .iter()
        .filter(|(k, _)| !k.contains("LISTEN"))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

async fn verify(app: &TestApp) -> (bool, String) {
    let output = binary::run_async(app.db.dir.path(), &cli_env(app), &["audit", "verify"]).await;
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    )
}

async fn busy_tenant(app: &TestApp) -> (crate::support::Account, Vec<Value>) {
    let owner = app.signup("Acme").await;
    let agent = app.add_member(&owner, "agent").await;
    app.step_up(&owner).await;
    app.patch_as(
        &owner.token,
        &format!("/api/v1/users/{}", agent.user_id),
        &json!({"role": "manager"}),
    )
    .await;
    app.login(&owner.email, "a wrong password!").await;
    app.api_key(&owner, &["users:read"]).await;
    let events = app.audit_events(&owner).await;
    (owner, events)
}

#[tokio::test]
async fn every_flow_is_audited_with_who_what_where() {
    let app = TestApp::spawn().await;
    let (owner, events) = busy_tenant(&app).await;
    let actions: Vec<&str> = events.iter().filter_map(|e| e["action"].as_str()).collect();
    for expected in [
        "auth.signup",
        "auth.login",
        "invitation.create",
        "invitation.accept",
        "user.role_change",
        "auth.login_failed",
        "api_key.create",
    ] {
        assert!(actions.contains(&expected), "{expected} missing from {actions:?}");
    }
    let key = events.iter().find(|e| e["action"] == "api_key.create").expect("event");
    assert_eq!(key["actor_type"], "user");
    assert_eq!(key["actor_id"], owner.user_id.as_str());
    assert_eq!(key["ip"], "127.0.0.1");
    assert!(key["request_id"].is_string() && key["hash"].as_str().map(str::len) == Some(64));
    let seqs: Vec<i64> = events.iter().filter_map(|e| e["seq"].as_i64()).collect();
    assert!(seqs.windows(2).all(|w| w[0] == w[1] + 1), "newest first, no gaps: {seqs:?}");

    let filtered: Value = app
        .get_as(
            &owner.token,
            &format!("/api/v1/audit-events?action=user.role_change&actor={}", owner.user_id),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(filtered["items"].as_array().map(Vec::len), Some(1));
    let paged: Value =
        app.get_as(&owner.token, "/api/v1/audit-events?limit=2").await.json().await.expect("json");
    let cursor = paged["next_cursor"].as_str().expect("a next page");
    let next: Value = app
        .get_as(&owner.token, &format!("/api/v1/audit-events?limit=2&cursor={cursor}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(next["items"][0]["seq"].as_i64(), Some(seqs[2]));
    let bad = app.get_as(&owner.token, "/api/v1/audit-events?from=yesterday").await;
    assert_eq!(bad.status(), 422);
}

#[tokio::test]
async fn editing_an_audit_row_is_detected_and_named() {
    let app = TestApp::spawn().await;
    let (_, events) = busy_tenant(&app).await;
    let (ok, out) = verify(&app).await;
    assert!(ok, "a clean log verifies: {out}");
    let victim = events[2]["id"].as_str().expect("id");
    let edited = raw_execute(
        &app.db,
        &format!("UPDATE audit_events SET outcome = 'failure' WHERE id = {}", id_literal(victim)),
    )
    .await;
    assert_eq!(edited, 1);
    let (ok, out) = verify(&app).await;
    assert!(!ok, "tampering must fail verification");
    assert!(out.contains(victim), "the edited event is named: {out}");
}

#[tokio::test]
async fn deleting_audit_rows_is_detected() {
    let app = TestApp::spawn().await;
    let (_, events) = busy_tenant(&app).await;
    // A middle event: the next one is named.
    let middle = events[3]["id"].as_str().expect("id");
    let after = events[2]["id"].as_str().expect("id");
    raw_execute(&app.db, &format!("DELETE FROM audit_events WHERE id = {}", id_literal(middle)))
        .await;
    let (ok, out) = verify(&app).await;
    assert!(!ok && out.contains(after), "{out}");
}

#[tokio::test]
async fn deleting_the_newest_audit_row_is_detected() {
    let app = TestApp::spawn().await;
    let (_, events) = busy_tenant(&app).await;
    let newest = events[0]["id"].as_str().expect("id");
    raw_execute(&app.db, &format!("DELETE FROM audit_events WHERE id = {}", id_literal(newest)))
        .await;
    let (ok, out) = verify(&app).await;
    assert!(!ok && out.contains("head"), "{out}");
}

#[tokio::test]
async fn the_application_role_cannot_change_or_delete_audit_rows_postgres_only() {
    if backend() != Backend::Postgres {
        eprintln!("PostgreSQL only: SQLite has no roles; the hash chain is its protection");
        return;
    }
    let app = TestApp::spawn().await;
    busy_tenant(&app).await;
    let RawDb::Postgres(mut conn) = app.db.raw(false).await else { unreachable!("postgres") };
    for statement in [
        "UPDATE audit_events SET outcome = 'x'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ] {
        let err = sqlx::query(statement).execute(&mut conn).await.expect_err(statement);
        assert!(err.to_string().contains("permission denied"), "{statement}: {err}");
    }
    let inserted = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM audit_events")
        .fetch_one(&mut conn)
        .await
        .expect("select");
    assert!(inserted > 0, "reading is allowed");
}

#[tokio::test]
async fn row_level_security_hides_other_tenants_from_an_unfiltered_query_postgres_only() {
    if backend() != Backend::Postgres {
        eprintln!("PostgreSQL only: row-level security is the database's second wall");
        return;
    }
    let app = TestApp::spawn().await;
    let a = app.signup("A").await;
    app.add_member(&a, "agent").await;
    let b = app.signup("B").await;
    let url = app.db.app_url();
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("connect as the app role");
    // No tenant set: nothing at all.
    for table in ["users", "sessions", "api_keys", "invitations", "audit_events", "tenants"] {
        let sql = sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}"));
        let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut conn).await.expect("count");
        assert_eq!(n, 0, "{table} without a tenant");
    }
    let mut tx = sqlx::Connection::begin(&mut conn).await.expect("begin");
    sqlx::query("SELECT set_config('bulwark.tenant_id', $1, true)")
        .bind(&a.tenant_id)
        .execute(&mut *tx)
        .await
        .expect("set");
    let tenants: Vec<String> = sqlx::query_scalar("SELECT DISTINCT tenant_id::text FROM users")
        .fetch_all(&mut *tx)
        .await
        .expect("users");
    assert_eq!(tenants, vec![a.tenant_id.clone()]);
    let users: i64 =
        sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(&mut *tx).await.expect("count");
    assert_eq!(users, 2);
    // Writing a row of another tenant is refused too.
    let err = sqlx::query("UPDATE users SET display_name = 'x' WHERE tenant_id = $1::uuid")
        .bind(&b.tenant_id)
        .execute(&mut *tx)
        .await
        .expect("runs");
    assert_eq!(err.rows_affected(), 0);
    tx.rollback().await.expect("rollback");
}

#[test]
fn a_session_revoked_on_one_instance_is_refused_by_another_within_a_second() {
    crate::support::block_on(async {
        let app = TestApp::spawn().await;
        let owner = app.signup("Acme").await;
        let mut env = cli_env(&app);
        env.push(("BULWARK_LISTEN", "127.0.0.1:0"));
        env.push(("BULWARK_METRICS_LISTEN", "off"));
        let dir1 = tempfile::tempdir().expect("dir");
        let dir2 = tempfile::tempdir().expect("dir");
        let one = Running::serve(dir1.path(), &env);
        let two = Running::serve(dir2.path(), &env);
        let client = reqwest::Client::new();
        let login: Value = client
            .post(format!("{}/api/v1/auth/login", one.url))
            .json(&json!({"email": owner.email, "password": PASSWORD}))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("json");
        let token = login["access_token"].as_str().expect("token").to_owned();
        let me = |url: String| client.get(format!("{url}/api/v1/me")).bearer_auth(&token).send();
        assert_eq!(me(two.url.clone()).await.expect("me").status(), 200);
        let logout = client
            .post(format!("{}/api/v1/auth/logout", one.url))
            .bearer_auth(&token)
            .send()
            .await
            .expect("logout");
        assert_eq!(logout.status(), 204);
        let revoked_at = Instant::now();
        loop {
            if me(two.url.clone()).await.expect("me").status() == 401 {
                break;
            }
            assert!(
                revoked_at.elapsed() < Duration::from_secs(1),
                "instance two still accepts the token"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        eprintln!("refused by the other instance after {:?}", revoked_at.elapsed());
        drop((one, two));
    });
}

/// Deleting the newest events and moving the head back leaves a chain that verifies on its
/// own; the signed checkpoints kept outside the database catch it, and a removed chain, and
/// an edited checkpoint.
#[tokio::test]
async fn signed_checkpoints_catch_what_the_chain_alone_cannot() {
    let app = TestApp::spawn_with(&[("BULWARK_AUDIT_CHECKPOINT_INTERVAL", "1s")]).await;
    let (owner, events) = busy_tenant(&app).await;
    let head = events[0]["seq"].as_i64().expect("seq");
    let settings = app.settings.clone();
    let env: Vec<(&str, &str)> = settings
        .iter()
        .filter(|(k, _)| !k.contains("LISTEN"))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    // Stopping writes the last checkpoint of every chain that moved.
    let db = app.stop().await;
    let file = db.dir.path().join("audit-checkpoints.jsonl");
    let text = std::fs::read_to_string(&file).expect("the checkpoint file");
    let ours: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line"))
        .filter(|c| c["chain_id"] == owner.tenant_id.as_str())
        .collect();
    assert!(ours.iter().any(|c| c["seq"] == head), "no checkpoint of the head {head}: {text}");
    let run = |args: Vec<String>| {
        let (dir, env) = (db.dir.path().to_owned(), env.clone());
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let output = binary::run_async(&dir, &env, &args).await;
            (
                output.status.success(),
                String::from_utf8_lossy(&output.stdout).into_owned()
                    + &String::from_utf8_lossy(&output.stderr),
            )
        }
    };
    let plain = || vec!["audit".to_owned(), "verify".to_owned()];
    let signed = |path: &std::path::Path| {
        vec![
            "audit".to_owned(),
            "verify".to_owned(),
            "--checkpoints".to_owned(),
            path.to_str().expect("utf-8").to_owned(),
        ]
    };
    let (ok, out) = run(signed(&file)).await;
    assert!(ok && out.contains("signed checkpoint"), "{out}");

    // An edited checkpoint does not verify.
    let forged_path = db.dir.path().join("forged.jsonl");
    let mut forged = ours.last().expect("a checkpoint").clone();
    forged["seq"] = json!(head + 5);
    std::fs::write(&forged_path, format!("{forged}\n")).expect("write");
    let (ok, out) = run(signed(&forged_path)).await;
    assert!(!ok && out.contains("no valid signature"), "{out}");

    // Truncation: the newest event goes and the head is moved back to the one before.
    let chain = id_literal(&owner.tenant_id);
    raw_execute(
        &db,
        &format!(
            "DELETE FROM audit_events WHERE chain_id = {chain} \
             AND seq = (SELECT seq FROM audit_heads WHERE chain_id = {chain})"
        ),
    )
    .await;
    raw_execute(
        &db,
        &format!(
            "UPDATE audit_heads SET hash = (SELECT e.hash FROM audit_events e \
             WHERE e.chain_id = audit_heads.chain_id AND e.seq = audit_heads.seq - 1), \
             seq = seq - 1 WHERE chain_id = {chain}"
        ),
    )
    .await;
    let (ok, out) = run(plain()).await;
    assert!(ok, "the chain alone cannot see the truncation: {out}");
    let (ok, out) = run(signed(&file)).await;
    assert!(!ok && out.contains(&owner.tenant_id) && out.contains("no longer has it"), "{out}");

    // Removal of the whole chain.
    raw_execute(&db, &format!("DELETE FROM audit_events WHERE chain_id = {chain}")).await;
    raw_execute(&db, &format!("DELETE FROM audit_heads WHERE chain_id = {chain}")).await;
    let (ok, out) = run(plain()).await;
    assert!(ok, "nothing is left for the chain alone to check: {out}");
    let (ok, out) = run(signed(&file)).await;
    assert!(!ok && out.contains(&owner.tenant_id), "{out}");
}

/// The head follows its chain in the database itself: an event that skips a sequence
/// number (or names a chain without a head) is refused by the trigger of migration 0008
/// (per statement on PostgreSQL since 0022), even from the owner role; the next number is
/// accepted and moves the head.
#[tokio::test]
async fn an_event_that_does_not_follow_its_head_is_refused() {
    let app = TestApp::spawn().await;
    let (owner, _) = busy_tenant(&app).await;
    let chain = id_literal(&owner.tenant_id);
    // Copies of the newest event, `step` past it; several in one statement.
    let copies_of_newest = |steps: &[i64]| {
        let selects: Vec<String> = steps
            .iter()
            .map(|step| {
                format!(
                    "SELECT {}, chain_id, tenant_id, seq + {step}, occurred_at, actor_type, \
                     actor_id, action, target_type, target_id, outcome, ip, user_agent, \
                     request_id, details, prev_hash, hash FROM audit_events \
                     WHERE chain_id = {chain} \
                     AND seq = (SELECT seq FROM audit_heads WHERE chain_id = {chain})",
                    typed_id(&uuid::Uuid::new_v4().to_string())
                )
            })
            .collect();
        format!(
            "INSERT INTO audit_events (id, chain_id, tenant_id, seq, occurred_at, actor_type, \
             actor_id, action, target_type, target_id, outcome, ip, user_agent, request_id, \
             details, prev_hash, hash) {}",
            selects.join(" UNION ALL ")
        )
    };
    let copy_of_newest = |step: i64| copies_of_newest(&[step]);
    // A UNION types PostgreSQL's bare literal as text, which no uuid column takes.
    fn typed_id(id: &str) -> String {
        match backend() {
            Backend::Sqlite => id_literal(id),
            Backend::Postgres => format!("{}::uuid", id_literal(id)),
        }
    }
    let attempt = |sql: String| async {
        let sql = sqlx::AssertSqlSafe(sql);
        match app.db.raw(true).await {
            RawDb::Sqlite(mut c) => sqlx::query(sql).execute(&mut c).await.map(|_| ()),
            RawDb::Postgres(mut c) => sqlx::query(sql).execute(&mut c).await.map(|_| ()),
        }
    };
    let head = || async {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT CAST(seq AS TEXT) FROM audit_heads WHERE chain_id = {chain}"
        ));
        match app.db.raw(true).await {
            RawDb::Sqlite(mut c) => sqlx::query_scalar::<_, String>(sql).fetch_one(&mut c).await,
            RawDb::Postgres(mut c) => sqlx::query_scalar::<_, String>(sql).fetch_one(&mut c).await,
        }
        .expect("the chain's head")
    };
    let before = head().await;
    let skipped = attempt(copy_of_newest(2)).await;
    assert!(skipped.is_err(), "an event two past the head was accepted");
    assert_eq!(head().await, before, "a refused event moves nothing");
    attempt(copy_of_newest(1)).await.expect("the next event is accepted");
    let after: i64 = head().await.parse().expect("seq");
    assert_eq!(after, before.parse::<i64>().expect("seq") + 1, "and moves the head");

    // Several events in one statement (a restore's batches; PostgreSQL checks them per
    // statement, migration 0022): a gap among them, or a run that starts past the head, is
    // refused whole; a run that continues the head moves it to its last event.
    let before = head().await;
    for steps in [&[1, 3][..], &[2, 3], &[1, 2, 4]] {
        let refused = attempt(copies_of_newest(steps)).await.expect_err("accepted");
        // The trigger's refusal, not any error: "does not follow" (SQLite, PostgreSQL's
        // 0008) or "do not follow" (PostgreSQL's per-statement check).
        assert!(refused.to_string().contains("follow the head"), "{steps:?}: {refused}");
        assert_eq!(head().await, before, "a refused statement moves nothing");
    }
    attempt(copies_of_newest(&[1, 2, 3])).await.expect("three next events are accepted");
    let after: i64 = head().await.parse().expect("seq");
    assert_eq!(after, before.parse::<i64>().expect("seq") + 3, "and move the head past all three");
}

/// SQLite's writer remembers where it left each chain's head and appends without reading it
/// (`audit::store::append`), but only if the head is still that one, sequence number and
/// hash, checked in the insert itself. Here the head is moved behind the writer's back (as
/// another process or a rolled-back write would) to the same sequence number with another
/// hash: the next event must follow the head as it is, not as the writer remembered it.
#[tokio::test]
async fn an_append_follows_the_real_head_of_its_chain_not_a_remembered_one() {
    let app = TestApp::spawn().await;
    let (owner, _) = busy_tenant(&app).await;
    let chain = id_literal(&owner.tenant_id);
    let moved = vec![7u8; 32];
    let hex: String = moved.iter().map(|b| format!("{b:02x}")).collect();
    let blob = match backend() {
        Backend::Sqlite => format!("X'{hex}'"),
        Backend::Postgres => format!("'\\x{hex}'::bytea"),
    };
    let sql = sqlx::AssertSqlSafe(format!(
        "UPDATE audit_heads SET hash = {blob} WHERE chain_id = {chain}"
    ));
    match app.db.raw(true).await {
        RawDb::Sqlite(mut c) => sqlx::query(sql).execute(&mut c).await.map(|_| ()),
        RawDb::Postgres(mut c) => sqlx::query(sql).execute(&mut c).await.map(|_| ()),
    }
    .expect("move the head");
    // Any audited write of the tenant: a contact.
    let created =
        app.post_as(&owner.token, "/api/v1/contacts", &json!({"first_name": "Ada"})).await;
    assert_eq!(created.status(), 201);
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT prev_hash FROM audit_events WHERE chain_id = {chain} \
         AND seq = (SELECT seq FROM audit_heads WHERE chain_id = {chain})"
    ));
    let prev: Vec<u8> = match app.db.raw(true).await {
        RawDb::Sqlite(mut c) => sqlx::query_scalar(sql).fetch_one(&mut c).await,
        RawDb::Postgres(mut c) => sqlx::query_scalar(sql).fetch_one(&mut c).await,
    }
    .expect("the newest event");
    assert_eq!(prev, moved, "the new event follows the head as the database has it");
}

/// A record's create and update log one event each, whichever of the write's statements the
/// append goes along with (on SQLite's writer it rides with the next one: for a tenant's
/// first contact that is the read of its data key, later the insert itself), and the chain
/// still verifies.
#[tokio::test]
async fn a_record_write_logs_its_event_exactly_once() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let body = json!({"first_name": format!("C{n}"), "email": format!("c{n}@example.com")});
        let created = app.post_as(&owner.token, "/api/v1/contacts", &body).await;
        assert_eq!(created.status(), 201);
        let created: Value = created.json().await.expect("json");
        ids.push(created["id"].as_str().expect("id").to_owned());
    }
    let path = format!("/api/v1/contacts/{}", ids[0]);
    let patched = app.patch_as(&owner.token, &path, &json!({"last_name": "Lovelace"})).await;
    assert_eq!(patched.status(), 200);
    let company = app.post_as(&owner.token, "/api/v1/companies", &json!({"name": "Initech"})).await;
    assert_eq!(company.status(), 201);
    let company: Value = company.json().await.expect("json");
    let events = app.audit_events(&owner).await;
    let logged = |action: &str, target: &str| {
        events.iter().filter(|e| e["action"] == action && e["target_id"] == target).count()
    };
    for id in &ids {
        assert_eq!(logged("contact.create", id), 1, "contact {id}");
    }
    assert_eq!(logged("contact.update", &ids[0]), 1);
    assert_eq!(logged("company.create", company["id"].as_str().expect("id")), 1);
    let (ok, text) = verify(&app).await;
    assert!(ok, "{text}");
}

/// An event sent ahead of a write (`audit::Ahead`) is logged exactly once or the transaction
/// fails: sent alone when no statement took it along, refused at commit when nobody finished
/// it, and an error, never a second append, when its outcome is lost. SQLite only: elsewhere
/// nothing rides along and `finish` appends as `record` does.
#[tokio::test]
async fn an_event_sent_ahead_is_logged_once_or_its_transaction_fails_sqlite_only() {
    use bulwark::audit::{Action, Event, RequestContext};
    use bulwark::store::AsRawTx as _;
    if backend() != Backend::Sqlite {
        return;
    }
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let state = crate::support::app_state(&app).await;
    let tenant = bulwark::ids::TenantId::from_uuid(owner.tenant_id.parse().expect("tenant id"));
    let scope = bulwark::tenancy::TenantScope::system(tenant, "audit ahead test");
    let ctx = RequestContext::system();
    let event = |target: &str| Event::new(Action::ContactCreate).target("contact", target);
    let logged = |target: &'static str| {
        crate::support::raw_scalar_text(
            &app.db,
            "SELECT count(*) || '' FROM audit_events WHERE target_id = $1",
            target,
        )
    };
    // This writer learns the chain's head, so what follows rides along.
    bulwark::audit::record_alone(&state, &scope, &ctx, event("warm")).await.expect("append");

    // Nothing took it along: `finish` sends it alone.
    let mut tx = state.store().tenant_tx(&scope).await.expect("tx");
    let ahead = bulwark::audit::ahead(&mut tx, &ctx, event("alone"));
    ahead.finish(&mut tx, &ctx).await.expect("finish");
    tx.commit().await.expect("commit");
    assert_eq!(logged("alone").await, "1");

    // Nobody finished it: the commit is refused, and nothing is logged.
    let mut tx = state.store().tenant_tx(&scope).await.expect("tx");
    drop(bulwark::audit::ahead(&mut tx, &ctx, event("unfinished")));
    assert!(tx.commit().await.is_err(), "a commit left the event behind");
    assert_eq!(logged("unfinished").await, "0");

    // It rode along, and then its outcome went missing: an error, not a second append.
    let mut tx = state.store().tenant_tx(&scope).await.expect("tx");
    let ahead = bulwark::audit::ahead(&mut tx, &ctx, event("lost"));
    bulwark::store::query("SELECT 1").execute(&mut tx).await.expect("a statement to ride");
    assert!(matches!(tx.raw().take_rider(), Some(Ok(1))), "the event did not ride along");
    assert!(ahead.finish(&mut tx, &ctx).await.is_err(), "a lost outcome was appended again");
    drop(tx);
    assert_eq!(logged("lost").await, "0");
    let (ok, text) = verify(&app).await;
    assert!(ok, "{text}");
}
