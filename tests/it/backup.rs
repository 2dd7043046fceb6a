//! Backups: `bulwark backup create` under writes, `backup verify`, the stock `age` tool,
//! `bulwark restore` into an empty database of either backend (SQLite into PostgreSQL is
//! the way to move), and the shred ledger that keeps a deleted tenant deleted.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use age::secrecy::ExposeSecret as _;
use serde_json::{Value, json};

use crate::support::binary;
use crate::support::{
    Account, Backend, PASSWORD, TestApp, TestDb, app_state, backend, unique_email,
};

const SSN: &str = "987-65-4329";

/// An age key pair for the test: the identity file and the recipient.
struct Keys {
    identity: PathBuf,
    recipient: String,
}

fn keys(dir: &Path) -> Keys {
    let identity = age::x25519::Identity::generate();
    let path = dir.join("backup-identity.txt");
    std::fs::write(&path, format!("{}\n", identity.to_string().expose_secret())).expect("write");
    Keys { identity: path, recipient: identity.to_public().to_string() }
}

/// The settings a CLI command needs to act on `db` (the app's own, listeners left out).
fn env_for(app: &TestApp, db: &TestDb, keys: &Keys) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = app
        .settings
        .iter()
        .filter(|(k, _)| {
            !k.contains("LISTEN") && !k.starts_with("BULWARK_DATABASE") && k != "BULWARK_DATA_DIR"
        })
        .cloned()
        .collect();
    env.extend(db.settings());
    env.push(("BULWARK_DATA_DIR".into(), db.dir.path().display().to_string()));
    env.push(("BULWARK_BACKUP_RECIPIENTS".into(), keys.recipient.clone()));
    env
}

