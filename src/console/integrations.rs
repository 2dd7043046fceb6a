//! Integrations: the connections the user can see, connect buttons, disconnect.
//!
//! The OAuth round trip and the `SameSite=Strict` cookie: the provider sends the browser
//! back with a cross-site navigation, which carries no strict cookie. So the redirect URI
//! (`/integrations/{provider}/callback`) is a public page that only forwards `code` and
//! `state` with a same-site navigation (a `<meta http-equiv="refresh">`, no script) to
//! `/integrations/{provider}/finish`, where the cookie arrives and the API's own callback
//! (`integrations::callback`: state bound to this session, single use, PKCE) runs.
//! Connecting answers with a page that moves on to the provider the same way, since
//! `form-action 'self'` forbids a form's redirect to another site.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use minijinja::context;
use serde::Deserialize;

use super::page::{safe_next, value};
use super::{Chrome, Form, done};
use crate::app::AppState;
use crate::audit::RequestContext;
use crate::error::DomainError;
use crate::http::problem::Problem;
use crate::integrations::{self, ConnectRequest, Provider};
use crate::tenancy::TenantScope;

fn provider(name: &str) -> Result<Provider, Problem> {
    Provider::parse(name).ok_or_else(|| Problem::from(DomainError::NotFound("integration")))
}

#[derive(Deserialize)]
pub struct Shown {
    connected: Option<String>,
}

pub async fn page(
    State(app): State<AppState>,
    chrome: Chrome,
    scope: TenantScope,
    Query(shown): Query<Shown>,
) -> Result<Response, Problem> {
    let list = integrations::list(&app, &scope).await?;
    let providers: Vec<&str> = [Provider::Google, Provider::Zoom]
        .into_iter()
        .filter(|p| p.settings(&app).is_ok())
        .map(Provider::as_str)
        .collect();
    let connected = shown.connected.filter(|c| providers.contains(&c.as_str()));
    Ok(chrome.render(
        "integrations.html",
        "Integrations",
        context! { items => value(&list.items), providers => value(&providers), connected => connected },
    ))
}

pub async fn connect(
    State(app): State<AppState>,
    chrome: Chrome,
    scope: TenantScope,
    Path(name): Path<String>,
    form: Form,
) -> Result<Response, Problem> {
    let provider = provider(&name)?;
    let request = ConnectRequest { tenant_wide: form.get("tenant_wide") == Some("true") };
    let started = integrations::connect(&app, &scope, provider, request).await?;
    Ok(chrome.render(
        "forward.html",
        "Connecting",
        context! {
            to => started.authorize_url.clone(),
            refresh => started.authorize_url,
            what => format!("Continue to {}", provider.as_str()),
        },
    ))
}

#[derive(Deserialize)]
pub struct Returned {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// The redirect URI: forwards what the provider sent, same-site, to `finish`.
pub async fn callback(
    chrome: Chrome,
    Path(name): Path<String>,
    Query(back): Query<Returned>,
) -> Result<Response, Problem> {
    let provider = provider(&name)?;
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in [("code", &back.code), ("state", &back.state), ("error", &back.error)] {
        if let Some(value) = value {
            query.append_pair(key, value);
        }
    }
    let to = format!("/integrations/{}/finish?{}", provider.as_str(), query.finish());
    let to = safe_next(Some(&to));
    Ok(chrome.render(
        "forward.html",
        "Connecting",
        context! { to => to, refresh => to, what => "Continue" },
    ))
}

/// The API's callback, with this session.
pub async fn finish(
    State(app): State<AppState>,
    scope: TenantScope,
    ctx: RequestContext,
    Path(name): Path<String>,
    Query(back): Query<Returned>,
) -> Result<Response, Problem> {
    let provider = provider(&name)?;
    let code = back.code.filter(|_| back.error.is_none());
    integrations::callback(&app, &scope, &ctx, provider, code.as_deref(), back.state.as_deref())
        .await?;
    Ok(done(&format!("/integrations?connected={}", provider.as_str())))
}

pub async fn disconnect(
    State(app): State<AppState>,
    scope: TenantScope,
    ctx: RequestContext,
    Path(name): Path<String>,
    form: Form,
) -> Result<Response, Problem> {
    let provider = provider(&name)?;
    let tenant_wide = form.get("tenant_wide") == Some("true");
    integrations::disconnect(&app, &scope, &ctx, provider, tenant_wide).await?;
    Ok(done("/integrations"))
}
