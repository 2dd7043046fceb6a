//! The SQL of backups: reading every table inside one snapshot and writing rows back, on
//! either backend. Table and column names in the statements come from `TABLES` and from the
//! target database's own catalog, never from an archive (an archive's column list is only
//! accepted when every name is one the catalog knows).

#![allow(clippy::disallowed_methods, reason = "the store is where SQL lives")]

use futures_util::TryStreamExt as _;
use sqlx::{AssertSqlSafe, Column as _, Row as _, TypeInfo as _, ValueRef as _};
use uuid::Uuid;

use super::BackupError;
use super::archive::{Cell, Cells, Sink};
use crate::store::sql::{Query, Value, query};
use crate::store::{AsRawTx, Conn, StoreError, SystemTx};

/// Where a table's rows are read from: all at once (identity and platform tables admit
/// system mode), or one tenant at a time (business tables admit only their own tenant's
/// transactions under PostgreSQL's row-level security).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    System,
    PerTenant,
}

/// The newest migration applied.
pub async fn schema_version(tx: &mut SystemTx) -> Result<i64, StoreError> {
    query("SELECT coalesce(max(version), 0) FROM _sqlx_migrations").scalar(tx).await
}

pub async fn tenant_ids(tx: &mut SystemTx) -> Result<Vec<Uuid>, StoreError> {
    query("SELECT id FROM tenants ORDER BY id").scalars(tx).await
}

/// PostgreSQL: admits one tenant's business rows in this transaction (system mode stays on
/// for the other tables). SQLite has no row-level security.
pub async fn enter_tenant(tx: &mut SystemTx, tenant: Uuid) -> Result<(), StoreError> {
    if tx.backend() == crate::store::Backend::Postgres {
        query("SELECT set_config('bulwark.tenant_id', $1, true)")
            .bind(tenant.to_string())
            .execute(tx)
            .await?;
    }
    Ok(())
}

/// Tables names every table of the schema (a test compares it with the catalog).
pub async fn table_names(tx: &mut SystemTx) -> Result<Vec<String>, StoreError> {
    let sql = match tx.backend() {
        crate::store::Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations' ORDER BY name"
        }
        crate::store::Backend::Postgres => {
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
             AND table_name <> '_sqlx_migrations' ORDER BY 1"
        }
    };
    query(sql).scalars(tx).await
}

/// Streams one table's rows (of one tenant, for per-tenant tables) into the sink, opening
/// the table in the archive at its first row; returns how many rows it read.
pub async fn dump_rows(
    tx: &mut SystemTx,
    table: &'static str,
    order: &'static str,
    tenant: Option<Uuid>,
    sink: &mut Sink,
    opened: &mut bool,
) -> Result<u64, BackupError> {
    let filter = if tenant.is_some() { " WHERE tenant_id = $1" } else { "" };
    let sql = AssertSqlSafe(format!("SELECT * FROM {table}{filter} ORDER BY {order}"));
    let mut rows = 0;
    let raw = tx.raw();
    let named = raw.named_statements();
    match raw.conn().await? {
        Conn::Sqlite(c) => {
            let mut q = sqlx::query(sql);
            if let Some(t) = tenant {
                q = q.bind(t);
            }
            let mut stream = q.fetch(c);
            while let Some(row) = stream.try_next().await.map_err(StoreError::from)? {
                open(sink, opened, table, &row).await?;
                sink.row(&sqlite_cells(&row)?).await?;
                rows += 1;
            }
        }
        Conn::Postgres(c) => {
            let mut q = sqlx::query(sql).persistent(named);
            if let Some(t) = tenant {
                q = q.bind(t);
            }
            let mut stream = q.fetch(c);
            while let Some(row) = stream.try_next().await.map_err(StoreError::from)? {
                open(sink, opened, table, &row).await?;
                sink.row(&pg_cells(&row)?).await?;
                rows += 1;
            }
        }
    }
    Ok(rows)
}

async fn open(
    sink: &mut Sink,
    opened: &mut bool,
    table: &str,
    row: &impl sqlx::Row,
) -> Result<(), BackupError> {
    if !*opened {
        let columns = row.columns().iter().map(|c| c.name().to_owned()).collect();
        sink.start_table(table, columns).await?;
        *opened = true;
    }
    Ok(())
}

