//! Tenant deletion (`bulwark tenants delete`): the tenant's keys are destroyed (crypto-
//! shredding every value, backups included), its business records deleted, its accounts
//! closed — sessions, API keys and pending invitations with them — on this instance at once
//! and on every other one within the session cache's lifetime. The audit log stays.
//!
//! The deletion is first written to the shred ledger (`shred_ledger`), outside the
//! database, so that restoring a backup taken before it cannot bring the tenant back:
//! `restore` and every start of `serve` apply the ledger (`apply_ledger`).

use super::{shred_ledger, store};
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::Timestamp;
use crate::crypto::store as keys_db;
use crate::error::{DomainError, DomainResult};
use crate::ids::TenantId;
use crate::tenancy::TenantScope;

/// Deletes a tenant: recorded in the shred ledger, keys destroyed, business records
/// deleted, accounts closed.
pub async fn delete_tenant(app: &AppState, tenant: TenantId) -> DomainResult<u64> {
    // A small synchronous append and fsync: deletion runs from the CLI, not beside requests.
    shred_ledger::record(&app.config().backup.shred_ledger, app.keys(), tenant)
        .map_err(|err| DomainError::Internal(err.to_string()))?;
    erase(app, tenant, "cli").await
}

/// Deletes again every tenant of the shred ledger that the database holds as not deleted
/// (after a restore of a backup older than the deletion). Returns those tenants.
pub async fn apply_ledger(app: &AppState) -> DomainResult<Vec<TenantId>> {
    // Read once at start-up or by `restore`, before anything serves.
    let listed = shred_ledger::read(&app.config().backup.shred_ledger, app.keys())
        .map_err(|err| DomainError::Internal(err.to_string()))?;
    let mut applied = vec![];
    for tenant in listed {
        let mut tx = app.store().system_read().await?;
        let status = store::tenant_status(&mut tx, tenant).await?;
        tx.commit().await?;
        if status.is_some_and(|s| s != "deleted") {
            erase(app, tenant, "shred-ledger").await?;
            applied.push(tenant);
        }
    }
    Ok(applied)
}

async fn erase(app: &AppState, tenant: TenantId, actor: &'static str) -> DomainResult<u64> {
    let scope = TenantScope::system(tenant, "tenant deletion");
    // Provider grants are revoked while the keys that open their tokens still exist.
    crate::integrations::end_connections(app, &scope, None, "tenant deleted").await?;
    let mut tx = app.store().tenant_tx(&scope).await?;
    let deleted = store::delete_business_records(&mut tx).await?;
    tx.commit().await?;

    let now = Timestamp::now();
    let mut tx = app.store().system_tx().await?;
    let destroyed = keys_db::destroy_all(&mut tx, tenant).await?;
    // The users' second factors go too (sealed TOTP seeds, backup-code hashes, passkeys),
    // and every way in: sessions, API keys, pending invitations.
    store::close_accounts(&mut tx, tenant, now).await?;
    let sessions = store::sessions_of_tenant(&mut tx, tenant).await?;
    audit::record_platform(
        &mut tx,
        Some(tenant),
        &RequestContext::system(),
        Event::new(Action::TenantDelete)
            .by_system(actor)
            .target("tenant", tenant)
            .detail("records", deleted)
            .detail("keys_destroyed", destroyed),
    )
    .await?;
    tx.commit().await?;
    app.tenant_keys().forget(tenant);
    app.identity().api_keys.clear();
    if let Some(redis) = app.redis() {
        redis.publish(&crate::redis_link::ClusterEvent::TenantDeleted { tenant }).await;
    }
    app.identity().sessions.revoked(&sessions).await;
    Ok(deleted)
}
