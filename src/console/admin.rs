//! The tenant's administration: the audit log (filter by action and actor), members and
//! their roles, invitations, API keys (the secret shown once) and the MFA policy. Each page
//! mirrors an API route's policy (`console::mirror`) and calls its domain function.

use axum::extract::{Query, State};
use axum::response::Response;
use minijinja::context;
use serde::Deserialize;

use super::page::value;
use super::{Chrome, Form, done};
use crate::app::AppState;
use crate::audit::routes::AuditEventView;
use crate::audit::{self, AuditQuery, RequestContext};
use crate::clock::Timestamp;
use crate::error::DomainError;
use crate::http::path::Id;
use crate::http::problem::Problem;
use crate::identity::NewApiKey;
use crate::identity::api_keys;
use crate::identity::mfa::policy;
use crate::identity::routes::ApiKeyView;
use crate::ids::{ApiKeyId, InvitationId, UserId};
use crate::tenancy::routes::{InvitationView, UserView};
use crate::tenancy::{Permission, Role, TenantScope, members};

/// Rows per audit page; members, invitations and keys show this many at most.
const PAGE: i64 = 50;
const MANY: i64 = 200;
/// Roles a form offers, lowest first.
const ROLES: &[&str] = &["readonly", "agent", "manager", "admin", "owner"];

#[derive(Deserialize)]
pub struct AuditFilter {
    action: Option<String>,
    actor: Option<String>,
    before: Option<i64>,
}

pub async fn audit_log(
    State(app): State<AppState>,
    chrome: Chrome,
    scope: TenantScope,
    Query(filter): Query<AuditFilter>,
) -> Result<Response, Problem> {
    let action = filter.action.filter(|a| !a.trim().is_empty());
    let actor = filter.actor.filter(|a| !a.trim().is_empty());
    let query = AuditQuery {
        action: action.clone(),
        actor_id: actor.clone(),
        before_seq: filter.before,
        limit: PAGE + 1,
        ..AuditQuery::default()
    };
    let mut rows = audit::search(&app, &scope, &query).await?;
    let more = rows.len() > usize::try_from(PAGE).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(PAGE).unwrap_or(usize::MAX));
    let before = rows.last().filter(|_| more).map(|r| r.seq);
    let events: Vec<AuditEventView> = rows.into_iter().map(AuditEventView::from).collect();
    Ok(chrome.render(
        "audit.html",
        "Audit log",
        context! { events => value(&events), action => action, actor => actor, before => before },
    ))
}

pub async fn members_page(
    State(app): State<AppState>,
    chrome: Chrome,
    scope: TenantScope,
) -> Result<Response, Problem> {
    let users: Vec<UserView> =
        members::list(&app, &scope, None, MANY).await?.into_iter().map(UserView::from).collect();
    let invitations: Vec<InvitationView> = if scope.may(Permission::UsersManage) {
        members::list_invitations(&app, &scope, None, MANY)
            .await?
            .into_iter()
            .map(InvitationView::from)
            .collect()
    } else {
        vec![]
    };
    Ok(chrome.render(
        "members.html",
        "Members",
        context! {
            users => value(&users),
            invitations => value(&invitations),
            roles => value(ROLES),
            may_manage => scope.may(Permission::UsersManage),
        },
    ))
}

fn role(form: &Form) -> Result<Role, Problem> {
    form.get("role")
        .and_then(Role::parse)
        .ok_or_else(|| DomainError::invalid("role", "must be one of the roles").into())
}

pub async fn change_role(
    State(app): State<AppState>,
    scope: TenantScope,
    ctx: RequestContext,
    Id(id): Id<UserId>,
    form: Form,
) -> Result<Response, Problem> {
    members::change_role(&app, &scope, &ctx, id, role(&form)?).await?;
    Ok(done("/admin/members"))
}

pub async fn deactivate(
    State(app): State<AppState>,
    scope: TenantScope,
    ctx: RequestContext,
    Id(id): Id<UserId>,
) -> Result<Response, Problem> {
    members::deactivate(&app, &scope, &ctx, id).await?;
    Ok(done("/admin/members"))
}