fn unreadable(column: &str, kind: &str) -> BackupError {
    BackupError::Corrupt(format!(
        "column {column} holds a {kind} value, which backups do not carry"
    ))
}

/// SQLite: each value by its own storage class (the tables are STRICT).
fn sqlite_cells(row: &sqlx::sqlite::SqliteRow) -> Result<Cells, BackupError> {
    let mut cells = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let raw = row.try_get_raw(i).map_err(StoreError::from)?;
        if raw.is_null() {
            cells.push(None);
            continue;
        }
        let kind = raw.type_info().name().to_owned();
        let cell = match kind.as_str() {
            "INTEGER" => Cell::Int(row.try_get(i).map_err(StoreError::from)?),
            "TEXT" => Cell::Text(row.try_get(i).map_err(StoreError::from)?),
            "BLOB" => Cell::bytes(&row.try_get::<Vec<u8>, _>(i).map_err(StoreError::from)?),
            _ => return Err(unreadable(column.name(), &kind)),
        };
        cells.push(Some(cell));
    }
    Ok(cells)
}

/// PostgreSQL: by column type; UUIDs travel as their 16 bytes and booleans as 0/1, the way
/// SQLite stores them.
fn pg_cells(row: &sqlx::postgres::PgRow) -> Result<Cells, BackupError> {
    let mut cells = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let get = |e: sqlx::Error| BackupError::Store(StoreError::from(e));
        let cell = match column.type_info().name() {
            "UUID" => {
                row.try_get::<Option<Uuid>, _>(i).map_err(get)?.map(|u| Cell::bytes(u.as_bytes()))
            }
            "INT8" => row.try_get::<Option<i64>, _>(i).map_err(get)?.map(Cell::Int),
            "INT4" => row.try_get::<Option<i32>, _>(i).map_err(get)?.map(|v| Cell::Int(v.into())),
            "BOOL" => row.try_get::<Option<bool>, _>(i).map_err(get)?.map(|v| Cell::Int(v.into())),
            "TEXT" => row.try_get::<Option<String>, _>(i).map_err(get)?.map(Cell::Text),
            "BYTEA" => row.try_get::<Option<Vec<u8>>, _>(i).map_err(get)?.map(|b| Cell::bytes(&b)),
            other => return Err(unreadable(column.name(), other)),
        };
        cells.push(cell);
    }
    Ok(cells)
}

/// A column of the target database and the type its values must be bound as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// SQLite: values keep their storage class.
    Native,
    Uuid,
    Int8,
    Int4,
    Bool,
    Text,
    Bytes,
}

/// The target's columns of `table`, with their types.
pub async fn columns(
    tx: &mut SystemTx,
    table: &'static str,
) -> Result<Vec<(String, Target)>, BackupError> {
    let rows: Vec<(String, String)> = match tx.backend() {
        crate::store::Backend::Sqlite => {
            query("SELECT name, type FROM pragma_table_info($1)").bind(table).fetch_all(tx).await?
        }
        crate::store::Backend::Postgres => {
            query(
                "SELECT column_name::text, data_type::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1",
            )
            .bind(table)
            .fetch_all(tx)
            .await?
        }
    };
    let postgres = tx.backend() == crate::store::Backend::Postgres;
    rows.into_iter()
        .map(|(name, kind)| {
            let target = match (postgres, kind.as_str()) {
                (false, _) => Target::Native,
                (true, "uuid") => Target::Uuid,
                (true, "bigint") => Target::Int8,
                (true, "integer") => Target::Int4,
                (true, "boolean") => Target::Bool,
                (true, "text") => Target::Text,
                (true, "bytea") => Target::Bytes,
                (true, other) => {
                    return Err(BackupError::Corrupt(format!(
                        "{table}.{name} is of type {other}, which restores do not handle"
                    )));
                }
            };
            Ok((name, target))
        })
        .collect()
}

