//! Backups: `bulwark backup create`, `backup verify` and `restore`.
//!
//! A backup is one consistent snapshot of every table (a read transaction: SQLite's WAL
//! snapshot, PostgreSQL's REPEATABLE READ), streamed as backend-neutral JSON lines into an
//! age-encrypted file (`archive`). `serve` keeps answering and writing meanwhile. A restore
//! writes an archive into an empty, migrated database of either backend in one transaction
//! — all or nothing — checking every table's hash and the manifest before it commits; a
//! SQLite instance's archive restored into PostgreSQL is the documented way to move.
//!
//! Tenants named in the shred ledger (`maintenance::shred_ledger`) never get their keys
//! back: their rows are restored as the ciphertext they are, then the tenant is deleted
//! again.

pub mod archive;
mod check;
mod location;
mod objects;
pub mod schedule;
mod store;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use uuid::Uuid;

use crate::clock::Timestamp;
use crate::config::StorageConfig;
use crate::crypto::KeyRing;
use crate::documents::storage::Storage;
use crate::store::{Store, StoreError, SystemTx};
use archive::{Cell, Cells, Header, Line, Manifest, Record};
use check::Checker;
pub use location::Location;
pub use schedule::Schedule;
use store::Target;
pub use store::{Lock, Reach, exclusive};

/// Every table, in the order a restore writes them (a table after those it references),
/// with the order its rows are read in and where they are read from. The audit heads come
/// after the events: a restore rebuilds each head from its chain and checks it against the
/// archived one. A test compares this list with both backends' catalogs.
pub const TABLES: &[(&str, &str, Reach)] = &[
    ("tenants", "id", Reach::System),
    ("users", "id", Reach::System),
    ("sessions", "id", Reach::System),
    ("refresh_tokens", "1", Reach::System),
    ("api_keys", "id", Reach::System),
    ("invitations", "id", Reach::System),
    ("login_throttle", "1", Reach::System),
    ("idempotency_keys", "1", Reach::System),
    ("tenant_keys", "1", Reach::System),
    ("blocked_ips", "id", Reach::System),
    ("feature_switches", "feature", Reach::System),
    ("access_grants", "id", Reach::System),
    ("companies", "id", Reach::PerTenant),
    ("contacts", "id", Reach::PerTenant),
    ("payments", "id", Reach::PerTenant),
    ("pipelines", "id", Reach::PerTenant),
    ("pipeline_stages", "id", Reach::PerTenant),
    ("leads", "id", Reach::PerTenant),
    ("deals", "id", Reach::PerTenant),
    ("notes", "id", Reach::PerTenant),
    ("activities", "id", Reach::PerTenant),
    ("tasks", "id", Reach::PerTenant),
    ("documents", "id", Reach::PerTenant),
    ("email_domains", "id", Reach::PerTenant),
    ("email_messages", "id", Reach::PerTenant),
    ("email_events", "id", Reach::PerTenant),
    ("email_outbox", "message_id", Reach::System),
    ("email_message_directory", "message_id", Reach::System),
    ("email_suppressions", "id", Reach::PerTenant),
    ("email_templates", "id", Reach::PerTenant),
    ("webhook_subscriptions", "id", Reach::PerTenant),
    ("webhook_deliveries", "id", Reach::PerTenant),
    ("webhook_outbox", "delivery_id", Reach::System),
    ("integrations", "id", Reach::PerTenant),
    ("integration_directory", "integration_id", Reach::System),
    ("oauth_states", "nonce_hash", Reach::PerTenant),
    ("integration_notes", "tenant_id, integration_id, activity_id, line_hash", Reach::PerTenant),
    ("zoom_compliance", "id", Reach::System),
    ("email_usage", "tenant_id, span, start", Reach::PerTenant),
    ("webhook_receipts", "source, webhook_id", Reach::System),
    ("account_tokens", "token_hash", Reach::System),
    ("document_deletions", "1", Reach::System),
    ("mfa_totp", "1", Reach::System),
    ("mfa_backup_codes", "1", Reach::System),
    ("webauthn_credentials", "1", Reach::System),
    ("auth_challenges", "1", Reach::System),
    ("audit_anchors", "chain_id", Reach::System),
    ("audit_events", "chain_id, seq", Reach::System),
    ("audit_heads", "chain_id", Reach::System),
];

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("the archive is damaged or not a Bulwark backup: {0}")]
    Corrupt(String),
    #[error("no identity in the identity file opens this archive")]
    Identity,
    #[error("BULWARK_BACKUP_RECIPIENTS names no recipient")]
    Recipients,
    #[error(
        "the archive holds schema version {0}; this Bulwark knows up to {1}: restore it with a newer one"
    )]
    Newer(i64, i64),
    #[error("the target database is not empty: a restore writes only into an empty database")]
    NotEmpty,
    #[error("the manifest's signing key: {0}")]
    Signing(String),
    #[error("document contents: {0}")]
    Objects(String),
    #[error("the archive writer stopped before the end")]
    WriterGone,
}

