//! `/api/v1/auth/mfa/*`, `/api/v1/auth/webauthn/*`, `/api/v1/auth/step-up` and
//! `/api/v1/tenant/security`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::routes;
use uuid::Uuid;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use super::{Factor, TotpSetup, webauthn};
use crate::app::AppState;
use crate::audit::RequestContext;
use crate::clock::Timestamp;
use crate::crypto::Secret;
use crate::error::DomainError;
use crate::http::Endpoint;
use crate::http::json::Json;
use crate::http::path::Id;
use crate::http::problem::Problem;
use crate::identity::Principal;
use crate::identity::login::TokenPair;
use crate::ratelimit::RateCategory;
use crate::tenancy::{Permission, TenantScope};

pub fn endpoints() -> Vec<Endpoint> {
    use RateCategory::*;
    vec![
        Endpoint::session(routes!(totp_setup), Sensitive).mfa_exempt(),
        Endpoint::session(routes!(totp_confirm), Sensitive).mfa_exempt(),
        Endpoint::session(routes!(totp_remove), Sensitive).step_up(),
        Endpoint::session(routes!(backup_codes), Sensitive).step_up(),
        Endpoint::public(routes!(mfa_verify), Auth),
        Endpoint::session(routes!(webauthn_register_start), Sensitive).mfa_exempt(),
        Endpoint::session(routes!(webauthn_register_finish), Sensitive).mfa_exempt(),
        Endpoint::public(routes!(webauthn_login_start), Auth),
        Endpoint::public(routes!(webauthn_login_finish), Auth),
        Endpoint::session(routes!(list_passkeys), Read),
        Endpoint::session(routes!(delete_passkey), Sensitive).step_up(),
        // Reachable while enrolment is required: a password proof comes before enrolling.
        Endpoint::session(routes!(step_up), Sensitive).mfa_exempt(),
        Endpoint::session(routes!(step_up_webauthn_start), Sensitive),
        Endpoint::permission(routes!(get_security), Permission::TenantManage, Read),
        Endpoint::permission(routes!(set_security), Permission::TenantManage, Sensitive).step_up(),
    ]
}

/// Start TOTP enrolment: a new seed, not active until confirmed.
#[utoipa::path(post, path = "/api/v1/auth/mfa/totp/setup", tag = "mfa", responses((status = 200, body = TotpSetup)))]
async fn totp_setup(
    State(app): State<AppState>,
    principal: Principal,
) -> Result<Json<TotpSetup>, Problem> {
    Ok(Json(super::setup_totp(&app, &principal).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    /// The 6-digit code of the authenticator app.
    #[schema(value_type = String)]
    code: Secret<String>,
}

#[derive(Serialize, ToSchema)]
pub struct BackupCodes {
    /// Ten single-use codes. Shown only here; store them safely.
    backup_codes: Vec<String>,
}

/// Confirm TOTP with a first code; returns the backup codes.
#[utoipa::path(post, path = "/api/v1/auth/mfa/totp/confirm", tag = "mfa", request_body = CodeBody,
    responses((status = 200, body = BackupCodes)))]
async fn totp_confirm(
    State(app): State<AppState>,
    ctx: RequestContext,
    principal: Principal,
    Json(body): Json<CodeBody>,
) -> Result<Json<BackupCodes>, Problem> {
    let backup_codes = super::confirm_totp(&app, &ctx, &principal, body.code.expose()).await?;
    Ok(Json(BackupCodes { backup_codes }))
}

/// Remove TOTP (and the backup codes); other sessions end. Needs a recent step-up.
#[utoipa::path(delete, path = "/api/v1/auth/mfa/totp", tag = "mfa", responses((status = 204)))]
async fn totp_remove(
    State(app): State<AppState>,
    ctx: RequestContext,
    principal: Principal,
) -> Result<StatusCode, Problem> {
    super::remove_totp(&app, &ctx, &principal).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// New backup codes; the old ones stop working. Needs a recent step-up.
#[utoipa::path(post, path = "/api/v1/auth/mfa/backup-codes", tag = "mfa", responses((status = 200, body = BackupCodes)))]
async fn backup_codes(
    State(app): State<AppState>,
    ctx: RequestContext,
    principal: Principal,
) -> Result<Json<BackupCodes>, Problem> {
    let backup_codes = super::regenerate_backup_codes(&app, &ctx, &principal).await?;
    Ok(Json(BackupCodes { backup_codes }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FactorBody {
    #[schema(value_type = Option<String>)]
    code: Option<Secret<String>>,
    #[schema(value_type = Option<String>)]
    backup_code: Option<Secret<String>>,
}

impl FactorBody {
    fn factor(self) -> Result<Factor, DomainError> {
        match (self.code, self.backup_code) {
            (Some(code), None) => Ok(Factor::Totp(code.expose().clone())),
            (None, Some(code)) => Ok(Factor::BackupCode(code.expose().clone())),
            _ => Err(DomainError::invalid("code", "send exactly one of code and backup_code")),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    mfa_token: Secret<String>,
    code: Option<Secret<String>>,
    backup_code: Option<Secret<String>>,
}

/// The ticket and exactly one of `code` and `backup_code`.
impl utoipa::PartialSchema for VerifyBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use crate::schema::{one_of_objects, token};
        one_of_objects(&[
            &[("mfa_token", token()), ("code", token())],
            &[("mfa_token", token()), ("backup_code", token())],
        ])
        .into()
    }
}

impl ToSchema for VerifyBody {}

/// Complete a login with the MFA ticket and a TOTP or backup code.
#[utoipa::path(post, path = "/api/v1/auth/mfa/verify", tag = "mfa", request_body = VerifyBody,
    responses((status = 200, body = TokenPair)))]
async fn mfa_verify(
    State(app): State<AppState>,
    ctx: RequestContext,
    Json(body): Json<VerifyBody>,
) -> Result<Json<TokenPair>, Problem> {
    let factor = FactorBody { code: body.code, backup_code: body.backup_code }.factor()?;
    Ok(Json(super::verify_login(&app, &ctx, &body.mfa_token, &factor).await?))
}

/// Start registering a passkey (a step-up is needed when one exists already).
#[utoipa::path(post, path = "/api/v1/auth/webauthn/register/start", tag = "mfa",
    responses((status = 200, description = "`{challenge_id, publicKey}`: the PublicKeyCredentialCreationOptions", body = Object)))]
