//! Email: sending domains with the DNS records to publish (and their verification), the
//! messages sent (and a form to send one), the suppression list. Each page stands for the
//! API route it names (`console::mirror`).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::context;
use serde::Deserialize;
use serde_json::json;

use super::page::value;
use super::records::{self, Field, Kind, field};
use super::{Chrome, Form, done};
use crate::app::AppState;
use crate::audit::RequestContext;
use crate::email::domains;
use crate::email::messages::{self, NewMessage};
use crate::email::suppressions::{self, NewSuppression};
use crate::http::path::Id;
use crate::http::problem::Problem;
use crate::ids::{EmailDomainId, SuppressionId};
use crate::tenancy::TenantScope;

const COMPOSE: &[Field] = &[
    field("from", "From (on a verified domain)", Kind::Email),
    field("to", "To (addresses, comma-separated)", Kind::Text),
    field("subject", "Subject", Kind::Text),
    field("text", "Message", Kind::LongText),
];

pub async fn domains_page(
    State(app): State<AppState>,
    chrome: Chrome,
    scope: TenantScope,
) -> Result<Response, Problem> {
    let domains = domains::list(&app, &scope).await?;
    Ok(chrome.render(
        "email_domains.html",
        "Email domains",
        context! { domains => value(&domains) },
    ))
}

pub async fn add_domain(
    State(app): State<AppState>,
    scope: TenantScope,
    ctx: RequestContext,
    form: Form,
) -> Result<Response, Problem> {
    let name = form.get("domain").unwrap_or_default().trim();
    let domain = domains::create(&app, &scope, &ctx, name).await?;
    Ok(done(&format!("/email/domains/{}", domain.id)))
}

pub async fn domain_page(
    State(app): State<AppState>,
    chrome: Chrome,
    scope: TenantScope,
    Id(id): Id<EmailDomainId>,
) -> Result<Response, Problem> {
    let domain = domains::get(&app, &scope, id).await?;
    let title = domain.domain.clone();
    Ok(chrome.render("email_domain.html", &title, context! { domain => value(&domain) }))
}

pub async fn verify_domain(
    State(app): State<AppState>,
    chrome: Chrome,
    scope: TenantScope,
    ctx: RequestContext,
    Id(id): Id<EmailDomainId>,
) -> Result<Response, Problem> {
    let verification = domains::verify(&app, &scope, &ctx, id).await?;
    let domain = domains::get(&app, &scope, id).await?;
    let title = domain.domain.clone();
    Ok(chrome.render(
        "email_domain.html",
        &title,
        context! { domain => value(&domain), verification => value(&verification) },
    ))
}

pub async fn delete_domain(
    State(app): State<AppState>,
    scope: TenantScope,
    ctx: RequestContext,
    Id(id): Id<EmailDomainId>,
) -> Result<Response, Problem> {
    domains::delete(&app, &scope, &ctx, id).await?;
    Ok(done("/email/domains"))
}

#[derive(Deserialize)]
pub struct Cursor {
    cursor: Option<String>,
}

pub async fn messages_page(
    State(app): State<AppState>,
    chrome: Chrome,
    scope: TenantScope,
    Query(query): Query<Cursor>,
) -> Result<Response, Problem> {
    let page = messages::list(&app, &scope, None, None, query.cursor.as_deref()).await?;
    Ok(chrome.render(
        "email_messages.html",
        "Messages",
        context! { messages => value(&page.items), next_cursor => page.next_cursor },
    ))
}

pub async fn compose(chrome: Chrome) -> Response {
    let values = serde_json::Value::Null;
    records::render_form(
        &chrome,
        "New message",
        "/email/messages",
        COMPOSE,
        &values,
        None,
        StatusCode::OK,
    )
}

pub async fn send(
    State(app): State<AppState>,
    chrome: Chrome,
    scope: TenantScope,
    ctx: RequestContext,
    form: Form,
) -> Result<Response, Problem> {
    let typed = records::body_of(&form, COMPOSE);
    let to: Vec<&str> = form
        .get("to")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .collect();
    let body = json!({"from": typed["from"], "to": to, "subject": typed["subject"], "text": typed["text"]});
    let sent = match records::parse::<NewMessage>(&body) {
        Ok(message) => messages::send(&app, &scope, &ctx, message).await,
        Err(err) => Err(err),
    };
    match sent {
        Ok(_) => Ok(done("/email/messages")),
        Err(err) => {
            records::form_problem(&chrome, "New message", "/email/messages", COMPOSE, &typed, err)
        }
    }
}

#[derive(Deserialize)]
pub struct SuppressionQuery {
    email: Option<String>,
    cursor: Option<String>,
}

pub async fn suppressions_page(
    State(app): State<AppState>,
    chrome: Chrome,
    scope: TenantScope,
    Query(query): Query<SuppressionQuery>,
) -> Result<Response, Problem> {
    let email = query.email.filter(|e| !e.trim().is_empty());
    let page =
        suppressions::list(&app, &scope, email.as_deref(), None, query.cursor.as_deref()).await?;
    Ok(chrome.render(
        "email_suppressions.html",
        "Suppressions",
        context! { suppressions => value(&page.items), next_cursor => page.next_cursor, email => email },
    ))
}

pub async fn suppress(
    State(app): State<AppState>,
    scope: TenantScope,
    ctx: RequestContext,
    form: Form,
) -> Result<Response, Problem> {
    let email = form.get("email").unwrap_or_default().trim().to_owned();
    suppressions::create(&app, &scope, &ctx, NewSuppression { email, expires_at: None }).await?;
    Ok(done("/email/suppressions"))
}

pub async fn unsuppress(
    State(app): State<AppState>,
    scope: TenantScope,
    ctx: RequestContext,
    Id(id): Id<SuppressionId>,
) -> Result<Response, Problem> {
    suppressions::delete(&app, &scope, &ctx, id).await?;
    Ok(done("/email/suppressions"))
}