impl BackupError {
    pub(crate) fn io(path: &Path, err: std::io::Error) -> BackupError {
        BackupError::Io { path: path.to_owned(), reason: err.to_string() }
    }
}

/// What a finished backup wrote.
#[derive(Debug)]
pub struct Created {
    pub manifest: Manifest,
    /// Plaintext bytes before encryption.
    pub bytes: u64,
    /// The archive's size.
    pub size: u64,
}

/// Writes an archive of the whole database to `to` (S3 through the settings of `config`),
/// encrypted to `recipients`, with the document contents of `storage` when it is a local
/// disk (`objects`).
pub async fn create(
    db: &Store,
    storage: &Storage,
    config: &StorageConfig,
    ring: &KeyRing,
    recipients: &[age::x25519::Recipient],
    to: &Location,
) -> Result<Created, BackupError> {
    if recipients.is_empty() {
        return Err(BackupError::Recipients);
    }
    let signer = ring
        .signing_pair(archive::SIGNING_PURPOSE, None)
        .map_err(|err| BackupError::Signing(err.to_string()))?;
    let (mut sink, writer) = archive::writer(to.output(config)?, recipients)?;
    let dumped = async {
        let mut tx = db.snapshot_read().await?;
        let header = Header {
            format: archive::FORMAT.into(),
            version: archive::VERSION,
            schema_version: store::schema_version(&mut tx).await?,
            bulwark: env!("CARGO_PKG_VERSION").into(),
            backend: db.backend().as_str().into(),
            created_at: Timestamp::now(),
        };
        sink.record(&Record::Header(header)).await?;
        let tenants = store::tenant_ids(&mut tx).await?;
        for &(table, order, reach) in TABLES {
            let mut opened = false;
            match reach {
                Reach::System => {
                    store::dump_rows(&mut tx, table, order, None, &mut sink, &mut opened).await?;
                }
                Reach::PerTenant => {
                    for &tenant in &tenants {
                        store::enter_tenant(&mut tx, tenant).await?;
                        store::dump_rows(
                            &mut tx,
                            table,
                            order,
                            Some(tenant),
                            &mut sink,
                            &mut opened,
                        )
                        .await?;
                    }
                }
            }
            if !opened {
                sink.start_table(table, vec![]).await?;
            }
            sink.end_table().await?;
        }
        let mut documents = 0;
        if storage.kind == "file" {
            sink.start_table(objects::TABLE, objects::COLUMNS.map(str::to_owned).to_vec()).await?;
            for (tenant, document) in store::document_ids(&mut tx, &tenants).await? {
                documents += u64::from(objects::dump(storage, tenant, document, &mut sink).await?);
            }
            sink.end_table().await?;
        }
        tx.commit().await?;
        sink.finish(documents, signer).await
    }
    .await;
    // The writer renames the archive into place only after `finish`; on an error it was
    // dropped unfinished and the partial file is removed.
    let written = tokio::task::spawn_blocking(move || writer.join())
        .await
        .map_err(|_| BackupError::WriterGone)?
        .map_err(|_| BackupError::WriterGone)?;
    let manifest = dumped?;
    let (bytes, size) = written?;
    Ok(Created { manifest, bytes, size })
}