async fn cli(dir: &Path, env: &[(String, String)], args: &[&str]) -> (bool, String) {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let output = binary::run_async(dir, &env, args).await;
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

/// `bulwark backup verify --from FROM` with the test's identity.
async fn verify(dir: &Path, env: &[(String, String)], from: &str, keys: &Keys) -> (bool, String) {
    let identity = keys.identity.to_str().expect("utf-8");
    cli(dir, env, &["backup", "verify", "--from", from, "--identity", identity]).await
}

/// `bulwark restore --from FROM` with the test's identity.
async fn restore(dir: &Path, env: &[(String, String)], from: &str, keys: &Keys) -> (bool, String) {
    let identity = keys.identity.to_str().expect("utf-8");
    cli(dir, env, &["restore", "--from", from, "--identity", identity]).await
}

async fn create_contact(app: &TestApp, by: &Account, n: usize) -> Value {
    let body =
        json!({"first_name": format!("Contact {n}"), "email": unique_email("c"), "ssn": SSN});
    let response = app.post_as(&by.token, "/api/v1/contacts", &body).await;
    assert_eq!(response.status(), 201, "contact {n}");
    response.json().await.expect("json")
}

/// `count` contacts, 16 at a time.
async fn create_contacts(app: &TestApp, by: &Account, count: usize) -> Vec<Value> {
    let mut created = Vec::with_capacity(count);
    for start in (0..count).step_by(16) {
        let batch = (start..count.min(start + 16)).map(|n| create_contact(app, by, n));
        created.extend(futures_util::future::join_all(batch).await);
    }
    created
}

fn sqlite_db() -> TestDb {
    TestDb { backend: Backend::Sqlite, dir: tempfile::tempdir().expect("tempdir"), name: None }
}

/// Documents on the first contact: empty, small, and of several chunks and archive pieces.
async fn upload_documents(app: &TestApp, by: &Account, contact: &str) -> Vec<(String, Vec<u8>)> {
    let large: Vec<u8> = (0..1_500_000).map(|i| b'a' + (i % 26) as u8).collect();
    let mut documents = vec![];
    for (n, bytes) in [vec![], b"a short note".to_vec(), large].into_iter().enumerate() {
        let response = app
            .upload_as(&by.token, &[("contact_id", contact)], &format!("d{n}.txt"), bytes.clone())
            .await;
        assert_eq!(response.status(), 201, "upload");
        let view: Value = response.json().await.expect("json");
        documents.push((view["id"].as_str().expect("id").to_owned(), bytes));
    }
    documents
}

/// Every document reads back byte for byte from `app`.
async fn documents_read_back(app: &TestApp, by: &Account, documents: &[(String, Vec<u8>)]) {
    for (id, bytes) in documents {
        let response = app.get_as(&by.token, &format!("/api/v1/documents/{id}/content")).await;
        assert_eq!(response.status(), 200, "document {id}");
        assert_eq!(&response.bytes().await.expect("body")[..], &bytes[..], "document {id}");
    }
}

/// The document storage settings of `app` (S3 on the PostgreSQL pass), for an instance that
/// must find the same objects; none for a local disk, which follows the data directory.
fn storage_of(app: &TestApp) -> Vec<(&str, &str)> {
    app.settings
        .iter()
        .filter(|(k, _)| k.starts_with("BULWARK_STORAGE") || k.starts_with("BULWARK_S3"))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// Signs in as `who` on a restored instance (second factor through a backup code the test
/// kept) and reads a contact revealed: the data decrypts.
async fn reads_back(restored: &TestApp, from: &TestApp, who: &Account, contact_id: &str) {
    let mfa = from.mfa.lock().expect("lock").clone();
    *restored.mfa.lock().expect("lock") = mfa;
    let (token, _) = restored.login_ok(&who.email, PASSWORD).await;
    let who = Account { token, ..who.clone() };
    restored.step_up(&who).await;
    let url = format!("/api/v1/contacts/{contact_id}?reveal=true");
    let contact: Value = restored.get_as(&who.token, &url).await.json().await.expect("json");
    assert_eq!(contact["ssn"], SSN, "{contact}");
}

#[tokio::test]
async fn the_backup_covers_every_table_of_the_schema() {
    let app = TestApp::spawn().await;
    let state = app_state(&app).await;
    let mut catalog = bulwark::backup::catalog_tables(state.store()).await.expect("catalog");
    let mut listed: Vec<String> =
        bulwark::backup::TABLES.iter().map(|(t, _, _)| (*t).to_owned()).collect();
    catalog.sort();
    listed.sort();
    assert_eq!(catalog, listed, "a table missing from backup::TABLES would not be backed up");
}

#[tokio::test]
async fn a_backup_taken_under_writes_restores_whole_into_either_backend() {
    let contacts: usize = std::env::var("BULWARK_TEST_BACKUP_CONTACTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    app.step_up(&owner).await; // TOTP and backup codes: an MFA user
    let created = create_contacts(&app, &owner, contacts).await;
    let first_contact = created[0]["id"].as_str().expect("id");
    let documents = upload_documents(&app, &owner, first_contact).await;
    // On a local disk the contents go into the archive. One object vanishes before the
    // backup reads it (as when the document is deleted while the backup runs): the restore
    // leaves its row out too.
    let local = storage_of(&app).is_empty();
    let mut vanished = None;
    if local {
        let (id, _) = &upload_documents(&app, &owner, first_contact).await[1];
        let path = app.db.dir.path().join("documents").join(&owner.tenant_id).join(id);
        std::fs::remove_file(&path).expect("the object is a file under documents/");
        vanished = Some(id.clone());
    }
    let work = tempfile::tempdir().expect("tempdir");
    let keys = keys(work.path());
    let archive = work.path().join("bulwark.age");

    // Writes go on while the backup runs; the archive holds one consistent moment of them.
    let stop = Arc::new(AtomicBool::new(false));
    let during = Arc::new(AtomicUsize::new(0));
    let env = env_for(&app, &app.db, &keys);
    let create = ["backup", "create", "--to", archive.to_str().expect("utf-8")];
    let backup = cli(app.db.dir.path(), &env, &create);
    let writes = async {
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            create_contact(&app, &owner, contacts + n).await;
            n += 1;
            during.store(n, Ordering::Relaxed);
        }
    };
    let ((ok, text), ()) = tokio::join!(
        async {
            let done = backup.await;
            stop.store(true, Ordering::Relaxed);
            done
        },
        writes
    );
    assert!(ok, "backup create: {text}");
    assert!(during.load(Ordering::Relaxed) > 0, "no write ran during the backup");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&archive).expect("archive").permissions(),
    );
    assert_eq!(mode & 0o077, 0, "the archive is readable by its owner only");

    let (ok, text) = verify(work.path(), &env, archive.to_str().expect("utf-8"), &keys).await;
    assert!(ok, "backup verify: {text}");

    // The stock age tool opens it; neither the file nor its plaintext holds personal data.
    let decrypted = std::process::Command::new("age")
        .args(["-d", "-i"])
        .arg(&keys.identity)
        .arg(&archive)
        .output()
        .expect("the age tool runs (Debian package `age`)");
    assert!(decrypted.status.success(), "{}", String::from_utf8_lossy(&decrypted.stderr));
    let plain = String::from_utf8(decrypted.stdout).expect("utf-8");
    assert!(plain.starts_with("{\"header\":{\"format\":\"bulwark-backup\""), "{}", &plain[..80]);
    assert!(plain.lines().last().is_some_and(|l| l.starts_with("{\"manifest\"")));
    let raw = std::fs::read(&archive).expect("archive");
    for text in [SSN.as_bytes(), owner.email.as_bytes(), b"Contact 1"] {
        assert!(!raw.windows(text.len()).any(|w| w == text), "the archive is encrypted");
    }
    assert!(!plain.contains(SSN), "sensitive fields stay field-encrypted inside the archive");

    // One flipped byte and verification fails.
    let flipped = work.path().join("flipped.age");
    let mut bytes = raw.clone();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&flipped, &bytes).expect("write");
    let (ok, text) = verify(work.path(), &env, flipped.to_str().expect("utf-8"), &keys).await;
    assert!(!ok, "a flipped byte must fail verification: {text}");

    // Restore into a fresh database of the suite's backend, and into SQLite (on the
    // PostgreSQL pass: PostgreSQL to SQLite).
    for target in [TestDb::create().await, sqlite_db()] {
        let env = env_for(&app, &target, &keys);
        let (ok, text) =
            restore(target.dir.path(), &env, archive.to_str().expect("utf-8"), &keys).await;
        assert!(ok, "restore into {:?}: {text}", target.backend);
        assert!(text.contains("audit log verified"), "{text}");
        // One moment: each contact with its audit event, none without (the writes during
        // the backup commit both or neither, and the snapshot holds both tables at once).
        let unmatched = crate::support::raw_scalar_text(
            &target,
            "SELECT ((SELECT count(*) FROM contacts) - \
             (SELECT count(*) FROM audit_events WHERE action = $1)) || ''",
            "contact.create",
        )
        .await;
        assert_eq!(unmatched, "0", "contacts and their audit events come from one snapshot");
        let restored = TestApp::spawn_on(target, &storage_of(&app)).await;
        let first = created[0]["id"].as_str().expect("id");
        let last = created[contacts - 1]["id"].as_str().expect("id");
        reads_back(&restored, &app, &owner, first).await;
        let listed: Value = restored
            .get_as(&owner.token, &format!("/api/v1/contacts/{last}"))
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(listed["id"], last, "every contact written before the backup is there");
        documents_read_back(&restored, &owner, &documents).await;
        if let Some(id) = &vanished {
            let response = restored.get_as(&owner.token, &format!("/api/v1/documents/{id}")).await;
            assert_eq!(response.status(), 404, "a document without its object is left out");
        }
    }
}

