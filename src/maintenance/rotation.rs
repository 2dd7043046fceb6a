//! Key rotation (`bulwark keys …`).
//!
//! - Master rotation re-wraps every tenant key under the current master key; the key
//!   material does not change, so it is instant for the data and runs online.
//! - Tenant data-key rotation adds a new data key (the old one is kept for decryption, state
//!   `retiring`), re-encrypts the tenant's values in batches — each batch its own transaction,
//!   each row rewritten only if still under the old key — and destroys the old key once
//!   nothing uses it. A crash leaves a `retiring` key behind; running the command again
//!   resumes instead of starting another rotation.

use serde::Serialize;

use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::Timestamp;
use crate::crm::contacts::{self, store as contact_store};
use crate::crm::{activities, notes, store as crm_store};
use crate::crypto::store as keys_db;
use crate::error::{DomainError, DomainResult};
use crate::ids::TenantId;
use crate::tenancy::TenantScope;

const BATCH: i64 = 500;

fn internal(err: impl std::fmt::Display) -> DomainError {
    DomainError::Internal(err.to_string())
}

/// Re-wraps every tenant key under the current master key. Returns how many were re-wrapped.
pub async fn rotate_master(app: &AppState) -> DomainResult<u64> {
    let ring = app.keys();
    let current = ring.current_id().to_owned();
    let mut total = 0u64;
    loop {
        let mut tx = app.store().system_tx().await?;
        let rows = keys_db::wrapped_by_other_masters(&mut tx, &current, BATCH).await?;
        if rows.is_empty() {
            tx.commit().await?;
            break;
        }
        for row in &rows {
            let tenant = row.tenant_id;
            let key = ring.unwrap(tenant, &row.wrapped).map_err(internal)?;
            let wrapped = ring.wrap(tenant, &key).map_err(internal)?;
            keys_db::rewrap(&mut tx, row, &wrapped, &current).await?;
        }
        total += rows.len() as u64;
        tx.commit().await?;
    }
    // TOTP seeds are sealed under a key derived from the master: re-seal them too.
    loop {
        let mut tx = app.store().system_tx().await?;
        let rows =
            crate::identity::mfa::store::totp_sealed_by_other_masters(&mut tx, &current, BATCH)
                .await?;
        if rows.is_empty() {
            tx.commit().await?;
            break;
        }
        for (user, sealed) in &rows {
            let aad = format!("bulwark:totp:v1:{user}").into_bytes();
            let seed = ring.open("totp-seeds", &aad, sealed).map_err(internal)?;
            let resealed = ring.seal("totp-seeds", &aad, &seed).map_err(internal)?;
            crate::identity::mfa::store::reseal_totp(&mut tx, *user, &resealed, &current).await?;
        }
        total += rows.len() as u64;
        tx.commit().await?;
    }
    let mut tx = app.store().system_tx().await?;
    audit::record_platform(
        &mut tx,
        None,
        &RequestContext::system(),
        Event::new(Action::KeysRotateMaster)
            .by_system("cli")
            .detail("master_key", current)
            .detail("rewrapped", total),
    )
    .await?;
    tx.commit().await?;
    Ok(total)
}

#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct RotationReport {
    pub version: u32,
    pub contacts: u64,
    pub notes: u64,
    pub activities: u64,
    pub documents: u64,
    /// Mail values: domain keys, message payloads, suppressed addresses, templates.
    pub email: u64,
    /// Webhook subscriptions (URL and signing secret).
    pub webhooks: u64,
    pub integrations: u64,
    pub resumed: bool,
}

/// Re-encrypts one tenant's values under a new data key.
pub async fn rotate_tenant(app: &AppState, tenant: TenantId) -> DomainResult<RotationReport> {
    let (version, resumed) = begin_rotation(app, tenant).await?;
    let mut report = finish_rotation(app, tenant, version).await?;
    report.resumed = resumed;
    Ok(report)
}

/// Step 1: a new data key, unless a rotation is already under way (then it is resumed).
/// Returns the target version and whether it resumes. Public so a test can stop here, as a
/// crash would.
pub async fn begin_rotation(app: &AppState, tenant: TenantId) -> DomainResult<(u32, bool)> {
    let scope = TenantScope::system(tenant, "key rotation");
    let ctx = RequestContext::system();
    let mut tx = app.store().tenant_tx(&scope).await?;
    let live = keys_db::live_keys(&mut tx, tenant).await?;
    if live.is_empty() {
        return Err(DomainError::NotFound("tenant keys"));
    }
    let retiring = live.iter().any(|k| k.purpose == "data" && k.state == "retiring");
    let newest = live.iter().filter(|k| k.purpose == "data").map(|k| k.version).max().unwrap_or(1);
    let version = if retiring {
        u32::try_from(newest).unwrap_or(1)
    } else {
        let next = u32::try_from(newest + 1).map_err(internal)?;
        let key = crate::crypto::Secret::new(crate::crypto::random_bytes::<32>());
        let wrapped = app.keys().wrap(tenant, &key).map_err(internal)?;
        keys_db::insert(
            &mut tx,
            tenant,
            keys_db::Purpose::Data,
            next,
            &wrapped,
            app.keys().current_id(),
            Timestamp::now(),
        )
        .await?;
        keys_db::retire_data_keys_below(&mut tx, next).await?;
        audit::record(
            &mut tx,
            &ctx,
            Event::new(Action::KeysRotateTenant)
                .by_scope(&scope)
                .detail("phase", "started")
                .detail("version", next),
        )
        .await?;
        next
    };
    tx.commit().await?;
    app.tenant_keys().forget(tenant);
    Ok((version, retiring))
}

