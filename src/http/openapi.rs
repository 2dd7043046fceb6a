//! The OpenAPI 3.1 document, generated from the endpoint table: each handler's
//! `#[utoipa::path]` gives its operation and schemas, and the endpoint's policy adds what the
//! gate enforces — the security requirement and the problem responses it can produce — so the
//! document cannot drift from the router.

use axum::http::Method;
use utoipa::PartialSchema as _;
use utoipa::openapi::path::{Operation, Paths};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Ref, RefOr,
    ServerBuilder,
};

use super::endpoint::{Access, Endpoint, operation_mut};
use super::problem::{FieldError, PROBLEM_JSON, ProblemBody};
use crate::ratelimit::RateCategory;

pub const BEARER: &str = "bearer";

pub fn document(endpoints: &[Endpoint], public_url: &str) -> OpenApi {
    let mut paths = Paths::new();
    let mut components = ComponentsBuilder::new()
        .schema("Problem", ProblemBody::schema())
        .schema("FieldError", FieldError::schema())
        .security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An access token from /api/v1/auth/login (JWT) or an API key (`bwk_…`).",
                    ))
                    .build(),
            ),
        );
    for endpoint in endpoints {
        for (name, schema) in &endpoint.schemas {
            components = components.schema(name.clone(), schema.clone());
        }
        let mut endpoint_paths = endpoint.paths.clone();
        for item in endpoint_paths.paths.values_mut() {
            if let Some(operation) = operation_mut(item, &endpoint.policy.method) {
                decorate(operation, endpoint);
            }
        }
        for (path, item) in endpoint_paths.paths {
            match paths.paths.get_mut(&path) {
                Some(existing) => existing.merge_operations(item),
                None => {
                    paths.paths.insert(path, item);
                }
            }
        }
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Bulwark API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Multi-tenant CRM and email platform. Every error is an RFC 9457 \
                     problem+json document; lists are {items, next_cursor}.",
                ))
                .build(),
        )
        .servers(Some([ServerBuilder::new().url(public_url.trim_end_matches('/')).build()]))
        .paths(paths)
        .components(Some(components.build()))
        .build()
}

/// Adds what the gate and the middleware can answer for this operation.
fn decorate(operation: &mut Operation, endpoint: &Endpoint) {
    let policy = &endpoint.policy;
    let mut statuses: Vec<(&str, &str)> = vec![];
    if operation.request_body.is_some() {
        statuses.extend([
            ("400", "Malformed request"),
            ("413", "Body too large"),
            ("415", "Body is not application/json"),
            ("422", "Validation failed"),
        ]);
    } else if operation.parameters.as_ref().is_some_and(|p| !p.is_empty()) {
        statuses.push(("422", "Invalid parameter"));
    }
    if policy.access != Access::Public {
        operation.security = Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
        statuses.push(("401", "Missing, invalid or revoked credentials"));
        statuses.push(("403", "The caller may not do this"));
    } else if matches!(policy.category, RateCategory::Auth | RateCategory::Refresh) {
        statuses.push(("401", "The credentials were not accepted"));
    } else if policy.path.starts_with("/hooks/") {
        statuses.push(("401", "The signature was not accepted"));
    }
    if policy.secret_filter {
        // Integration routes: a provider this server does not configure, a connection that
        // is not there, a provider that refused, a state that does not hold.
        statuses.push((
            "404",
            "No such connection, or the provider is not configured (`integration_disabled`)",
        ));
        statuses.push(("502", "The provider refused or failed the call (`integration_error`)"));
        if policy.path.ends_with("/callback") {
            statuses.push((
                "400",
                "The state is missing, altered, expired, used or not yours (`invalid_state`)",
            ));
        }
    }
    if policy.path.contains('{') || policy.method == Method::DELETE {
        statuses.push(("404", "No such object (another tenant's objects do not exist either)"));
    }
    if matches!(policy.method, Method::POST | Method::PUT | Method::PATCH | Method::DELETE) {
        statuses.push((
            "409",
            "Conflicts with the current state, or a request with this Idempotency-Key is in flight",
        ));
    }
    if policy.category != RateCategory::Exempt {
        statuses.push(("429", "Rate limit exceeded; see Retry-After"));
    }
    statuses.push(("408", "The request took too long"));
    statuses.push(("500", "Internal error"));
    statuses.push(match policy.feature {
        Some(_) => (
            "503",
            "Temporarily unavailable, or the operator switched this feature off \
             (`feature_disabled`); see Retry-After",
        ),
        None => ("503", "Temporarily unavailable; see Retry-After"),
    });
    for (status, description) in statuses {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| problem_response(description));
    }
}

pub fn problem_response(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build(),
        )
        .build()
        .into()
}