#[tokio::test]
async fn a_sqlite_backup_moves_into_postgresql_postgres_only() {
    if backend() != Backend::Postgres {
        return;
    }
    let app = TestApp::spawn_on(sqlite_db(), &[]).await;
    let owner = app.signup("Moving").await;
    app.step_up(&owner).await;
    let created = create_contacts(&app, &owner, 50).await;
    let documents = upload_documents(&app, &owner, created[0]["id"].as_str().expect("id")).await;
    let work = tempfile::tempdir().expect("tempdir");
    let keys = keys(work.path());
    let archive = work.path().join("sqlite.age");
    let (ok, text) = cli(
        app.db.dir.path(),
        &env_for(&app, &app.db, &keys),
        &["backup", "create", "--to", archive.to_str().expect("utf-8")],
    )
    .await;
    assert!(ok, "{text}");
    let target = TestDb::create().await;
    assert_eq!(target.backend, Backend::Postgres);
    let (ok, text) = restore(
        target.dir.path(),
        &env_for(&app, &target, &keys),
        archive.to_str().expect("utf-8"),
        &keys,
    )
    .await;
    assert!(ok, "{text}");
    assert!(text.contains("from sqlite"), "{text}");
    // The documents came in the archive onto the target's local disk (no S3 here).
    let restored = TestApp::spawn_on(target, &[("BULWARK_STORAGE_URL", "")]).await;
    reads_back(&restored, &app, &owner, created[49]["id"].as_str().expect("id")).await;
    documents_read_back(&restored, &owner, &documents).await;
}