async fn webauthn_register_start(
    State(app): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, Problem> {
    Ok(Json(webauthn::register_start(&app, &principal).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterFinish {
    challenge_id: Uuid,
    /// The browser's PublicKeyCredential, in its standard JSON form (base64url fields).
    #[schema(schema_with = crate::schema::webauthn_credential)]
    credential: RegisterPublicKeyCredential,
    /// A label for the passkey.
    #[schema(schema_with = crate::schema::line_or_null::<100>)]
    name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PasskeyCreated {
    id: Uuid,
}

/// Finish registering a passkey.
#[utoipa::path(post, path = "/api/v1/auth/webauthn/register/finish", tag = "mfa", request_body = RegisterFinish,
    responses((status = 201, body = PasskeyCreated)))]
async fn webauthn_register_finish(
    State(app): State<AppState>,
    ctx: RequestContext,
    principal: Principal,
    Json(body): Json<RegisterFinish>,
) -> Result<Response, Problem> {
    let name = body.name.as_deref().unwrap_or("passkey").trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(DomainError::invalid("name", "must be 1 to 100 characters").into());
    }
    let id = webauthn::register_finish(
        &app,
        &ctx,
        &principal,
        body.challenge_id,
        &body.credential,
        name,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(PasskeyCreated { id })).into_response())
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct LoginStart {
    /// The ticket of a password login (second factor); omit for a passwordless login.
    #[schema(value_type = Option<String>)]
    mfa_token: Option<Secret<String>>,
}

/// Start a passkey login: as the second factor (with `mfa_token`) or passwordless.
#[utoipa::path(post, path = "/api/v1/auth/webauthn/login/start", tag = "mfa", request_body = LoginStart,
    responses((status = 200, description = "`{challenge_id, publicKey}`: the PublicKeyCredentialRequestOptions", body = Object)))]
async fn webauthn_login_start(
    State(app): State<AppState>,
    Json(body): Json<LoginStart>,
) -> Result<Json<Value>, Problem> {
    Ok(Json(webauthn::login_start(&app, body.mfa_token.as_ref()).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssertionBody {
    challenge_id: Uuid,
    /// The browser's PublicKeyCredential (assertion), in its standard JSON form.
    #[schema(schema_with = crate::schema::webauthn_credential)]
    credential: PublicKeyCredential,
}

/// Finish a passkey login; returns the token pair.
#[utoipa::path(post, path = "/api/v1/auth/webauthn/login/finish", tag = "mfa", request_body = AssertionBody,
    responses((status = 200, body = TokenPair)))]
async fn webauthn_login_finish(
    State(app): State<AppState>,
    ctx: RequestContext,
    Json(body): Json<AssertionBody>,
) -> Result<Json<TokenPair>, Problem> {
    Ok(Json(webauthn::login_finish(&app, &ctx, body.challenge_id, &body.credential).await?))
}

#[derive(Serialize, ToSchema)]
pub struct PasskeyView {
    id: Uuid,
    name: String,
    created_at: Timestamp,
    last_used_at: Option<Timestamp>,
}

#[derive(Serialize, ToSchema)]
pub struct PasskeyList {
    items: Vec<PasskeyView>,
    next_cursor: Option<String>,
}

/// The caller's passkeys.
#[utoipa::path(get, path = "/api/v1/auth/webauthn/credentials", tag = "mfa", responses((status = 200, body = PasskeyList)))]
async fn list_passkeys(
    State(app): State<AppState>,
    principal: Principal,
) -> Result<Json<PasskeyList>, Problem> {
    let items = webauthn::passkeys_of(&app, &principal)
        .await?
        .into_iter()
        .map(|r| PasskeyView {
            id: r.id,
            name: r.name,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
        })
        .collect();
    Ok(Json(PasskeyList { items, next_cursor: None }))
}

/// Remove a passkey. Needs a recent step-up.
#[utoipa::path(delete, path = "/api/v1/auth/webauthn/credentials/{id}", tag = "mfa",
    params(("id" = Uuid, Path, description = "Passkey id")), responses((status = 204)))]
