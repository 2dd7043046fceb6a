//! The per-endpoint gate: the one place that turns a route's declared policy into checks.
//! It runs on every endpoint, before any extractor of the handler.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

use super::endpoint::{Access, RoutePolicy};
use super::problem::Problem;
use super::request_id::RouteTemplate;
use crate::app::AppState;

pub(super) async fn gate(
    State((_app, policy)): State<(AppState, Arc<RoutePolicy>)>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = match policy.access {
        Access::Public => next.run(request).await,
        Access::Authenticated | Access::Permission(_) | Access::SuperAdmin => {
            Problem::for_status(StatusCode::UNAUTHORIZED).into_response()
        }
    };
    response.extensions_mut().insert(RouteTemplate(policy.path.clone()));
    response
}