/// `s3://` archives (the S3-compatible server of the PostgreSQL pass): a dated key under a
/// prefix, verified and restored from the bucket; a bucket that does not exist fails and
/// leaves nothing.
#[tokio::test]
async fn archives_go_to_an_s3_bucket_and_restore_from_it() {
    let app = TestApp::spawn().await;
    let Some((_, url)) = storage_of(&app).into_iter().find(|(k, _)| *k == "BULWARK_STORAGE_URL")
    else {
        eprintln!("needs the S3-compatible server of the PostgreSQL pass");
        return;
    };
    let owner = app.signup("Acme").await;
    app.step_up(&owner).await;
    let created = create_contacts(&app, &owner, 20).await;
    let work = tempfile::tempdir().expect("tempdir");
    let keys = keys(work.path());
    let env = env_for(&app, &app.db, &keys);
    let prefix = format!("{}-backups/", url.trim_end_matches('/'));
    let (ok, text) = cli(work.path(), &env, &["backup", "create", "--to", &prefix]).await;
    assert!(ok, "{text}");
    let archive = text
        .split_whitespace()
        .find(|w| w.starts_with(&prefix))
        .expect("the archive's location")
        .trim_end_matches(':')
        .to_owned();
    assert!(archive.ends_with(".age") && archive.contains("/bulwark-"), "{archive}");
    let (ok, text) = verify(work.path(), &env, &archive, &keys).await;
    assert!(ok, "{text}");

    let target = TestDb::create().await;
    let (ok, text) =
        restore(target.dir.path(), &env_for(&app, &target, &keys), &archive, &keys).await;
    assert!(ok, "{text}");
    let restored = TestApp::spawn_on(target, &storage_of(&app)).await;
    reads_back(&restored, &app, &owner, created[19]["id"].as_str().expect("id")).await;

    // No such bucket: the backup fails, and says where.
    let (ok, text) =
        cli(work.path(), &env, &["backup", "create", "--to", "s3://no-such-bucket/x.age"]).await;
    assert!(!ok, "{text}");
    let (ok, _) = verify(work.path(), &env, "s3://no-such-bucket/x.age", &keys).await;
    assert!(!ok);
}

#[tokio::test]
async fn a_tenant_deleted_after_a_backup_stays_deleted_after_restoring_it() {
    let app = TestApp::spawn().await;
    let doomed = app.signup("Doomed").await;
    let kept = app.signup("Kept").await;
    app.step_up(&kept).await;
    let doomed_contact = create_contact(&app, &doomed, 1).await;
    let kept_contact = create_contact(&app, &kept, 2).await;
    let work = tempfile::tempdir().expect("tempdir");
    let keys = keys(work.path());
    let archive = work.path().join("before.age");
    let env = env_for(&app, &app.db, &keys);
    let (ok, text) = cli(
        app.db.dir.path(),
        &env,
        &["backup", "create", "--to", archive.to_str().expect("utf-8")],
    )
    .await;
    assert!(ok, "{text}");
    let (ok, text) =
        cli(app.db.dir.path(), &env, &["tenants", "delete", "--tenant", &doomed.tenant_id]).await;
    assert!(ok, "{text}");
    let ledger = app.db.dir.path().join("shred-ledger.jsonl");
    assert!(std::fs::read_to_string(&ledger).expect("ledger").contains(&doomed.tenant_id));

    // The restore is configured with the ledger (beside the checkpoints, outside the
    // database): the tenant's keys are not restored and the tenant is deleted again.
    let target = TestDb::create().await;
    let mut env = env_for(&app, &target, &keys);
    env.push(("BULWARK_SHRED_LEDGER".into(), ledger.display().to_string()));
    let (ok, text) =
        restore(target.dir.path(), &env, archive.to_str().expect("utf-8"), &keys).await;
    assert!(ok, "{text}");
    assert!(text.contains("1 tenant(s) of the shred ledger deleted again"), "{text}");
    let restored =
        TestApp::spawn_on(target, &[("BULWARK_SHRED_LEDGER", ledger.to_str().expect("utf-8"))])
            .await;
    assert_eq!(restored.login(&doomed.email, PASSWORD).await.status(), 401, "members stay out");
    let keys_left = crate::support::raw_scalar_text(
        &restored.db,
        "SELECT count(*) || '' FROM tenant_keys WHERE tenant_id = (SELECT tenant_id FROM users WHERE email = $1)",
        &doomed.email,
    )
    .await;
    assert_eq!(keys_left, "0", "the deleted tenant's keys never come back");
    let old = restored
        .get_as(
            &doomed.token,
            &format!("/api/v1/contacts/{}", doomed_contact["id"].as_str().expect("id")),
        )
        .await;
    assert_eq!(old.status(), 401, "its old tokens are refused too");
    reads_back(&restored, &app, &kept, kept_contact["id"].as_str().expect("id")).await;
}

