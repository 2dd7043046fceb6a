//! Bounces and complaints that arrive after the relay accepted a message: a signed webhook
//! (`POST /hooks/email/events`, Standard Webhooks with `BULWARK_EMAIL_EVENTS_SECRET`). Each
//! `webhook-id` is processed once — a replay is acknowledged and changes nothing. A hard
//! bounce or a complaint suppresses the recipient for the message's tenant.

use serde::Deserialize;
use utoipa::ToSchema;

use super::{address, messages, store, suppressions};
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::Timestamp;
use crate::crypto::standard_webhooks;
use crate::error::{DomainError, DomainResult};
use crate::ids::EmailMessageId;
use crate::store::TenantTx;
use crate::tenancy::TenantScope;
use crate::webhooks::EventKind;
pub use crate::webhooks::Receipt;

const SOURCE: &str = "email_events";

/// What the relay (or the mailbox provider behind it) reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    HardBounce,
    SoftBounce,
    Complaint,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveryEvent {
    /// The API's message `id`.
    pub message_id: EmailMessageId,
    #[schema(max_length = 320)]
    pub recipient: String,
    #[serde(rename = "type")]
    pub kind: Kind,
    #[schema(max_length = 1000)]
    pub detail: Option<String>,
}

/// The signature headers of a delivery.
pub struct Signature<'a> {
    pub id: &'a str,
    pub timestamp: &'a str,
    pub signatures: &'a str,
}

/// Verifies, then processes a delivery once. `event` is `body` parsed (its shape was checked
/// first, so a malformed body is a 400/422 like anywhere else; nothing happens before the
/// signature holds).
pub async fn receive(
    app: &AppState,
    ctx: &RequestContext,
    signature: Signature<'_>,
    body: &[u8],
    event: DeliveryEvent,
) -> DomainResult<Receipt> {
    let Some(key) = &app.config().email.events_secret else {
        return Err(DomainError::Unauthenticated("email events are not configured"));
    };
    let now = Timestamp::now();
    if let Err(why) = standard_webhooks::verify(
        key.expose(),
        signature.id,
        signature.timestamp,
        signature.signatures,
        body,
        now.millis() / 1000,
    ) {
        metrics::counter!("webhooks_refused_total", "source" => SOURCE).increment(1);
        tracing::warn!(reason = %why, "an email event was refused");
        return Err(DomainError::Unauthenticated("webhook signature"));
    }
    if address::parse(&event.recipient).is_err() {
        return Err(DomainError::invalid("recipient", "must be an email address"));
    }
    // The delivery id is claimed in the transaction that acts on it: a crash or a failure
    // leaves it unclaimed for the relay's retry, and a concurrent retry waits for the first.
    let mut tx = app.store().system_read().await?;
    let tenant = store::tenant_of_message(&mut tx, event.message_id).await?;
    tx.commit().await?;
    let Some(tenant) = tenant else {
        let mut tx = app.store().system_tx().await?;
        let first = crate::store::receipts::claim(&mut tx, SOURCE, signature.id, now).await?;
        tx.commit().await?;
        return Ok(Receipt { status: if first { "ignored" } else { "duplicate" } });
    };
    let scope = TenantScope::system(tenant, "email event");
    let mut tx = app.store().tenant_tx(&scope).await?;
    if !crate::store::receipts::claim(&mut tx, SOURCE, signature.id, now).await? {
        return Ok(Receipt { status: "duplicate" });
    }
    let status = apply(app, ctx, &scope, &mut tx, &event, now).await?;
    tx.commit().await?;
    Ok(Receipt { status })
}

/// Acts on an event in the message's tenant; what it came to.
async fn apply(
    app: &AppState,
    ctx: &RequestContext,
    scope: &TenantScope,
    tx: &mut TenantTx,
    event: &DeliveryEvent,
    now: Timestamp,
) -> DomainResult<&'static str> {
    let tenant = scope.tenant_id();
    let Some(row) = store::message(tx, event.message_id).await? else {
        return Ok("ignored");
    };
    let keys = crate::crm::sealing_keys(app, tx).await?;
    let payload = messages::open(&keys, tenant, &row)?;
    let wanted = crate::crypto::field::normalise_email(&event.recipient);
    let recipient = payload
        .to
        .iter()
        .chain(&payload.cc)
        .chain(&payload.bcc)
        .map(|a| address::parse(a).map(|m| m.email.to_string()).unwrap_or_default())
        .enumerate()
        .find(|(_, a)| crate::crypto::field::normalise_email(a) == wanted);
    let Some((position, recipient)) = recipient else { return Ok("ignored") };
    let detail = event.detail.as_deref().map(super::delivery::scrub);
    let (kind, reason) = match event.kind {
        Kind::HardBounce => ("bounced", Some(suppressions::Reason::HardBounce)),
        Kind::Complaint => ("complained", Some(suppressions::Reason::Complaint)),
        Kind::SoftBounce => ("deferred", None),
    };
    let position = i32::try_from(position).ok();
    store::insert_event(tx, row.id, kind, now, detail.as_deref(), position).await?;
    if event.kind == Kind::HardBounce && row.recipients == 1 {
        store::set_status(tx, row.id, "bounced", row.attempts, now).await?;
    }
    if let Some(reason) = reason {
        suppressions::add(tx, &keys, &recipient, reason, None).await?;
    }
    if event.kind == Kind::HardBounce {
        let data = serde_json::json!({"id": row.id, "type": "hard_bounce", "late": true});
        crate::webhooks::events::emit(tx, EventKind::EmailBounced, data).await?;
    }
    let audit = Event::new(Action::EmailBounceReceived)
        .by_scope(scope)
        .target("email_message", row.id)
        .detail("type", kind);
    audit::record(tx, ctx, audit).await?;
    Ok("processed")
}
