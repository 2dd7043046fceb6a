//! Request ids, the request span, the access log line and the request metrics.
//!
//! The id comes from `X-Request-Id` when the client sent a well-formed one (1–64 letters,
//! digits, `-`, `_`, `.`), else it is generated. It is echoed on the response, carried by the
//! span every log line of the request is written in, and put into problem bodies. The query
//! string is never logged: lookups such as `?email=` carry personal data.

use std::time::Instant;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument as _;
use uuid::Uuid;

use super::ClientAddr;
use crate::ratelimit::client::{self, TrustedProxies};
use crate::ratelimit::{ClientAddress, ClientNet};

/// How the client address is found and keyed: the trusted proxies and the IPv6 prefix.
#[derive(Debug, Clone)]
pub struct ClientRules {
    pub trusted: TrustedProxies,
    pub ipv6_prefix: u8,
}

pub const HEADER: &str = "x-request-id";

#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The route template that served a request (`/api/v1/contacts/{id}`), set by the endpoint
/// gate on the response, for metrics and logs without per-id cardinality.
#[derive(Debug, Clone)]
pub struct RouteTemplate(pub String);

pub fn is_well_formed(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

pub async fn track_requests(
    State(rules): State<Arc<ClientRules>>,
    mut request: Request,
    next: Next,
) -> Response {
    let id = request
        .headers()
        .get(HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| is_well_formed(id))
        .map_or_else(|| Uuid::new_v4().to_string(), str::to_owned);
    request.extensions_mut().insert(RequestId(id.clone()));
    let method = request.method().clone();
    let path: String = request.uri().path().chars().take(200).collect();
    let client_ip = request.extensions().get::<ClientAddr>().map(|addr| {
        let forwarded = request
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok());
        client::client_ip(addr.0.ip(), forwarded, &rules.trusted)
    });
    if let Some(ip) = client_ip {
        let net = ClientNet::of(ip, rules.ipv6_prefix);
        request.extensions_mut().insert(ClientAddress { ip, net });
    }
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %method,
        path = %path,
        client_ip = tracing::field::Empty,
    );
    if let Some(ip) = client_ip {
        span.record("client_ip", tracing::field::display(ip));
    }
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();

    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    let route = response
        .extensions()
        .get::<RouteTemplate>()
        .map_or_else(|| "unmatched".to_owned(), |route| route.0.clone());
    let status = response.status().as_u16();
    crate::telemetry::metrics::record_request(&route, method.as_str(), status, elapsed);
    span.in_scope(|| {
        tracing::info!(
            status,
            route = %route,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "request completed"
        );
    });
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_ids_are_short_and_plain() {
        assert!(is_well_formed("abc-123_x.y"));
        assert!(is_well_formed(&"a".repeat(64)));
        assert!(!is_well_formed(""));
        assert!(!is_well_formed(&"a".repeat(65)));
        assert!(!is_well_formed("a b"));
        assert!(!is_well_formed("a\nb"));
        assert!(!is_well_formed("\"><script>"));
    }
}
