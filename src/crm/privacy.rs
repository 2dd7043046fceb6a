//! Data-subject requests: everything held about a contact (JSON), and erasure — the personal
//! data overwritten, blind indexes removed, notes about the person deleted, the record left
//! as a tombstone and the audit trail kept. Also the tenant's on-demand retention purge.

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::routes;
use uuid::Uuid;

use super::activities::{self, ActivityView};
use super::contacts::{self as contact, ContactView, store as contacts};
use super::notes::{self, NoteView};
use super::retention::{self, PurgeReport};
use super::tasks::{self, TaskView};
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::{now_ms, rfc3339};
use crate::error::{DomainError, DomainResult};
use crate::http::json::Json;
use crate::http::path::Id;
use crate::http::problem::Problem;
use crate::http::{Endpoint, RateCategory};
use crate::tenancy::{Permission, TenantScope};

pub fn endpoints() -> Vec<Endpoint> {
    use Permission::*;
    use RateCategory::*;
    vec![
        Endpoint::permission(routes!(export_contact), ContactsReadSensitive, Sensitive).step_up(),
        Endpoint::permission(routes!(erase_contact), DataPurge, Sensitive).step_up(),
        Endpoint::permission(routes!(purge_now), DataPurge, Sensitive).step_up(),
    ]
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactExport {
    contact: ContactView,
    notes: Vec<NoteView>,
    activities: Vec<ActivityView>,
    tasks: Vec<TaskView>,
    exported_at: String,
}

/// Everything held about one contact, unmasked (a data-subject access request).
#[utoipa::path(get, path = "/api/v1/contacts/{id}/export", tag = "privacy",
    params(("id" = Uuid, Path, description = "Contact id")), responses((status = 200, body = ContactExport)))]
async fn export_contact(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<Uuid>,
) -> Result<Json<ContactExport>, Problem> {
    Ok(Json(export(&app, &scope, &ctx, id).await?))
}

async fn export(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    id: Uuid,
) -> DomainResult<ContactExport> {
    let tenant = scope.tenant_id();
    let mut tx = app.store().tenant_tx(scope).await?;
    let row = contacts::get(&mut tx, id).await?.ok_or(DomainError::NotFound("contact"))?;
    let keys = contact::keys(app, &mut tx).await?;
    let data = contact::open(&keys, tenant, &row)?;
    let notes = notes::of_contact(&mut tx, id)
        .await?
        .into_iter()
        .map(|n| notes::view(&keys, tenant, n))
        .collect::<DomainResult<_>>()?;
    let activities = activities::of_contact(&mut tx, id)
        .await?
        .into_iter()
        .map(|a| activities::view(&keys, tenant, a))
        .collect::<DomainResult<_>>()?;
    let tasks = tasks::of_contact(&mut tx, id).await?.into_iter().map(TaskView::from).collect();
    audit::record(
        &mut tx,
        ctx,
        Event::new(Action::ContactExport).by_scope(scope).target("contact", id),
    )
    .await?;
    tx.commit().await?;
    Ok(ContactExport {
        contact: contact::view(&row, data, true),
        notes,
        activities,
        tasks,
        exported_at: rfc3339(now_ms()),
    })
}

/// Erase a contact's personal data for good; a tombstone and the audit trail remain.
#[utoipa::path(post, path = "/api/v1/contacts/{id}/erase", tag = "privacy",
    params(("id" = Uuid, Path, description = "Contact id")), responses((status = 200, body = ContactView)))]
async fn erase_contact(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<Uuid>,
) -> Result<Json<ContactView>, Problem> {
    let mut tx = app.store().tenant_tx(&scope).await?;
    contacts::get(&mut tx, id).await?.ok_or(DomainError::NotFound("contact"))?;
    contacts::erase(&mut tx, id, now_ms()).await?;
    audit::record(
        &mut tx,
        &ctx,
        Event::new(Action::ContactErase).by_scope(&scope).target("contact", id),
    )
    .await?;
    let row = contacts::get(&mut tx, id).await?.ok_or(DomainError::NotFound("contact"))?;
    tx.commit().await?;
    let empty = contact::ContactData::default();
    Ok(Json(contact::view(&row, empty, false)))
}

/// Apply the retention windows to this tenant now (the scheduled job does it hourly).
#[utoipa::path(post, path = "/api/v1/privacy/purge", tag = "privacy", responses((status = 200, body = PurgeReport)))]
async fn purge_now(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
) -> Result<Json<PurgeReport>, Problem> {
    Ok(Json(retention::purge_tenant(&app, &scope, &ctx).await?))
}
