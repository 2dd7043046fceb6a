//! HTTP: the endpoint table, the middleware stack, problem+json, OpenAPI and the server.
//!
//! Stack, outermost first (see docs/ARCHITECTURE.md):
//! edge (request id, client address, blocked addresses, problem renderer, security headers,
//! metrics, access log) → CORS → timeout → panic catcher → router → body limits →
//! per-endpoint gate → handler.

pub mod endpoint;
mod error;
pub mod extract;
pub(crate) mod gate;
pub mod headers;
mod idempotency;
pub mod json;
pub mod openapi;
pub mod path;
pub mod problem;
pub mod request_id;
pub mod secret_filter;
pub mod server;

use std::any::Any;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::catch_panic::{CatchPanic, CatchPanicLayer};
use tower_http::cors::{AllowOrigin, Cors, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::{Timeout, TimeoutLayer};

use crate::app::AppState;
use crate::config::Config;
use crate::ratelimit::RateCategory;
pub use endpoint::{Access, Endpoint, RoutePolicy};
use problem::Problem;

/// What the edge serves the router in, outermost first: CORS, the request timeout and the
/// panic guard. Composed once around the whole router, not with `Router::layer`: that boxes
/// each layer into every route, and every box is cloned and its future boxed on every
/// request (see docs/ARCHITECTURE.md, "Where a /me's time goes").
pub type Stack = Cors<Timeout<CatchPanic<Router, PanicResponse>>>;

/// A panic's response: a 500 problem (`panic_response`).
#[derive(Clone, Copy)]
pub struct PanicResponse;

impl tower_http::catch_panic::ResponseForPanic for PanicResponse {
    type ResponseBody = axum::body::Body;

    fn response_for_panic(&mut self, panic: Box<dyn Any + Send + 'static>) -> Response {
        panic_response(panic)
    }
}

/// The application a connection serves: the edge (`request_id::track_requests`) in front of
/// the stack.
#[derive(Clone)]
pub struct App {
    edge: Arc<request_id::Edge>,
    stack: Stack,
}

impl server::Serve for App {
    fn serve(
        &self,
        peer: std::net::SocketAddr,
        request: axum::extract::Request,
    ) -> impl Future<Output = Response> + Send + 'static + use<> {
        request_id::track_requests(self.edge.clone(), self.stack.clone(), peer, request)
    }
}

/// Every endpoint of the API, from every area.
pub fn endpoints() -> Vec<Endpoint> {
    let mut all = vec![];
    all.extend(crate::telemetry::routes::endpoints());
    all.extend(openapi_endpoints());
    all.extend(crate::identity::routes::endpoints());
    all.extend(crate::identity::mfa::routes::endpoints());
    all.extend(crate::identity::recovery::routes::endpoints());
    all.extend(crate::tenancy::routes::endpoints());
    all.extend(crate::platform::routes::endpoints());
    all.extend(crate::containment::routes::endpoints());
    all.extend(crate::audit::routes::endpoints());
    all.extend(crate::crm::routes::endpoints());
    all.extend(crate::documents::routes::endpoints());
    all.extend(crate::email::routes::endpoints());
    all.extend(crate::email::public_routes::endpoints());
    all.extend(crate::webhooks::routes::endpoints());
    all.extend(crate::payments::routes::endpoints());
    all.extend(crate::integrations::routes::endpoints());
    all
}

fn openapi_endpoints() -> Vec<Endpoint> {
    vec![Endpoint::public(utoipa_axum::routes!(serve_openapi), RateCategory::Read)]
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json"))
)]
async fn serve_openapi(
    axum::extract::State(app): axum::extract::State<AppState>,
) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], app.openapi_json())
}

/// What a multipart upload may carry beyond its file: the form fields, part headers and
/// what the multipart parser reads ahead, so that the file's own count (an exact 413) trips
/// before this outer bound does.
const UPLOAD_ENVELOPE: usize = 1024 * 1024;

