//! The mail side's public routes: signed bounce and complaint events from the relay
//! (`/hooks/email/events`) and one-click unsubscribe links (`/u/{token}`). Neither takes a
//! credential: the signature and the token's MAC are the authentication.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Html;
use utoipa_axum::routes;

use super::events::{self, Receipt, Signature};
use super::unsubscribe;
use crate::app::AppState;
use crate::audit::RequestContext;
use crate::http::Endpoint;
use crate::http::json::{Json, SignedJson};
use crate::http::problem::Problem;
use crate::ratelimit::{RateCategory, RouteFamily};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::public(routes!(email_events), RateCategory::Write)
            .family(RouteFamily::EmailEvents)
            .body_limit(64 * 1024),
        Endpoint::public(routes!(unsubscribe_page), RateCategory::Read),
        Endpoint::public(routes!(unsubscribe_confirm), RateCategory::Write).body_limit(4 * 1024),
    ]
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

/// A bounce or complaint for a message the relay accepted, signed per Standard Webhooks
/// (`webhook-id`, `webhook-timestamp`, `webhook-signature`) with
/// `BULWARK_EMAIL_EVENTS_SECRET`. A `webhook-id` seen before is acknowledged and ignored.
#[utoipa::path(post, path = "/hooks/email/events", tag = "email",
    request_body = events::DeliveryEvent,
    params(
        ("webhook-id" = String, Header, description = "The delivery's unique id"),
        ("webhook-timestamp" = String, Header, description = "Unix seconds, within 5 minutes"),
        ("webhook-signature" = String, Header, description = "`v1,<base64 HMAC-SHA256>`"),
    ),
    responses((status = 200, body = Receipt)))]
async fn email_events(
    State(app): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    SignedJson(event, body): SignedJson<events::DeliveryEvent>,
) -> Result<Json<Receipt>, Problem> {
    let signature = Signature {
        id: header(&headers, "webhook-id"),
        timestamp: header(&headers, "webhook-timestamp"),
        signatures: header(&headers, "webhook-signature"),
    };
    Ok(Json(events::receive(&app, &ctx, signature, &body, event).await?))
}

const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Unsubscribe</title></head>
<body><main><h1>Unsubscribe</h1>{body}</main></body></html>
"#;

/// The link's confirmation page: a button that unsubscribes. Changes nothing by itself (a
/// mail scanner following links must not unsubscribe anyone).
#[utoipa::path(get, path = "/u/{token}", tag = "email",
    params(("token" = String, Path, description = "The link's token")),
    responses((status = 200, content_type = "text/html", body = String)))]
async fn unsubscribe_page(
    State(app): State<AppState>,
    Path(token): Path<String>,
) -> Result<Html<String>, Problem> {
    unsubscribe::check(&app, &token).await?;
    // The token is URL-safe base64 (checked above): nothing in it needs escaping.
    let form = format!(
        "<p>Stop receiving these emails?</p>\
         <form method=\"post\" action=\"/u/{token}\">\
         <input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
         <button type=\"submit\">Unsubscribe</button></form>"
    );
    Ok(Html(PAGE.replace("{body}", &form)))
}

/// One-click unsubscribe (RFC 8058): the address gets no more mail from this sender.
#[utoipa::path(post, path = "/u/{token}", tag = "email",
    params(("token" = String, Path, description = "The link's token")),
    responses((status = 200, content_type = "text/html", body = String)))]
async fn unsubscribe_confirm(
    State(app): State<AppState>,
    ctx: RequestContext,
    Path(token): Path<String>,
) -> Result<Html<String>, Problem> {
    unsubscribe::confirm(&app, &ctx, &token).await?;
    Ok(Html(
        PAGE.replace(
            "{body}",
            "<p>You are unsubscribed. You will get no more of these emails.</p>",
        ),
    ))
}
