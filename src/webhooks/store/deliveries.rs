//! SQL of webhook deliveries: one row per event per subscription, and what each attempt
//! came to. The queue itself is `store::queue::WEBHOOKS`.

use crate::clock::Timestamp;
use crate::ids::{WebhookDeliveryId, WebhookId};
use crate::store::{StoreError, TenantTx, query};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: WebhookDeliveryId,
    pub subscription_id: WebhookId,
    pub event: String,
    /// The JSON body, exactly as signed and sent.
    pub payload: String,
    pub status: String,
    pub attempts: i32,
    pub response_status: Option<i32>,
    pub last_error: Option<String>,
    pub duration_ms: Option<i32>,
    pub next_attempt_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What an attempt came to, as stored.
pub struct Attempt<'a> {
    pub status: &'a str,
    pub attempts: i32,
    pub response_status: Option<i32>,
    pub error: Option<&'a str>,
    pub duration_ms: i32,
    pub next_attempt_at: Option<Timestamp>,
}

macro_rules! deliveries_where {
    ($rest:literal) => {
        concat!(
            "SELECT id, subscription_id, event, payload, status, attempts, response_status, \
             last_error, duration_ms, next_attempt_at, created_at, updated_at \
             FROM webhook_deliveries WHERE tenant_id = $1 ",
            $rest
        )
    };
}

pub async fn insert_delivery(tx: &mut TenantTx, row: &DeliveryRow) -> Result<(), StoreError> {
    let tenant = tx.tenant_id();
    query(
        "INSERT INTO webhook_deliveries (id, tenant_id, subscription_id, event, payload, status, \
         attempts, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $7)",
    )
    .binds((
        row.id,
        tenant,
        row.subscription_id,
        row.event.as_str(),
        row.payload.as_str(),
        row.status.as_str(),
        row.created_at,
    ))
    .execute(tx)
    .await?;
    Ok(())
}

pub async fn delivery(
    tx: &mut TenantTx,
    id: WebhookDeliveryId,
) -> Result<Option<DeliveryRow>, StoreError> {
    let tenant = tx.tenant_id();
    query(deliveries_where!("AND id = $2")).binds((tenant, id)).fetch_optional(tx).await
}

/// A subscription's deliveries, newest first; `before` is the last id of the previous page.
pub async fn deliveries(
    tx: &mut TenantTx,
    subscription: WebhookId,
    before: Option<WebhookDeliveryId>,
    limit: i64,
) -> Result<Vec<DeliveryRow>, StoreError> {
    let tenant = tx.tenant_id();
    query(deliveries_where!(
        "AND subscription_id = $2 AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"
    ))
    .binds((tenant, subscription, before, limit))
    .fetch_all(tx)
    .await
}

pub async fn record_attempt(
    tx: &mut TenantTx,
    id: WebhookDeliveryId,
    attempt: &Attempt<'_>,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    query(
        "UPDATE webhook_deliveries SET status = $3, attempts = $4, response_status = $5, \
         last_error = $6, duration_ms = $7, next_attempt_at = $8, updated_at = $9 \
         WHERE tenant_id = $1 AND id = $2",
    )
    .binds((
        tenant,
        id,
        attempt.status,
        attempt.attempts,
        attempt.response_status,
        attempt.error,
        attempt.duration_ms,
        attempt.next_attempt_at,
        now,
    ))
    .execute_one(tx)
    .await
}
