//! The platform super-admin's routes. The super-admin has no tenant scope, so none of these
//! can reach a tenant's business data; they show tenants as accounts, and are audited.

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::routes;

use super::store as db;
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::Timestamp;
use crate::http::json::{Json, Query};
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
    let mut tx = app.store().system_tx().await?;
    let rows = db::list_tenants(&mut tx, page.after::<TenantId>()?, limit + 1).await?;
    audit::record_platform(
        &mut tx,
        None,
        &ctx,
        Event::new(Action::PlatformTenantsList)
            .by_user(principal.user_id())
            .detail("count", rows.len()),
    )
    .await?;
    tx.commit().await?;
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