/// An invitation; its link is shown once, here (it is also mailed).
pub async fn invite(
    State(app): State<AppState>,
    chrome: Chrome,
    scope: TenantScope,
    ctx: RequestContext,
    form: Form,
) -> Result<Response, Problem> {
    let email = form.get("email").unwrap_or_default().trim().to_owned();
    let created = members::invite(&app, &scope, &ctx, &email, role(&form)?).await?;
    let intro = format!("{email} was invited. The link works once, for 7 days:");
    Ok(shown_once(&chrome, "Invitation sent", intro, created.accept_url, "/admin/members"))
}

pub async fn revoke_invitation(
    State(app): State<AppState>,
    scope: TenantScope,
    ctx: RequestContext,
    Id(id): Id<InvitationId>,
) -> Result<Response, Problem> {
    members::revoke_invitation(&app, &scope, &ctx, id).await?;
    Ok(done("/admin/members"))
}

pub async fn api_keys_page(
    State(app): State<AppState>,
    chrome: Chrome,
    scope: TenantScope,
) -> Result<Response, Problem> {
    let keys: Vec<ApiKeyView> =
        api_keys::list(&app, &scope, None, MANY).await?.into_iter().map(ApiKeyView::from).collect();
    let scopes: Vec<&str> =
        Permission::ALL.iter().filter(|p| scope.may(**p)).map(|p| p.as_str()).collect();
    Ok(chrome.render(
        "api_keys.html",
        "API keys",
        context! { keys => value(&keys), scopes => scopes },
    ))
}

/// A new key; its secret is on this page only.
pub async fn create_api_key(
    State(app): State<AppState>,
    chrome: Chrome,
    scope: TenantScope,
    ctx: RequestContext,
    form: Form,
) -> Result<Response, Problem> {
    let scopes = form
        .all("scopes")
        .map(|name| {
            Permission::ALL.iter().copied().find(|p| p.as_str() == name).ok_or_else(|| {
                DomainError::invalid("scopes", format!("no such permission: {name}"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let expires_at = match form.get("expires_at").filter(|d| !d.is_empty()) {
        Some(date) => Some(
            Timestamp::parse_rfc3339(&format!("{date}T00:00:00Z"))
                .ok_or_else(|| DomainError::invalid("expires_at", "must be a date"))?,
        ),
        None => None,
    };
    let name = form.get("name").unwrap_or_default().trim().to_owned();
    let created =
        api_keys::create(&app, &scope, &ctx, NewApiKey { name: name.clone(), scopes, expires_at })
            .await?;
    let intro = format!("The key \"{name}\". Copy it now: it is not shown again.");
    Ok(shown_once(
        &chrome,
        "API key created",
        intro,
        created.key.expose().clone(),
        "/admin/api-keys",
    ))
}

pub async fn revoke_api_key(
    State(app): State<AppState>,
    scope: TenantScope,
    ctx: RequestContext,
    Id(id): Id<ApiKeyId>,
) -> Result<Response, Problem> {
    api_keys::revoke(&app, &scope, &ctx, id).await?;
    Ok(done("/admin/api-keys"))
}

pub async fn tenant_security(
    State(app): State<AppState>,
    chrome: Chrome,
    scope: TenantScope,
) -> Result<Response, Problem> {
    let current = policy::tenant_policy(&app, &scope).await?;
    Ok(chrome.render(
        "tenant_security.html",
        "Tenant security",
        context! { current => current, policies => value(policy::POLICIES) },
    ))
}

pub async fn set_tenant_security(
    State(app): State<AppState>,
    scope: TenantScope,
    ctx: RequestContext,
    form: Form,
) -> Result<Response, Problem> {
    let chosen = form.get("mfa_required").unwrap_or_default();
    policy::set_tenant_policy(&app, &scope, &ctx, chosen).await?;
    Ok(done("/admin/security"))
}

/// A secret on the one page that shows it (the page is `no-store`, like every other).
fn shown_once(chrome: &Chrome, title: &str, intro: String, secret: String, back: &str) -> Response {
    chrome.render("shown_once.html", title, context! { intro, secret, back })
}
