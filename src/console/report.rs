//! `POST /csp-report`: where browsers report what the console's policy blocked. Each report
//! is counted (`csp_violations_total`) and logged at warn with its directive and blocked
//! URL; bodies over 64 KiB are refused with 413 and reports are rate-limited per address
//! (the API's `write` budget), so the endpoint cannot be used to fill the log.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use serde_json::Value;

use crate::app::AppState;
use crate::http::problem::Problem;
use crate::ratelimit::{ClientAddress, ClientKey, ClientNet, RateCategory, Verdict};

/// The largest report read.
pub const REPORT_LIMIT: usize = 64 * 1024;

pub async fn receive(
    State(app): State<AppState>,
    address: Option<axum::Extension<ClientAddress>>,
    body: Bytes,
) -> Response {
    let net = address.map_or(ClientNet::UNKNOWN, |a| a.net);
    match app.limiter().check(RateCategory::Write, None, &ClientKey::anonymous(net)).await {
        Verdict::Refused { retry_after_secs, .. } => {
            return Problem::for_status(StatusCode::TOO_MANY_REQUESTS)
                .with_retry_after(retry_after_secs)
                .into_response();
        }
        Verdict::Unavailable { .. } => {
            return Problem::for_status(StatusCode::SERVICE_UNAVAILABLE).into_response();
        }
        Verdict::Unlimited | Verdict::Allowed(_) => {}
    }
    let report: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    // `report-uri` sends `{"csp-report": {...}}`; the Reporting API a list of `{body: {...}}`.
    let inner = report.get("csp-report").or_else(|| report.get(0).and_then(|r| r.get("body")));
    let field = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| inner.and_then(|r| r.get(*n)).and_then(Value::as_str))
            .unwrap_or("")
            .chars()
            .take(200)
            .collect::<String>()
    };
    let directive = field(&["violated-directive", "effectiveDirective", "effective-directive"]);
    let blocked = field(&["blocked-uri", "blockedURL"]);
    let page = field(&["document-uri", "documentURL"]);
    metrics::counter!("csp_violations_total").increment(1);
    tracing::warn!(directive, blocked, page, "CSP violation reported");
    StatusCode::NO_CONTENT.into_response()
}
