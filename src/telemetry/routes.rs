//! `/healthz` and `/readyz` on the API port (exempt from rate limits, so probes never
//! throttle themselves), and `GET /metrics` on the metrics listener.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use utoipa_axum::routes;

use super::health::{self, Health, Readiness};
use crate::app::AppState;
use crate::crypto::Secret;
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
    let readiness = health::readiness(&app).await;
    if readiness.ready {
        return Ok(Json(readiness));
    }
    Err(Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "not_ready",
        "Not ready",
        "A dependency is unavailable; see `checks`.",
    )
    .with_extra("checks", json!(readiness.checks)))
}

/// The metrics listener's router: `GET /metrics` only. With a token, a scrape must present
/// `Authorization: Bearer <token>` (401 otherwise): metrics name routes, tenants' traffic
/// and failure rates, which is reconnaissance for anyone who can reach the port.
pub fn metrics_router(handle: PrometheusHandle, token: Option<Secret<String>>) -> Router {
    let expected = token.map(|t| Sha256::digest(t.expose().as_bytes()));
    let expected = std::sync::Arc::new(expected);
    Router::new().route(
        "/metrics",
        get(move |headers: HeaderMap| {
            let (handle, expected) = (handle.clone(), expected.clone());
            async move {
                if let Some(expected) = expected.as_ref() {
                    let presented = headers
                        .get(header::AUTHORIZATION)
                        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
                        .map(Sha256::digest);
                    // Digests of equal length, compared in constant time.
                    if !presented.is_some_and(|p| bool::from(p.ct_eq(expected))) {
                        let mut response = Problem::for_status(StatusCode::UNAUTHORIZED)
                            .with_cause("metrics scrape without the token".to_owned())
                            .into_response();
                        response.headers_mut().insert(
                            header::WWW_AUTHENTICATE,
                            HeaderValue::from_static("Bearer realm=\"metrics\""),
                        );
                        return response;
                    }
                }
                let content_type =
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");
                ([(header::CONTENT_TYPE, content_type)], handle.render()).into_response()
            }
        }),
    )
}
