//! `/api/v1/users` and `/api/v1/invitations`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;

use super::members;
use super::store::{InvitationRow, MemberRow};
use super::{Permission, Role, TenantScope};
use crate::app::AppState;
use crate::audit::RequestContext;
use crate::clock::Timestamp;
use crate::crypto::Secret;
use crate::http::Endpoint;
use crate::http::json::{Json, Query};
use crate::http::path::Id;
use crate::http::problem::Problem;
use crate::ids::{InvitationId, TenantId, UserId};
use crate::pagination::{Page, PageQuery};
use crate::ratelimit::RateCategory;

pub fn endpoints() -> Vec<Endpoint> {
    use Permission::*;
    use RateCategory::*;
    vec![
        Endpoint::permission(routes!(list_users), UsersRead, Read),
        Endpoint::permission(routes!(update_user), UsersManage, Sensitive).step_up(),
        Endpoint::permission(routes!(deactivate_user), UsersManage, Sensitive).step_up(),
        Endpoint::permission(routes!(reset_factors), UsersManage, Sensitive).step_up(),
        Endpoint::permission(routes!(create_invitation), UsersManage, Write).idempotent(),
        Endpoint::permission(routes!(list_invitations), UsersManage, Read),
        Endpoint::permission(routes!(revoke_invitation), UsersManage, Write),
        Endpoint::public(routes!(accept_invitation), Auth).idempotent(),
    ]
}

#[derive(Serialize, ToSchema)]
pub struct UserView {
    id: UserId,
    email: String,
    display_name: String,
    role: Option<Role>,
    /// `active` or `deactivated`.
    status: String,
    created_at: Timestamp,
}

impl From<MemberRow> for UserView {
    fn from(row: MemberRow) -> Self {
        UserView {
            id: row.id,
            email: row.email,
            display_name: row.display_name,
            role: row.role.as_deref().and_then(Role::parse),
            status: row.status,
            created_at: row.created_at,
        }
    }
}

/// The tenant's users.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(PageQuery),
    responses((status = 200, body = Page<UserView>)))]
async fn list_users(
    State(app): State<AppState>,
    scope: TenantScope,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<UserView>>, Problem> {
    let limit = page.limit()?;
    let rows = members::list(&app, &scope, page.after::<UserId>()?, limit + 1).await?;
    Ok(Json(Page::from_rows(rows, limit, |r| r.id.to_string(), UserView::from)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    role: Role,
}

/// Change a user's role (their sessions are revoked).
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", request_body = UserUpdate,
    params(("id" = UserId, Path, description = "User id")), responses((status = 200, body = UserView)))]
async fn update_user(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<UserId>,
    Json(body): Json<UserUpdate>,
) -> Result<Json<UserView>, Problem> {
    Ok(Json(members::change_role(&app, &scope, &ctx, id, body.role).await?.into()))
}

/// Deactivate a user; their sessions and API keys are revoked.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = UserId, Path, description = "User id")), responses((status = 204)))]
async fn deactivate_user(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<UserId>,
) -> Result<StatusCode, Problem> {
    members::deactivate(&app, &scope, &ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationRequest {
    #[schema(format = Email, max_length = 254)]
    email: String,
    role: Role,
}

#[derive(Serialize, ToSchema)]
pub struct InvitationView {
    id: InvitationId,
    email: String,
    role: String,
    invited_by: UserId,
    created_at: Timestamp,
    expires_at: Timestamp,
    accepted_at: Option<Timestamp>,
}

impl From<InvitationRow> for InvitationView {
    fn from(row: InvitationRow) -> Self {
        InvitationView {
            id: row.id,
            email: row.email,
            role: row.role,
            invited_by: row.invited_by,
            created_at: row.created_at,
            expires_at: row.expires_at,
            accepted_at: row.accepted_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct InvitationCreatedView {
    id: InvitationId,
    /// Single use, valid 7 days. Shown only here.
    token: String,
    accept_url: String,
    expires_at: Timestamp,
}

/// Invite someone to the tenant with a role no higher than the caller's.
#[utoipa::path(post, path = "/api/v1/invitations", tag = "users", request_body = InvitationRequest,
    responses((status = 201, body = InvitationCreatedView)))]
async fn create_invitation(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Json(body): Json<InvitationRequest>,
) -> Result<Response, Problem> {
    let created = members::invite(&app, &scope, &ctx, &body.email, body.role).await?;
    let view = InvitationCreatedView {
        id: created.row.id,
        token: created.token.expose().clone(),
        accept_url: created.accept_url,
        expires_at: created.row.expires_at,
    };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// Reset a member's second factors so they can enrol again (they lost them); their sessions
/// end. Never for someone above the caller. Needs a recent step-up.
#[utoipa::path(delete, path = "/api/v1/users/{id}/factors", tag = "users",
    params(("id" = UserId, Path, description = "User id")), responses((status = 204)))]
async fn reset_factors(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<UserId>,
) -> Result<StatusCode, Problem> {
    members::reset_factors(&app, &scope, &ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The tenant's invitations.
#[utoipa::path(get, path = "/api/v1/invitations", tag = "users", params(PageQuery),
    responses((status = 200, body = Page<InvitationView>)))]
async fn list_invitations(
    State(app): State<AppState>,
    scope: TenantScope,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<InvitationView>>, Problem> {
    let limit = page.limit()?;
    let rows =
        members::list_invitations(&app, &scope, page.after::<InvitationId>()?, limit + 1).await?;
    Ok(Json(Page::from_rows(rows, limit, |r| r.id.to_string(), InvitationView::from)))
}

/// Withdraw a pending invitation.
#[utoipa::path(delete, path = "/api/v1/invitations/{id}", tag = "users",
    params(("id" = InvitationId, Path, description = "Invitation id")), responses((status = 204)))]
async fn revoke_invitation(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<InvitationId>,
) -> Result<StatusCode, Problem> {
    members::revoke_invitation(&app, &scope, &ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitation {
    #[schema(value_type = String, format = Password)]
    token: Secret<String>,
    #[schema(schema_with = crate::schema::new_password)]
    password: Secret<String>,
    #[schema(schema_with = crate::schema::line::<100>)]
    display_name: String,
}

#[derive(Serialize, ToSchema)]
pub struct AcceptedInvitation {
    tenant_id: TenantId,
    user_id: UserId,
}

/// Accept an invitation and create the account.
#[utoipa::path(post, path = "/api/v1/invitations/accept", tag = "users", request_body = AcceptInvitation,
    responses((status = 201, body = AcceptedInvitation),
              (status = 404, description = "Unknown, used or expired invitation", body = crate::http::problem::ProblemBody, content_type = "application/problem+json")))]
async fn accept_invitation(
    State(app): State<AppState>,
    ctx: RequestContext,
    Json(body): Json<AcceptInvitation>,
) -> Result<Response, Problem> {
    let (tenant_id, user_id) =
        members::accept(&app, &ctx, &body.token, &body.password, &body.display_name).await?;
    Ok((StatusCode::CREATED, Json(AcceptedInvitation { tenant_id, user_id })).into_response())
}
