//! SQL of the login-failure counters.

use crate::clock::Timestamp;
use crate::store::{AsRawTx as _, Backend, StoreError, SystemTx, query};

#[derive(Debug, Clone, sqlx::FromRow, PartialEq, Eq)]
pub struct ThrottleRow {
    pub key: String,
    pub failures: i32,
    pub window_started_at: Timestamp,
    pub locked_until: Timestamp,
    pub lock_count: i32,
}

macro_rules! throttle_columns {
    () => {
        "key, failures, window_started_at, locked_until, lock_count"
    };
}

pub async fn throttle(tx: &mut SystemTx, key: &str) -> Result<Option<ThrottleRow>, StoreError> {
    query(concat!("SELECT ", throttle_columns!(), " FROM login_throttle WHERE key = $1"))
        .bind(key)
        .fetch_optional(tx)
        .await
}

/// The counter row, created if absent and locked for this transaction (PostgreSQL), so two
/// failures at once both count.
pub async fn throttle_for_update(
    tx: &mut SystemTx,
    key: &str,
    now: Timestamp,
) -> Result<ThrottleRow, StoreError> {
    query(
        "INSERT INTO login_throttle (key, failures, window_started_at, locked_until, lock_count) \
         VALUES ($1, 0, $2, 0, 0) ON CONFLICT (key) DO NOTHING",
    )
    .binds((key, now))
    .execute(tx)
    .await?;
    // Dialects differ: PostgreSQL locks the row; SQLite's single writer already holds the
    // database.
    let sql = match tx.backend() {
        Backend::Postgres => concat!(
            "SELECT ",
            throttle_columns!(),
            " FROM login_throttle WHERE key = $1 FOR UPDATE"
        ),
        Backend::Sqlite => {
            concat!("SELECT ", throttle_columns!(), " FROM login_throttle WHERE key = $1")
        }
    };
    query(sql).bind(key).fetch_one(tx).await
}

pub async fn save_throttle(tx: &mut SystemTx, row: &ThrottleRow) -> Result<(), StoreError> {
    query(
        "UPDATE login_throttle SET failures = $2, window_started_at = $3, locked_until = $4, \
         lock_count = $5 WHERE key = $1",
    )
    .binds((&row.key, row.failures, row.window_started_at, row.locked_until, row.lock_count))
    .execute(tx)
    .await?;
    Ok(())
}

pub async fn clear_throttle(tx: &mut SystemTx, key: &str) -> Result<(), StoreError> {
    query("DELETE FROM login_throttle WHERE key = $1").bind(key).execute(tx).await?;
    Ok(())
}
