//! `Idempotency-Key` on POSTs that create or send.
//!
//! Per scope (the caller: a user or an API key within its tenant; for anonymous routes the
//! client address) and key, for 24 hours:
//! the first request runs and its response is stored (encrypted); a retry with the same key
//! and the same request (method, path and body fingerprint) gets the stored response again
//! with `Idempotent-Replayed: true`; the same key with a different request is 422; a
//! duplicate arriving while the first still runs is 409. Only successful (2xx) responses are
//! stored: a refused or failed request changed nothing, so its key is released and a retry
//! runs again. The records live in the database, so they hold across instances and restarts.

mod store;

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use sha2::{Digest as _, Sha256};

use crate::app::AppState;
use crate::clock::Timestamp;
use crate::crypto::aead;
use crate::http::RoutePolicy;
use crate::http::problem::Problem;
use crate::store::StoreError;

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED: &str = "idempotent-replayed";
const LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Responses larger than this are not kept (none of ours come close).
const MAX_STORED: usize = 1 << 20;
const PURPOSE: &str = "idempotency-responses";

enum Claim {
    Fresh,
    Replay { status: u16, content_type: Option<String>, body: Vec<u8> },
    Mismatch,
    InFlight,
}

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
        Ok(key)
            if !key.is_empty()
                && key.len() <= 255
                && key.bytes().all(|b| (0x21..=0x7e).contains(&b)) =>
        {
            key
        }
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
    let fingerprint = Sha256::new()
        .chain_update(parts.method.as_str())
        .chain_update(b"\n")
        .chain_update(parts.uri.path_and_query().map_or("", |p| p.as_str()))
        .chain_update(b"\n")
        .chain_update(&bytes)
        .finalize()
        .to_vec();
    let timeout = app.config().http.request_timeout;
    let claim = match claim(app, &scope, &key, &fingerprint, timeout).await {
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

fn aad(scope: &str, key: &str) -> Vec<u8> {
    format!("bulwark:idempotency:v1:{scope}:{key}").into_bytes()
}

async fn claim(
    app: &AppState,
    scope: &str,
    key: &str,
    fingerprint: &[u8],
    timeout: Duration,
) -> Result<Claim, StoreError> {
    let now = Timestamp::now();
    let locked_until = now.plus(timeout + Duration::from_secs(5));
    let mut tx = app.store().system_tx().await?;
    if store::claim(&mut tx, scope, key, fingerprint, now, locked_until, now.plus(LIFETIME)).await?
    {
        tx.commit().await?;
        return Ok(Claim::Fresh);
    }
    let Some(row) = store::get(&mut tx, scope, key).await? else {
        // Purged between the two statements: claim again.
        store::claim(&mut tx, scope, key, fingerprint, now, locked_until, now.plus(LIFETIME))
            .await?;
        tx.commit().await?;
        return Ok(Claim::Fresh);
    };
    let claim = if row.expires_at <= now {
        store::delete(&mut tx, scope, key).await?;
        store::claim(&mut tx, scope, key, fingerprint, now, locked_until, now.plus(LIFETIME))
            .await?;
        Claim::Fresh
    } else if row.fingerprint != fingerprint {
        Claim::Mismatch
    } else if row.state == "in_flight" {
        if row.locked_until <= now {
            // The first attempt died (crash, deploy) without an answer: this one takes over.
            store::relock(&mut tx, scope, key, locked_until).await?;
            Claim::Fresh
        } else {
            Claim::InFlight
        }
    } else {
        let body = match (&row.body, &row.master_key_id) {
            (Some(sealed), Some(master)) => app
                .keys()
                .derive_with(master, PURPOSE)
                .ok()
                .and_then(|k| aead::open(k.expose(), &aad(scope, key), sealed).ok())
                .map(|plain| plain.to_vec()),
            _ => Some(vec![]),
        };
        match body {
            Some(body) => Claim::Replay {
                status: row.status.and_then(|s| u16::try_from(s).ok()).unwrap_or(200),
                content_type: row.content_type,
                body,
            },
            // Sealed under a master key no longer configured: the answer is lost, and running
            // the request again could duplicate its effect.
            None => Claim::Mismatch,
        }
    };
    tx.commit().await?;
    Ok(claim)
}

/// Stores a final response, or releases the key when the outcome should be retried.
async fn settle(
    app: &AppState,
    scope: &str,
    key: &str,
    response: Response,
) -> Result<Response, StoreError> {
    let status = response.status();
    if !status.is_success() {
        let mut tx = app.store().system_tx().await?;
        store::delete(&mut tx, scope, key).await?;
        tx.commit().await?;
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let bytes: Bytes = match axum::body::to_bytes(body, MAX_STORED).await {
        Ok(bytes) => bytes,
        Err(_) => {
            let mut tx = app.store().system_tx().await?;
            store::delete(&mut tx, scope, key).await?;
            tx.commit().await?;
            return Err(StoreError::Setup("a response too large to keep for idempotency".into()));
        }
    };
    let mut tx = app.store().system_tx().await?;
    let (master, sealing_key) =
        app.keys().derive_current(PURPOSE).map_err(|err| StoreError::Setup(err.to_string()))?;
    let sealed = aead::seal(sealing_key.expose(), &aad(scope, key), &bytes);
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    store::finish(
        &mut tx,
        scope,
        key,
        &store::Finished {
            status: i32::from(status.as_u16()),
            content_type,
            body: &sealed,
            master_key_id: &master,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

/// Deletes records past their 24 hours. Run periodically.
pub async fn purge_expired(app: &AppState) -> Result<u64, StoreError> {
    let mut tx = app.store().system_tx().await?;
    let removed = store::purge_expired(&mut tx, Timestamp::now()).await?;
    tx.commit().await?;
    Ok(removed)
}