/// Reads a whole archive and checks every hash; writes nothing.
pub async fn verify(
    from: &Location,
    config: &StorageConfig,
    ring: &KeyRing,
    identities: Vec<Box<dyn age::Identity + Send + Sync>>,
) -> Result<(Header, Manifest), BackupError> {
    let mut lines = archive::reader(from.input(Some(config)).await?, from.to_string(), identities)?;
    let mut checker = Checker::default();
    while let Some(line) = lines.recv().await {
        checker.accept(&line?)?;
    }
    checker.finish(ring)
}

/// What a restore wrote.
#[derive(Debug)]
pub struct Restored {
    pub header: Header,
    pub manifest: Manifest,
    /// Key rows left out because their tenant is in the shred ledger.
    pub shredded_keys: u64,
    /// Document rows left out because their object was deleted while the backup ran.
    pub dropped_documents: u64,
}

/// The table a restore is writing.
enum Current<'a> {
    Rows(Restoring),
    Objects(objects::Restorer<'a>),
}

/// The table being restored: its queued inserts and how each archived column binds.
struct Restoring {
    table: &'static str,
    inserts: store::Inserts,
    targets: Vec<(String, Target)>,
    index: HashMap<String, usize>,
}

impl Restoring {
    fn cell<'a>(&self, cells: &'a Cells, column: &str) -> Option<&'a Cell> {
        self.index.get(column).and_then(|&i| cells.get(i)).and_then(Option::as_ref)
    }

    fn uuid(&self, cells: &Cells, column: &str) -> Result<Option<Uuid>, BackupError> {
        match self.cell(cells, column) {
            None => Ok(None),
            Some(Cell::Bytes { b }) => Uuid::from_slice(&Cell::decode_bytes(b)?)
                .map(Some)
                .map_err(|_| BackupError::Corrupt(format!("{column} is not an id"))),
            Some(_) => Err(BackupError::Corrupt(format!("{column} is not an id"))),
        }
    }

    fn int(&self, cells: &Cells, column: &str) -> Result<i64, BackupError> {
        match self.cell(cells, column) {
            Some(Cell::Int(v)) => Ok(*v),
            _ => Err(BackupError::Corrupt(format!("{column} is not an integer"))),
        }
    }

    fn bytes(&self, cells: &Cells, column: &str) -> Result<Vec<u8>, BackupError> {
        match self.cell(cells, column) {
            Some(Cell::Bytes { b }) => Cell::decode_bytes(b),
            _ => Err(BackupError::Corrupt(format!("{column} is not bytes"))),
        }
    }
}

