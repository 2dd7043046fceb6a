//! Retention: each kind of data is kept for its configured window, then purged by a job that
//! runs hourly on every instance (idempotent, so instances may overlap) and audits what it
//! removed, per tenant.
//!
//! Audit events are purged as a prefix of their chain: the last purged event's `(seq, hash)`
//! becomes the chain's anchor, so `bulwark audit verify` still checks every event kept. On
//! PostgreSQL the application role cannot delete audit rows; the owner-defined function
//! `bulwark_purge_audit` does it, and refuses to touch anything younger than a year.

use serde::Serialize;
use utoipa::ToSchema;

use super::store;
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::Timestamp;
use crate::error::DomainResult;
use crate::ids::TenantId;
use crate::tenancy::TenantScope;

#[derive(Debug, Default, Clone, Copy, Serialize, ToSchema, PartialEq, Eq)]
pub struct PurgeReport {
    pub activities: u64,
    pub notes: u64,
    pub documents: u64,
    pub audit_events: u64,
    /// Messages whose bodies were purged (metadata kept).
    pub email_bodies: u64,
}

fn cutoff(window: Option<std::time::Duration>, now: Timestamp) -> Option<Timestamp> {
    window.map(|w| now.minus(w))
}

/// Applies the windows to one tenant's data and audits the result.
pub async fn purge_tenant(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
) -> DomainResult<PurgeReport> {
    let windows = &app.config().retention;
    let now = Timestamp::now();
    let mut report = PurgeReport::default();
    if let Some(before) = cutoff(windows.audit, now) {
        let mut tx = app.store().system_tx().await?;
        report.audit_events = store::purge_audit_chain(&mut tx, scope.tenant_id(), before).await?;
        tx.commit().await?;
    }
    if let Some(before) = cutoff(app.config().email.content_retention, now) {
        report.email_bodies = crate::email::retention::purge_content(app, scope, before).await?;
    }
    let mut tx = app.store().tenant_tx(scope).await?;
    crate::email::retention::purge_counters(&mut tx, now).await?;
    if let Some(before) = cutoff(windows.activities, now) {
        report.activities = store::purge_activities(&mut tx, before).await?;
    }
    if let Some(before) = cutoff(windows.notes, now) {
        report.notes = store::purge_notes(&mut tx, before).await?;
    }
    if let Some(before) = cutoff(app.config().documents.retention, now) {
        // Their keys go with the rows; a trigger queues the objects for removal.
        report.documents = store::purge_documents(&mut tx, before).await?;
    }
    if report != PurgeReport::default()
        || matches!(scope.actor(), crate::tenancy::Actor::User { .. })
    {
        audit::record(
            &mut tx,
            ctx,
            Event::new(Action::DataPurge)
                .by_scope(scope)
                .detail("activities", report.activities)
                .detail("notes", report.notes)
                .detail("documents", report.documents)
                .detail("audit_events", report.audit_events)
                .detail("email_bodies", report.email_bodies),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(report)
}

/// The scheduled job: every active tenant, the platform chain, and ended sessions.
pub async fn purge_all(app: &AppState) -> DomainResult<u64> {
    let now = Timestamp::now();
    let mut tx = app.store().system_read().await?;
    let tenants = store::active_tenants(&mut tx).await?;
    tx.commit().await?;
    let mut removed = 0;
    for tenant in tenants {
        let scope = TenantScope::system(tenant, "retention");
        let report = purge_tenant(app, &scope, &RequestContext::system()).await?;
        removed += report.activities
            + report.notes
            + report.documents
            + report.audit_events
            + report.email_bodies;
    }
    let mut tx = app.store().system_tx().await?;
    // Spent and expired MFA tickets and WebAuthn ceremonies: anyone can create the latter.
    removed += crate::identity::mfa::store::purge_challenges(&mut tx, now).await?;
    if let Some(before) = cutoff(app.config().retention.audit, now) {
        removed += store::purge_audit_chain(&mut tx, TenantId::PLATFORM, before).await?;
    }
    // Delivery ids are remembered for a week: a sender re-signs each retry (so the 5-minute
    // tolerance does not stop it), and Stripe retries an event for up to three days. Account
    // tokens go once expired.
    let week = std::time::Duration::from_secs(7 * 86_400);
    removed += store::purge_webhook_receipts(&mut tx, now.minus(week)).await?;
    removed += store::purge_account_tokens(&mut tx, now).await?;
    if let Some(before) = cutoff(app.config().retention.sessions, now) {
        removed += store::purge_ended_sessions(&mut tx, before).await?;
    }
    tx.commit().await?;
    Ok(removed)
}