/// A link planted where the archive is written while incomplete (`….partial`) is replaced,
/// never followed: the file it points at is untouched. An archive with an absurdly long line
/// (which only a forger could write) is refused before it is held in memory.
#[tokio::test]
async fn the_archive_writer_follows_no_planted_link_and_the_reader_caps_lines() {
    let app = TestApp::spawn().await;
    app.signup("Acme").await;
    let work = tempfile::tempdir().expect("tempdir");
    let keys = keys(work.path());
    let env = env_for(&app, &app.db, &keys);
    let victim = work.path().join("victim.txt");
    std::fs::write(&victim, "keep me").expect("write");
    let archive = work.path().join("planted.age");
    std::os::unix::fs::symlink(&victim, work.path().join("planted.age.partial")).expect("link");
    let archive = archive.to_str().expect("utf-8");
    let (ok, text) = cli(work.path(), &env, &["backup", "create", "--to", archive]).await;
    assert!(ok, "{text}");
    assert_eq!(std::fs::read_to_string(&victim).expect("victim"), "keep me");
    assert!(verify(work.path(), &env, archive, &keys).await.0, "the archive itself is whole");

    // A well-encrypted file whose first line is 9 MiB long.
    let recipient: age::x25519::Recipient = keys.recipient.parse().expect("recipient");
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
            .expect("encryptor");
    let forged = work.path().join("long-line.age");
    let mut out =
        encryptor.wrap_output(std::fs::File::create(&forged).expect("create")).expect("wrap");
    let header = format!("[\"{}\"]\n", "x".repeat(9 * 1024 * 1024));
    std::io::Write::write_all(&mut out, header.as_bytes()).expect("write");
    out.finish().expect("finish");
    let (ok, text) = verify(work.path(), &env, forged.to_str().expect("utf-8"), &keys).await;
    assert!(!ok && text.contains("a line longer than any Bulwark writes"), "{text}");
}