/// Writes an archive into `db`, which must be migrated and empty, in one transaction that
/// commits only when every table and the manifest checked out, and its document contents
/// into `storage`. `shredded` tenants get no keys back. Objects written before a failure
/// stay behind as unreadable ciphertext (their keys were never committed); a second restore
/// into the same empty database overwrites them.
pub async fn restore(
    db: &Store,
    storage: &Storage,
    config: &StorageConfig,
    ring: &KeyRing,
    from: &Location,
    identities: Vec<Box<dyn age::Identity + Send + Sync>>,
    shredded: &[Uuid],
) -> Result<Restored, BackupError> {
    let mut lines = archive::reader(from.input(Some(config)).await?, from.to_string(), identities)?;
    let mut tx = db.system_tx().await?;
    if !store::is_empty(&mut tx).await? {
        return Err(BackupError::NotEmpty);
    }
    let ours = store::schema_version(&mut tx).await?;
    let mut checker = Checker::default();
    let mut current: Option<Current> = None;
    let mut tenant: Option<Uuid> = None;
    let mut chains: HashSet<Uuid> = HashSet::new();
    let mut shredded_keys = 0;
    let mut restored_objects = None;
    while let Some(raw) = lines.recv().await {
        match checker.accept(&raw?)? {
            Line::Record(Record::Header(h)) if h.schema_version > ours => {
                return Err(BackupError::Newer(h.schema_version, ours));
            }
            Line::Record(Record::Table(start)) if start.name == objects::TABLE => {
                current = Some(Current::Objects(objects::Restorer::new(storage, shredded)));
            }
            Line::Record(Record::Table(start)) => {
                current = Some(Current::Rows(prepare(&mut tx, start.name, start.columns).await?));
            }
            Line::Record(Record::End(_)) => match current.take() {
                Some(Current::Objects(restorer)) => {
                    restored_objects = Some(restorer.finish().await?);
                }
                // The checker admits the end of a table, and then a manifest, only after
                // its rows: every queued row is sent before the commit.
                Some(Current::Rows(mut table)) => table.inserts.flush(&mut tx).await?,
                None => {}
            },
            Line::Row(cells) => {
                let table = match &mut current {
                    Some(Current::Rows(table)) => table,
                    Some(Current::Objects(restorer)) => {
                        restorer.row(&cells).await?;
                        continue;
                    }
                    None => continue,
                };
                if table.table == "tenant_keys"
                    && table.uuid(&cells, "tenant_id")?.is_some_and(|t| shredded.contains(&t))
                {
                    shredded_keys += 1;
                    continue;
                }
                if !restore_special(&mut tx, table, &cells, &mut chains, &mut tenant).await? {
                    continue;
                }
                let mut values = Vec::with_capacity(cells.len());
                for ((column, target), cell) in table.targets.iter().zip(cells) {
                    values.push(store::value(column, *target, cell)?);
                }
                table.inserts.push(&mut tx, values).await?;
            }
            Line::Record(_) => {}
        }
    }
    let (header, manifest) = checker.finish(ring)?;
    // With the contents archived, a row whose object was not is a document deleted while
    // the backup ran: it goes too, as it would have.
    let mut dropped_documents = 0;
    if let Some(restored) = restored_objects {
        let tenants = store::tenant_ids(&mut tx).await?;
        for (tenant, document) in store::document_ids(&mut tx, &tenants).await? {
            if !restored.contains(&(tenant, document)) && !shredded.contains(&tenant) {
                store::drop_document(&mut tx, tenant, document).await?;
                dropped_documents += 1;
            }
        }
    }
    tx.commit().await?;
    Ok(Restored { header, manifest, shredded_keys, dropped_documents })
}

/// Looks up the archived table in `TABLES` and the target's catalog; every archived column
/// must exist in the target (columns the target has beyond them take their defaults).
async fn prepare(
    tx: &mut SystemTx,
    name: String,
    columns: Vec<String>,
) -> Result<Restoring, BackupError> {
    let Some(&(table, _, _)) = TABLES.iter().find(|(t, _, _)| *t == name) else {
        return Err(BackupError::Corrupt(format!("an unknown table {name}")));
    };
    let known = store::columns(tx, table).await?;
    let mut targets = Vec::with_capacity(columns.len());
    for column in &columns {
        let Some(found) = known.iter().find(|(k, _)| k == column) else {
            return Err(BackupError::Corrupt(format!("{table} has no column {column} here")));
        };
        targets.push(found.clone());
    }
    let names: Vec<&str> = targets.iter().map(|(n, _)| n.as_str()).collect();
    let inserts = store::Inserts::new(table, &names);
    let index = columns.into_iter().enumerate().map(|(i, c)| (c, i)).collect();
    Ok(Restoring { table, inserts, targets, index })
}

