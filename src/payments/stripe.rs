//! `POST /hooks/stripe`: Stripe's signed events. The signature is checked against every
//! configured secret (`BULWARK_STRIPE_WEBHOOK_SECRETS`, so a rotation misses nothing), then
//! the event id is claimed in the transaction that acts on it (`store::receipts`): a replay
//! is acknowledged and changes nothing, and a crash before the commit leaves nothing behind
//! for Stripe's retry to trip over. The tenant and company come from the object's metadata
//! and are looked up inside that tenant, so an event naming another tenant's company (or a
//! company that does not exist) touches nothing.

use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::store::{self, PaymentRow};
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::Timestamp;
use crate::crypto::provider_signatures;
use crate::error::{DomainError, DomainResult};
use crate::ids::{CompanyId, PaymentId, TenantId};
use crate::store::receipts;
use crate::tenancy::TenantScope;
use crate::webhooks::Receipt;

const SOURCE: &str = "stripe";

/// A Stripe event (the fields Bulwark reads; the rest is ignored).
#[derive(Debug, Deserialize, ToSchema)]
pub struct StripeEvent {
    /// `evt_…`
    #[schema(max_length = 255)]
    pub id: String,
    #[serde(rename = "type")]
    #[schema(max_length = 255)]
    pub kind: String,
    /// Unix seconds.
    pub created: Option<i64>,
    pub data: StripeData,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct StripeData {
    /// The event's object (a payment intent, a charge, an invoice).
    #[schema(value_type = Object)]
    pub object: Value,
}

/// What an event records, when it is one Bulwark acts on.
struct Recorded {
    kind: &'static str,
    amount_minor: i64,
    currency: String,
    object_id: String,
    tenant: TenantId,
    company: CompanyId,
}

fn recorded(event: &StripeEvent) -> Option<Recorded> {
    let (kind, amount_field) = match event.kind.as_str() {
        "payment_intent.succeeded" => ("payment", "amount_received"),
        // The charge's total refunded so far; `receive` records the difference.
        "charge.refunded" => ("refund", "amount_refunded"),
        "invoice.paid" => ("invoice", "amount_paid"),
        _ => return None,
    };
    let object = &event.data.object;
    let metadata = object.get("metadata")?;
    let uuid = |key: &str| metadata.get(key)?.as_str()?.parse::<uuid::Uuid>().ok();
    let currency = object.get("currency")?.as_str()?.to_ascii_uppercase();
    if !(currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase())) {
        return None;
    }
    Some(Recorded {
        kind,
        amount_minor: object.get(amount_field)?.as_i64().filter(|a| *a >= 0)?,
        currency,
        object_id: object.get("id")?.as_str()?.chars().take(255).collect(),
        tenant: TenantId::from_uuid(uuid("tenant_id")?),
        company: CompanyId::from_uuid(uuid("company_id")?),
    })
}

/// Verifies, then processes an event once.
pub async fn receive(
    app: &AppState,
    ctx: &RequestContext,
    signature: &str,
    body: &[u8],
    event: StripeEvent,
) -> DomainResult<Receipt> {
    let secrets = &app.config().integrations.stripe_webhook_secrets;
    if secrets.is_empty() {
        return Err(DomainError::Unauthenticated("Stripe events are not configured"));
    }
    let keys: Vec<&str> = secrets.iter().map(|s| s.expose().as_str()).collect();
    let now = Timestamp::now();
    if let Err(why) = provider_signatures::verify_stripe(&keys, signature, body, now.secs()) {
        metrics::counter!("webhooks_refused_total", "source" => SOURCE).increment(1);
        tracing::warn!(reason = %why, "a Stripe event was refused");
        return Err(DomainError::Unauthenticated("the Stripe signature does not verify"));
    }
    if event.id.is_empty() || event.id.len() > 255 {
        return Err(DomainError::invalid("id", "must be Stripe's event id"));
    }
    let Some(recorded) = recorded(&event) else {
        return ignore(app, &event.id, now).await;
    };
    let scope = TenantScope::system(recorded.tenant, "stripe event");
    let mut tx = app.store().tenant_tx(&scope).await?;
    if !store::company_exists(&mut tx, recorded.company).await? {
        tx.commit().await?;
        return ignore(app, &event.id, now).await;
    }
    if !receipts::claim(&mut tx, SOURCE, &event.id, now).await? {
        return Ok(Receipt { status: "duplicate" });
    }
    // A charge's `amount_refunded` is its running total: each event records what it adds.
    let mut recorded = recorded;
    if recorded.kind == "refund" {
        recorded.amount_minor -= store::refunded(&mut tx, &recorded.object_id).await?;
        if recorded.amount_minor <= 0 {
            tx.commit().await?;
            return Ok(Receipt { status: "ignored" });
        }
    }
    let occurred_at = event.created.map_or(now, |s| Timestamp::from_millis(s.saturating_mul(1000)));
    let row = PaymentRow {
        id: PaymentId::new(),
        company_id: recorded.company,
        kind: recorded.kind.to_owned(),
        amount_minor: recorded.amount_minor,
        currency: recorded.currency,
        stripe_object_id: recorded.object_id,
        stripe_event_id: event.id.clone(),
        occurred_at,
        created_at: now,
    };
    store::insert(&mut tx, &row).await?;
    let audit = Event::new(Action::PaymentRecord)
        .by_scope(&scope)
        .target("company", row.company_id)
        .detail("payment_id", row.id.to_string())
        .detail("kind", recorded.kind)
        .detail("amount_minor", row.amount_minor)
        .detail("currency", row.currency.as_str());
    audit::record(&mut tx, ctx, audit).await?;
    tx.commit().await?;
    metrics::counter!("payments_recorded_total", "kind" => recorded.kind).increment(1);
    Ok(Receipt { status: "processed" })
}

/// An event Bulwark does not act on: acknowledged (so Stripe stops retrying), once.
async fn ignore(app: &AppState, id: &str, now: Timestamp) -> DomainResult<Receipt> {
    let mut tx = app.store().system_tx().await?;
    let first = receipts::claim(&mut tx, SOURCE, id, now).await?;
    tx.commit().await?;
    Ok(Receipt { status: if first { "ignored" } else { "duplicate" } })
}
