//! Events into the webhook outbox. A change that subscribers hear about calls [`emit`] in its
//! own transaction: the change and its deliveries commit together or not at all, and the
//! workers (`delivery`) post them afterwards, retried, from any instance.
//!
//! Payloads are thin: the event's type, time and the ids (and stage names) it concerns, never
//! a record's personal data. A receiver that wants the record reads it through the API with
//! its own key, so field-level encryption, permissions and the audit log still decide who
//! sees what; a leaked delivery log or a compromised receiver leaks ids, not people.

use serde_json::{Value, json};

use super::EventKind;
use super::store::{self, DeliveryRow};
use crate::clock::Timestamp;
use crate::ids::WebhookDeliveryId;
use crate::store::queue::WEBHOOKS;
use crate::store::{StoreError, TenantTx};

/// Queues `kind` with `data` for every active subscription of the transaction's tenant that
/// names it; how many deliveries were queued.
pub async fn emit(tx: &mut TenantTx, kind: EventKind, data: Value) -> Result<usize, StoreError> {
    let name = kind.as_str();
    let subscribed: Vec<_> = store::active(tx)
        .await?
        .iter()
        .filter(|(_, events)| events.split(',').any(|event| event == name))
        .map(|(id, _)| *id)
        .collect();
    if subscribed.is_empty() {
        return Ok(0);
    }
    let now = Timestamp::now();
    let payload = json!({"type": name, "timestamp": now.rfc3339(), "data": data}).to_string();
    for subscription_id in &subscribed {
        let row = DeliveryRow {
            id: WebhookDeliveryId::new(),
            subscription_id: *subscription_id,
            event: name.to_owned(),
            payload: payload.clone(),
            status: "pending".into(),
            attempts: 0,
            response_status: None,
            last_error: None,
            duration_ms: None,
            next_attempt_at: Some(now),
            created_at: now,
            updated_at: now,
        };
        store::insert_delivery(tx, &row).await?;
        WEBHOOKS.enqueue(tx, row.id, now).await?;
    }
    Ok(subscribed.len())
}
