//! `POST /hooks/zoom`: Zoom's signed events (`x-zm-signature`, checked before anything else).
//! `endpoint.url_validation` is answered with the HMAC of its `plainToken`;
//! `app_deauthorized` deletes every connection of that Zoom user (nothing fetched through
//! them is kept anywhere else: meetings live at Zoom, the activity notes are the tenant's
//! own), audits it in each tenant, and queues Zoom's data-compliance confirmation, which a
//! worker posts with the client credentials until Zoom accepts it. Each event (keyed by the
//! SHA-256 of its exact body: Zoom sends no event id) is processed once.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use utoipa::ToSchema;

use super::{Provider, oauth, store};
use crate::app::AppState;
use crate::audit::RequestContext;
use crate::clock::Timestamp;
use crate::crypto::provider_signatures;
use crate::error::{DomainError, DomainResult};
use crate::ids::TenantId;
use crate::store::queue::{self, Claimed, ZOOM_COMPLIANCE};
use crate::store::receipts;

const SOURCE: &str = "zoom";

#[derive(Debug, Deserialize, ToSchema)]
pub struct ZoomEvent {
    #[schema(max_length = 255)]
    pub event: String,
    #[schema(value_type = Object)]
    pub payload: Value,
    pub event_ts: Option<i64>,
}

/// Verifies, then answers or processes an event once; the JSON to answer with.
pub async fn receive(
    app: &AppState,
    ctx: &RequestContext,
    signature: &str,
    timestamp: &str,
    body: &[u8],
    event: ZoomEvent,
) -> DomainResult<Value> {
    let Some(secret) = &app.config().integrations.zoom_webhook_secret else {
        return Err(DomainError::Unauthenticated("Zoom events are not configured"));
    };
    let now = Timestamp::now();
    let verified =
        provider_signatures::verify_zoom(secret.expose(), signature, timestamp, body, now.secs());
    if let Err(why) = verified {
        metrics::counter!("webhooks_refused_total", "source" => SOURCE).increment(1);
        tracing::warn!(reason = %why, "a Zoom event was refused");
        return Err(DomainError::Unauthenticated("the Zoom signature does not verify"));
    }
    if event.event == "endpoint.url_validation" {
        let plain = event.payload.get("plainToken").and_then(Value::as_str).unwrap_or_default();
        if plain.is_empty() || plain.len() > 256 {
            return Err(DomainError::invalid("payload.plainToken", "must be 1 to 256 characters"));
        }
        let encrypted = provider_signatures::zoom_validation(secret.expose(), plain);
        return Ok(json!({"plainToken": plain, "encryptedToken": encrypted}));
    }
    let id: String = Sha256::digest(body).iter().map(|b| format!("{b:02x}")).collect();
    let mut tx = app.store().system_read().await?;
    let seen = receipts::seen(&mut tx, SOURCE, &id).await?;
    tx.commit().await?;
    if seen {
        return Ok(json!({"status": "duplicate"}));
    }
    if event.event != "app_deauthorized" {
        let mut tx = app.store().system_tx().await?;
        let first = receipts::claim(&mut tx, SOURCE, &id, now).await?;
        tx.commit().await?;
        return Ok(json!({"status": if first { "ignored" } else { "duplicate" }}));
    }
    let field = |key: &str| event.payload.get(key).and_then(Value::as_str).unwrap_or_default();
    let user_id = field("user_id");
    if user_id.is_empty() || user_id.len() > 255 {
        return Err(DomainError::invalid("payload.user_id", "must name the Zoom user"));
    }
    // Deleting is idempotent: a crash after it and before the receipt, and Zoom's retry
    // deletes nothing more and queues the confirmation.
    let tenants = super::remove_external(app, ctx, Provider::Zoom, user_id).await?;
    let settings = Provider::Zoom.settings(app).ok();
    let confirmation = json!({
        "client_id": settings.map(|s| s.client_id.as_str()).unwrap_or_default(),
        "user_id": user_id,
        "account_id": field("account_id"),
        "deauthorization_event_received": event.payload,
        "compliance_completed": true,
    });
    let mut tx = app.store().system_tx().await?;
    if !receipts::claim(&mut tx, SOURCE, &id, now).await? {
        return Ok(json!({"status": "duplicate"}));
    }
    let tenant = tenants.first().copied().unwrap_or_else(|| TenantId::from_uuid(uuid::Uuid::nil()));
    store::queue_compliance(&mut tx, uuid::Uuid::now_v7(), tenant, &confirmation.to_string(), now)
        .await?;
    tx.commit().await?;
    Ok(json!({"status": "processed"}))
}

/// Posts queued compliance confirmations every 5 s until Zoom accepts each (retried along
/// `BULWARK_WEBHOOK_RETRY_SCHEDULE`, then at its last delay, never given up).
pub async fn compliance_worker(app: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        if let Err(err) = crate::store::background(compliance_round(&app)).await {
            tracing::warn!(error = %err, "Zoom compliance round failed");
        }
    }
}

async fn compliance_round(app: &AppState) -> DomainResult<()> {
    let Ok(settings) = Provider::Zoom.settings(app) else { return Ok(()) };
    let Some(url) = app.config().integrations.zoom_compliance_url.clone() else { return Ok(()) };
    let now = Timestamp::now();
    let mut tx = app.store().system_tx().await?;
    let claimed: Vec<Claimed<uuid::Uuid>> =
        ZOOM_COMPLIANCE.claim(&mut tx, now, now.plus(Duration::from_secs(60)), 10).await?;
    tx.commit().await?;
    let schedule = &app.config().webhooks.retry_schedule;
    for (id, _, attempts, lease) in claimed {
        let mut tx = app.store().system_tx().await?;
        let body = store::compliance_body(&mut tx, id).await?;
        tx.commit().await?;
        let Some(body) = body else { continue };
        let sent = oauth::client()
            .post(url.clone())
            .basic_auth(&settings.client_id, Some(settings.client_secret.expose()))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        let accepted = sent.as_ref().is_ok_and(|r| r.status().is_success());
        let mut tx = app.store().system_tx().await?;
        if accepted {
            ZOOM_COMPLIANCE.dequeue(&mut tx, id, lease).await?;
        } else {
            let last = i32::try_from(schedule.len()).unwrap_or(1);
            let due = queue::retry_at(now, schedule, attempts.min(last))
                .unwrap_or(now.plus(Duration::from_secs(60)));
            ZOOM_COMPLIANCE.reschedule(&mut tx, id, lease, due).await?;
        }
        tx.commit().await?;
        let outcome = if accepted { "accepted" } else { "retry" };
        metrics::counter!("zoom_compliance_total", "outcome" => outcome).increment(1);
        tracing::info!(outcome, attempt = attempts, "Zoom compliance confirmation");
    }
    Ok(())
}