/// Someone who can write to the backups and knows the recipient's public key can make a
/// well-encrypted, self-consistent archive (rows changed, hashes recomputed); without the
/// deployment's master key they cannot sign its manifest, and verify and restore refuse it.
#[tokio::test]
async fn a_forged_archive_with_consistent_hashes_is_refused() {
    use sha2::{Digest as _, Sha256};
    let app = TestApp::spawn().await;
    app.signup("Acme Forgeable").await;
    let work = tempfile::tempdir().expect("tempdir");
    let keys = keys(work.path());
    let env = env_for(&app, &app.db, &keys);
    let archive = work.path().join("real.age");
    let archive = archive.to_str().expect("utf-8");
    assert!(cli(work.path(), &env, &["backup", "create", "--to", archive]).await.0);
    let plain = std::process::Command::new("age")
        .args(["-d", "-i"])
        .arg(&keys.identity)
        .arg(archive)
        .output()
        .expect("age");
    let plain = String::from_utf8(plain.stdout).expect("utf-8");
    // The tenant renamed, the tenants table's hash recomputed wherever it is recorded.
    let mut lines: Vec<String> = plain.lines().map(|l| format!("{l}\n")).collect();
    let start =
        lines.iter().position(|l| l.contains("{\"table\":{\"name\":\"tenants\"")).expect("tenants");
    let end = start + lines[start..].iter().position(|l| l.starts_with("{\"end\"")).expect("end");
    let old = Sha256::digest(lines[start + 1..end].concat().as_bytes());
    for line in &mut lines[start + 1..end] {
        *line = line.replace("Acme Forgeable", "Evil Forgery!!");
    }
    let new = Sha256::digest(lines[start + 1..end].concat().as_bytes());
    let (old, new) = (bulwark::crypto::hex(&old), bulwark::crypto::hex(&new));
    assert_ne!(old, new);
    let forged_plain = lines.concat().replace(&old, &new);
    let plain_path = work.path().join("forged.jsonl");
    std::fs::write(&plain_path, forged_plain).expect("write");
    let forged = work.path().join("forged.age");
    let made = std::process::Command::new("age")
        .args(["-r", &keys.recipient, "-o"])
        .arg(&forged)
        .arg(&plain_path)
        .output()
        .expect("age");
    assert!(made.status.success());
    let forged = forged.to_str().expect("utf-8");
    let (ok, text) = verify(work.path(), &env, forged, &keys).await;
    assert!(!ok && text.contains("signature does not verify"), "{text}");
    let target = TestDb::create().await;
    let (ok, text) =
        restore(target.dir.path(), &env_for(&app, &target, &keys), forged, &keys).await;
    assert!(!ok && text.contains("signature does not verify"), "{text}");
    // The genuine archive still verifies.
    assert!(verify(work.path(), &env, archive, &keys).await.0);
}

#[tokio::test]
async fn a_restore_refuses_a_full_database_a_wrong_key_and_a_damaged_archive_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    create_contacts(&app, &owner, 20).await;
    let work = tempfile::tempdir().expect("tempdir");
    let keys = keys(work.path());
    let archive = work.path().join("a.age");
    let (ok, text) = cli(
        app.db.dir.path(),
        &env_for(&app, &app.db, &keys),
        &["backup", "create", "--to", archive.to_str().expect("utf-8")],
    )
    .await;
    assert!(ok, "{text}");
    let identity = keys.identity.to_str().expect("utf-8").to_owned();
    let restore = |db: &TestDb, from: &Path, identity: &str| {
        let env = env_for(&app, db, &keys);
        let dir = db.dir.path().to_owned();
        let args = ["restore", "--from", from.to_str().expect("utf-8"), "--identity", identity]
            .map(str::to_owned);
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            cli(&dir, &env, &args).await
        }
    };

    // Into the database the backup came from: not empty, refused.
    let (ok, text) = restore(&app.db, &archive, &identity).await;
    assert!(!ok && text.contains("not empty"), "{text}");

    let target = TestDb::create().await;
    // Someone else's key opens nothing.
    let stranger = keys_in(work.path(), "stranger");
    let (ok, text) = restore(&target, &archive, &stranger).await;
    assert!(!ok && text.contains("no identity"), "{text}");
    // A damaged archive fails before the commit: the database stays empty.
    let mut bytes = std::fs::read(&archive).expect("archive");
    let at = bytes.len() - 40;
    bytes[at] ^= 0x80;
    let damaged = work.path().join("damaged.age");
    std::fs::write(&damaged, &bytes).expect("write");
    let (ok, text) = restore(&target, &damaged, &identity).await;
    assert!(!ok, "{text}");
    let cut = work.path().join("cut.age");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    let (ok, text) = restore(&target, &cut, &identity).await;
    assert!(!ok, "{text}");
    // A row changed inside a validly encrypted archive (anyone with the public key can
    // write one) no longer matches its table's recorded hash.
    let plain = std::process::Command::new("age")
        .args(["-d", "-i", &identity])
        .arg(&archive)
        .output()
        .expect("age runs");
    let altered =
        String::from_utf8(plain.stdout).expect("utf-8").replacen("\"Acme\"", "\"Acne\"", 1);
    assert!(altered.contains("\"Acne\""), "the tenant's name is in the archive's plaintext");
    let rewritten = work.path().join("rewritten.age");
    let mut age = std::process::Command::new("age")
        .args(["-r", &keys.recipient, "-o", rewritten.to_str().expect("utf-8")])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("age runs");
    std::io::Write::write_all(&mut age.stdin.take().expect("stdin"), altered.as_bytes())
        .expect("pipe");
    assert!(age.wait().expect("age").success());
    let (ok, text) = restore(&target, &rewritten, &identity).await;
    assert!(!ok && text.contains("table tenants"), "{text}");

    // ... so the real archive still restores into it.
    let (ok, text) = restore(&target, &archive, &identity).await;
    assert!(ok, "the failed restores left the database empty: {text}");
    let restored = TestApp::spawn_on(target, &[]).await;
    let (token, _) = restored.login_ok(&owner.email, PASSWORD).await;
    let listed = restored.get_as(&token, "/api/v1/contacts?limit=100").await;
    let listed: Value = listed.json().await.expect("json");
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(20));

    // Backups need recipients: none configured is a clear error, not an unencrypted file.
    let mut env = env_for(&app, &app.db, &keys);
    env.retain(|(k, _)| k != "BULWARK_BACKUP_RECIPIENTS");
    let plain = work.path().join("plain.age");
    let (ok, text) =
        cli(app.db.dir.path(), &env, &["backup", "create", "--to", plain.to_str().expect("utf-8")])
            .await;
    assert!(!ok && text.contains("BULWARK_BACKUP_RECIPIENTS"), "{text}");
    assert!(!plain.exists());
}

