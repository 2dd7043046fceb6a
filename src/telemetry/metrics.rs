//! Prometheus metrics, served on their own listener (`BULWARK_METRICS_LISTEN`) so they are
//! never exposed on the public API port.
//!
//! The `metrics` facade has one recorder per process; `install` sets it once and returns the
//! shared handle, so several applications in one test process share it.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const LATENCY_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

pub fn install() -> Result<PrometheusHandle, String> {
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("http_request_duration_seconds".into()),
                    LATENCY_BUCKETS,
                )
                .map_err(|err| err.to_string())?
                .install_recorder()
                .map_err(|err| err.to_string())?;
            describe();
            Ok(handle)
        })
        .clone()
}

/// Counters the alert rules (deploy/prometheus/alerts.yml) and the dashboard
/// (deploy/grafana/bulwark.json) read, exported from start-up at zero: an alert on
/// `increase()` of a series that appears only with its first event misses that event, and a
/// rule naming a metric nobody exports never fires.
const ALERTED_COUNTERS: &[&str] = &[
    "redis_errors_total",
    "auth_login_failures_total",
    "auth_lockouts_total",
    "auth_mfa_failures_total",
    "auth_refresh_reuse_total",
    "audit_checkpoints_total",
    "audit_checkpoint_failures_total",
    "rate_limit_backend_failures_total",
];

fn describe() {
    for name in ALERTED_COUNTERS {
        metrics::counter!(*name).increment(0);
    }
    metrics::counter!("export_rows_total", "export" => "contacts").increment(0);
    metrics::describe_counter!(
        "http_requests_total",
        "HTTP requests by route template, method and status"
    );
    metrics::describe_histogram!(
        "http_request_duration_seconds",
        metrics::Unit::Seconds,
        "HTTP request latency by route template and method"
    );
}

/// The counter and histogram of one (route, method, status), registered once: looking a
/// metric up by its labels costs allocations and hashing on every request otherwise.
type Handles = (metrics::Counter, metrics::Histogram);

/// Route -> (method, status, handles): found by `&str`, so a hit allocates nothing.
type HandleMap = std::collections::HashMap<Box<str>, Vec<(&'static str, u16, Handles)>>;

static REQUEST_HANDLES: std::sync::LazyLock<std::sync::Mutex<HandleMap>> =
    std::sync::LazyLock::new(Default::default);

/// `method` is a label from a closed set (the caller maps anything unusual to `other`).
pub fn record_request(route: &str, method: &'static str, status: u16, elapsed: Duration) {
    let handles = REQUEST_HANDLES.lock().ok().map(|mut handles| {
        let known = handles
            .get(route)
            .and_then(|list| list.iter().find(|(m, s, _)| *m == method && *s == status))
            .map(|(_, _, found)| found.clone());
        known.unwrap_or_else(|| {
            // Route templates come from the endpoint table (or `unmatched`): a bounded set.
            let made: Handles = (
                metrics::counter!("http_requests_total", "route" => route.to_owned(), "method" => method, "status" => status.to_string()),
                metrics::histogram!("http_request_duration_seconds", "route" => route.to_owned(), "method" => method),
            );
            handles.entry(route.into()).or_default().push((method, status, made.clone()));
            made
        })
    });
    if let Some((requests, latency)) = handles {
        requests.increment(1);
        latency.record(elapsed.as_secs_f64());
    }
}

/// Histograms are drained into their buckets by upkeep; without the exporter's HTTP
/// listener nobody else runs it.
pub async fn run_upkeep(handle: PrometheusHandle) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        handle.run_upkeep();
    }
}
