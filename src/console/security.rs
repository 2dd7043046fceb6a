//! "My security": TOTP enrolment with its QR code drawn on the server as SVG, backup codes,
//! passkeys; and the passkey ceremonies of sign-in and enrolment, which the script runs
//! through `navigator.credentials` against these JSON routes. Every rule is the API's own
//! (`identity::mfa`): a first factor needs a fresh password proof, a further one a step-up.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use minijinja::{Value as Page, context};
use qrcode::QrCode;
use qrcode::render::svg;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use super::page::{safe_next, value};
use super::{Chrome, Form, done, with_cookie};
use crate::app::AppState;
use crate::audit::RequestContext;
use crate::crypto::Secret;
use crate::error::DomainError;
use crate::http::path::Id;
use crate::http::problem::Problem;
use crate::identity::mfa::{self, webauthn};
use crate::identity::{Principal, cookie};

const TITLE: &str = "My security";

pub async fn show(
    State(app): State<AppState>,
    chrome: Chrome,
    principal: Principal,
) -> Result<Response, Problem> {
    overview(&app, &chrome, &principal, context! {}).await
}

async fn overview(
    app: &AppState,
    chrome: &Chrome,
    principal: &Principal,
    extra: Page,
) -> Result<Response, Problem> {
    let methods = mfa::methods(app, principal.user_id()).await?;
    let passkeys: Vec<Value> = webauthn::passkeys_of(app, principal)
        .await?
        .into_iter()
        .map(|p| json!({"id": p.id, "name": p.name, "created_at": p.created_at, "last_used_at": p.last_used_at}))
        .collect();
    let values = context! {
        totp => methods.contains(&"totp"),
        passkeys => value(&passkeys),
        passkeys_available => app.identity().mfa.webauthn.is_some(),
        ..extra
    };
    Ok(chrome.render("security.html", TITLE, values))
}

/// The password again: what lets a session without a factor enrol its first one.
pub async fn prove_password(
    State(app): State<AppState>,
    chrome: Chrome,
    ctx: RequestContext,
    principal: Principal,
    form: Form,
) -> Result<Response, Problem> {
    let password = Secret::new(form.get("password").unwrap_or_default().to_owned());
    match mfa::prove_password(&app, &ctx, &principal, &password).await {
        Ok(()) => Ok(done("/account/security")),
        Err(err) => {
            let problem = Problem::from(err);
            let error = context! { password_error => problem.detail.to_string() };
            overview(&app, &chrome, &principal, error).await
        }
    }
}

/// A new TOTP seed (inactive until confirmed), as a QR code and as text.
pub async fn totp_setup(
    State(app): State<AppState>,
    chrome: Chrome,
    principal: Principal,
) -> Result<Response, Problem> {
    let setup = match mfa::setup_totp(&app, &principal).await {
        Ok(setup) => setup,
        // Without a factor, the proof asked for is the password, on this page (the step-up
        // page takes codes this user does not have).
        Err(DomainError::StepUpRequired)
            if mfa::methods(&app, principal.user_id()).await?.is_empty() =>
        {
            let ask = context! { password_error => "Confirm your password first." };
            let mut page = overview(&app, &chrome, &principal, ask).await?;
            *page.status_mut() = StatusCode::FORBIDDEN;
            return Ok(page);
        }
        Err(err) => return Err(err.into()),
    };
    let qr = QrCode::new(setup.otpauth_uri.as_bytes())
        .map_err(|err| Problem::from(DomainError::Internal(err.to_string())))?
        .render::<svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    // Inline in the page: the XML prolog has no place there.
    let qr = qr.find("<svg").map_or(qr.as_str(), |at| &qr[at..]).to_owned();
    Ok(chrome.render(
        "totp.html",
        "Set up an authenticator app",
        // The SVG is ours, drawn from the URI's bytes: markup we made, not input.
        context! { qr => Page::from_safe_string(qr), secret => setup.secret },
    ))
}

