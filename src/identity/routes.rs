//! `/api/v1/auth/*`, `/api/v1/me` and `/api/v1/api-keys`: thin handlers over `login` and
//! `api_keys`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;

use super::account::{self, PasswordChangeOptions, SignupInput};
use super::api_keys::{self, NewApiKey};
use super::login::{self, LoginOutcome, TokenPair};
use super::{Principal, store as db};
use crate::app::AppState;
use crate::audit::{Action, RequestContext};
use crate::clock::Timestamp;
use crate::containment::features::Feature;
use crate::crypto::Secret;
use crate::error::DomainError;
use crate::http::Endpoint;
use crate::http::json::Json;
use crate::http::path::Id;
use crate::http::problem::Problem;
use crate::ids::{ApiKeyId, SessionId, TenantId, UserId};
use crate::pagination::{Page, PageQuery};
use crate::ratelimit::RateCategory;
use crate::tenancy::{Permission, TenantScope};

pub fn endpoints() -> Vec<Endpoint> {
    use RateCategory::*;
    vec![
        Endpoint::public(routes!(signup), Auth).idempotent().feature(Feature::Signup),
        Endpoint::public(routes!(login), Auth),
        Endpoint::public(routes!(refresh), Refresh),
        Endpoint::session(routes!(logout), Write).mfa_exempt(),
        Endpoint::session(routes!(list_sessions), Read),
        Endpoint::session(routes!(delete_session), Write),
        Endpoint::session(routes!(change_password), Sensitive),
        Endpoint::authenticated(routes!(me), Read).mfa_exempt(),
        Endpoint::permission(routes!(create_api_key), Permission::ApiKeysManage, Sensitive)
            .step_up()
            .idempotent(),
        Endpoint::permission(routes!(list_api_keys), Permission::ApiKeysManage, Read),
        Endpoint::permission(routes!(revoke_api_key), Permission::ApiKeysManage, Write),
    ]
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    #[schema(schema_with = crate::schema::line::<100>)]
    tenant_name: String,
    #[schema(format = Email, max_length = 254)]
    email: String,
    #[schema(schema_with = crate::schema::new_password)]
    password: Secret<String>,
    #[schema(schema_with = crate::schema::line::<100>)]
    display_name: String,
}

#[derive(Serialize, ToSchema)]
pub struct SignupAccepted {
    /// Always `accepted`, whether or not the address had an account: sign in to continue.
    status: &'static str,
}

/// Create a tenant and its owner. The answer is the same whether or not the address has an
/// account (no enumeration); sign in, then read the ids from `/api/v1/me`.
#[utoipa::path(post, path = "/api/v1/auth/signup", tag = "auth", request_body = SignupRequest,
    responses((status = 202, body = SignupAccepted)))]
async fn signup(
    State(app): State<AppState>,
    ctx: RequestContext,
    Json(body): Json<SignupRequest>,
) -> Result<Response, Problem> {
    account::signup(
        &app,
        &ctx,
        SignupInput {
            tenant_name: body.tenant_name,
            email: body.email,
            password: body.password,
            display_name: body.display_name,
        },
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(SignupAccepted { status: "accepted" })).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: String,
    #[schema(value_type = String, format = Password)]
    password: Secret<String>,
}

/// The answer to a correct password: tokens, or a request for the second factor.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum LoginResponse {
    Tokens(TokenPair),
    MfaRequired(MfaChallenge),
}

#[derive(Serialize, ToSchema)]
pub struct MfaChallenge {
    /// Always true.
    mfa_required: bool,
    /// Single use, five minutes: send it to /api/v1/auth/mfa/verify or
    /// /api/v1/auth/webauthn/login/start with the second factor.
    mfa_token: String,
    /// `totp`, `backup_code`, `webauthn`.
    methods: Vec<&'static str>,
}

