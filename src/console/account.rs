//! The signed-in user's own sessions: see them, revoke one (another device is signed out
//! within a second, its cookie refused like a revoked token).

use axum::extract::State;
use axum::response::Response;
use minijinja::context;
use serde::Serialize;

use super::page::value;
use super::{Chrome, done};
use crate::app::AppState;
use crate::audit::{Action, RequestContext};
use crate::clock::Timestamp;
use crate::http::path::Id;
use crate::http::problem::Problem;
use crate::identity::{Principal, login};
use crate::ids::SessionId;

#[derive(Serialize)]
struct SessionLine {
    id: SessionId,
    created_at: Timestamp,
    last_used_at: Timestamp,
    ip: Option<String>,
    user_agent: Option<String>,
    current: bool,
}

pub async fn sessions(
    State(app): State<AppState>,
    chrome: Chrome,
    principal: Principal,
) -> Result<Response, Problem> {
    let current = principal.session_id();
    let lines: Vec<SessionLine> = login::sessions(&app, &principal)
        .await?
        .into_iter()
        .map(|s| SessionLine {
            current: Some(s.id) == current,
            id: s.id,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            ip: s.ip,
            user_agent: s.user_agent,
        })
        .collect();
    Ok(chrome.render("sessions.html", "Sessions", context! { sessions => value(&lines) }))
}

pub async fn revoke_session(
    State(app): State<AppState>,
    ctx: RequestContext,
    principal: Principal,
    Id(id): Id<SessionId>,
) -> Result<Response, Problem> {
    login::revoke_own_session(&app, &ctx, &principal, id, Action::SessionRevoke).await?;
    Ok(done("/account/sessions"))
}
