//! Request ids, the request span, the access log line and the request metrics.
//!
//! The id comes from `X-Request-Id` when the client sent a well-formed one (1–64 letters,
//! digits, `-`, `_`, `.`), else it is generated. It is echoed on the response, carried by the
//! span every log line of the request is written in, and put into problem bodies. The query
//! string is never logged: lookups such as `?email=` carry personal data.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use tower::ServiceExt as _;

use crate::ratelimit::client::{self, TrustedProxies};
use crate::ratelimit::{ClientAddress, ClientNet};

/// What the edge middleware needs: how the client address is found and keyed (the trusted
/// proxies and the IPv6 prefix) and the security headers.
pub struct Edge {
    pub trusted: TrustedProxies,
    pub ipv6_prefix: u8,
    pub headers: super::headers::SecurityHeaders,
    /// Addresses the platform super-admin blocked (`containment`): refused here, first.
    pub containment: Arc<crate::containment::Containment>,
}

pub const HEADER: &str = "x-request-id";
/// Parsed once: a name given as text is parsed again on every lookup and insert.
const REQUEST_ID: HeaderName = HeaderName::from_static(HEADER);
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The request's id, for handlers (`RequestContext`): the log fields' own copy, so the
/// extension costs no second string.
#[derive(Debug, Clone)]
pub struct RequestId(Arc<crate::telemetry::logs::RequestFields>);

impl RequestId {
    pub fn as_str(&self) -> &str {
        &self.0.request_id
    }
}

/// The route template that served a request (`/api/v1/contacts/{id}`), set by the endpoint
/// gate on the response, for metrics and logs without per-id cardinality.
#[derive(Debug, Clone)]
pub struct RouteTemplate(pub Arc<str>);

pub fn is_well_formed(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The edge, first for every request of the API (the connection calls it, `http::App`): the
/// request id, client address and the request's log fields on the way in, then `stack`; on
/// the way out the problem body of a refusal, the security headers (every response, errors
/// too), the request id header, the metrics and the access log line. A function the
/// connection calls, not a middleware: each layer costs a boxed future and a clone per
/// request.
pub async fn track_requests(
    rules: Arc<Edge>,
    stack: super::Stack,
    peer: SocketAddr,
    mut request: Request,
) -> Response {
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| is_well_formed(id))
        // A v4 UUID from the thread's CSPRNG: `Uuid::new_v4` asks the kernel each time.
        .map_or_else(
            || {
                let id =
                    uuid::Builder::from_random_bytes(crate::crypto::random_bytes()).into_uuid();
                id.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()).to_owned()
            },
            str::to_owned,
        );
    let method = request.method().clone();
    let path = request.uri().path();
    // The first 200 characters, cut at a character's boundary.
    let path = path[..path.char_indices().nth(200).map_or(path.len(), |(at, _)| at)].to_owned();
    let forwarded =
        request.headers().get_all(X_FORWARDED_FOR).iter().filter_map(|value| value.to_str().ok());
    let ip = client::client_ip(peer.ip(), forwarded, &rules.trusted);
    let net = ClientNet::of(ip, rules.ipv6_prefix);
    request.extensions_mut().insert(ClientAddress { ip, net });
    // Before rate limits, authentication and routing: nothing of a blocked client is run.
    let blocked = rules.containment.blocks.blocks(ip);
    let fields = Arc::new(crate::telemetry::logs::RequestFields {
        request_id: id,
        method: method.as_str().to_owned(),
        path,
        client_ip: Some(ip),
    });
    request.extensions_mut().insert(RequestId(fields.clone()));
    let id = &fields.request_id;
    let started = Instant::now();
    let run = async {
        let response = if blocked {
            blocked_response()
        } else {
            // Every service of the stack is always ready, and none fails (`Infallible`).
            let Ok(response) = stack.oneshot(request).await;
            response.map(axum::body::Body::new)
        };
        super::problem::render(response, id)
    };
    let mut response = crate::telemetry::logs::in_request(fields.clone(), run).await;
    rules.headers.apply_to(response.headers_mut());
    let elapsed = started.elapsed();

    if let Ok(value) = HeaderValue::from_str(id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let route = response.extensions().get::<RouteTemplate>().map(|route| route.0.clone());
    let route = route.as_deref().unwrap_or("unmatched");
    let status = response.status().as_u16();
    crate::telemetry::metrics::record_request(route, method_label(&method), status, elapsed);
    // Microsecond precision: the rest is noise.
    let latency_ms = (elapsed.as_secs_f64() * 1_000_000.0).round() / 1000.0;
    crate::telemetry::logs::request_completed(&fields, status, route, latency_ms);
    response
}

/// 403 `blocked`, labelled as its own route in metrics and logs.
fn blocked_response() -> Response {
    use axum::response::IntoResponse as _;
    let mut response = super::problem::Problem::new(
        axum::http::StatusCode::FORBIDDEN,
        "blocked",
        "Forbidden",
        "Requests from this address are blocked.",
    )
    .into_response();
    response.extensions_mut().insert(RouteTemplate(Arc::from("blocked")));
    response
}

/// A method as a label: the standard ones by name, anything else (a client may send any
/// token) as `other`, so labels stay few.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
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
