//! `/api/v1/platform/*`: the super-admin's routes over `platform`.

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::audit::RequestContext;
use crate::clock::Timestamp;
use crate::email::quotas::{self, Limits, LimitsChange};
use crate::http::json::{Json, Query};
use crate::http::path::Id;
use crate::http::problem::Problem;
use crate::http::{Access, Endpoint};
use crate::identity::Principal;
use crate::ids::TenantId;
use crate::pagination::{Page, PageQuery};
use crate::ratelimit::{RateCategory, RouteFamily};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new(routes!(list_tenants), Access::SuperAdmin, RateCategory::Read)
            .family(RouteFamily::Admin),
        Endpoint::new(routes!(email_limits), Access::SuperAdmin, RateCategory::Read)
            .family(RouteFamily::Admin),
        Endpoint::new(routes!(set_email_limits), Access::SuperAdmin, RateCategory::Sensitive)
            .family(RouteFamily::Admin)
            .step_up(),
    ]
}

#[derive(Serialize, ToSchema)]
pub struct TenantView {
    id: TenantId,
    name: String,
    status: String,
    created_at: Timestamp,
    users: i64,
}

/// Every tenant (super-admin only).
#[utoipa::path(get, path = "/api/v1/platform/tenants", tag = "platform", params(PageQuery),
    responses((status = 200, body = Page<TenantView>)))]
async fn list_tenants(
    State(app): State<AppState>,
    ctx: RequestContext,
    principal: Principal,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<TenantView>>, Problem> {
    let limit = page.limit()?;
    let after = page.after::<TenantId>()?;
    let rows = super::list_tenants(&app, &ctx, &principal, after, limit + 1).await?;
    Ok(Json(Page::from_rows(
        rows,
        limit,
        |r| r.id.to_string(),
        |r| TenantView {
            id: r.id,
            name: r.name,
            status: r.status,
            created_at: r.created_at,
            users: r.users,
        },
    )))
}

/// A tenant's sending limits (recipients per hour and per day) in force.
#[utoipa::path(get, path = "/api/v1/platform/tenants/{id}/email-limits", tag = "platform",
    params(("id" = TenantId, Path, description = "Tenant id")),
    responses((status = 200, body = Limits)))]
async fn email_limits(
    State(app): State<AppState>,
    Id(id): Id<TenantId>,
) -> Result<Json<Limits>, Problem> {
    Ok(Json(quotas::limits(&app, id).await?))
}

/// Set a tenant's own sending limits (`null`: the platform's default). Needs step-up; audited
/// in the platform chain and the tenant's.
#[utoipa::path(put, path = "/api/v1/platform/tenants/{id}/email-limits", tag = "platform",
    params(("id" = TenantId, Path, description = "Tenant id")),
    request_body = LimitsChange, responses((status = 200, body = Limits)))]
async fn set_email_limits(
    State(app): State<AppState>,
    ctx: RequestContext,
    principal: Principal,
    Id(id): Id<TenantId>,
    Json(body): Json<LimitsChange>,
) -> Result<Json<Limits>, Problem> {
    Ok(Json(quotas::set_limits(&app, &ctx, &principal, id, body).await?))
}