/// Steps 2 and 3: re-encrypt in batches, then destroy the old keys.
pub async fn finish_rotation(
    app: &AppState,
    tenant: TenantId,
    version: u32,
) -> DomainResult<RotationReport> {
    let scope = TenantScope::system(tenant, "key rotation");
    let ctx = RequestContext::system();
    let mut report = RotationReport { version, ..RotationReport::default() };
    let target = i32::try_from(version).map_err(internal)?;

    // 2. Re-encrypt, a batch per transaction; 3. then destroy the old keys, unless a write
    // that raced the last batch left a row under one (checked under lock: then round again).
    loop {
        reencrypt(app, &scope, tenant, target, &mut report).await?;
        // Documents: their keys, titles and names are re-sealed; contents stay as they are.
        report.documents += crate::documents::reseal_keys(app, &scope).await?;
        report.email += crate::email::rotation::reseal(app, &scope).await?;
        report.webhooks += crate::webhooks::reseal(app, &scope).await?;
        report.integrations += crate::integrations::reseal(app, &scope).await?;
        let mut tx = app.store().tenant_tx(&scope).await?;
        // Writers hold the current key row FOR SHARE until they commit (PostgreSQL; SQLite has
        // one writer anyway): after this lock every write that sealed under an old key is
        // visible to the count below.
        keys_db::lock_data_keys(&mut tx).await?;
        if super::store::rows_under_older_keys(&mut tx, target).await? > 0 {
            tx.commit().await?;
            continue;
        }
        let destroyed = keys_db::destroy_retiring(&mut tx).await?;
        audit::record(
            &mut tx,
            &ctx,
            Event::new(Action::KeysRotateTenant)
                .by_scope(&scope)
                .detail("phase", "finished")
                .detail("version", version)
                .detail("contacts", report.contacts)
                .detail("notes", report.notes)
                .detail("activities", report.activities)
                .detail("documents", report.documents)
                .detail("email", report.email)
                .detail("keys_destroyed", destroyed),
        )
        .await?;
        tx.commit().await?;
        break;
    }
    app.tenant_keys().forget(tenant);
    Ok(report)
}

/// Re-encrypts every row under an older key than `target`, a batch per transaction.
async fn reencrypt(
    app: &AppState,
    scope: &TenantScope,
    tenant: TenantId,
    target: i32,
    report: &mut RotationReport,
) -> DomainResult<()> {
    loop {
        let mut tx = app.store().tenant_tx(scope).await?;
        let keys = crate::crm::tenant_keys(app, &mut tx).await?;
        let mut fetched = 0usize;
        let rows = crm_store::older_than::<contact_store::Contacts>(&mut tx, target, BATCH).await?;
        fetched += rows.len();
        for row in rows {
            let data = contacts::open(&keys, tenant, &row)?;
            let sealed = contacts::seal(&keys, tenant, row.id, &data);
            if contact_store::reseal(&mut tx, row.id, row.key_version, &sealed).await? {
                report.contacts += 1;
            }
        }
        let rows = crm_store::older_than::<notes::store::Notes>(&mut tx, target, BATCH).await?;
        fetched += rows.len();
        for row in rows {
            let view = notes::view(&keys, tenant, row.clone())?;
            let sealed = notes::seal_body(&keys, tenant, row.id, &view.body);
            if notes::store::reseal(&mut tx, row.id, row.key_version, target, &sealed).await? {
                report.notes += 1;
            }
        }
        let rows =
            crm_store::older_than::<activities::store::Activities>(&mut tx, target, BATCH).await?;
        fetched += rows.len();
        for row in rows {
            let view = activities::view(&keys, tenant, row.clone())?;
            let sealed =
                view.details.as_deref().map(|d| activities::seal_details(&keys, tenant, row.id, d));
            if activities::store::reseal(
                &mut tx,
                row.id,
                row.key_version,
                target,
                sealed.as_deref(),
            )
            .await?
            {
                report.activities += 1;
            }
        }
        tx.commit().await?;
        // A row changed meanwhile was rewritten under the new key by its own edit; the next
        // query no longer returns it. Done when nothing older is left.
        if fetched == 0 {
            return Ok(());
        }
    }
}
