//! SQL of idempotency keys (platform table: `SystemTx` only).

#![allow(clippy::disallowed_methods, reason = "the store is where SQL lives")]

use crate::on_tx;
use crate::store::{StoreError, SystemTx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyRow {
    pub fingerprint: Vec<u8>,
    pub state: String,
    pub locked_until: i64,
    pub status: Option<i32>,
    pub content_type: Option<String>,
    pub body: Option<Vec<u8>>,
    pub master_key_id: Option<String>,
    pub expires_at: i64,
}

/// Claims the key; false if a row already exists.
pub async fn claim(
    tx: &mut SystemTx,
    scope: &str,
    key: &str,
    fingerprint: &[u8],
    now: i64,
    locked_until: i64,
    expires_at: i64,
) -> Result<bool, StoreError> {
    let inserted = on_tx!(tx, |c| {
        sqlx::query(
        "INSERT INTO idempotency_keys (scope, key, fingerprint, state, locked_until, created_at, expires_at) \
         VALUES ($1, $2, $3, 'in_flight', $4, $5, $6) ON CONFLICT (scope, key) DO NOTHING"
    )
    .bind(scope)
    .bind(key)
    .bind(fingerprint)
    .bind(locked_until)
    .bind(now)
    .bind(expires_at)
    .execute(c)
    .await
    .map(|r| r.rows_affected())
    })?;
    Ok(inserted == 1)
}

pub async fn get(tx: &mut SystemTx, scope: &str, key: &str) -> Result<Option<KeyRow>, StoreError> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as::<_, KeyRow>(
        "SELECT fingerprint, state, locked_until, status, content_type, body, master_key_id, expires_at \
         FROM idempotency_keys WHERE scope = $1 AND key = $2"
    )
    .bind(scope)
    .bind(key)
    .fetch_optional(c)
    .await
    })?)
}

pub async fn delete(tx: &mut SystemTx, scope: &str, key: &str) -> Result<(), StoreError> {
    on_tx!(tx, |c| sqlx::query("DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2")
        .bind(scope)
        .bind(key)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Re-takes a stale in-flight claim (its request died without finishing).
pub async fn relock(
    tx: &mut SystemTx,
    scope: &str,
    key: &str,
    locked_until: i64,
) -> Result<(), StoreError> {
    on_tx!(tx, |c| sqlx::query(
        "UPDATE idempotency_keys SET locked_until = $3 WHERE scope = $1 AND key = $2"
    )
    .bind(scope)
    .bind(key)
    .bind(locked_until)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

pub struct Finished<'a> {
    pub status: i32,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
    pub master_key_id: &'a str,
}

pub async fn finish(
    tx: &mut SystemTx,
    scope: &str,
    key: &str,
    done: &Finished<'_>,
) -> Result<(), StoreError> {
    on_tx!(tx, |c| sqlx::query(
        "UPDATE idempotency_keys SET state = 'done', status = $3, content_type = $4, body = $5, \
         master_key_id = $6 WHERE scope = $1 AND key = $2"
    )
    .bind(scope)
    .bind(key)
    .bind(done.status)
    .bind(done.content_type)
    .bind(done.body)
    .bind(done.master_key_id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn purge_expired(tx: &mut SystemTx, now: i64) -> Result<u64, StoreError> {
    Ok(on_tx!(tx, |c| sqlx::query("DELETE FROM idempotency_keys WHERE expires_at <= $1")
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?)
}