pub async fn totp_confirm(
    State(app): State<AppState>,
    chrome: Chrome,
    ctx: RequestContext,
    principal: Principal,
    form: Form,
) -> Result<Response, Problem> {
    let code = form.get("code").unwrap_or_default();
    match mfa::confirm_totp(&app, &ctx, &principal, code).await {
        Ok(codes) => Ok(backup_codes_page(&chrome, &codes)),
        Err(err) => {
            let problem = Problem::from(err);
            let values = context! { error => problem.detail.to_string(), secret => "" };
            Ok(chrome.render_status(
                problem.status,
                "totp.html",
                "Set up an authenticator app",
                values,
            ))
        }
    }
}

pub async fn totp_remove(
    State(app): State<AppState>,
    ctx: RequestContext,
    principal: Principal,
) -> Result<Response, Problem> {
    mfa::remove_totp(&app, &ctx, &principal).await?;
    Ok(done("/account/security"))
}

pub async fn backup_codes(
    State(app): State<AppState>,
    chrome: Chrome,
    ctx: RequestContext,
    principal: Principal,
) -> Result<Response, Problem> {
    let codes = mfa::regenerate_backup_codes(&app, &ctx, &principal).await?;
    Ok(backup_codes_page(&chrome, &codes))
}

/// Shown once (the page is `no-store` like every signed-in page).
fn backup_codes_page(chrome: &Chrome, codes: &[String]) -> Response {
    chrome.render("backup_codes.html", "Backup codes", context! { codes => value(codes) })
}

pub async fn passkey_remove(
    State(app): State<AppState>,
    ctx: RequestContext,
    principal: Principal,
    Id(id): Id<Uuid>,
) -> Result<Response, Problem> {
    webauthn::remove(&app, &ctx, &principal, id).await?;
    Ok(done("/account/security"))
}

// --- the passkey ceremonies, for the script ------------------------------------------

pub async fn passkey_register_start(
    State(app): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, Problem> {
    Ok(Json(webauthn::register_start(&app, &principal).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterFinish {
    challenge_id: Uuid,
    credential: RegisterPublicKeyCredential,
    name: Option<String>,
}

pub async fn passkey_register_finish(
    State(app): State<AppState>,
    ctx: RequestContext,
    principal: Principal,
    Json(body): Json<RegisterFinish>,
) -> Result<Json<Value>, Problem> {
    let name = body.name.unwrap_or_else(|| "Passkey".to_owned());
    webauthn::register_finish(&app, &ctx, &principal, body.challenge_id, &body.credential, &name)
        .await?;
    Ok(Json(json!({"redirect": "/account/security"})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginStart {
    /// The sign-in's MFA ticket when the passkey is the second factor.
    mfa_token: Option<String>,
}

pub async fn passkey_login_start(
    State(app): State<AppState>,
    Json(body): Json<LoginStart>,
) -> Result<Json<Value>, Problem> {
    let ticket = body.mfa_token.filter(|t| !t.is_empty()).map(Secret::new);
    Ok(Json(webauthn::login_start(&app, ticket.as_ref()).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginFinish {
    challenge_id: Uuid,
    credential: PublicKeyCredential,
    next: Option<String>,
}

/// A passkey sign-in, adopted as a console session like any other.
pub async fn passkey_login_finish(
    State(app): State<AppState>,
    ctx: RequestContext,
    Json(body): Json<LoginFinish>,
) -> Result<Response, Problem> {
    let pair = webauthn::login_finish(&app, &ctx, body.challenge_id, &body.credential).await?;
    let issued = cookie::adopt(&app, &pair.access_token).await?;
    let next = safe_next(body.next.as_deref());
    let response = (StatusCode::OK, Json(json!({"redirect": next}))).into_response();
    Ok(with_cookie(&app, response, Some(issued.value.expose())))
}
