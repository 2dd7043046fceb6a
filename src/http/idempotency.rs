//! The `Idempotency-Key` middleware of the routes that declare it: claims the key, replays a
//! stored answer or runs the request and keeps its answer (the rules are `idempotency`'s).

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

use super::RoutePolicy;
use super::problem::Problem;
use crate::app::AppState;
use crate::idempotency::{self, Claim, HEADER, REPLAYED};

/// Wraps one request of an idempotent route that carries the header.
pub async fn run(
    app: &AppState,
    policy: &RoutePolicy,
    scope: String,
    request: Request,
    next: Next,
) -> Response {
    let Some(key) = request.headers().get(HEADER).map(|v| v.to_str().map(str::to_owned)) else {
        return next.run(request).await;
    };
    let key = match key {
        Ok(key) if idempotency::valid_key(&key) => key,
        _ => {
            return Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid_idempotency_key",
                "Invalid Idempotency-Key",
                "The Idempotency-Key must be 1 to 255 visible ASCII characters.",
            )
            .into_response();
        }
    };
    let (parts, body) = request.into_parts();
    let limit = policy.body_limit.unwrap_or(app.config().http.body_limit);
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return Problem::for_status(StatusCode::PAYLOAD_TOO_LARGE).into_response();
    };
    let path = parts.uri.path_and_query().map_or("", |p| p.as_str());
    let fingerprint = idempotency::fingerprint(parts.method.as_str(), path, &bytes);
    let timeout = app.config().http.request_timeout;
    let claim = match idempotency::claim(app, &scope, &key, &fingerprint, timeout).await {
        Ok(claim) => claim,
        Err(err) => return Problem::from(err).into_response(),
    };
    match claim {
        Claim::Replay { status, content_type, body } => {
            metrics::counter!("idempotency_replays_total").increment(1);
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            if let Some(content_type) = content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
                response.headers_mut().insert(header::CONTENT_TYPE, content_type);
            }
            response.headers_mut().insert(REPLAYED, HeaderValue::from_static("true"));
            response
        }
        Claim::Mismatch => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "Idempotency-Key reused",
            "This Idempotency-Key was used for a different request; use a new key.",
        )
        .into_response(),
        Claim::InFlight => Problem::new(
            StatusCode::CONFLICT,
            "idempotency_in_flight",
            "Request in progress",
            "A request with this Idempotency-Key is still being processed; retry shortly.",
        )
        .with_retry_after(1)
        .into_response(),
        Claim::Fresh => {
            let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
            match settle(app, &scope, &key, response).await {
                Ok(response) => response,
                Err(err) => Problem::from(err).into_response(),
            }
        }
    }
}

/// Keeps a successful answer; releases the key after anything else.
async fn settle(
    app: &AppState,
    scope: &str,
    key: &str,
    response: Response,
) -> Result<Response, crate::store::StoreError> {
    if !response.status().is_success() {
        idempotency::release(app, scope, key).await?;
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes): Result<Bytes, _> = axum::body::to_bytes(body, idempotency::MAX_STORED).await
    else {
        idempotency::release(app, scope, key).await?;
        return Err(crate::store::StoreError::Setup("a response too large to keep".into()));
    };
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    idempotency::keep(app, scope, key, parts.status.as_u16(), content_type, &bytes).await?;
    Ok(Response::from_parts(parts, Body::from(bytes)))
}
