//! `/api/v1/integrations` (every answer through `http::secret_filter`) and `/hooks/zoom`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::Value;
use utoipa_axum::routes;

use super::providers::{self, EventView, MeetingView, NewEvent, NewMeeting};
use super::zoom::{self, ZoomEvent};
use super::{ConnectRequest, ConnectView, IntegrationList, IntegrationView, Provider};
use crate::app::AppState;
use crate::audit::RequestContext;
use crate::containment::features::Feature;
use crate::error::DomainError;
use crate::http::Endpoint;
use crate::http::json::{Json, OptionalJson, Query, SignedJson};
use crate::http::problem::Problem;
use crate::ratelimit::RateCategory;
use crate::tenancy::{Permission, TenantScope};

pub fn endpoints() -> Vec<Endpoint> {
    use RateCategory::*;
    let each = |endpoint: Endpoint| endpoint.feature(Feature::Integrations).secret_filter();
    vec![
        each(Endpoint::authenticated(routes!(list), Read)),
        each(Endpoint::session(routes!(connect), Sensitive)),
        each(Endpoint::session(routes!(callback), Sensitive)),
        each(Endpoint::authenticated(routes!(disconnect), Sensitive)),
        // Creating calendar items is activity work: agents and up (never read-only members,
        // whatever connection they could reach).
        each(Endpoint::permission(routes!(create_meeting), Permission::ActivitiesWrite, Write)),
        each(Endpoint::permission(routes!(create_event), Permission::ActivitiesWrite, Write)),
        Endpoint::public(routes!(zoom_events), Write).body_limit(64 * 1024),
    ]
}

fn provider(name: &str) -> Result<Provider, Problem> {
    Provider::parse(name).ok_or_else(|| Problem::from(DomainError::NotFound("integration")))
}

/// The caller's connections and the tenant's (never a token).
#[utoipa::path(get, path = "/api/v1/integrations", tag = "integrations",
    responses((status = 200, body = IntegrationList)))]
async fn list(
    State(app): State<AppState>,
    scope: TenantScope,
) -> Result<Json<IntegrationList>, Problem> {
    Ok(Json(super::list(&app, &scope).await?))
}

/// Start connecting an account: send the browser to `authorize_url` (PKCE, a single-use
/// state valid 10 minutes and bound to this session).
#[utoipa::path(post, path = "/api/v1/integrations/{provider}/connect", tag = "integrations",
    params(("provider" = Provider, Path, description = "`google` or `zoom`")),
    request_body(content = Option<ConnectRequest>), responses((status = 200, body = ConnectView)))]
async fn connect(
    State(app): State<AppState>,
    scope: TenantScope,
    Path(name): Path<String>,
    OptionalJson(body): OptionalJson<ConnectRequest>,
) -> Result<Json<ConnectView>, Problem> {
    Ok(Json(super::connect(&app, &scope, provider(&name)?, body).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
#[allow(dead_code, reason = "the parameters a provider may add are accepted and ignored")]
pub struct CallbackQuery {
    #[param(max_length = 2048)]
    code: Option<String>,
    #[param(max_length = 2048)]
    state: Option<String>,
    /// The provider's refusal (`access_denied`, …), when the user declined.
    error: Option<String>,
    #[param(max_length = 2048)]
    error_description: Option<String>,
    #[param(max_length = 2048)]
    error_uri: Option<String>,
    /// RFC 9207's issuer; these and Google's additions are ignored.
    #[param(max_length = 2048)]
    iss: Option<String>,
    scope: Option<String>,
    authuser: Option<String>,
    prompt: Option<String>,
    hd: Option<String>,
}

/// Where the provider sends the browser back. A browser (`Accept: text/html`) is redirected
/// to the console; an API client gets the connection.
#[utoipa::path(get, path = "/api/v1/integrations/{provider}/callback", tag = "integrations",
    params(("provider" = Provider, Path, description = "`google` or `zoom`"), CallbackQuery),
    responses((status = 200, body = IntegrationView), (status = 303)))]
async fn callback(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(query): Query<CallbackQuery>,
) -> Result<Response, Problem> {
    let provider = provider(&name)?;
    let CallbackQuery { code, state, error, .. } = query;
    // A provider's `error` (the user declined) comes without a code: refused and audited.
    let code = code.filter(|_| error.is_none());
    let connected =
        super::callback(&app, &scope, &ctx, provider, code.as_deref(), state.as_deref()).await?;
    let browser = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if browser {
        let to = format!("/integrations?connected={}", provider.as_str());
        return Ok(Redirect::to(&to).into_response());
    }
    Ok(Json(connected).into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DisconnectQuery {
    /// Disconnect the tenant's account (needs `integrations:manage`), not the caller's own.
    #[serde(default)]
    tenant_wide: bool,
}

/// Disconnect: revoked at the provider first, the tokens deleted regardless.
#[utoipa::path(delete, path = "/api/v1/integrations/{provider}", tag = "integrations",
    params(("provider" = Provider, Path, description = "`google` or `zoom`"), DisconnectQuery),
    responses((status = 204)))]
async fn disconnect(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Path(name): Path<String>,
    Query(query): Query<DisconnectQuery>,
) -> Result<StatusCode, Problem> {
    super::disconnect(&app, &scope, &ctx, provider(&name)?, query.tenant_wide).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Create a Zoom meeting through the caller's (or the tenant's) connection.
#[utoipa::path(post, path = "/api/v1/integrations/zoom/meetings", tag = "integrations",
    request_body = NewMeeting, responses((status = 201, body = MeetingView)))]
async fn create_meeting(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Json(body): Json<NewMeeting>,
) -> Result<(StatusCode, Json<MeetingView>), Problem> {
    Ok((StatusCode::CREATED, Json(providers::create_meeting(&app, &scope, &ctx, body).await?)))
}

/// Create a Google Calendar event through the caller's (or the tenant's) connection.
#[utoipa::path(post, path = "/api/v1/integrations/google/events", tag = "integrations",
    request_body = NewEvent, responses((status = 201, body = EventView)))]
async fn create_event(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Json(body): Json<NewEvent>,
) -> Result<(StatusCode, Json<EventView>), Problem> {
    Ok((StatusCode::CREATED, Json(providers::create_event(&app, &scope, &ctx, body).await?)))
}

/// Zoom's signed events: URL validation and app deauthorization.
#[utoipa::path(post, path = "/hooks/zoom", tag = "integrations", request_body = ZoomEvent,
    params(
        ("x-zm-signature" = String, Header, description = "`v0=<hex HMAC-SHA256>`"),
        ("x-zm-request-timestamp" = String, Header, description = "Unix seconds, within 5 minutes"),
    ),
    responses((status = 200, body = Object)))]
async fn zoom_events(
    State(app): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    SignedJson(event, body): SignedJson<ZoomEvent>,
) -> Result<Json<Value>, Problem> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let signature = header("x-zm-signature");
    let timestamp = header("x-zm-request-timestamp");
    Ok(Json(zoom::receive(&app, &ctx, signature, timestamp, &body, event).await?))
}
