//! SQL of webhook subscriptions.

use std::sync::Arc;

use crate::clock::Timestamp;
use crate::ids::{UserId, WebhookId};
use crate::store::{AsRawTx, StoreError, TenantTx, kept, query};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SubscriptionRow {
    pub id: WebhookId,
    pub key_version: i32,
    /// URL and signing secret, sealed under the tenant's key.
    pub sealed: Vec<u8>,
    /// Comma-separated event names.
    pub events: String,
    pub status: String,
    pub failures: i32,
    pub created_by: Option<UserId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The subscriptions of the transaction's tenant (`$1`), narrowed by `$rest`.
macro_rules! subscriptions_where {
    ($rest:literal) => {
        concat!(
            "SELECT id, key_version, sealed, events, status, failures, created_by, created_at, \
             updated_at FROM webhook_subscriptions WHERE tenant_id = $1 ",
            $rest
        )
    };
}

pub async fn insert(tx: &mut TenantTx, row: &SubscriptionRow) -> Result<(), StoreError> {
    let tenant = tx.tenant_id();
    query(
        "INSERT INTO webhook_subscriptions (id, tenant_id, key_version, sealed, events, status, \
         failures, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .binds((
        row.id,
        tenant,
        row.key_version,
        row.sealed.as_slice(),
        row.events.as_str(),
        row.status.as_str(),
        row.failures,
        row.created_by,
        row.created_at,
        row.updated_at,
    ))
    .execute(tx)
    .await?;
    Ok(())
}

/// Oldest first; `after` is the last id of the previous page.
pub async fn list(
    tx: &mut TenantTx,
    after: Option<WebhookId>,
    limit: i64,
) -> Result<Vec<SubscriptionRow>, StoreError> {
    let tenant = tx.tenant_id();
    query(subscriptions_where!("AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"))
        .binds((tenant, after, limit))
        .fetch_all(tx)
        .await
}

pub async fn get(tx: &mut TenantTx, id: WebhookId) -> Result<Option<SubscriptionRow>, StoreError> {
    let tenant = tx.tenant_id();
    query(subscriptions_where!("AND id = $2")).binds((tenant, id)).fetch_optional(tx).await
}

pub async fn update(tx: &mut TenantTx, row: &SubscriptionRow) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    query(
        "UPDATE webhook_subscriptions SET key_version = $3, sealed = $4, events = $5, \
         status = $6, failures = $7, updated_at = $8 WHERE tenant_id = $1 AND id = $2",
    )
    .binds((
        tenant,
        row.id,
        row.key_version,
        row.sealed.as_slice(),
        row.events.as_str(),
        row.status.as_str(),
        row.failures,
        row.updated_at,
    ))
    .execute_one(tx)
    .await
}

pub async fn delete(tx: &mut TenantTx, id: WebhookId) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    query("DELETE FROM webhook_subscriptions WHERE tenant_id = $1 AND id = $2")
        .binds((tenant, id))
        .execute_one(tx)
        .await
}

/// The active subscriptions of a tenant: their ids and comma-separated event names.
pub type Active = Arc<[(WebhookId, String)]>;

/// The active subscriptions of the transaction's tenant. SQLite's writer keeps them between
/// transactions (`store::kept`): every change that subscribers hear about asks, and most
/// tenants have none.
pub async fn active(tx: &mut TenantTx) -> Result<Active, StoreError> {
    let tenant = tx.tenant_id();
    let key = tenant.as_uuid();
    if let Some(active) = tx.raw().kept::<Active>(kept::WEBHOOK_SUBSCRIPTIONS, key).await? {
        return Ok(Arc::clone(&active));
    }
    let active: Active = query(
        "SELECT id, events FROM webhook_subscriptions WHERE tenant_id = $1 AND status = 'active'",
    )
    .bind(tenant)
    .fetch_all(tx)
    .await?
    .into();
    tx.raw().keep(kept::WEBHOOK_SUBSCRIPTIONS, key, Arc::new(active.clone()));
    Ok(active)
}

/// A delivery to the subscription failed for good: one more in a row; the new count.
pub async fn count_failure(tx: &mut TenantTx, id: WebhookId) -> Result<i32, StoreError> {
    let tenant = tx.tenant_id();
    query(
        "UPDATE webhook_subscriptions SET failures = failures + 1 \
         WHERE tenant_id = $1 AND id = $2 RETURNING failures",
    )
    .binds((tenant, id))
    .scalar(tx)
    .await
}

/// A delivery arrived: the count of failures in a row starts again.
pub async fn reset_failures(tx: &mut TenantTx, id: WebhookId) -> Result<(), StoreError> {
    let tenant = tx.tenant_id();
    query(
        "UPDATE webhook_subscriptions SET failures = 0 \
         WHERE tenant_id = $1 AND id = $2 AND failures > 0",
    )
    .binds((tenant, id))
    .execute(tx)
    .await?;
    Ok(())
}

/// Disabled after failing; whether it was active.
pub async fn disable(tx: &mut TenantTx, id: WebhookId, now: Timestamp) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    query(
        "UPDATE webhook_subscriptions SET status = 'disabled', updated_at = $3 \
         WHERE tenant_id = $1 AND id = $2 AND status = 'active'",
    )
    .binds((tenant, id, now))
    .execute_one(tx)
    .await
}