/// Log in with email and password. Every failure is the same 401. With MFA enrolled, the
/// answer asks for the second factor instead of giving tokens.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse)))]
async fn login(
    State(app): State<AppState>,
    ctx: RequestContext,
    Json(body): Json<LoginRequest>,
) -> Result<Json<LoginResponse>, Problem> {
    if body.email.len() > 254 || body.password.expose().len() > 1024 {
        // Still one uniform answer; skip hashing absurd inputs.
        return Err(DomainError::InvalidCredentials.into());
    }
    Ok(Json(match login::login(&app, &ctx, &body.email, &body.password).await? {
        LoginOutcome::Tokens(pair) => LoginResponse::Tokens(pair),
        LoginOutcome::MfaRequired { mfa_token, methods } => {
            LoginResponse::MfaRequired(MfaChallenge { mfa_required: true, mfa_token, methods })
        }
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    #[schema(value_type = String, format = Password)]
    refresh_token: Secret<String>,
}

/// Exchange a refresh token for a new pair; the presented token is spent.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair)))]
async fn refresh(
    State(app): State<AppState>,
    ctx: RequestContext,
    Json(body): Json<RefreshRequest>,
) -> Result<Json<TokenPair>, Problem> {
    Ok(Json(login::refresh(&app, &ctx, &body.refresh_token).await?))
}

/// End the current session.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", responses((status = 204)))]
async fn logout(
    State(app): State<AppState>,
    ctx: RequestContext,
    principal: Principal,
) -> Result<StatusCode, Problem> {
    login::logout(&app, &ctx, &principal).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct SessionView {
    id: SessionId,
    created_at: Timestamp,
    last_used_at: Timestamp,
    expires_at: Timestamp,
    ip: Option<String>,
    user_agent: Option<String>,
    /// The session of this request.
    current: bool,
}

#[derive(Serialize, ToSchema)]
pub struct SessionList {
    items: Vec<SessionView>,
    next_cursor: Option<String>,
}

/// The caller's live sessions.
#[utoipa::path(get, path = "/api/v1/auth/sessions", tag = "auth", responses((status = 200, body = SessionList)))]
async fn list_sessions(
    State(app): State<AppState>,
    principal: Principal,
) -> Result<Json<SessionList>, Problem> {
    let current = principal.session_id();
    let items = login::sessions(&app, &principal)
        .await?
        .into_iter()
        .map(|s| SessionView {
            id: s.id,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            expires_at: s.expires_at,
            ip: s.ip,
            user_agent: s.user_agent,
            current: current == Some(s.id),
        })
        .collect();
    Ok(Json(SessionList { items, next_cursor: None }))
}

/// Revoke one of the caller's sessions.
#[utoipa::path(delete, path = "/api/v1/auth/sessions/{id}", tag = "auth",
    params(("id" = SessionId, Path, description = "Session id")), responses((status = 204)))]
async fn delete_session(
    State(app): State<AppState>,
    ctx: RequestContext,
    principal: Principal,
    Id(id): Id<SessionId>,
) -> Result<StatusCode, Problem> {
    login::revoke_own_session(&app, &ctx, &principal, id, Action::SessionRevoke).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    #[schema(value_type = String, format = Password)]
    current_password: Secret<String>,
    #[schema(schema_with = crate::schema::new_password)]
    new_password: Secret<String>,
    /// End every other session of yours (default true).
    #[serde(default = "yes")]
    sign_out_other_sessions: bool,
    /// Also revoke every API key you created (default false).
    #[serde(default)]
    revoke_api_keys: bool,
}

fn yes() -> bool {
    true
}

/// Change the caller's password; by default every other session is revoked.
#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth", request_body = PasswordChange,
    responses((status = 204)))]
