//! `/api/v1/platform/...`: the super-admin's containment switches — blocked addresses,
//! revocations, kill switches, break-glass grants. Every change needs a recent step-up and
//! is audited in the platform chain (and in each affected tenant's).

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;

use super::BlockRequest;
use super::features::{FeatureChange, FeatureState};
use super::grants::GrantRequest;
use super::store::BlockedRow;
use crate::app::AppState;
use crate::audit::RequestContext;
use crate::clock::Timestamp;
use crate::http::json::Json;
use crate::http::path::Id;
use crate::http::problem::Problem;
use crate::http::{Access, Endpoint};
use crate::identity::Principal;
use crate::ids::{BlockId, GrantId, TenantId, UserId};
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
        Endpoint::new(routes!(list_features), Access::SuperAdmin, RateCategory::Read)
            .family(RouteFamily::Admin),
        Endpoint::new(routes!(change_features), Access::SuperAdmin, RateCategory::Sensitive)
            .family(RouteFamily::Admin)
            .step_up(),
        Endpoint::new(routes!(end_access), Access::SuperAdmin, RateCategory::Sensitive)
            .family(RouteFamily::Admin),
        Endpoint::new(routes!(grant_access), Access::SuperAdmin, RateCategory::Sensitive)
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
    let by = super::Operator::SuperAdmin(&principal);
    let revoked = super::revoke_api_keys(&app, &ctx, by, body.tenant_id).await?;
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
    let by = super::Operator::SuperAdmin(&principal);
    let revoked = super::revoke_sessions(&app, &ctx, by, which).await?;
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

/// Every kill switch (`true`: on). `/readyz` lists the ones that are off.
#[utoipa::path(get, path = "/api/v1/platform/features", tag = "platform",
    responses((status = 200, body = FeatureState)))]
async fn list_features(State(app): State<AppState>) -> Json<FeatureState> {
    Json(app.containment().switches.state())
}

/// Switch features on or off on every instance within a second: a feature that is off
/// answers 503 `feature_disabled` on its routes and pauses its workers (nothing queued is
/// lost). Needs a recent step-up; audited.
#[utoipa::path(patch, path = "/api/v1/platform/features", tag = "platform",
    request_body = FeatureChange, responses((status = 200, body = FeatureState)))]
async fn change_features(
    State(app): State<AppState>,
    ctx: RequestContext,
    principal: Principal,
    Json(body): Json<FeatureChange>,
) -> Result<Json<FeatureState>, Problem> {
    Ok(Json(super::features::change(&app, &ctx, &principal, body).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    /// Why (kept with the grant, and shown in the tenant's audit log).
    #[schema(min_length = 1, max_length = 500)]
    reason: String,
    /// How long the grant lasts: 1 to 60 minutes.
    #[schema(minimum = 1, maximum = 60)]
    minutes: u32,
    /// Whether the grant allows changes; read-only (GET) when absent.
    #[serde(default)]
    write: bool,
}

#[derive(Serialize, ToSchema)]
pub struct GrantView {
    id: GrantId,
    tenant_id: TenantId,
    reason: String,
    write: bool,
    created_at: Timestamp,
    expires_at: Timestamp,
}

/// Open a break-glass grant on a tenant: for its minutes, this super-admin may call the
/// tenant's routes with `X-Bulwark-Tenant: {id}` (read-only unless `write`). Needs a recent
/// step-up; audited in the platform chain and in the tenant's.
#[utoipa::path(post, path = "/api/v1/platform/tenants/{id}/access", tag = "platform",
    params(("id" = TenantId, Path, description = "Tenant id")), request_body = GrantBody,
    responses((status = 201, body = GrantView)))]
async fn grant_access(
    State(app): State<AppState>,
    ctx: RequestContext,
    principal: Principal,
    Id(tenant): Id<TenantId>,
    Json(body): Json<GrantBody>,
) -> Result<(StatusCode, Json<GrantView>), Problem> {
    let request = GrantRequest { reason: body.reason, minutes: body.minutes, write: body.write };
    let row = super::grants::grant(&app, &ctx, &principal, tenant, request).await?;
    let view = GrantView {
        id: row.id,
        tenant_id: row.tenant_id,
        reason: row.reason,
        write: row.can_write,
        created_at: row.created_at,
        expires_at: row.expires_at,
    };
    Ok((StatusCode::CREATED, Json(view)))
}

/// End this super-admin's break-glass access to a tenant now, before its time runs out.
/// Audited in the platform chain and the tenant's.
#[utoipa::path(delete, path = "/api/v1/platform/tenants/{id}/access", tag = "platform",
    params(("id" = TenantId, Path, description = "Tenant id")), responses((status = 204)))]
async fn end_access(
    State(app): State<AppState>,
    ctx: RequestContext,
    principal: Principal,
    Id(tenant): Id<TenantId>,
) -> Result<StatusCode, Problem> {
    super::grants::end(&app, &ctx, &principal, tenant).await?;
    Ok(StatusCode::NO_CONTENT)
}
