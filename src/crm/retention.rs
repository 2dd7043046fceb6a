//! Retention: each kind of data is kept for its configured window, then purged by a job that
//! runs hourly on every instance (idempotent, so instances may overlap) and audits what it
//! removed, per tenant.
//!
//! Audit events are purged as a prefix of their chain: the last purged event's `(seq, hash)`
//! becomes the chain's anchor, so `bulwark audit verify` still checks every event kept. On
//! PostgreSQL the application role cannot delete audit rows; the owner-defined function
//! `bulwark_purge_audit` does it, and refuses to touch anything younger than a year.

#![allow(clippy::disallowed_methods, reason = "the purge is store code")]

use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::now_ms;
use crate::error::DomainResult;
use crate::ids::TenantId;
use crate::on_tx;
use crate::store::{AsRawTx as _, Backend, StoreError, SystemTx};
use crate::tenancy::TenantScope;

#[derive(Debug, Default, Clone, Copy, Serialize, ToSchema, PartialEq, Eq)]
pub struct PurgeReport {
    pub activities: u64,
    pub notes: u64,
    pub audit_events: u64,
}

fn cutoff(window: Option<std::time::Duration>, now: i64) -> Option<i64> {
    window.map(|w| now - i64::try_from(w.as_millis()).unwrap_or(i64::MAX))
}

/// Applies the windows to one tenant's data and audits the result.
pub async fn purge_tenant(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
) -> DomainResult<PurgeReport> {
    let windows = &app.config().retention;
    let now = now_ms();
    let mut report = PurgeReport::default();
    if let Some(before) = cutoff(windows.audit, now) {
        let mut tx = app.store().system_tx().await?;
        report.audit_events = purge_audit_chain(&mut tx, scope.tenant_id(), before).await?;
        tx.commit().await?;
    }
    let mut tx = app.store().tenant_tx(scope).await?;
    let tenant = tx.tenant_id();
    if let Some(before) = cutoff(windows.activities, now) {
        report.activities = on_tx!(&mut tx, |c| sqlx::query(
            "DELETE FROM activities WHERE tenant_id = $1 AND occurred_at < $2"
        )
        .bind(tenant)
        .bind(before)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(StoreError::from)?;
    }
    if let Some(before) = cutoff(windows.notes, now) {
        report.notes = on_tx!(&mut tx, |c| sqlx::query(
            "DELETE FROM notes WHERE tenant_id = $1 AND created_at < $2"
        )
        .bind(tenant)
        .bind(before)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(StoreError::from)?;
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
                .detail("audit_events", report.audit_events),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(report)
}

/// Deletes the prefix of a chain older than `before` and anchors the chain at its end.
pub async fn purge_audit_chain(
    tx: &mut SystemTx,
    tenant: TenantId,
    before: i64,
) -> Result<u64, StoreError> {
    let chain = tenant.as_uuid();
    if tx.backend() == Backend::Postgres {
        let removed: i64 =
            on_tx!(tx, |c| sqlx::query_scalar("SELECT bulwark_purge_audit($1, $2)")
                .bind(chain)
                .bind(before)
                .fetch_one(c)
                .await)?;
        return Ok(u64::try_from(removed).unwrap_or(0));
    }
    let first_kept: Option<i64> = on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT min(seq) FROM audit_events WHERE chain_id = $1 AND occurred_at >= $2"
    )
    .bind(chain)
    .bind(before)
    .fetch_one(c)
    .await)?;
    let last: Option<i64> = match first_kept {
        Some(seq) => Some(seq - 1),
        None => on_tx!(tx, |c| sqlx::query_scalar(
            "SELECT max(seq) FROM audit_events WHERE chain_id = $1"
        )
        .bind(chain)
        .fetch_one(c)
        .await)?,
    };
    let Some(last) = last.filter(|seq| *seq > 0) else { return Ok(0) };
    let hash: Option<Vec<u8>> = on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT hash FROM audit_events WHERE chain_id = $1 AND seq = $2"
    )
    .bind(chain)
    .bind(last)
    .fetch_optional(c)
    .await)?;
    let Some(hash) = hash else { return Ok(0) };
    let removed =
        on_tx!(tx, |c| sqlx::query("DELETE FROM audit_events WHERE chain_id = $1 AND seq <= $2")
            .bind(chain)
            .bind(last)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO audit_anchors (chain_id, seq, hash) VALUES ($1, $2, $3) \
         ON CONFLICT (chain_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash"
    )
    .bind(chain)
    .bind(last)
    .bind(&hash)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(removed)
}

/// The scheduled job: every active tenant, the platform chain, and ended sessions.
pub async fn purge_all(app: &AppState) -> DomainResult<u64> {
    let now = now_ms();
    let mut tx = app.store().system_read().await?;
    let tenants: Vec<uuid::Uuid> = on_tx!(&mut tx, |c| sqlx::query_scalar(
        "SELECT id FROM tenants WHERE status = 'active' ORDER BY id"
    )
    .fetch_all(c)
    .await)
    .map_err(StoreError::from)?;
    tx.commit().await?;
    let mut removed = 0;
    for tenant in tenants {
        let scope = TenantScope::system(TenantId(tenant), "retention");
        let report = purge_tenant(app, &scope, &RequestContext::system()).await?;
        removed += report.activities + report.notes + report.audit_events;
    }
    let mut tx = app.store().system_tx().await?;
    // Spent and expired MFA tickets and WebAuthn ceremonies: anyone can create the latter.
    removed += crate::identity::mfa::store::purge_challenges(&mut tx, now).await?;
    if let Some(before) = cutoff(app.config().retention.audit, now) {
        removed += purge_audit_chain(&mut tx, TenantId::PLATFORM, before).await?;
    }
    if let Some(before) = cutoff(app.config().retention.sessions, now) {
        for sql in [
            "DELETE FROM refresh_tokens WHERE session_id IN (SELECT id FROM sessions WHERE \
             (revoked_at IS NOT NULL AND revoked_at < $1) OR expires_at < $1)",
            "DELETE FROM sessions WHERE (revoked_at IS NOT NULL AND revoked_at < $1) OR expires_at < $1",
            "DELETE FROM login_throttle WHERE locked_until < $1 AND window_started_at < $1",
        ] {
            removed += on_tx!(&mut tx, |c| sqlx::query(sql)
                .bind(before)
                .execute(c)
                .await
                .map(|r| r.rows_affected()))
            .map_err(StoreError::from)?;
        }
    }
    tx.commit().await?;
    Ok(removed)
}
