//! The per-endpoint gate: the one place that turns a route's declared policy into checks.
//! It runs on every endpoint, before any extractor of the handler: authentication (401),
//! permission (403), and on success puts the `Principal` and `TenantScope` where the
//! handler's extractors find them.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

use super::endpoint::{Access, RoutePolicy};
use super::problem::Problem;
use super::request_id::RouteTemplate;
use crate::app::AppState;
use crate::error::DomainError;
use crate::identity;
use crate::tenancy::TenantScope;

pub(super) async fn gate(
    State((app, policy)): State<(AppState, Arc<RoutePolicy>)>,
    mut request: Request,
    next: Next,
) -> Response {
    let mut response = match authorize(&app, &policy, &mut request).await {
        Ok(()) => next.run(request).await,
        Err(problem) => problem.into_response(),
    };
    response.extensions_mut().insert(RouteTemplate(policy.path.clone()));
    response
}

async fn authorize(
    app: &AppState,
    policy: &RoutePolicy,
    request: &mut Request,
) -> Result<(), Problem> {
    if policy.access == Access::Public {
        return Ok(());
    }
    let principal = identity::authenticate(app, request.headers()).await?;
    let allowed = match policy.access {
        Access::Public | Access::Authenticated => true,
        Access::Permission(permission) => principal.may(permission),
        Access::SuperAdmin => principal.is_superadmin(),
    };
    if !allowed {
        return Err(DomainError::Forbidden("you lack the permission this needs").into());
    }
    if let Some(scope) = TenantScope::from_principal(&principal) {
        request.extensions_mut().insert(scope);
    }
    request.extensions_mut().insert(principal);
    Ok(())
}
