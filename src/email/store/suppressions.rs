//! SQL of the suppression list.

use crate::clock::Timestamp;
use crate::ids::SuppressionId;
use crate::store::{StoreError, TenantTx, query};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SuppressionRow {
    pub id: SuppressionId,
    /// Keyed blind index of the normalised address (lookups).
    pub email_index: Vec<u8>,
    pub key_version: i32,
    /// The normalised address, sealed under the tenant's key.
    pub email_enc: Vec<u8>,
    pub reason: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
}

/// The suppressions of the transaction's tenant (`$1`), narrowed by `$rest`.
macro_rules! suppressions_where {
    ($rest:literal) => {
        concat!(
            "SELECT id, email_index, key_version, email_enc, reason, created_at, expires_at \
             FROM email_suppressions WHERE tenant_id = $1 ",
            $rest
        )
    };
}

/// Adds a suppression; `false` when the address is already on the list.
pub async fn insert_suppression(
    tx: &mut TenantTx,
    row: &SuppressionRow,
) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    let inserted = query(
        "INSERT INTO email_suppressions (id, tenant_id, email_index, key_version, email_enc, \
         reason, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (tenant_id, email_index) DO NOTHING",
    )
    .binds((
        row.id,
        tenant,
        row.email_index.as_slice(),
        row.key_version,
        row.email_enc.as_slice(),
        row.reason.as_str(),
        row.created_at,
        row.expires_at,
    ))
    .execute(tx)
    .await?;
    Ok(inserted == 1)
}

/// The suppressions in force at `now` whose index is one of `indexes`.
pub async fn suppressed(
    tx: &mut TenantTx,
    index: &[u8],
    now: Timestamp,
) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    let n: i64 = query(
        "SELECT count(*) FROM email_suppressions WHERE tenant_id = $1 AND email_index = $2 \
         AND (expires_at IS NULL OR expires_at > $3)",
    )
    .binds((tenant, index, now))
    .scalar(tx)
    .await?;
    Ok(n > 0)
}

/// Newest first, optionally one address (by its index); `before`: the previous page's last id.
pub async fn suppressions(
    tx: &mut TenantTx,
    index: Option<&[u8]>,
    before: Option<SuppressionId>,
    limit: i64,
) -> Result<Vec<SuppressionRow>, StoreError> {
    let tenant = tx.tenant_id();
    query(suppressions_where!(
        "AND ($2 IS NULL OR email_index = $2) AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"
    ))
    .binds((tenant, index, before, limit))
    .fetch_all(tx)
    .await
}

pub async fn delete_suppression(tx: &mut TenantTx, id: SuppressionId) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    query("DELETE FROM email_suppressions WHERE tenant_id = $1 AND id = $2")
        .binds((tenant, id))
        .execute_one(tx)
        .await
}