fn keys_in(dir: &Path, name: &str) -> String {
    let identity = age::x25519::Identity::generate();
    let path = dir.join(format!("{name}.txt"));
    std::fs::write(&path, format!("{}\n", identity.to_string().expose_secret())).expect("write");
    path.display().to_string()
}

#[tokio::test]
async fn scheduled_backups_are_written_audited_measured_and_taken_once_per_slot() {
    let work = tempfile::tempdir().expect("tempdir");
    let keys = keys(work.path());
    let to = work.path().join("scheduled");
    let settings = [
        ("BULWARK_BACKUP_SCHEDULE", "every 1h"),
        ("BULWARK_BACKUP_TO", to.to_str().expect("utf-8")),
        ("BULWARK_BACKUP_RECIPIENTS", keys.recipient.as_str()),
    ];
    let app = TestApp::spawn_with(&settings).await;
    // Several instances share a PostgreSQL database; SQLite serves one instance.
    let sibling = if backend() == Backend::Postgres { Some(app.sibling(&[]).await) } else { None };
    let archives = || -> Vec<PathBuf> {
        std::fs::read_dir(&to)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while archives().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The slot's backup ran at start-up; give a second one every chance to appear.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let found = archives();
    assert_eq!(found.len(), 1, "one backup per slot, whatever the instances: {found:?}");
    let name = found[0].file_name().and_then(|n| n.to_str()).expect("name").to_owned();
    assert!(name.starts_with("bulwark-") && name.ends_with("Z.age"), "{name}");

    let env = env_for(&app, &app.db, &keys);
    let (ok, text) = verify(work.path(), &env, found[0].to_str().expect("utf-8"), &keys).await;
    assert!(ok, "{text}");
    let events = crate::support::raw_scalar_text(
        &app.db,
        "SELECT count(*) || '' FROM audit_events WHERE action = $1 AND outcome = 'success'",
        "backup.create",
    )
    .await;
    assert_eq!(events, "1", "each backup is audited in the platform chain");
    let mut scraped = app.metrics().await;
    if let Some(other) = &sibling {
        scraped += &other.metrics().await;
    }
    let value = |name: &str| -> f64 {
        scraped
            .lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
            .fold(0.0, f64::max)
    };
    assert!(value("backup_last_success_timestamp_seconds") > 1.7e9, "{scraped}");
    assert_eq!(value("backup_schedule_enabled"), 1.0);
    assert!(value("backup_last_size_bytes") > 0.0);
}

#[tokio::test]
async fn one_instance_at_a_time_holds_the_backup_lock_postgres_only() {
    if backend() != Backend::Postgres {
        return; // SQLite serves one instance: there is no lock to take
    }
    let app = TestApp::spawn().await;
    let (one, other) = (app_state(&app).await, app_state(&app).await);
    let held = bulwark::backup::exclusive(one.store()).await.expect("lock").expect("free");
    assert!(
        bulwark::backup::exclusive(other.store()).await.expect("lock").is_none(),
        "a second instance must not back up meanwhile"
    );
    drop(held);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(bulwark::backup::exclusive(other.store()).await.expect("lock").is_some());
}
