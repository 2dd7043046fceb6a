//! The pages before a session: create an account (a new tenant and its owner), and those
//! of the account mails and invitations: ask for a password reset, choose a new password,
//! verify an address, accept an invitation. The mailed links carry their token in
//! the URL fragment, which browsers never send to a server; the script copies it into the
//! form (without a script the form asks for it).

use axum::extract::State;
use axum::response::Response;
use minijinja::context;

use super::page::see_other;
use super::{Chrome, Form};
use crate::app::AppState;
use crate::audit::RequestContext;
use crate::crypto::Secret;
use crate::http::problem::Problem;
use crate::identity::account::{self, SignupInput};
use crate::identity::recovery;
use crate::tenancy::members;

/// A form page before a session: the template with nothing filled in.
pub fn blank(
    template: &'static str,
    title: &'static str,
) -> impl Fn(Chrome) -> std::future::Ready<Response> + Clone + Send + Sync + 'static {
    move |chrome: Chrome| std::future::ready(chrome.render(template, title, context! {}))
}

/// The API's signup: the same answer whether or not the address has an account.
pub async fn signup(
    State(app): State<AppState>,
    chrome: Chrome,
    ctx: RequestContext,
    form: Form,
) -> Response {
    let text = |name: &str| form.get(name).unwrap_or_default().trim().to_owned();
    let input = SignupInput {
        tenant_name: text("tenant_name"),
        email: text("email"),
        password: Secret::new(form.get("password").unwrap_or_default().to_owned()),
        display_name: text("display_name"),
    };
    answered(
        &chrome,
        "signup.html",
        "Create an account",
        account::signup(&app, &ctx, input).await,
        context! { done => true },
    )
}

/// The same answer for every well-formed address (the API's rule: nobody learns who has an
/// account).
pub async fn forgot(
    State(app): State<AppState>,
    chrome: Chrome,
    ctx: RequestContext,
    form: Form,
) -> Response {
    let email = form.get("email").unwrap_or_default();
    answered(
        &chrome,
        "forgot.html",
        "Reset your password",
        recovery::request_reset(&app, &ctx, email),
        context! { sent => true },
    )
}

pub async fn reset(
    State(app): State<AppState>,
    chrome: Chrome,
    ctx: RequestContext,
    form: Form,
) -> Response {
    let token = form.get("token").unwrap_or_default();
    let password = Secret::new(form.get("new_password").unwrap_or_default().to_owned());
    match recovery::confirm_reset(&app, &ctx, token, &password).await {
        Ok(()) => see_other("/login"),
        Err(err) => form_error(&chrome, "reset.html", "Choose a new password", err),
    }
}

pub async fn verify(
    State(app): State<AppState>,
    chrome: Chrome,
    ctx: RequestContext,
    form: Form,
) -> Response {
    let token = form.get("token").unwrap_or_default();
    answered(
        &chrome,
        "verify.html",
        "Verify your email",
        recovery::verify_email(&app, &ctx, token).await,
        context! { done => true },
    )
}

pub async fn accept(
    State(app): State<AppState>,
    chrome: Chrome,
    ctx: RequestContext,
    form: Form,
) -> Response {
    let token = Secret::new(form.get("token").unwrap_or_default().to_owned());
    let password = Secret::new(form.get("password").unwrap_or_default().to_owned());
    let name = form.get("display_name").unwrap_or_default().trim().to_owned();
    match members::accept(&app, &ctx, &token, &password, &name).await {
        Ok(_) => see_other("/login"),
        Err(err) => form_error(&chrome, "accept.html", "Join your team", err),
    }
}

/// The page with `done` when the API's answer is yes, else the form with its problem.
fn answered(
    chrome: &Chrome,
    template: &str,
    title: &str,
    result: Result<(), crate::error::DomainError>,
    done: minijinja::Value,
) -> Response {
    match result {
        Ok(()) => chrome.render(template, title, done),
        Err(err) => form_error(chrome, template, title, err),
    }
}

/// The form again with the API's problem (nothing typed is echoed: a token comes again
/// from the link, a password is typed again).
fn form_error(
    chrome: &Chrome,
    template: &str,
    title: &str,
    err: crate::error::DomainError,
) -> Response {
    let problem = Problem::from(err);
    let detail = match &problem.errors {
        Some(errors) if !errors.is_empty() => errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; "),
        _ => problem.detail.to_string(),
    };
    chrome.render_status(problem.status, template, title, context! { error => detail })
}
