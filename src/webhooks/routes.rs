//! `/api/v1/webhooks`: a tenant's outbound webhook subscriptions.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa_axum::routes;

use super::{
    CreatedSubscription, DeliveryView, NewSubscription, SubscriptionChange, SubscriptionView,
};
use crate::app::AppState;
use crate::audit::RequestContext;
use crate::containment::features::Feature;
use crate::http::Endpoint;
use crate::http::json::{Json, Query};
use crate::http::path::Id;
use crate::http::problem::Problem;
use crate::ids::WebhookId;
use crate::pagination::Page;
use crate::ratelimit::RateCategory;
use crate::tenancy::{Permission, TenantScope};

pub fn endpoints() -> Vec<Endpoint> {
    use Permission::IntegrationsManage;
    use RateCategory::*;
    let each = |endpoint: Endpoint| endpoint.feature(Feature::Webhooks);
    vec![
        each(Endpoint::permission(routes!(create), IntegrationsManage, Sensitive).idempotent()),
        each(Endpoint::permission(routes!(list), IntegrationsManage, Read)),
        each(Endpoint::permission(routes!(get), IntegrationsManage, Read)),
        each(Endpoint::permission(routes!(update), IntegrationsManage, Sensitive)),
        each(Endpoint::permission(routes!(delete), IntegrationsManage, Write)),
        each(Endpoint::permission(routes!(deliveries), IntegrationsManage, Read)),
    ]
}

/// The list's page.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Subscribe a URL to events. The answer carries the signing secret, this once.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", request_body = NewSubscription,
    responses((status = 201, body = CreatedSubscription)))]
async fn create(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Json(body): Json<NewSubscription>,
) -> Result<(StatusCode, Json<CreatedSubscription>), Problem> {
    let created = super::create(&app, &scope, &ctx, body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// The tenant's subscriptions (never their secrets).
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks", params(ListQuery),
    responses((status = 200, body = Page<SubscriptionView>)))]
async fn list(
    State(app): State<AppState>,
    scope: TenantScope,
    Query(query): Query<ListQuery>,
) -> Result<Json<Page<SubscriptionView>>, Problem> {
    Ok(Json(super::list(&app, &scope, query.limit, query.cursor.as_deref()).await?))
}

/// One subscription.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = WebhookId, Path, description = "Subscription id")),
    responses((status = 200, body = SubscriptionView)))]
async fn get(
    State(app): State<AppState>,
    scope: TenantScope,
    Id(id): Id<WebhookId>,
) -> Result<Json<SubscriptionView>, Problem> {
    Ok(Json(super::get(&app, &scope, id).await?))
}

/// Change a subscription's URL, events or status.
#[utoipa::path(patch, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = WebhookId, Path, description = "Subscription id")),
    request_body = SubscriptionChange, responses((status = 200, body = SubscriptionView)))]
async fn update(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<WebhookId>,
    Json(body): Json<SubscriptionChange>,
) -> Result<Json<SubscriptionView>, Problem> {
    Ok(Json(super::update(&app, &scope, &ctx, id, body).await?))
}

/// Remove a subscription.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = WebhookId, Path, description = "Subscription id")), responses((status = 204)))]
async fn delete(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<WebhookId>,
) -> Result<StatusCode, Problem> {
    super::delete(&app, &scope, &ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What became of the events sent to a subscription, newest first.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = WebhookId, Path, description = "Subscription id"), ListQuery),
    responses((status = 200, body = Page<DeliveryView>)))]
async fn deliveries(
    State(app): State<AppState>,
    scope: TenantScope,
    Id(id): Id<WebhookId>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Page<DeliveryView>>, Problem> {
    Ok(Json(super::deliveries(&app, &scope, id, query.limit, query.cursor.as_deref()).await?))
}
