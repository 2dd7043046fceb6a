//! SQL of idempotency keys (platform table: `SystemTx` only).

use crate::clock::Timestamp;
use crate::store::{StoreError, SystemTx, query};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyRow {
    pub fingerprint: Vec<u8>,
    pub state: String,
    pub locked_until: Timestamp,
    pub status: Option<i32>,
    pub content_type: Option<String>,
    pub body: Option<Vec<u8>>,
    pub master_key_id: Option<String>,
    pub expires_at: Timestamp,
}

/// Claims the key; false if a row already exists.
pub async fn claim(
    tx: &mut SystemTx,
    scope: &str,
    key: &str,
    fingerprint: &[u8],
    now: Timestamp,
    locked_until: Timestamp,
    expires_at: Timestamp,
) -> Result<bool, StoreError> {
    let inserted = query(
        "INSERT INTO idempotency_keys (scope, key, fingerprint, state, locked_until, created_at, expires_at) \
         VALUES ($1, $2, $3, 'in_flight', $4, $5, $6) ON CONFLICT (scope, key) DO NOTHING"
    )
    .binds((scope, key, fingerprint, locked_until, now, expires_at))
    .execute(tx).await?;
    Ok(inserted == 1)
}

pub async fn get(tx: &mut SystemTx, scope: &str, key: &str) -> Result<Option<KeyRow>, StoreError> {
    query(
        "SELECT fingerprint, state, locked_until, status, content_type, body, master_key_id, expires_at \
         FROM idempotency_keys WHERE scope = $1 AND key = $2"
    )
    .binds((scope, key))
    .fetch_optional::<KeyRow>(tx).await
}

pub async fn delete(tx: &mut SystemTx, scope: &str, key: &str) -> Result<(), StoreError> {
    query("DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2")
        .binds((scope, key))
        .execute(tx)
        .await?;
    Ok(())
}

/// Re-takes a stale in-flight claim (its request died without finishing).
pub async fn relock(
    tx: &mut SystemTx,
    scope: &str,
    key: &str,
    locked_until: Timestamp,
) -> Result<(), StoreError> {
    query("UPDATE idempotency_keys SET locked_until = $3 WHERE scope = $1 AND key = $2")
        .binds((scope, key, locked_until))
        .execute(tx)
        .await?;
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
    query(
        "UPDATE idempotency_keys SET state = 'done', status = $3, content_type = $4, body = $5, \
         master_key_id = $6 WHERE scope = $1 AND key = $2",
    )
    .binds((scope, key, done.status, done.content_type, done.body, done.master_key_id))
    .execute(tx)
    .await?;
    Ok(())
}

pub async fn purge_expired(tx: &mut SystemTx, now: Timestamp) -> Result<u64, StoreError> {
    query("DELETE FROM idempotency_keys WHERE expires_at <= $1").bind(now).execute(tx).await
}