/// What some rows need beyond their insert; `false` skips the insert.
/// - Business rows: PostgreSQL admits them only under their own tenant.
/// - An audit chain's first event: the chain's head starts just before it, and each event
///   then advances it through the insert trigger (verified as on any append).
/// - An archived head of a chain rebuilt that way must equal the rebuilt one.
async fn restore_special(
    tx: &mut SystemTx,
    table: &mut Restoring,
    cells: &Cells,
    chains: &mut HashSet<Uuid>,
    tenant: &mut Option<Uuid>,
) -> Result<bool, BackupError> {
    let reach = TABLES.iter().find(|(t, _, _)| *t == table.table).map(|(_, _, r)| *r);
    if reach == Some(Reach::PerTenant) {
        let row_tenant = table.uuid(cells, "tenant_id")?;
        if row_tenant != *tenant
            && let Some(t) = row_tenant
        {
            table.inserts.flush(tx).await?; // the queued rows are the previous tenant's
            store::enter_tenant(tx, t).await?;
            *tenant = Some(t);
        }
    }
    match table.table {
        "audit_events" => {
            let chain = table.uuid(cells, "chain_id")?.unwrap_or_default();
            if chains.insert(chain) {
                let seq = table.int(cells, "seq")?;
                let prev = table.bytes(cells, "prev_hash")?;
                let owner = table.uuid(cells, "tenant_id")?;
                store::start_audit_head(tx, chain, owner, seq - 1, prev).await?;
            }
            Ok(true)
        }
        "audit_heads" => {
            let chain = table.uuid(cells, "chain_id")?.unwrap_or_default();
            if !chains.contains(&chain) {
                return Ok(true);
            }
            let archived = (table.int(cells, "seq")?, table.bytes(cells, "hash")?);
            match store::audit_head(tx, chain).await? {
                Some(rebuilt) if rebuilt == archived => Ok(false),
                _ => Err(BackupError::Corrupt(format!(
                    "audit chain {chain} does not end at its archived head"
                ))),
            }
        }
        _ => Ok(true),
    }
}

/// Each table's rows in `db` against the manifest (after a restore, before anything else
/// writes): a table that differs is named.
pub async fn compare_counts(db: &Store, restored: &Restored) -> Result<Vec<String>, BackupError> {
    let manifest = &restored.manifest;
    let mut tx = db.snapshot_read().await?;
    let tenants = store::tenant_ids(&mut tx).await?;
    let mut differ = vec![];
    for summary in &manifest.tables {
        let Some(&(table, _, reach)) = TABLES.iter().find(|(t, _, _)| *t == summary.name) else {
            continue;
        };
        let mut rows = 0;
        match reach {
            Reach::System => rows += store::count(&mut tx, table, None).await?,
            Reach::PerTenant => {
                for &tenant in &tenants {
                    store::enter_tenant(&mut tx, tenant).await?;
                    rows += store::count(&mut tx, table, Some(tenant)).await?;
                }
            }
        }
        let expected = match table {
            "tenant_keys" => summary.rows.saturating_sub(restored.shredded_keys),
            "documents" => summary.rows.saturating_sub(restored.dropped_documents),
            // Each dropped row queued its (absent) object's removal, as any deletion does.
            "document_deletions" => summary.rows + restored.dropped_documents,
            _ => summary.rows,
        };
        if u64::try_from(rows).ok() != Some(expected) {
            differ.push(format!("{table}: {rows} rows, the archive holds {expected}"));
        }
    }
    tx.commit().await?;
    Ok(differ)
}

/// The tables of the connected database (a test compares them with [`TABLES`]).
pub async fn catalog_tables(db: &Store) -> Result<Vec<String>, StoreError> {
    let mut tx = db.system_read().await?;
    let names = store::table_names(&mut tx).await?;
    tx.commit().await?;
    Ok(names)
}
