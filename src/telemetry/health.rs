//! `/healthz` (the process is alive) and `/readyz` (it can serve: database reachable, and
//! with later issues Redis and storage). Both are exempt from rate limits so probes never
//! throttle themselves.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::http::Endpoint;
use crate::http::json::Json;
use crate::http::problem::Problem;
use crate::ratelimit::RateCategory;

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::public(routes!(healthz), RateCategory::Exempt),
        Endpoint::public(routes!(readyz), RateCategory::Exempt),
    ]
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`
    pub status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`, or `degraded` when Redis is unreachable (shared limits degraded).
    pub status: &'static str,
    /// Each dependency and its state (`ok` or `unavailable`).
    pub checks: std::collections::BTreeMap<&'static str, &'static str>,
}

/// Liveness: answers while the process runs.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: 200 when every dependency answers, else 503 with the failing checks.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, body = Readiness),
        (status = 503, description = "A dependency is down; `checks` says which",
         body = crate::http::problem::ProblemBody, content_type = "application/problem+json"),
    )
)]
async fn readyz(State(app): State<AppState>) -> Result<Json<Readiness>, Problem> {
    let mut checks = std::collections::BTreeMap::new();
    let mut ready = true;
    match app.store().check_ready().await {
        Ok(()) => {
            checks.insert("database", "ok");
        }
        Err(err) => {
            tracing::warn!(error = %err, "readiness: database check failed");
            checks.insert("database", "unavailable");
            ready = false;
        }
    }
    // Redis down degrades (limits fail open or closed per rule) but does not make the
    // instance unready: every instance shares one Redis, and an unready fleet is an outage.
    let mut status = "ready";
    if let Some(redis) = app.redis() {
        if redis.ping().await {
            checks.insert("redis", "ok");
        } else {
            checks.insert("redis", "unavailable");
            status = "degraded";
        }
    }
    if ready {
        Ok(Json(Readiness { status, checks }))
    } else {
        Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "Not ready",
            "A dependency is unavailable; see `checks`.",
        )
        .with_extra("checks", json!(checks)))
    }
}
