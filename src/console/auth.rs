//! Signing in and out, and stepping up, through the API's own functions: the same lockout,
//! rate limits, MFA policy and audit events. A sign-in ends by adopting the session it
//! created as a console session (`identity::cookie::adopt`).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::context;
use serde::Deserialize;

use super::page::{safe_next, see_other};
use super::{Chrome, Form, with_cookie};
use crate::app::AppState;
use crate::audit::RequestContext;
use crate::crypto::Secret;
use crate::error::DomainError;
use crate::http::problem::Problem;
use crate::identity::login::{self, LoginOutcome, TokenPair};
use crate::identity::mfa::{self, Factor};
use crate::identity::{Credential, Principal, cookie};

#[derive(Deserialize)]
pub struct Next {
    next: Option<String>,
}

pub async fn login_page(chrome: Chrome, Query(q): Query<Next>) -> Response {
    let next = safe_next(q.next.as_deref());
    if chrome.principal.is_some() {
        return see_other(next);
    }
    chrome.render("login.html", "Sign in", context! { next => next })
}

pub async fn login(
    State(app): State<AppState>,
    chrome: Chrome,
    ctx: RequestContext,
    form: Form,
) -> Response {
    let next = safe_next(form.get("next")).to_owned();
    let email = form.get("email").unwrap_or_default().to_owned();
    let password = Secret::new(form.get("password").unwrap_or_default().to_owned());
    match login::login(&app, &ctx, &email, &password).await {
        Ok(LoginOutcome::Tokens(pair)) => signed_in(&app, &chrome, &pair, &next).await,
        Ok(LoginOutcome::MfaRequired { mfa_token, methods }) => chrome.render(
            "login_mfa.html",
            "Second factor",
            context! { mfa_token => mfa_token, methods => methods, next => next },
        ),
        Err(err) => {
            let problem = Problem::from(err);
            let values =
                context! { next => next, email => email, error => problem.detail.to_string() };
            chrome.render_status(problem.status, "login.html", "Sign in", values)
        }
    }
}

pub async fn login_mfa(
    State(app): State<AppState>,
    chrome: Chrome,
    ctx: RequestContext,
    form: Form,
) -> Response {
    let next = safe_next(form.get("next")).to_owned();
    let ticket = Secret::new(form.get("mfa_token").unwrap_or_default().to_owned());
    let factor = factor(&form);
    match mfa::verify_login(&app, &ctx, &ticket, &factor).await {
        Ok(pair) => signed_in(&app, &chrome, &pair, &next).await,
        Err(DomainError::Unauthenticated(_)) => {
            // The ticket is spent or expired: start again.
            see_other(&format!("/login?next={}", urlencode(&next)))
        }
        Err(err) => {
            let problem = Problem::from(err);
            let values = context! {
                mfa_token => ticket.expose(), next => next, error => problem.detail.to_string()
            };
            chrome.render_status(problem.status, "login_mfa.html", "Second factor", values)
        }
    }
}

/// A 6-digit `code` is the authenticator's; anything else is a backup code.
fn factor(form: &Form) -> Factor {
    let code = form.get("code").unwrap_or_default().trim().to_owned();
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        Factor::Totp(code)
    } else {
        Factor::BackupCode(code)
    }
}

async fn signed_in(app: &AppState, chrome: &Chrome, pair: &TokenPair, next: &str) -> Response {
    match cookie::adopt(app, &pair.access_token).await {
        Ok(issued) => with_cookie(app, see_other(next), Some(issued.value.expose())),
        Err(err) => chrome.problem(err.into()),
    }
}

pub async fn logout(
    State(app): State<AppState>,
    chrome: Chrome,
    ctx: RequestContext,
    principal: Principal,
) -> Response {
    match login::logout(&app, &ctx, &principal).await {
        Ok(()) => with_cookie(&app, see_other("/login"), None),
        Err(err) => chrome.problem(err.into()),
    }
}

pub async fn step_up_page(chrome: Chrome, Query(q): Query<Next>) -> Response {
    let next = safe_next(q.next.as_deref());
    chrome.render("step_up.html", "Confirm it is you", context! { next => next })
}

/// A step-up, then a new cookie: the session id a page saw before is not the one that may
/// now reveal and change sensitive things.
pub async fn step_up(
    State(app): State<AppState>,
    chrome: Chrome,
    ctx: RequestContext,
    principal: Principal,
    form: Form,
) -> Response {
    let next = safe_next(form.get("next")).to_owned();
    let Credential::Session(sid) = *principal.credential() else {
        return chrome.problem(Problem::for_status(StatusCode::FORBIDDEN));
    };
    let stepped = async {
        mfa::step_up(&app, &ctx, &principal, &factor(&form)).await?;
        cookie::issue(&app, sid).await
    };
    match stepped.await {
        Ok(issued) => with_cookie(&app, see_other(&next), Some(issued.value.expose())),
        Err(err) => {
            let problem = Problem::from(err);
            let values = context! { next => next, error => problem.detail.to_string() };
            chrome.render_status(problem.status, "step_up.html", "Confirm it is you", values)
        }
    }
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
