//! Outbound webhooks (spec §9): a tenant subscribes a URL to events and gets a signing secret
//! once (Standard Webhooks, `whsec_<base64>` of 32 random bytes). The URL passes the SSRF
//! guard (`target`) when it is written; URL and secret are sealed together under the tenant's
//! key. Managing subscriptions needs `integrations:manage` (admins and owners), the
//! permission of the spec's integrations section, and the `webhooks` kill switch stops it.
//!
//! Changes emit events into an outbox (`events`); workers sign and post them (`delivery`);
//! `GET /webhooks/{id}/deliveries` shows what each attempt came to.

pub mod delivery;
pub mod events;
pub mod routes;
mod store;
pub mod target;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use self::store::{DeliveryRow, SubscriptionRow};
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::Timestamp;
use crate::crypto::KeySet;
use crate::crypto::field::Place;
use crate::error::{DomainError, DomainResult};
use crate::ids::{TenantId, WebhookDeliveryId, WebhookId};
use crate::pagination::{Page, check_limit, decode_cursor};
use crate::store::TenantTx;
use crate::tenancy::{Actor, Permission, TenantScope};

/// The answer to a signed delivery from outside (the relay's events, Stripe's, Zoom's).
#[derive(Debug, Serialize, ToSchema)]
pub struct Receipt {
    /// `processed`; `duplicate` (this delivery's id was processed before: nothing changed);
    /// `ignored` (nothing here it applies to, or an event type Bulwark does not act on).
    pub status: &'static str,
}

/// The events a subscription can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
pub enum EventKind {
    #[serde(rename = "contact.created")]
    ContactCreated,
    #[serde(rename = "contact.updated")]
    ContactUpdated,
    #[serde(rename = "contact.deleted")]
    ContactDeleted,
    #[serde(rename = "deal.stage_changed")]
    DealStageChanged,
    #[serde(rename = "email.sent")]
    EmailSent,
    #[serde(rename = "email.bounced")]
    EmailBounced,
    #[serde(rename = "integration.disconnected")]
    IntegrationDisconnected,
}

