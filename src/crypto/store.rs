//! SQL of tenant keys.

use crate::clock::Timestamp;
use crate::ids::TenantId;
use crate::store::{AsRawTx, Backend, StoreError, SystemTx, TenantTx, kept, query};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Data,
    Index,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Data => "data",
            Purpose::Index => "index",
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyRow {
    pub purpose: String,
    pub version: i32,
    pub state: String,
    pub wrapped: Option<Vec<u8>>,
}

pub async fn insert(
    tx: &mut impl AsRawTx,
    tenant: TenantId,
    purpose: Purpose,
    version: u32,
    wrapped: &[u8],
    master_key_id: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    let version = i32::try_from(version).unwrap_or(i32::MAX);
    query(
        "INSERT INTO tenant_keys (tenant_id, purpose, version, state, wrapped, master_key_id, created_at) \
         VALUES ($1, $2, $3, 'active', $4, $5, $6) ON CONFLICT (tenant_id, purpose, version) DO NOTHING"
    )
    .binds((tenant, purpose.as_str(), version, wrapped, master_key_id, now))
    .execute(tx).await?;
    Ok(())
}

/// The version of the tenant's current data key. `hold` is for a writer about to seal under
/// it: on PostgreSQL it holds the active data keys' rows FOR SHARE until it commits, so a
/// rotation cannot destroy a key under a row it has not seen (the rotation's end takes them
/// FOR UPDATE, see `lock_data_keys`), and the locking read names the version itself. SQLite
/// admits one writer at a time, which orders them anyway, and its writer keeps the version
/// between transactions (`store::kept`): a create that seals reads it once, not per write.
pub async fn current_data_version(
    tx: &mut TenantTx,
    tenant: TenantId,
    hold: bool,
) -> Result<Option<u32>, StoreError> {
    if hold && tx.backend() == Backend::Postgres {
        let held: Vec<i32> = query(
            "SELECT version FROM tenant_keys WHERE tenant_id = $1 AND purpose = 'data' \
             AND state = 'active' FOR SHARE",
        )
        .bind(tenant)
        .scalars::<i32>(tx)
        .await?;
        return Ok(held.into_iter().max().and_then(|v| u32::try_from(v).ok()));
    }
    let key = tenant.as_uuid();
    if let Some(kept) = tx.raw().kept::<Option<u32>>(kept::TENANT_KEYS, key).await? {
        return Ok(*kept);
    }
    let version: Option<i32> = query(
        "SELECT max(version) FROM tenant_keys WHERE tenant_id = $1 AND purpose = 'data' AND \
             state = 'active'",
    )
    .bind(tenant)
    .scalar(tx)
    .await?;
    let version = version.and_then(|v| u32::try_from(v).ok());
    tx.raw().keep(kept::TENANT_KEYS, key, std::sync::Arc::new(version));
    Ok(version)
}

pub async fn live_keys(tx: &mut impl AsRawTx, tenant: TenantId) -> Result<Vec<KeyRow>, StoreError> {
    query(
        "SELECT purpose, version, state, wrapped FROM tenant_keys \
         WHERE tenant_id = $1 AND state <> 'destroyed' ORDER BY purpose, version",
    )
    .bind(tenant)
    .fetch_all::<KeyRow>(tx)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WrappedRow {
    pub tenant_id: TenantId,
    pub purpose: String,
    pub version: i32,
    pub wrapped: Vec<u8>,
    pub master_key_id: Option<String>,
}

/// Live keys not yet wrapped by `master_key_id`, a batch at a time.
pub async fn wrapped_by_other_masters(
    tx: &mut SystemTx,
    master_key_id: &str,
    limit: i64,
) -> Result<Vec<WrappedRow>, StoreError> {
    query(
        "SELECT tenant_id, purpose, version, wrapped, master_key_id FROM tenant_keys \
         WHERE wrapped IS NOT NULL AND (master_key_id IS NULL OR master_key_id <> $1) \
         ORDER BY tenant_id, purpose, version LIMIT $2",
    )
    .binds((master_key_id, limit))
    .fetch_all::<WrappedRow>(tx)
    .await
}

pub async fn rewrap(
    tx: &mut SystemTx,
    row: &WrappedRow,
    wrapped: &[u8],
    master_key_id: &str,
) -> Result<(), StoreError> {
    query(
        "UPDATE tenant_keys SET wrapped = $4, master_key_id = $5 \
         WHERE tenant_id = $1 AND purpose = $2 AND version = $3",
    )
    .binds((row.tenant_id, &row.purpose, row.version, wrapped, master_key_id))
    .execute(tx)
    .await?;
    Ok(())
}

/// Starts a data-key rotation: older active data keys become `retiring` (decrypt only).
pub async fn retire_data_keys_below(tx: &mut TenantTx, version: u32) -> Result<(), StoreError> {
    let tenant = tx.tenant_id();
    let version = i32::try_from(version).unwrap_or(i32::MAX);
    query(
        "UPDATE tenant_keys SET state = 'retiring' \
         WHERE tenant_id = $1 AND purpose = 'data' AND state = 'active' AND version < $2",
    )
    .binds((tenant, version))
    .execute(tx)
    .await?;
    Ok(())
}

/// Finishes a rotation: retiring keys are destroyed (their wrapped bytes deleted).
pub async fn destroy_retiring(tx: &mut TenantTx) -> Result<u64, StoreError> {
    let tenant = tx.tenant_id();
    query(
        "UPDATE tenant_keys SET state = 'destroyed', wrapped = NULL \
         WHERE tenant_id = $1 AND purpose = 'data' AND state = 'retiring'",
    )
    .bind(tenant)
    .execute(tx)
    .await
}

/// Whether any key of the tenant was destroyed (a deleted tenant).
pub async fn has_destroyed_keys(
    tx: &mut impl AsRawTx,
    tenant: TenantId,
) -> Result<bool, StoreError> {
    let count: i64 = query(
        "SELECT count(*) FROM tenant_keys WHERE tenant_id = $1 AND state = 'destroyed' \
         AND purpose = 'index'",
    )
    .bind(tenant)
    .scalar(tx)
    .await?;
    Ok(count > 0)
}

/// The end of a rotation takes the tenant's data keys FOR UPDATE: it waits for every writer
/// that sealed under them (see `current_data_version`).
pub async fn lock_data_keys(tx: &mut TenantTx) -> Result<(), StoreError> {
    if tx.backend() == Backend::Postgres {
        let tenant = tx.tenant_id();
        query(
            "SELECT version FROM tenant_keys WHERE tenant_id = $1 AND purpose = 'data' FOR UPDATE",
        )
        .bind(tenant)
        .scalars::<i32>(tx)
        .await?;
    }
    Ok(())
}

/// Tenant deletion: every key of the tenant is destroyed.
pub async fn destroy_all(tx: &mut SystemTx, tenant: TenantId) -> Result<u64, StoreError> {
    query("UPDATE tenant_keys SET state = 'destroyed', wrapped = NULL WHERE tenant_id = $1")
        .bind(tenant)
        .execute(tx)
        .await
}
