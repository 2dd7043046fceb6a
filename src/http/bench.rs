//! Bench builds only (`--features bench-bypass`): `GET /bench/me` runs the handler of
//! `/api/v1/me` with none of the security middleware — no request id, security headers,
//! CORS, timeouts, body limits, rate limits, session check or problem rendering; the access
//! token's signature alone names the caller. bench/run.sh compares it with the real route to
//! show what the middleware costs. Such a binary refuses to start outside development.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::app::AppState;
use crate::identity;

pub fn routes(state: AppState) -> Router {
    tracing::warn!(
        "bench-bypass build: GET /bench/me skips the security middleware; never deploy this binary"
    );
    Router::new().route("/bench/me", get(me)).with_state(state)
}

async fn me(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let Ok(principal) = identity::authenticate_token_only(
        &app,
        headers.get(axum::http::header::AUTHORIZATION).map(|v| v.as_bytes()),
    )
    .await
    else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    match identity::routes::me_view(&app, &principal).await {
        Ok(me) => Json(me).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