impl EventKind {
    #[cfg(test)]
    const ALL: [EventKind; 7] = [
        EventKind::ContactCreated,
        EventKind::ContactUpdated,
        EventKind::ContactDeleted,
        EventKind::DealStageChanged,
        EventKind::EmailSent,
        EventKind::EmailBounced,
        EventKind::IntegrationDisconnected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ContactCreated => "contact.created",
            EventKind::ContactUpdated => "contact.updated",
            EventKind::ContactDeleted => "contact.deleted",
            EventKind::DealStageChanged => "deal.stage_changed",
            EventKind::EmailSent => "email.sent",
            EventKind::EmailBounced => "email.bounced",
            EventKind::IntegrationDisconnected => "integration.disconnected",
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    /// Where deliveries go: `https://` (plain `http://` in development only); never a
    /// private, loopback or link-local address unless the operator allows its range.
    #[schema(max_length = 2048, example = "https://hooks.example.com/bulwark")]
    pub url: String,
    #[schema(min_items = 1, max_items = 7)]
    pub events: Vec<EventKind>,
}

/// A change; absent (or `null`) fields stay as they are. `status: "active"` re-enables a
/// subscription that was disabled after failing.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionChange {
    #[schema(max_length = 2048)]
    pub url: Option<String>,
    #[schema(min_items = 1, max_items = 7)]
    pub events: Option<Vec<EventKind>>,
    pub status: Option<Status>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Active,
    Disabled,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Disabled => "disabled",
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionView {
    pub id: WebhookId,
    pub url: String,
    pub events: Vec<String>,
    /// `active`, or `disabled` (by the tenant, or after repeated failed deliveries).
    pub status: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The answer to a creation: the view and, this once, the signing secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedSubscription {
    #[serde(flatten)]
    pub subscription: SubscriptionView,
    /// `whsec_<base64>`: verify each delivery's `webhook-signature` with it. Shown once.
    pub secret: String,
}

/// What is sealed: the URL and the signing secret.
#[derive(Serialize, Deserialize)]
struct Sealed {
    url: String,
    secret: String,
}

fn place(tenant: TenantId, id: WebhookId) -> Place<'static> {
    Place { tenant, table: "webhook_subscriptions", column: "sealed", row: id.as_uuid() }
}

fn seal(keys: &KeySet, tenant: TenantId, id: WebhookId, sealed: &Sealed) -> DomainResult<Vec<u8>> {
    let plain = Zeroizing::new(
        serde_json::to_vec(sealed).map_err(|err| DomainError::Internal(err.to_string()))?,
    );
    Ok(keys.encrypt(&place(tenant, id), &plain))
}

fn open(keys: &KeySet, tenant: TenantId, row: &SubscriptionRow) -> DomainResult<Sealed> {
    let plain = keys
        .decrypt(&place(tenant, row.id), &row.sealed)
        .map_err(|err| DomainError::Internal(format!("webhook {}: {err}", row.id)))?;
    serde_json::from_slice(&plain).map_err(|err| DomainError::Internal(err.to_string()))
}

fn view(keys: &KeySet, tenant: TenantId, row: SubscriptionRow) -> DomainResult<SubscriptionView> {
    let sealed = open(keys, tenant, &row)?;
    Ok(SubscriptionView {
        id: row.id,
        url: sealed.url,
        events: row.events.split(',').filter(|e| !e.is_empty()).map(str::to_owned).collect(),
        status: row.status,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// The URL as it may be stored; 422 naming `url` otherwise.
fn checked_url(app: &AppState, url: &str) -> DomainResult<String> {
    let config = app.config();
    let https_only = !config.env.is_development();
    target::check_url(url, https_only, &config.webhooks.allow_private)
        .map(|url| url.to_string())
        .map_err(|why| DomainError::invalid("url", why))
}

/// The events as stored: each once, in a fixed order; 422 for none.
fn events_text(events: &[EventKind]) -> DomainResult<String> {
    if events.len() > 7 {
        return Err(DomainError::invalid("events", "at most 7"));
    }
    let mut events = events.to_vec();
    events.sort();
    events.dedup();
    if events.is_empty() {
        return Err(DomainError::invalid("events", "name at least one event"));
    }
    Ok(events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(","))
}

fn new_secret() -> String {
    let bytes = Zeroizing::new(crate::crypto::random_bytes::<32>());
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(bytes.as_slice()))
}

pub async fn create(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    new: NewSubscription,
) -> DomainResult<CreatedSubscription> {
    scope.require(Permission::IntegrationsManage)?;
    let url = checked_url(app, &new.url)?;
    let events = events_text(&new.events)?;
    let (id, now) = (WebhookId::new(), Timestamp::now());
    let secret = new_secret();
    let mut tx = app.store().tenant_tx(scope).await?;
    let keys = crate::crm::sealing_keys(app, &mut tx).await?;
    let created_by = match scope.actor() {
        Actor::User { user_id, .. } => Some(*user_id),
        _ => None,
    };
    let row = SubscriptionRow {
        id,
        key_version: i32::try_from(keys.current_version()).unwrap_or(i32::MAX),
        sealed: seal(&keys, scope.tenant_id(), id, &Sealed { url, secret: secret.clone() })?,
        events,
        status: "active".into(),
        failures: 0,
        created_by,
        created_at: now,
        updated_at: now,
    };
    store::insert(&mut tx, &row).await?;
    let event = Event::new(Action::WebhookCreate).by_scope(scope).target("webhook", id);
    audit::record(&mut tx, ctx, event).await?;
    tx.commit().await?;
    Ok(CreatedSubscription { subscription: view(&keys, scope.tenant_id(), row)?, secret })
}

pub async fn list(
    app: &AppState,
    scope: &TenantScope,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> DomainResult<Page<SubscriptionView>> {
    scope.require(Permission::IntegrationsManage)?;
    let limit = check_limit(limit)?;
    let after = decode_cursor::<uuid::Uuid>(cursor)?.map(WebhookId::from_uuid);
    let read = async |tx: &mut TenantTx| store::list(tx, after, limit + 1).await;
    crate::crm::sealed_page(app, scope, limit, read, |r| r.id.to_string(), view).await
}

pub async fn get(
    app: &AppState,
    scope: &TenantScope,
    id: WebhookId,
) -> DomainResult<SubscriptionView> {
    scope.require(Permission::IntegrationsManage)?;
    let (row, keys) =
        crate::crm::read_sealed(app, scope, async |tx| store::get(tx, id).await).await?;
    view(&keys, scope.tenant_id(), row.ok_or(DomainError::NotFound("webhook"))?)
}

pub async fn update(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    id: WebhookId,
    change: SubscriptionChange,
) -> DomainResult<SubscriptionView> {
    scope.require(Permission::IntegrationsManage)?;
    let url = change.url.as_deref().map(|url| checked_url(app, url)).transpose()?;
    let events = change.events.as_deref().map(events_text).transpose()?;
    let mut tx = app.store().tenant_tx(scope).await?;
    let mut row = store::get(&mut tx, id).await?.ok_or(DomainError::NotFound("webhook"))?;
    let keys = crate::crm::sealing_keys(app, &mut tx).await?;
    let tenant = scope.tenant_id();
    let mut sealed = open(&keys, tenant, &row)?;
    if let Some(url) = url {
        sealed.url = url;
    }
    if let Some(events) = events {
        row.events = events;
    }
    if let Some(status) = change.status {
        row.status = status.as_str().to_owned();
        row.failures = 0;
    }
    row.key_version = i32::try_from(keys.current_version()).unwrap_or(i32::MAX);
    row.sealed = seal(&keys, tenant, id, &sealed)?;
    row.updated_at = Timestamp::now();
    if !store::update(&mut tx, &row).await? {
        return Err(DomainError::NotFound("webhook"));
    }
    let event = Event::new(Action::WebhookUpdate)
        .by_scope(scope)
        .target("webhook", id)
        .detail("status", row.status.as_str());
    audit::record(&mut tx, ctx, event).await?;
    tx.commit().await?;
    view(&keys, tenant, row)
}

pub async fn delete(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    id: WebhookId,
) -> DomainResult<()> {
    scope.require(Permission::IntegrationsManage)?;
    let mut tx = app.store().tenant_tx(scope).await?;
    if !store::delete(&mut tx, id).await? {
        return Err(DomainError::NotFound("webhook"));
    }
    let event = Event::new(Action::WebhookDelete).by_scope(scope).target("webhook", id);
    audit::record(&mut tx, ctx, event).await?;
    Ok(tx.commit().await?)
}

/// One delivery of an event to a subscription, as the last attempt left it (never the
/// secret, the URL or what the receiver wrote back).
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    /// Also the `webhook-id` header, `msg_` + this id without dashes.
    pub id: WebhookDeliveryId,
    pub event: String,
    /// `pending` (queued or waiting for a retry), `delivered` (a 2xx) or `failed` (gave up).
    pub status: String,
    pub attempts: i32,
    /// The receiver's HTTP status at the last attempt, if it answered.
    pub response_status: Option<i32>,
    pub last_error: Option<String>,
    /// How long the last attempt took.
    pub duration_ms: Option<i32>,
    pub next_attempt_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<DeliveryRow> for DeliveryView {
    fn from(row: DeliveryRow) -> Self {
        let pending = row.status == "pending";
        DeliveryView {
            id: row.id,
            event: row.event,
            status: row.status,
            attempts: row.attempts,
            response_status: row.response_status,
            last_error: row.last_error,
            duration_ms: row.duration_ms,
            next_attempt_at: row.next_attempt_at.filter(|_| pending),
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// A subscription's deliveries, newest first.
pub async fn deliveries(
    app: &AppState,
    scope: &TenantScope,
    id: WebhookId,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> DomainResult<Page<DeliveryView>> {
    scope.require(Permission::IntegrationsManage)?;
    let limit = check_limit(limit)?;
    let before = decode_cursor::<uuid::Uuid>(cursor)?.map(WebhookDeliveryId::from_uuid);
    let mut tx = app.store().tenant_read(scope).await?;
    if store::get(&mut tx, id).await?.is_none() {
        return Err(DomainError::NotFound("webhook"));
    }
    let rows = store::deliveries(&mut tx, id, before, limit + 1).await?;
    tx.commit().await?;
    Ok(Page::from_rows(rows, limit, |r| r.id.to_string(), DeliveryView::from))
}

/// Tenant key rotation: re-seals every subscription under the current data key; how many.
pub async fn reseal(app: &AppState, scope: &TenantScope) -> DomainResult<u64> {
    let tenant = scope.tenant_id();
    let column =
        crate::store::sealed::sealed_column!("webhook_subscriptions", "key_version", "sealed");
    crate::crm::reseal_column(app, scope, &column, |id| place(tenant, WebhookId::from_uuid(id)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_stored_once_each_in_one_order_and_secrets_are_long() {
        let text =
            events_text(&[EventKind::EmailSent, EventKind::ContactCreated, EventKind::EmailSent]);
        assert_eq!(text.ok().as_deref(), Some("contact.created,email.sent"));
        assert!(events_text(&[]).is_err());
        for kind in EventKind::ALL {
            assert_eq!(serde_json::to_value(kind).ok(), Some(serde_json::json!(kind.as_str())));
        }
        let secret = new_secret();
        let key = crate::crypto::standard_webhooks::parse_secret(&secret);
        assert_eq!(key.map(|k| k.expose().len()).ok(), Some(32));
        assert_ne!(new_secret(), secret);
    }
}
