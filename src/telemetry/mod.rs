//! Observability: redacted JSON logs, Prometheus metrics, liveness and readiness.

pub mod health;
pub mod logs;
pub mod metrics;
pub mod routes;
