//! SQL of API keys.

use crate::clock::Timestamp;
use crate::ids::{ApiKeyId, TenantId, UserId};
use crate::store::{AsRawTx, StoreError, SystemTx, TenantTx, query};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub id: ApiKeyId,
    pub created_by: UserId,
    pub name: String,
    pub prefix: String,
    pub scopes: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

pub struct NewApiKeyRow<'a> {
    pub id: ApiKeyId,
    pub created_by: UserId,
    pub name: &'a str,
    pub prefix: &'a str,
    pub secret_hash: &'a [u8],
    pub scopes: &'a str,
    pub expires_at: Option<Timestamp>,
    pub now: Timestamp,
}

pub async fn insert_api_key(tx: &mut TenantTx, key: &NewApiKeyRow<'_>) -> Result<(), StoreError> {
    let tenant = tx.tenant_id();
    query(
        "INSERT INTO api_keys (id, tenant_id, created_by, name, prefix, secret_hash, scopes, \
         created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .binds((
        key.id,
        tenant,
        key.created_by,
        key.name,
        key.prefix,
        key.secret_hash,
        key.scopes,
        key.now,
        key.expires_at,
    ))
    .execute(tx)
    .await?;
    Ok(())
}

pub async fn list_api_keys(
    tx: &mut TenantTx,
    after: Option<ApiKeyId>,
    limit: i64,
) -> Result<Vec<ApiKeyRow>, StoreError> {
    let tenant = tx.tenant_id();
    query(
        "SELECT id, created_by, name, prefix, scopes, created_at, expires_at, last_used_at, \
         revoked_at FROM api_keys WHERE tenant_id = $1 AND ($2 IS NULL OR id > $2) \
         ORDER BY id LIMIT $3",
    )
    .binds((tenant, after, limit))
    .fetch_all(tx)
    .await
}

/// False when the tenant has no such live key.
pub async fn revoke_api_key(
    tx: &mut TenantTx,
    id: ApiKeyId,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    query(
        "UPDATE api_keys SET revoked_at = $3 \
         WHERE id = $1 AND tenant_id = $2 AND revoked_at IS NULL",
    )
    .binds((id, tenant, now))
    .execute_one(tx)
    .await
}

pub async fn revoke_user_api_keys(
    tx: &mut TenantTx,
    user: UserId,
    now: Timestamp,
) -> Result<u64, StoreError> {
    let tenant = tx.tenant_id();
    query(
        "UPDATE api_keys SET revoked_at = $3 \
         WHERE created_by = $1 AND tenant_id = $2 AND revoked_at IS NULL",
    )
    .binds((user, tenant, now))
    .execute(tx)
    .await
}

/// Every live key a user created, from platform work (a password change).
pub async fn revoke_user_api_keys_system(
    tx: &mut SystemTx,
    user: UserId,
    now: Timestamp,
) -> Result<u64, StoreError> {
    query("UPDATE api_keys SET revoked_at = $2 WHERE created_by = $1 AND revoked_at IS NULL")
        .binds((user, now))
        .execute(tx)
        .await
}

/// What authenticating with a key needs: the key and its owner's current standing.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKeyAuthRow {
    pub id: ApiKeyId,
    pub tenant_id: TenantId,
    pub created_by: UserId,
    pub secret_hash: Vec<u8>,
    pub scopes: String,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub owner_role: Option<String>,
    pub owner_status: String,
    pub owner_email: String,
    pub owner_display_name: String,
    pub owner_email_verified_at: Option<Timestamp>,
    pub tenant_status: String,
}

/// A key with everything its request needs (its creator's role, status and profile, its
/// tenant's status): one statement.
pub async fn api_key_by_prefix(
    tx: &mut impl AsRawTx,
    prefix: &str,
) -> Result<Option<ApiKeyAuthRow>, StoreError> {
    query(
        "SELECT k.id, k.tenant_id, k.created_by, k.secret_hash, k.scopes, k.expires_at, \
         k.revoked_at, k.last_used_at, u.role AS owner_role, u.status AS owner_status, \
         u.email AS owner_email, u.display_name AS owner_display_name, \
         u.email_verified_at AS owner_email_verified_at, \
         t.status AS tenant_status FROM api_keys k JOIN users u ON u.id = k.created_by \
         JOIN tenants t ON t.id = k.tenant_id WHERE k.prefix = $1",
    )
    .bind(prefix)
    .fetch_optional(tx)
    .await
}

pub async fn touch_api_key(
    tx: &mut SystemTx,
    id: ApiKeyId,
    now: Timestamp,
) -> Result<(), StoreError> {
    query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
        .binds((id, now))
        .execute(tx)
        .await?;
    Ok(())
}

/// Containment: revokes every live key of a tenant; how many.
pub async fn revoke_tenant_api_keys(
    tx: &mut SystemTx,
    tenant: TenantId,
    now: Timestamp,
) -> Result<u64, StoreError> {
    query("UPDATE api_keys SET revoked_at = $2 WHERE tenant_id = $1 AND revoked_at IS NULL")
        .binds((tenant, now))
        .execute(tx)
        .await
}
