//! Observability: redacted JSON logs, Prometheus metrics, liveness and readiness.

pub mod health;
mod log_output;
pub mod logs;
pub mod metrics;
pub mod routes;