/// One archived cell as the value its target column binds.
pub fn value(column: &str, target: Target, cell: Option<Cell>) -> Result<Value, BackupError> {
    let wrong = || BackupError::Corrupt(format!("column {column} holds a value of the wrong kind"));
    Ok(match (target, cell) {
        (Target::Native, None) => Value::Text(None),
        (Target::Native, Some(Cell::Int(v))) => Value::Int(Some(v)),
        (Target::Native, Some(Cell::Text(v))) => Value::Text(Some(v)),
        (Target::Native, Some(Cell::Bytes { b })) => Value::Bytes(Some(Cell::decode_bytes(&b)?)),
        (Target::Uuid, None) => Value::Uuid(None),
        (Target::Uuid, Some(Cell::Bytes { b })) => {
            Value::Uuid(Some(Uuid::from_slice(&Cell::decode_bytes(&b)?).map_err(|_| wrong())?))
        }
        (Target::Int8, None) => Value::Int(None),
        (Target::Int8, Some(Cell::Int(v))) => Value::Int(Some(v)),
        (Target::Int4, None) => Value::Int4(None),
        (Target::Int4, Some(Cell::Int(v))) => {
            Value::Int4(Some(i32::try_from(v).map_err(|_| wrong())?))
        }
        (Target::Bool, None) => Value::Bool(None),
        (Target::Bool, Some(Cell::Int(v))) => Value::Bool(Some(v != 0)),
        (Target::Text, None) => Value::Text(None),
        (Target::Text, Some(Cell::Text(v))) => Value::Text(Some(v)),
        (Target::Bytes, None) => Value::Bytes(None),
        (Target::Bytes, Some(Cell::Bytes { b })) => Value::Bytes(Some(Cell::decode_bytes(&b)?)),
        _ => return Err(wrong()),
    })
}

/// Rows of one table on their way into the target, sent as multi-row `INSERT`s: a restore
/// costs a round trip per batch instead of one per row (10,000 contacts restored into
/// PostgreSQL through PgBouncer, debug build: 26 s before, 7.5 s). A batch is sent when it reaches
/// `MAX_BINDS` values or `MAX_BYTES` of them, and must be sent before anything that the
/// rows' inserts depend on changes (the transaction's tenant) and before the commit.
///
/// Rows are inserted in the order they were pushed. An audit chain is still rebuilt through
/// the head check of every append: SQLite's row triggers check and advance the head row by
/// row; PostgreSQL's statement trigger (migration 0022) checks that a batch's events of each
/// chain continue its head without a gap and advances it once per batch.
pub struct Inserts {
    /// `INSERT INTO table (a, b) VALUES `: a table of `TABLES` and column names the
    /// target's catalog returned.
    head: String,
    width: usize,
    values: Vec<Value>,
    bytes: usize,
}

/// Both backends take far more (PostgreSQL 65,535 parameters, SQLite 32,766); the bound
/// keeps a statement's text and its rows small.
const MAX_BINDS: usize = 4_096;
/// An archive line may hold up to 8 MiB; a batch of large rows is sent early.
const MAX_BYTES: usize = 4 << 20;

impl Inserts {
    pub fn new(table: &'static str, columns: &[&str]) -> Inserts {
        Inserts {
            head: format!("INSERT INTO {table} ({}) VALUES ", columns.join(", ")),
            width: columns.len(),
            values: Vec::new(),
            bytes: 0,
        }
    }

    /// Queues one row (its values in the order of the columns), sending the batch when full.
    pub async fn push(&mut self, tx: &mut SystemTx, row: Vec<Value>) -> Result<(), StoreError> {
        debug_assert_eq!(row.len(), self.width, "a row binds every column");
        self.bytes += row.iter().map(size).sum::<usize>();
        self.values.extend(row);
        if self.values.len() + self.width > MAX_BINDS || self.bytes >= MAX_BYTES {
            self.flush(tx).await?;
        }
        Ok(())
    }

    /// Sends the queued rows, if any.
    pub async fn flush(&mut self, tx: &mut SystemTx) -> Result<(), StoreError> {
        if self.values.is_empty() || self.width == 0 {
            return Ok(());
        }
        let rows = self.values.len() / self.width;
        let mut sql = String::with_capacity(self.head.len() + self.values.len() * 8);
        sql.push_str(&self.head);
        let mut n = 0;
        for row in 0..rows {
            sql.push_str(if row == 0 { "(" } else { ", (" });
            for column in 0..self.width {
                n += 1;
                if column > 0 {
                    sql.push_str(", ");
                }
                sql.push('$');
                sql.push_str(&n.to_string());
            }
            sql.push(')');
        }
        self.bytes = 0;
        Query::assembled(sql, std::mem::take(&mut self.values)).execute(tx).await.map(|_| ())
    }
}

