//! SQL of containment.

use crate::clock::Timestamp;
use crate::ids::{BlockId, GrantId, TenantId, UserId};
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

/// Every stored switch: (feature, enabled).
pub async fn switches(tx: &mut impl AsRawTx) -> Result<Vec<(String, bool)>, StoreError> {
    query("SELECT feature, enabled FROM feature_switches ORDER BY feature").fetch_all(tx).await
}

pub async fn set_switch(
    tx: &mut SystemTx,
    feature: &str,
    enabled: bool,
    by: UserId,
    now: Timestamp,
) -> Result<(), StoreError> {
    query(
        "INSERT INTO feature_switches (feature, enabled, changed_by, changed_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (feature) DO UPDATE SET \
         enabled = excluded.enabled, changed_by = excluded.changed_by, \
         changed_at = excluded.changed_at",
    )
    .binds((feature, enabled, by, now))
    .execute(tx)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GrantRow {
    pub id: GrantId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub reason: String,
    pub can_write: bool,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

pub async fn insert_grant(tx: &mut SystemTx, row: &GrantRow) -> Result<(), StoreError> {
    query(
        "INSERT INTO access_grants \
         (id, tenant_id, user_id, reason, can_write, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .binds((
        row.id,
        row.tenant_id,
        row.user_id,
        row.reason.as_str(),
        row.can_write,
        row.created_at,
        row.expires_at,
    ))
    .execute(tx)
    .await?;
    Ok(())
}

/// The grant `user` holds on `tenant` at `now` (the one that ends last, if several).
pub async fn active_grant(
    tx: &mut impl AsRawTx,
    user: UserId,
    tenant: TenantId,
    now: Timestamp,
) -> Result<Option<GrantRow>, StoreError> {
    query(
        "SELECT id, tenant_id, user_id, reason, can_write, created_at, expires_at \
         FROM access_grants WHERE user_id = $1 AND tenant_id = $2 AND expires_at > $3 \
         ORDER BY can_write DESC, expires_at DESC LIMIT 1",
    )
    .binds((user, tenant, now))
    .fetch_optional(tx)
    .await
}

/// Whether `tenant` exists and is neither suspended nor deleted.
pub async fn tenant_is_active(tx: &mut SystemTx, tenant: TenantId) -> Result<bool, StoreError> {
    let status: Option<String> =
        query("SELECT status FROM tenants WHERE id = $1").bind(tenant).scalar_optional(tx).await?;
    Ok(status.as_deref() == Some("active"))
}

/// Ends `user`'s grants on `tenant` that are still running at `now`; how many. A grant
/// opened in this very millisecond ends a millisecond after it began (a grant always ends
/// after it starts).
pub async fn end_grants(
    tx: &mut SystemTx,
    user: UserId,
    tenant: TenantId,
    now: Timestamp,
) -> Result<u64, StoreError> {
    query(
        "UPDATE access_grants \
         SET expires_at = CASE WHEN created_at < $3 THEN $3 ELSE created_at + 1 END \
         WHERE user_id = $1 AND tenant_id = $2 AND expires_at > $3",
    )
    .binds((user, tenant, now))
    .execute(tx)
    .await
}
