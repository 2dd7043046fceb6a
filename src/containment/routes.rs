//! `/api/v1/platform/blocked-ips`: the super-admin blocks and unblocks client addresses; each
//! change needs a recent step-up and is audited in the platform chain.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;

use super::BlockRequest;
use super::store::BlockedRow;
use crate::app::AppState;
use crate::audit::RequestContext;
use crate::clock::Timestamp;
use crate::http::json::Json;
use crate::http::path::Id;
use crate::http::problem::Problem;
use crate::http::{Access, Endpoint};
use crate::identity::Principal;
use crate::ids::{BlockId, TenantId, UserId};
use crate::ratelimit::{RateCategory, RouteFamily};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new(routes!(list_blocked), Access::SuperAdmin, RateCategory::Read)
            .family(RouteFamily::Admin),
        Endpoint::new(routes!(block), Access::SuperAdmin, RateCategory::Sensitive)
            .family(RouteFamily::Admin)
            .step_up(),
        Endpoint::new(routes!(unblock), Access::SuperAdmin, RateCategory::Sensitive)
            .family(RouteFamily::Admin)
            .step_up(),
        Endpoint::new(routes!(revoke_sessions), Access::SuperAdmin, RateCategory::Sensitive)
            .family(RouteFamily::Admin)
            .step_up(),
        Endpoint::new(routes!(revoke_api_keys), Access::SuperAdmin, RateCategory::Sensitive)
            .family(RouteFamily::Admin)
            .step_up(),
    ]
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeApiKeysBody {
    /// The tenant whose keys all stop working.
    tenant_id: TenantId,
}

/// What a revocation ended.
#[derive(Serialize, ToSchema)]
pub struct Revoked {
    /// How many sessions or keys were revoked.
    revoked: u64,
}

/// Revoke every API key of a tenant: refused on every instance within a second. Needs a
/// recent step-up; audited in the platform chain and the tenant's.
#[utoipa::path(post, path = "/api/v1/platform/api-keys/revoke", tag = "platform",
    request_body = RevokeApiKeysBody, responses((status = 200, body = Revoked)))]
async fn revoke_api_keys(
    State(app): State<AppState>,
    ctx: RequestContext,
    principal: Principal,
    Json(body): Json<RevokeApiKeysBody>,
) -> Result<Json<Revoked>, Problem> {
    let revoked = super::revoke_api_keys(&app, &ctx, &principal, body.tenant_id).await?;
    Ok(Json(Revoked { revoked }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeSessionsBody {
    /// Only this tenant's sessions.
    tenant_id: Option<TenantId>,
    /// Only this user's sessions.
    user_id: Option<UserId>,
}

/// Revoke sessions for containment: a tenant's, a user's, both, or (neither) everyone's but
/// the caller's; refused on every instance within a second. Needs a recent step-up; audited
/// in the platform chain and in each affected tenant's.
#[utoipa::path(post, path = "/api/v1/platform/sessions/revoke", tag = "platform",
    request_body = RevokeSessionsBody, responses((status = 200, body = Revoked)))]
async fn revoke_sessions(
    State(app): State<AppState>,
    ctx: RequestContext,
    principal: Principal,
    Json(body): Json<RevokeSessionsBody>,
) -> Result<Json<Revoked>, Problem> {
    let which = super::SessionsToRevoke { tenant_id: body.tenant_id, user_id: body.user_id };
    let revoked = super::revoke_sessions(&app, &ctx, &principal, which).await?;
    Ok(Json(Revoked { revoked }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlockBody {
    /// An address or a CIDR network (`203.0.113.0/24`, `2001:db8::/32`); host bits are
    /// cleared. Neither `/0` nor a network holding the caller's own address.
    #[schema(min_length = 1, max_length = 64, example = "203.0.113.0/24")]
    cidr: String,
    /// Why (kept with the block and shown in its list).
    #[schema(min_length = 1, max_length = 500)]
    reason: String,
    /// When the block ends by itself; never, if absent. Must lie in the future.
    expires_at: Option<Timestamp>,
}

#[derive(Serialize, ToSchema)]
pub struct BlockedView {
    id: BlockId,
    cidr: String,
    reason: String,
    expires_at: Option<Timestamp>,
    created_by: Option<UserId>,
    created_at: Timestamp,
}

impl From<BlockedRow> for BlockedView {
    fn from(r: BlockedRow) -> Self {
        BlockedView {
            id: r.id,
            cidr: r.cidr,
            reason: r.reason,
            expires_at: r.expires_at,
            created_by: r.created_by,
            created_at: r.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct BlockedList {
    items: Vec<BlockedView>,
}

/// The blocked addresses in force (super-admin only; audited).
#[utoipa::path(get, path = "/api/v1/platform/blocked-ips", tag = "platform",
    responses((status = 200, body = BlockedList)))]
async fn list_blocked(
    State(app): State<AppState>,
    ctx: RequestContext,
    principal: Principal,
) -> Result<Json<BlockedList>, Problem> {
    let rows = super::list(&app, &ctx, &principal).await?;
    Ok(Json(BlockedList { items: rows.into_iter().map(BlockedView::from).collect() }))
}

/// Block an address or network on every instance within a second: its requests get 403
/// `blocked` before rate limits and authentication. Needs a recent step-up.
#[utoipa::path(post, path = "/api/v1/platform/blocked-ips", tag = "platform", request_body = BlockBody,
    responses((status = 201, body = BlockedView)))]
async fn block(
    State(app): State<AppState>,
    ctx: RequestContext,
    principal: Principal,
    Json(body): Json<BlockBody>,
) -> Result<(StatusCode, Json<BlockedView>), Problem> {
    let request =
        BlockRequest { cidr: body.cidr, reason: body.reason, expires_at: body.expires_at };
    let row = super::block(&app, &ctx, &principal, request).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// Lift a block (on every instance within a second). Needs a recent step-up.
#[utoipa::path(delete, path = "/api/v1/platform/blocked-ips/{id}", tag = "platform",
    params(("id" = BlockId, Path, description = "Block id")), responses((status = 204)))]
async fn unblock(
    State(app): State<AppState>,
    ctx: RequestContext,
    principal: Principal,
    Id(id): Id<BlockId>,
) -> Result<StatusCode, Problem> {
    super::unblock(&app, &ctx, &principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
