//! Transactions. Every query runs in one of two kinds:
//!
//! - `TenantTx`: tenant data. Only a `TenantScope` opens one; on PostgreSQL it starts with
//!   `set_config('bulwark.tenant_id', …, true)`, so row-level security admits only that
//!   tenant's rows even if a query forgets its filter.
//! - `SystemTx`: platform work that is not yet, or not at all, inside one tenant (login by
//!   email, token lookups, workers, audit verification). It sets `bulwark.system`, which the
//!   policies of identity and platform tables admit and those of business tables do not.
//!
//! On SQLite, writes use `BEGIN IMMEDIATE`: a deferred transaction that reads and then
//! writes fails with SQLITE_BUSY when another writer got there first, instead of waiting.

#![allow(clippy::disallowed_methods, reason = "the store is where SQL lives")]

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, Postgres, Sqlite, SqliteConnection, Transaction};

use super::{Pool, Store, StoreError};
use crate::ids::TenantId;
use crate::tenancy::TenantScope;

pub enum RawTx {
    Sqlite(Transaction<'static, Sqlite>),
    /// A SQLite write: this process's one writer connection, in its turn (`store::writer`).
    SqliteWrite(super::writer::Member),
    Postgres(Transaction<'static, Postgres>),
    /// Behind a transaction pooler: statements are unnamed (a named prepared statement lives
    /// on one server connection, and the next transaction may get another).
    PostgresPooled(Transaction<'static, Postgres>),
    /// No transaction: one pooled connection, each statement its own (`SystemConn`).
    SqliteConn(PoolConnection<Sqlite>),
    PostgresConn(PoolConnection<Postgres>),
}

/// The connection a statement runs on, in or out of a transaction.
pub enum Conn<'a> {
    Sqlite(&'a mut SqliteConnection),
    Postgres(&'a mut PgConnection),
}

impl RawTx {
    /// Whether statements may be prepared once and kept on the connection (sqlx's
    /// `persistent`): not behind a transaction pooler.
    /// A SQLite write with something to send along with its next statement (its savepoint,
    /// a rider): the statement runs through `writer::Member::send`.
    pub(super) fn member_with_pending(&mut self) -> Option<&mut super::writer::Member> {
        match self {
            RawTx::SqliteWrite(member) if member.has_pending() => Some(member),
            _ => None,
        }
    }

    /// Queues `rider` to be sent along with this transaction's next statement, in the same
    /// hand-off to SQLite's writer thread (each hand-off is what a write costs there). Only
    /// for a statement whose place among the transaction's others does not matter, whose
    /// failure may fail the transaction, and whose text's only `$` are placeholders. False
    /// (nothing queued) on other transactions and backends: the caller runs it itself.
    pub fn ride_along(&mut self, rider: super::Query) -> bool {
        match self {
            RawTx::SqliteWrite(member) => member.ride_along(rider),
            _ => false,
        }
    }

    /// What became of the statement `ride_along` queued: how many rows it changed, or the
    /// statement itself if no other statement took it along (or none was queued: `None`).
    pub fn take_rider(&mut self) -> Option<Result<u64, super::Query>> {
        match self {
            RawTx::SqliteWrite(member) => member.take_rider(),
            _ => None,
        }
    }

    pub fn named_statements(&self) -> bool {
        !matches!(self, RawTx::PostgresPooled(_))
    }

    /// The writer's hint of an audit chain's head: SQLite writes only (`writer::Slot`).
    pub fn audit_head_hint(&self, chain: uuid::Uuid) -> Option<(i64, Vec<u8>)> {
        match self {
            RawTx::SqliteWrite(member) => member.audit_head(chain),
            _ => None,
        }
    }

    /// Records where an append left an audit chain's head, for the next append's hint.
    pub fn hint_audit_head(&mut self, chain: uuid::Uuid, seq: i64, hash: Vec<u8>) {
        if let RawTx::SqliteWrite(member) = self {
            member.set_audit_head(chain, seq, hash);
        }
    }

    /// A value SQLite's writer kept under `table` and `key` (`store::kept`); `None` when it
    /// kept none, and always on other transactions and backends.
    pub async fn kept<T: std::any::Any + Send + Sync>(
        &mut self,
        table: &'static str,
        key: uuid::Uuid,
    ) -> Result<Option<std::sync::Arc<T>>, StoreError> {
        let RawTx::SqliteWrite(member) = self else { return Ok(None) };
        Ok(member.kept(table, key).await?.and_then(|value| value.downcast::<T>().ok()))
    }

    /// Keeps a value read from `table` in this transaction for the writer's next ones.
    pub fn keep<T: std::any::Any + Send + Sync>(
        &mut self,
        table: &'static str,
        key: uuid::Uuid,
        value: std::sync::Arc<T>,
    ) {
        if let RawTx::SqliteWrite(member) = self {
            member.keep(table, key, value);
        }
    }

    /// The connection for the next statement. A SQLite write sends what is still pending
    /// first (its savepoint, a rider: a hand-off of its own, which `writer::Member::send`
    /// saves by taking them along with a statement).
    pub async fn conn(&mut self) -> Result<Conn<'_>, StoreError> {
        Ok(match self {
            RawTx::Sqlite(tx) => Conn::Sqlite(tx),
            RawTx::SqliteWrite(member) => Conn::Sqlite(member.conn().await?),
            RawTx::Postgres(tx) | RawTx::PostgresPooled(tx) => Conn::Postgres(tx),
            RawTx::SqliteConn(c) => Conn::Sqlite(c),
            RawTx::PostgresConn(c) => Conn::Postgres(c),
        })
    }
}

/// Statements sent to the database (transaction begins and commits included): each is a
/// hand-off to SQLite's worker thread or a PostgreSQL round trip. Exported as
/// `db_statements_total`; tests read it to show what a request costs.
static STATEMENTS: AtomicU64 = AtomicU64::new(0);

tokio::task_local! {
    /// Set for a periodic background task (`background`): its statements are no request's.
    static BACKGROUND: ();
}

pub(super) fn count_statement() {
    if BACKGROUND.try_with(|_| ()).is_err() {
        STATEMENTS.fetch_add(1, Ordering::Relaxed);
    }
    metrics::counter!("db_statements_total").increment(1);
}

/// Runs a periodic background task's database work outside `statements_sent` (the metric
/// still counts it): what a request costs stays countable while the task polls.
pub async fn background<F: Future>(work: F) -> F::Output {
    BACKGROUND.scope((), work).await
}

/// The statements sent so far by this process for requests and request-path work (see
/// `STATEMENTS` and `background`).
pub fn statements_sent() -> u64 {
    STATEMENTS.load(Ordering::Relaxed)
}

/// Access to the raw transaction, for the query layer (`store::sql`).
pub trait AsRawTx {
    fn raw(&mut self) -> &mut RawTx;
    fn backend(&self) -> super::Backend;
}

pub struct TenantTx {
    raw: RawTx,
    tenant_id: TenantId,
    /// One value a caller may keep for the rest of the transaction (the tenant's unwrapped
    /// keys, read once per transaction instead of once per use).
    memo: Option<std::sync::Arc<dyn std::any::Any + Send + Sync>>,
}

pub struct SystemTx {
    raw: RawTx,
}

/// Platform reads of single statements outside any transaction, for the request path's hot
/// reads (the session check, the API-key lookup): one hand-off or round trip each, where a
/// `SystemTx` costs three. On PostgreSQL it comes from a small pool whose connections are in
/// system mode for their whole life (`Store::system_pool`), so no `set_config` is needed;
/// behind a transaction pooler it is a read transaction in system mode instead (no state may
/// outlive a transaction there).
/// Nothing that must read a consistent snapshot of several statements belongs here.
pub struct SystemConn {
    raw: RawTx,
}

impl AsRawTx for SystemConn {
    fn raw(&mut self) -> &mut RawTx {
        &mut self.raw
    }
    fn backend(&self) -> super::Backend {
        backend_of(&self.raw)
    }
}

impl AsRawTx for TenantTx {
    fn raw(&mut self) -> &mut RawTx {
        &mut self.raw
    }
    fn backend(&self) -> super::Backend {
        backend_of(&self.raw)
    }
}

impl AsRawTx for SystemTx {
    fn raw(&mut self) -> &mut RawTx {
        &mut self.raw
    }
    fn backend(&self) -> super::Backend {
        backend_of(&self.raw)
    }
}

fn backend_of(raw: &RawTx) -> super::Backend {
    match raw {
        RawTx::Sqlite(_) | RawTx::SqliteWrite(_) | RawTx::SqliteConn(_) => super::Backend::Sqlite,
        RawTx::Postgres(_) | RawTx::PostgresPooled(_) | RawTx::PostgresConn(_) => {
            super::Backend::Postgres
        }
    }
}

impl TenantTx {
    pub fn tenant_id(&self) -> TenantId {
        self.tenant_id
    }

    /// What `remember` kept in this transaction, if it is a `T`.
    pub fn remembered<T: std::any::Any + Send + Sync>(&self) -> Option<std::sync::Arc<T>> {
        self.memo.clone()?.downcast::<T>().ok()
    }

    pub fn remember<T: std::any::Any + Send + Sync>(&mut self, value: std::sync::Arc<T>) {
        self.memo = Some(value);
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        commit(self.raw).await
    }
}

impl SystemTx {
    pub async fn commit(self) -> Result<(), StoreError> {
        commit(self.raw).await
    }
}

async fn commit(raw: RawTx) -> Result<(), StoreError> {
    match raw {
        // Counts its COMMIT if it sends one (a group's last member does).
        RawTx::SqliteWrite(member) => member.commit().await?,
        RawTx::Sqlite(tx) => {
            count_statement();
            tx.commit().await?
        }
        RawTx::Postgres(tx) | RawTx::PostgresPooled(tx) => {
            count_statement();
            tx.commit().await?
        }
        // Statements outside a transaction took effect one by one.
        RawTx::SqliteConn(_) | RawTx::PostgresConn(_) => {}
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Read,
    Write,
    /// A read that sees one snapshot across all its statements (backups).
    Snapshot,
}

impl Store {
    /// A transaction on one tenant's data that may write.
    pub async fn tenant_tx(&self, scope: &TenantScope) -> Result<TenantTx, StoreError> {
        self.begin_tenant(scope.tenant_id(), Mode::Write).await
    }

    /// A read-only transaction on one tenant's data (concurrent with writers on SQLite).
    pub async fn tenant_read(&self, scope: &TenantScope) -> Result<TenantTx, StoreError> {
        self.begin_tenant(scope.tenant_id(), Mode::Read).await
    }

    /// A platform transaction that may write. See the module comment for when.
    pub async fn system_tx(&self) -> Result<SystemTx, StoreError> {
        Ok(SystemTx { raw: self.begin(Mode::Write, None).await? })
    }

    pub async fn system_read(&self) -> Result<SystemTx, StoreError> {
        Ok(SystemTx { raw: self.begin(Mode::Read, None).await? })
    }

    /// A platform read that sees one consistent snapshot across every statement, however
    /// long it runs, while writers go on: SQLite's WAL read transaction; PostgreSQL's
    /// REPEATABLE READ (plain reads there see each statement's own snapshot).
    pub async fn snapshot_read(&self) -> Result<SystemTx, StoreError> {
        Ok(SystemTx { raw: self.begin(Mode::Snapshot, None).await? })
    }

    /// See [`SystemConn`].
    pub async fn system_conn(&self) -> Result<SystemConn, StoreError> {
        let raw = match (&self.pool, &self.system_pool) {
            (Pool::Sqlite(pool), _) => RawTx::SqliteConn(pool.acquire().await?),
            (Pool::Postgres(_), Some(system)) => RawTx::PostgresConn(system.acquire().await?),
            // Behind a transaction pooler: a read-only transaction whose system mode ends with
            // it (a write through it fails loudly instead of vanishing at the rollback).
            (Pool::Postgres(_), None) => self.begin(Mode::Snapshot, None).await?,
        };
        Ok(SystemConn { raw })
    }

    async fn begin_tenant(&self, tenant_id: TenantId, mode: Mode) -> Result<TenantTx, StoreError> {
        Ok(TenantTx { raw: self.begin(mode, Some(tenant_id)).await?, tenant_id, memo: None })
    }

    async fn begin(&self, mode: Mode, tenant: Option<TenantId>) -> Result<RawTx, StoreError> {
        if let (Mode::Write, Some(writer)) = (mode, &self.sqlite_writer) {
            // Counts its BEGIN (or savepoint).
            return Ok(RawTx::SqliteWrite(writer.begin().await?));
        }
        count_statement();
        match &self.pool {
            Pool::Sqlite(pool) => Ok(RawTx::Sqlite(pool.begin().await?)),
            Pool::Postgres(pool) => {
                let mut tx = match mode {
                    Mode::Snapshot => {
                        pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY").await?
                    }
                    Mode::Read | Mode::Write => pool.begin().await?,
                };
                count_statement();
                let named = self.pooler == crate::config::Pooler::None;
                match tenant {
                    Some(tenant) => {
                        sqlx::query("SELECT set_config('bulwark.tenant_id', $1, true)")
                            .bind(tenant.to_string())
                            .persistent(named)
                            .execute(&mut *tx)
                            .await?;
                    }
                    None => {
                        sqlx::query("SELECT set_config('bulwark.system', 'on', true)")
                            .persistent(named)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                Ok(if named { RawTx::Postgres(tx) } else { RawTx::PostgresPooled(tx) })
            }
        }
    }
}
