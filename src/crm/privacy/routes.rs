//! `/api/v1/contacts/{id}/export`, `/api/v1/contacts/{id}/erase` and `/api/v1/privacy/purge`:
//! data-subject requests and the on-demand retention purge.

use axum::extract::State;
use utoipa_axum::routes;

use super::ContactExport;
use crate::app::AppState;
use crate::audit::RequestContext;
use crate::containment::features::Feature;
use crate::crm::contacts::ContactView;
use crate::http::Endpoint;
use crate::http::json::Json;
use crate::http::path::Id;
use crate::http::problem::Problem;
use crate::ids::ContactId;
use crate::maintenance::retention::{self, PurgeReport};
use crate::ratelimit::RateCategory;
use crate::tenancy::{Permission, TenantScope};

pub fn endpoints() -> Vec<Endpoint> {
    use Permission::*;
    use RateCategory::*;
    vec![
        Endpoint::permission(routes!(export_contact), ContactsReadSensitive, Sensitive)
            .step_up()
            .feature(Feature::Exports),
        Endpoint::permission(routes!(erase_contact), DataPurge, Sensitive).step_up(),
        Endpoint::permission(routes!(purge_now), DataPurge, Sensitive).step_up(),
    ]
}

/// Everything held about one contact, unmasked (a data-subject access request).
#[utoipa::path(get, path = "/api/v1/contacts/{id}/export", tag = "privacy",
    params(("id" = ContactId, Path, description = "Contact id")), responses((status = 200, body = ContactExport)))]
async fn export_contact(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<ContactId>,
) -> Result<Json<ContactExport>, Problem> {
    Ok(Json(super::export(&app, &scope, &ctx, id).await?))
}

/// Erase a contact's personal data for good; a tombstone and the audit trail remain.
#[utoipa::path(post, path = "/api/v1/contacts/{id}/erase", tag = "privacy",
    params(("id" = ContactId, Path, description = "Contact id")), responses((status = 200, body = ContactView)))]
async fn erase_contact(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<ContactId>,
) -> Result<Json<ContactView>, Problem> {
    Ok(Json(super::erase(&app, &scope, &ctx, id).await?))
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
