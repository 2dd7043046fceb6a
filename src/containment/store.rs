//! SQL of containment.

use crate::clock::Timestamp;
use crate::ids::{BlockId, UserId};
use crate::store::{AsRawTx, StoreError, SystemTx, query};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BlockedRow {
    pub id: BlockId,
    pub cidr: String,
    pub reason: String,
    pub expires_at: Option<Timestamp>,
    pub created_by: Option<UserId>,
    pub created_at: Timestamp,
}

pub async fn insert(tx: &mut SystemTx, row: &BlockedRow) -> Result<(), StoreError> {
    query(
        "INSERT INTO blocked_ips (id, cidr, reason, expires_at, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .binds((
        row.id,
        row.cidr.as_str(),
        row.reason.as_str(),
        row.expires_at,
        row.created_by,
        row.created_at,
    ))
    .execute(tx)
    .await?;
    Ok(())
}

/// The blocks in force at `now`, oldest first.
pub async fn active(tx: &mut impl AsRawTx, now: Timestamp) -> Result<Vec<BlockedRow>, StoreError> {
    query(
        "SELECT id, cidr, reason, expires_at, created_by, created_at FROM blocked_ips \
         WHERE expires_at IS NULL OR expires_at > $1 ORDER BY created_at, id",
    )
    .bind(now)
    .fetch_all(tx)
    .await
}

pub async fn delete(tx: &mut SystemTx, id: BlockId) -> Result<bool, StoreError> {
    query("DELETE FROM blocked_ips WHERE id = $1").bind(id).execute_one(tx).await
}
