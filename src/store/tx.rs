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

use sqlx::{Postgres, Sqlite, Transaction};

use super::{Pool, Store, StoreError};
use crate::ids::TenantId;
use crate::tenancy::TenantScope;

pub enum RawTx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// Access to the raw transaction, for the query layer (`store::sql`).
pub trait AsRawTx {
    fn raw(&mut self) -> &mut RawTx;
    fn backend(&self) -> super::Backend;
}

/// The SQLite writer's turn (see `Store::sqlite_writer`). Declared after the transaction in
/// the structs below, so it is released after the transaction ends.
type WriterTurn = Option<tokio::sync::OwnedMutexGuard<()>>;

pub struct TenantTx {
    raw: RawTx,
    tenant_id: TenantId,
    _turn: WriterTurn,
}

pub struct SystemTx {
    raw: RawTx,
    _turn: WriterTurn,
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
        RawTx::Sqlite(_) => super::Backend::Sqlite,
        RawTx::Postgres(_) => super::Backend::Postgres,
    }
}

impl TenantTx {
    pub fn tenant_id(&self) -> TenantId {
        self.tenant_id
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        let TenantTx { raw, _turn, .. } = self;
        commit(raw).await
    }
}

impl SystemTx {
    pub async fn commit(self) -> Result<(), StoreError> {
        let SystemTx { raw, _turn } = self;
        commit(raw).await
    }
}

async fn commit(raw: RawTx) -> Result<(), StoreError> {
    match raw {
        RawTx::Sqlite(tx) => tx.commit().await?,
        RawTx::Postgres(tx) => tx.commit().await?,
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Read,
    Write,
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
        let _turn = self.writer_turn(Mode::Write).await?;
        Ok(SystemTx { raw: self.begin(Mode::Write, None).await?, _turn })
    }

    pub async fn system_read(&self) -> Result<SystemTx, StoreError> {
        Ok(SystemTx { raw: self.begin(Mode::Read, None).await?, _turn: None })
    }

    async fn begin_tenant(&self, tenant_id: TenantId, mode: Mode) -> Result<TenantTx, StoreError> {
        let _turn = self.writer_turn(mode).await?;
        Ok(TenantTx { raw: self.begin(mode, Some(tenant_id)).await?, tenant_id, _turn })
    }

    /// On SQLite, a write waits for its turn here (in arrival order) before `BEGIN
    /// IMMEDIATE`, for as long as the busy timeout would have let it.
    async fn writer_turn(&self, mode: Mode) -> Result<WriterTurn, StoreError> {
        let (Mode::Write, Some(writer)) = (mode, &self.sqlite_writer) else { return Ok(None) };
        match tokio::time::timeout(super::WRITER_TIMEOUT, writer.clone().lock_owned()).await {
            Ok(turn) => Ok(Some(turn)),
            Err(_) => Err(StoreError::Unavailable(sqlx::Error::PoolTimedOut)),
        }
    }

    async fn begin(&self, mode: Mode, tenant: Option<TenantId>) -> Result<RawTx, StoreError> {
        match &self.pool {
            Pool::Sqlite(pool) => {
                let tx = match mode {
                    Mode::Write => pool.begin_with("BEGIN IMMEDIATE").await?,
                    Mode::Read => pool.begin().await?,
                };
                Ok(RawTx::Sqlite(tx))
            }
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                match tenant {
                    Some(tenant) => {
                        sqlx::query("SELECT set_config('bulwark.tenant_id', $1, true)")
                            .bind(tenant.to_string())
                            .execute(&mut *tx)
                            .await?;
                    }
                    None => {
                        sqlx::query("SELECT set_config('bulwark.system', 'on', true)")
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                Ok(RawTx::Postgres(tx))
            }
        }
    }
}
