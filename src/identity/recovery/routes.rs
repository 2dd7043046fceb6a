//! `/api/v1/auth/verify-email*` and `/api/v1/auth/password-reset*` over `recovery`.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::audit::RequestContext;
use crate::crypto::Secret;
use crate::http::Endpoint;
use crate::http::json::Json;
use crate::http::problem::Problem;
use crate::identity::Principal;
use crate::ratelimit::RateCategory;

pub fn endpoints() -> Vec<Endpoint> {
    use RateCategory::*;
    vec![
        Endpoint::public(routes!(verify_email), Auth),
        Endpoint::session(routes!(resend_verification), Sensitive).mfa_exempt(),
        Endpoint::public(routes!(request_reset), Auth),
        Endpoint::public(routes!(confirm_reset), Auth),
    ]
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    /// The token of the mailed link (after `#token=`).
    #[schema(min_length = 1, max_length = 200)]
    token: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    #[schema(format = Email, max_length = 254)]
    email: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirm {
    #[schema(min_length = 1, max_length = 200)]
    token: String,
    #[schema(schema_with = crate::schema::new_password)]
    new_password: Secret<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RequestAccepted {
    /// Always `accepted`.
    status: &'static str,
}

/// Prove the account's address with the mailed link's token.
#[utoipa::path(post, path = "/api/v1/auth/verify-email", tag = "auth", request_body = TokenBody,
    responses((status = 204)))]
async fn verify_email(
    State(app): State<AppState>,
    ctx: RequestContext,
    Json(body): Json<TokenBody>,
) -> Result<StatusCode, Problem> {
    super::verify_email(&app, &ctx, &body.token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Mail the caller another verification link (at most one a minute; none once verified).
#[utoipa::path(post, path = "/api/v1/auth/verify-email/resend", tag = "auth",
    responses((status = 202, body = RequestAccepted)))]
async fn resend_verification(
    State(app): State<AppState>,
    principal: Principal,
) -> Result<(StatusCode, Json<RequestAccepted>), Problem> {
    super::resend_verification(&app, &principal).await?;
    Ok((StatusCode::ACCEPTED, Json(RequestAccepted { status: "accepted" })))
}

/// Ask for a password-reset link. 202 whatever the address: nobody learns from it who has
/// an account.
#[utoipa::path(post, path = "/api/v1/auth/password-reset", tag = "auth",
    request_body = ResetRequest, responses((status = 202, body = RequestAccepted)))]
async fn request_reset(
    State(app): State<AppState>,
    ctx: RequestContext,
    Json(body): Json<ResetRequest>,
) -> Result<(StatusCode, Json<RequestAccepted>), Problem> {
    super::request_reset(&app, &ctx, &body.email)?;
    Ok((StatusCode::ACCEPTED, Json(RequestAccepted { status: "accepted" })))
}

/// Choose a new password with the mailed link's token (single use, 30 minutes). Every
/// session of the account ends.
#[utoipa::path(post, path = "/api/v1/auth/password-reset/confirm", tag = "auth",
    request_body = ResetConfirm, responses((status = 204)))]
async fn confirm_reset(
    State(app): State<AppState>,
    ctx: RequestContext,
    Json(body): Json<ResetConfirm>,
) -> Result<StatusCode, Problem> {
    super::confirm_reset(&app, &ctx, &body.token, &body.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}
