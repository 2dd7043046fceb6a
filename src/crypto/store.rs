//! SQL of tenant keys.

#![allow(clippy::disallowed_methods, reason = "the store is where SQL lives")]

use crate::ids::TenantId;
use crate::on_tx;
use crate::store::{AsRawTx, StoreError, SystemTx, TenantTx};

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
    now: i64,
) -> Result<(), StoreError> {
    let version = i32::try_from(version).unwrap_or(i32::MAX);
    on_tx!(tx, |c| {
        sqlx::query(
        "INSERT INTO tenant_keys (tenant_id, purpose, version, state, wrapped, master_key_id, created_at) \
         VALUES ($1, $2, $3, 'active', $4, $5, $6) ON CONFLICT (tenant_id, purpose, version) DO NOTHING"
    )
    .bind(tenant)
    .bind(purpose.as_str())
    .bind(version)
    .bind(wrapped)
    .bind(master_key_id)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected())
    })?;
    Ok(())
}

pub async fn current_data_version(
    tx: &mut TenantTx,
    tenant: TenantId,
) -> Result<Option<u32>, StoreError> {
    let version: Option<i32> = on_tx!(tx, |c| {
        sqlx::query_scalar(
        "SELECT max(version) FROM tenant_keys WHERE tenant_id = $1 AND purpose = 'data' AND state = 'active'"
    )
    .bind(tenant)
    .fetch_one(c)
    .await
    })?;
    Ok(version.and_then(|v| u32::try_from(v).ok()))
}

pub async fn live_keys(tx: &mut impl AsRawTx, tenant: TenantId) -> Result<Vec<KeyRow>, StoreError> {
    Ok(on_tx!(tx, |c| sqlx::query_as::<_, KeyRow>(
        "SELECT purpose, version, state, wrapped FROM tenant_keys \
         WHERE tenant_id = $1 AND state <> 'destroyed' ORDER BY purpose, version"
    )
    .bind(tenant)
    .fetch_all(c)
    .await)?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WrappedRow {
    pub tenant_id: uuid::Uuid,
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
    Ok(on_tx!(tx, |c| sqlx::query_as::<_, WrappedRow>(
        "SELECT tenant_id, purpose, version, wrapped, master_key_id FROM tenant_keys \
         WHERE wrapped IS NOT NULL AND (master_key_id IS NULL OR master_key_id <> $1) \
         ORDER BY tenant_id, purpose, version LIMIT $2"
    )
    .bind(master_key_id)
    .bind(limit)
    .fetch_all(c)
    .await)?)
}

pub async fn rewrap(
    tx: &mut SystemTx,
    row: &WrappedRow,
    wrapped: &[u8],
    master_key_id: &str,
) -> Result<(), StoreError> {
    on_tx!(tx, |c| sqlx::query(
        "UPDATE tenant_keys SET wrapped = $4, master_key_id = $5 \
         WHERE tenant_id = $1 AND purpose = $2 AND version = $3"
    )
    .bind(row.tenant_id)
    .bind(&row.purpose)
    .bind(row.version)
    .bind(wrapped)
    .bind(master_key_id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Starts a data-key rotation: older active data keys become `retiring` (decrypt only).
pub async fn retire_data_keys_below(tx: &mut TenantTx, version: u32) -> Result<(), StoreError> {
    let tenant = tx.tenant_id();
    let version = i32::try_from(version).unwrap_or(i32::MAX);
    on_tx!(tx, |c| sqlx::query(
        "UPDATE tenant_keys SET state = 'retiring' \
         WHERE tenant_id = $1 AND purpose = 'data' AND state = 'active' AND version < $2"
    )
    .bind(tenant)
    .bind(version)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Finishes a rotation: retiring keys are destroyed (their wrapped bytes deleted).
pub async fn destroy_retiring(tx: &mut TenantTx) -> Result<u64, StoreError> {
    let tenant = tx.tenant_id();
    Ok(on_tx!(tx, |c| sqlx::query(
        "UPDATE tenant_keys SET state = 'destroyed', wrapped = NULL \
         WHERE tenant_id = $1 AND purpose = 'data' AND state = 'retiring'"
    )
    .bind(tenant)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?)
}

/// Tenant deletion: every key of the tenant is destroyed.
pub async fn destroy_all(tx: &mut SystemTx, tenant: TenantId) -> Result<u64, StoreError> {
    Ok(on_tx!(tx, |c| sqlx::query(
        "UPDATE tenant_keys SET state = 'destroyed', wrapped = NULL WHERE tenant_id = $1"
    )
    .bind(tenant)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?)
}