async fn delete_passkey(
    State(app): State<AppState>,
    ctx: RequestContext,
    principal: Principal,
    Id(id): Id<Uuid>,
) -> Result<StatusCode, Problem> {
    webauthn::remove(&app, &ctx, &principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepUpBody {
    code: Option<Secret<String>>,
    backup_code: Option<Secret<String>>,
    /// The account's password: a weaker proof that only unlocks enrolling a first factor
    /// (never an operation that needs a second-factor step-up).
    password: Option<Secret<String>>,
    /// With `credential`: a passkey assertion for the challenge of `/auth/step-up/webauthn/start`.
    challenge_id: Option<Uuid>,
    credential: Option<PublicKeyCredential>,
}

/// Exactly one proof: `code`, `backup_code`, `password`, or `challenge_id` with `credential`.
impl utoipa::PartialSchema for StepUpBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use crate::schema::{one_of_objects, password, token, uuid, webauthn_credential};
        one_of_objects(&[
            &[("code", token())],
            &[("backup_code", token())],
            &[("password", password())],
            &[("challenge_id", uuid()), ("credential", webauthn_credential())],
        ])
        .into()
    }
}

impl ToSchema for StepUpBody {}

/// Confirm a second factor now: sensitive operations are allowed for the next 10 minutes. With
/// `password` instead, the session may enrol a first factor (and nothing else) for as long.
#[utoipa::path(post, path = "/api/v1/auth/step-up", tag = "mfa", request_body = StepUpBody, responses((status = 204)))]
async fn step_up(
    State(app): State<AppState>,
    ctx: RequestContext,
    principal: Principal,
    Json(body): Json<StepUpBody>,
) -> Result<StatusCode, Problem> {
    match (body.challenge_id, body.credential, body.password) {
        (Some(challenge), Some(credential), None) => {
            webauthn::step_up_finish(&app, &ctx, &principal, challenge, &credential).await?;
        }
        (None, None, Some(password)) if body.code.is_none() && body.backup_code.is_none() => {
            super::prove_password(&app, &ctx, &principal, &password).await?;
        }
        (None, None, None) => {
            let factor = FactorBody { code: body.code, backup_code: body.backup_code }.factor()?;
            super::step_up(&app, &ctx, &principal, &factor).await?;
        }
        _ => {
            return Err(DomainError::invalid(
                "credential",
                "send one proof: code, backup_code, password, or challenge_id with credential",
            )
            .into());
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A passkey challenge for a step-up.
#[utoipa::path(post, path = "/api/v1/auth/step-up/webauthn/start", tag = "mfa",
    responses((status = 200, description = "`{challenge_id, publicKey}`", body = Object)))]
async fn step_up_webauthn_start(
    State(app): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, Problem> {
    Ok(Json(webauthn::step_up_start(&app, &principal).await?))
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MfaPolicy {
    None,
    Admins,
    All,
}

impl MfaPolicy {
    fn as_str(self) -> &'static str {
        match self {
            MfaPolicy::None => "none",
            MfaPolicy::Admins => "admins",
            MfaPolicy::All => "all",
        }
    }

    fn parse(text: &str) -> MfaPolicy {
        match text {
            "admins" => MfaPolicy::Admins,
            "all" => MfaPolicy::All,
            _ => MfaPolicy::None,
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantSecurity {
    /// Who must use a second factor: nobody, owners and admins, or everyone.
    mfa_required: MfaPolicy,
}

/// The tenant's security settings.
#[utoipa::path(get, path = "/api/v1/tenant/security", tag = "tenant", responses((status = 200, body = TenantSecurity)))]
async fn get_security(
    State(app): State<AppState>,
    scope: TenantScope,
) -> Result<Json<TenantSecurity>, Problem> {
    let policy = super::policy::tenant_policy(&app, &scope).await?;
    Ok(Json(TenantSecurity { mfa_required: MfaPolicy::parse(&policy) }))
}

/// Change the tenant's security settings. Needs a recent step-up.
#[utoipa::path(patch, path = "/api/v1/tenant/security", tag = "tenant", request_body = TenantSecurity,
    responses((status = 200, body = TenantSecurity)))]
async fn set_security(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Json(body): Json<TenantSecurity>,
) -> Result<Json<TenantSecurity>, Problem> {
    super::policy::set_tenant_policy(&app, &scope, &ctx, body.mfa_required.as_str()).await?;
    Ok(Json(body))
}