/// The API's endpoints and the console's `pages` (which bring their own guard), behind one
/// edge.
pub fn router(state: AppState, endpoints: Vec<Endpoint>, pages: Router<AppState>) -> App {
    let config = state.config().clone();
    let containment = state.containment().clone();
    let mut router = Router::new();
    for endpoint in endpoints {
        let policy = Arc::new(endpoint.policy);
        let limit = if policy.upload {
            // The file's own cap is counted while it streams (413 at the first byte over
            // it); this bounds the whole multipart body: the cap and its form fields.
            usize::try_from(config.documents.max_bytes)
                .unwrap_or(usize::MAX)
                .saturating_add(UPLOAD_ENVELOPE)
        } else {
            policy.body_limit.unwrap_or(config.http.body_limit)
        };
        let mut inner = endpoint.router;
        if policy.secret_filter {
            inner = inner.layer::<_, std::convert::Infallible>(axum::middleware::from_fn(
                secret_filter::filter,
            ));
        }
        // One layer, so one box per route: a declared Content-Length over this route's limit
        // is a 413 before anything runs, then the extractors' limit, then the gate.
        let guard = ServiceBuilder::new()
            .layer(RequestBodyLimitLayer::new(limit))
            .map_request(|request: axum::http::Request<_>| request.map(axum::body::Body::new))
            .layer(DefaultBodyLimit::max(limit))
            .layer(from_fn_with_state((state.clone(), policy.clone()), gate::gate));
        let method_router: axum::routing::MethodRouter<AppState> =
            inner.layer::<_, std::convert::Infallible>(guard);
        router = router.route(&policy.path, method_router);
    }
    let router = router
        .merge(pages)
        .fallback(|| async { Problem::for_status(StatusCode::NOT_FOUND) })
        .method_not_allowed_fallback(|| async {
            Problem::for_status(StatusCode::METHOD_NOT_ALLOWED)
        })
        .with_state(state);
    let stack = ServiceBuilder::new()
        .layer(cors(&config))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            config.http.request_timeout,
        ))
        .layer(CatchPanicLayer::custom(PanicResponse))
        .service(router);
    let edge = Arc::new(request_id::Edge {
        trusted: config.http.trusted_proxies.clone(),
        ipv6_prefix: config.http.ipv6_prefix,
        headers: headers::SecurityHeaders::from_config(&config),
        containment,
    });
    App { edge, stack }
}

fn cors(config: &Config) -> CorsLayer {
    let origins: Vec<HeaderValue> = config
        .http
        .cors_origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin).ok())
        .collect();
    // A predicate over a shared list: the layer is cloned per request, and a `list` origin
    // would clone the Vec each time.
    let allowed = Arc::new(origins);
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| allowed.contains(origin)))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static(request_id::HEADER),
            HeaderName::from_static("x-csrf-token"),
        ])
        .expose_headers([
            HeaderName::from_static(request_id::HEADER),
            HeaderName::from_static("x-ratelimit-limit"),
            HeaderName::from_static("x-ratelimit-remaining"),
            HeaderName::from_static("x-ratelimit-reset"),
            HeaderName::from_static("idempotent-replayed"),
            header::RETRY_AFTER,
        ])
        .allow_credentials(true)
        .max_age(std::time::Duration::from_secs(600))
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    Problem::for_status(StatusCode::INTERNAL_SERVER_ERROR)
        .with_cause(format!("handler panicked: {message}"))
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route declares its access rule in the endpoint table; this pins the ones that
    /// are open to anyone, so opening a route is a visible, reviewed change.
    #[test]
    fn only_these_routes_are_public() {
        let mut public: Vec<String> = endpoints()
            .into_iter()
            .filter(|e| e.policy.access == Access::Public)
            .map(|e| format!("{} {}", e.policy.method, e.policy.path))
            .collect();
        public.sort();
        assert_eq!(
            public,
            [
                "GET /api/openapi.json",
                "GET /healthz",
                "GET /readyz",
                "GET /u/{token}",
                "POST /api/v1/auth/login",
                "POST /api/v1/auth/mfa/verify",
                "POST /api/v1/auth/password-reset",
                "POST /api/v1/auth/password-reset/confirm",
                "POST /api/v1/auth/refresh",
                "POST /api/v1/auth/signup",
                "POST /api/v1/auth/verify-email",
                "POST /api/v1/auth/webauthn/login/finish",
                "POST /api/v1/auth/webauthn/login/start",
                "POST /api/v1/invitations/accept",
                "POST /hooks/email/events",
                "POST /hooks/stripe",
                "POST /hooks/zoom",
                "POST /u/{token}",
            ]
        );
    }

    #[test]
    fn every_route_is_declared_once_with_a_policy() {
        let mut seen = std::collections::HashSet::new();
        for endpoint in endpoints() {
            let key = format!("{} {}", endpoint.policy.method, endpoint.policy.path);
            assert!(seen.insert(key.clone()), "{key} declared twice");
            assert!(endpoint.policy.path.starts_with('/'), "{key}");
            if endpoint.policy.access != Access::Public {
                assert_ne!(
                    endpoint.policy.category,
                    RateCategory::Exempt,
                    "{key}: only probes are exempt"
                );
            }
        }
    }
}