async fn change_password(
    State(app): State<AppState>,
    ctx: RequestContext,
    principal: Principal,
    Json(body): Json<PasswordChange>,
) -> Result<StatusCode, Problem> {
    let options = PasswordChangeOptions {
        sign_out_other_sessions: body.sign_out_other_sessions,
        revoke_api_keys: body.revoke_api_keys,
    };
    account::change_password(
        &app,
        &ctx,
        &principal,
        &body.current_password,
        &body.new_password,
        options,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    user_id: UserId,
    /// Null for the platform super-admin.
    tenant_id: Option<TenantId>,
    email: String,
    display_name: String,
    /// A tenant role, or `superadmin`.
    role: String,
    /// Whether the address was proven; accounts from open signup start unverified.
    email_verified: bool,
    /// Set when the caller authenticated with an API key.
    #[serde(skip_serializing_if = "Option::is_none")]
    api_key_id: Option<ApiKeyId>,
}

/// Who the caller is.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth", responses((status = 200, body = Me)))]
async fn me(principal: Principal) -> Json<Me> {
    Json(me_view(&principal))
}

/// The body of `GET /me`: from what authentication read, no database work.
fn me_view(principal: &Principal) -> Me {
    let profile = principal.profile();
    let role = match principal.role() {
        Some(role) => role.as_str().to_owned(),
        None => "superadmin".to_owned(),
    };
    Me {
        user_id: principal.user_id(),
        tenant_id: principal.tenant_id(),
        email: profile.email.clone(),
        display_name: profile.display_name.clone(),
        email_verified: profile.email_verified,
        role,
        api_key_id: match principal.credential() {
            super::Credential::ApiKey { id, .. } => Some(*id),
            super::Credential::Session(_) => None,
        },
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyRequest {
    #[schema(schema_with = crate::schema::line::<100>)]
    name: String,
    #[schema(min_items = 1)]
    scopes: Vec<Permission>,
    /// The key stops working then.
    expires_at: Option<Timestamp>,
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyView {
    id: ApiKeyId,
    name: String,
    /// Identifies the key (`bwk_<prefix>_…`); not secret.
    prefix: String,
    scopes: Vec<Permission>,
    created_by: UserId,
    created_at: Timestamp,
    expires_at: Option<Timestamp>,
    last_used_at: Option<Timestamp>,
    revoked_at: Option<Timestamp>,
}

impl From<db::ApiKeyRow> for ApiKeyView {
    fn from(row: db::ApiKeyRow) -> Self {
        ApiKeyView {
            id: row.id,
            name: row.name,
            prefix: row.prefix,
            scopes: api_keys::decode_scopes(&row.scopes),
            created_by: row.created_by,
            created_at: row.created_at,
            expires_at: row.expires_at,
            last_used_at: row.last_used_at,
            revoked_at: row.revoked_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyCreatedView {
    #[serde(flatten)]
    view: ApiKeyView,
    /// The key itself. Shown only in this response; store it now.
    key: String,
}

/// Create an API key (shown once). Its scopes must be a subset of the caller's permissions.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api-keys", request_body = ApiKeyRequest,
    responses((status = 201, body = ApiKeyCreatedView)))]
async fn create_api_key(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Json(body): Json<ApiKeyRequest>,
) -> Result<Response, Problem> {
    let new = NewApiKey { name: body.name, scopes: body.scopes, expires_at: body.expires_at };
    let created = api_keys::create(&app, &scope, &ctx, new).await?;
    let view = ApiKeyCreatedView { view: created.row.into(), key: created.key.expose().clone() };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// The tenant's API keys (never the secrets).
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api-keys", params(PageQuery),
    responses((status = 200, body = Page<ApiKeyView>)))]
async fn list_api_keys(
    State(app): State<AppState>,
    scope: TenantScope,
    page: crate::http::json::Query<PageQuery>,
) -> Result<Json<Page<ApiKeyView>>, Problem> {
    let limit = page.0.limit()?;
    let rows = api_keys::list(&app, &scope, page.0.after::<ApiKeyId>()?, limit + 1).await?;
    Ok(Json(Page::from_rows(rows, limit, |row| row.id.to_string(), ApiKeyView::from)))
}

/// Revoke an API key.
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "api-keys",
    params(("id" = ApiKeyId, Path, description = "API key id")), responses((status = 204)))]
async fn revoke_api_key(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<ApiKeyId>,
) -> Result<StatusCode, Problem> {
    api_keys::revoke(&app, &scope, &ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