/// About what a value weighs in a statement: its bytes, or a word.
fn size(value: &Value) -> usize {
    match value {
        Value::Text(Some(v)) => v.len(),
        Value::Bytes(Some(v)) => v.len(),
        _ => 8,
    }
}

/// Whether the database holds anything a restore could overwrite.
pub async fn is_empty(tx: &mut SystemTx) -> Result<bool, StoreError> {
    let rows: i64 = query(
        "SELECT (SELECT count(*) FROM tenants) + (SELECT count(*) FROM users) \
         + (SELECT count(*) FROM audit_events)",
    )
    .scalar(tx)
    .await?;
    Ok(rows == 0)
}

/// An audit chain's head, if the chain has one.
pub async fn audit_head(
    tx: &mut SystemTx,
    chain: Uuid,
) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
    query("SELECT seq, hash FROM audit_heads WHERE chain_id = $1")
        .bind(chain)
        .fetch_optional(tx)
        .await
}

/// Starts a chain's head just before its first restored event, so that each restored event
/// follows its head as the insert trigger requires and advances it.
pub async fn start_audit_head(
    tx: &mut SystemTx,
    chain: Uuid,
    tenant: Option<Uuid>,
    seq: i64,
    hash: Vec<u8>,
) -> Result<(), StoreError> {
    query("INSERT INTO audit_heads (chain_id, tenant_id, seq, hash) VALUES ($1, $2, $3, $4)")
        .binds((chain, tenant, seq, hash))
        .execute(tx)
        .await
        .map(|_| ())
}

/// Every document's (tenant, id), tenant by tenant (row-level security admits no other way).
pub async fn document_ids(
    tx: &mut SystemTx,
    tenants: &[Uuid],
) -> Result<Vec<(Uuid, Uuid)>, StoreError> {
    let mut ids = vec![];
    for &tenant in tenants {
        enter_tenant(tx, tenant).await?;
        let documents: Vec<Uuid> =
            query("SELECT id FROM documents WHERE tenant_id = $1 ORDER BY id")
                .bind(tenant)
                .scalars(tx)
                .await?;
        ids.extend(documents.into_iter().map(|d| (tenant, d)));
    }
    Ok(ids)
}

/// Deletes a restored document row whose object the archive did not have.
pub async fn drop_document(
    tx: &mut SystemTx,
    tenant: Uuid,
    document: Uuid,
) -> Result<(), StoreError> {
    enter_tenant(tx, tenant).await?;
    query("DELETE FROM documents WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(document)
        .execute(tx)
        .await
        .map(|_| ())
}

/// Rows of a table (of one tenant, for per-tenant tables).
pub async fn count(
    tx: &mut SystemTx,
    table: &'static str,
    tenant: Option<Uuid>,
) -> Result<i64, StoreError> {
    match tenant {
        Some(t) => {
            Query::assembled(
                format!("SELECT count(*) FROM {table} WHERE tenant_id = $1"),
                vec![Value::Uuid(Some(t))],
            )
            .scalar(tx)
            .await
        }
        None => Query::assembled(format!("SELECT count(*) FROM {table}"), vec![]).scalar(tx).await,
    }
}

/// The time of the newest successful backup, from the platform audit chain.
pub async fn last_success(
    tx: &mut SystemTx,
) -> Result<Option<crate::clock::Timestamp>, StoreError> {
    query(
        "SELECT max(occurred_at) FROM audit_events \
         WHERE action = 'backup.create' AND outcome = 'success'",
    )
    .scalar(tx)
    .await
}

/// Held while a scheduled backup runs; dropping it (ending its transaction) releases it.
pub struct Lock {
    _tx: Option<SystemTx>,
}

/// PostgreSQL: a transaction-level advisory lock, so that one instance backs up at a time
/// (it works through a transaction-mode pooler too); `None` when another instance holds it.
/// SQLite serves one instance: nothing to take.
pub async fn exclusive(db: &crate::store::Store) -> Result<Option<Lock>, StoreError> {
    if db.backend() == crate::store::Backend::Sqlite {
        return Ok(Some(Lock { _tx: None }));
    }
    let mut tx = db.system_read().await?;
    // The key: the first eight bytes of SHA-256("bulwark.backup"), as a constant.
    let held: bool =
        query("SELECT pg_try_advisory_xact_lock(7046385012203775617)").scalar(&mut tx).await?;
    Ok(held.then_some(Lock { _tx: Some(tx) }))
}
