//! SQL of the login-failure counters.

use crate::clock::Timestamp;
use crate::store::{StoreError, SystemTx, query};

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

/// The counter row, created if absent and locked for this transaction (PostgreSQL; SQLite's
/// single writer already holds the database), so two failures at once both count. One
/// upsert on both dialects: the no-op update takes the row lock and returns the row even when
/// a concurrent success deleted it meanwhile (PostgreSQL then inserts afresh), where
/// "insert if absent, then SELECT … FOR UPDATE" found no row after waiting on a deleted one
/// and failed the sign-in with a 500.
pub async fn throttle_for_update(
    tx: &mut SystemTx,
    key: &str,
    now: Timestamp,
) -> Result<ThrottleRow, StoreError> {
    query(concat!(
        "INSERT INTO login_throttle (key, failures, window_started_at, locked_until, lock_count) \
         VALUES ($1, 0, $2, 0, 0) \
         ON CONFLICT (key) DO UPDATE SET failures = login_throttle.failures RETURNING ",
        throttle_columns!()
    ))
    .binds((key, now))
    .fetch_one(tx)
    .await
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
