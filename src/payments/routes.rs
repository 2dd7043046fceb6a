//! `/api/v1/payments` (read) and `/hooks/stripe` (Stripe's signed events; the signature is
//! the authentication, the `payment_webhooks` family's limit applies).

use axum::extract::State;
use axum::http::HeaderMap;
use serde::Deserialize;
use utoipa_axum::routes;

use super::PaymentView;
use super::stripe::{self, StripeEvent};
use crate::app::AppState;
use crate::audit::RequestContext;
use crate::http::Endpoint;
use crate::http::json::{Json, Query, SignedJson};
use crate::http::problem::Problem;
use crate::ids::CompanyId;
use crate::pagination::Page;
use crate::ratelimit::{RateCategory, RouteFamily};
use crate::tenancy::{Permission, TenantScope};
use crate::webhooks::Receipt;

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::permission(routes!(list), Permission::PaymentsRead, RateCategory::Read),
        Endpoint::public(routes!(stripe_events), RateCategory::Write)
            .family(RouteFamily::PaymentWebhooks)
            .body_limit(256 * 1024),
    ]
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PaymentQuery {
    /// Only this company's payments.
    company_id: Option<CompanyId>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Payments recorded from Stripe, newest first.
#[utoipa::path(get, path = "/api/v1/payments", tag = "payments", params(PaymentQuery),
    responses((status = 200, body = Page<PaymentView>)))]
async fn list(
    State(app): State<AppState>,
    scope: TenantScope,
    Query(q): Query<PaymentQuery>,
) -> Result<Json<Page<PaymentView>>, Problem> {
    Ok(Json(super::list(&app, &scope, q.company_id, q.limit, q.cursor.as_deref()).await?))
}

/// A Stripe event, signed (`Stripe-Signature`) with one of `BULWARK_STRIPE_WEBHOOK_SECRETS`.
#[utoipa::path(post, path = "/hooks/stripe", tag = "payments", request_body = StripeEvent,
    params(("Stripe-Signature" = String, Header, description = "`t=<unix>,v1=<hex HMAC-SHA256>`")),
    responses((status = 200, body = Receipt)))]
async fn stripe_events(
    State(app): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    SignedJson(event, body): SignedJson<StripeEvent>,
) -> Result<Json<Receipt>, Problem> {
    let signature = headers.get("stripe-signature").and_then(|v| v.to_str().ok()).unwrap_or("");
    Ok(Json(stripe::receive(&app, &ctx, signature, &body, event).await?))
}
