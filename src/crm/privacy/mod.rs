//! Data-subject requests: everything held about a contact (JSON), and erasure — the personal
//! data overwritten, blind indexes removed, notes about the person deleted, the record left
//! as a tombstone and the audit trail kept. Also the tenant's on-demand retention purge.

pub mod routes;

use serde::Serialize;
use utoipa::ToSchema;

use super::activities::{self, ActivityView};
use super::contacts::{self as contact, ContactView, Contacts, Sensitive, store as contacts};
use super::notes::{self, NoteView};
use super::tasks::TaskView;
use super::{fetch, tenant_keys};
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::Timestamp;
use crate::error::DomainResult;
use crate::ids::ContactId;
use crate::tenancy::TenantScope;

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactExport {
    contact: ContactView,
    notes: Vec<NoteView>,
    activities: Vec<ActivityView>,
    tasks: Vec<TaskView>,
    exported_at: Timestamp,
}

/// Everything held about one contact, unmasked (a data-subject access request); audited.
pub async fn export(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    id: ContactId,
) -> DomainResult<ContactExport> {
    let tenant = scope.tenant_id();
    // A read: it runs beside writers; only the audit event takes a write turn.
    let mut tx = app.store().tenant_read(scope).await?;
    let row = fetch::<Contacts>(&mut tx, id).await?;
    let keys = tenant_keys(app, &mut tx).await?;
    let data = contact::open(&keys, tenant, &row)?;
    let notes = super::store::of_contact::<notes::store::Notes>(&mut tx, id)
        .await?
        .into_iter()
        .map(|n| notes::view(&keys, tenant, n))
        .collect::<DomainResult<_>>()?;
    let activities = super::store::of_contact::<activities::store::Activities>(&mut tx, id)
        .await?
        .into_iter()
        .map(|a| activities::view(&keys, tenant, a))
        .collect::<DomainResult<_>>()?;
    let tasks: Vec<TaskView> =
        super::store::of_contact::<super::tasks::store::Tasks>(&mut tx, id).await?;
    tx.commit().await?;
    audit::record_alone(
        app,
        scope,
        ctx,
        Event::new(Action::ContactExport).by_scope(scope).target("contact", id),
    )
    .await?;
    Ok(ContactExport {
        contact: contact::view(&row, data, Sensitive::Revealed),
        notes,
        activities,
        tasks,
        exported_at: Timestamp::now(),
    })
}

/// Erases a contact's personal data for good; a tombstone and the audit trail remain.
pub async fn erase(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    id: ContactId,
) -> DomainResult<ContactView> {
    let mut tx = app.store().tenant_tx(scope).await?;
    fetch::<Contacts>(&mut tx, id).await?;
    contacts::erase(&mut tx, id, Timestamp::now()).await?;
    audit::record(
        &mut tx,
        ctx,
        Event::new(Action::ContactErase).by_scope(scope).target("contact", id),
    )
    .await?;
    let row = fetch::<Contacts>(&mut tx, id).await?;
    tx.commit().await?;
    Ok(contact::view(&row, contact::ContactData::default(), Sensitive::Masked))
}
