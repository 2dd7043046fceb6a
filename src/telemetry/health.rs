//! Health and readiness: the process is alive; it can serve (database reachable and, when
//! configured, Redis). Readiness is probed at most once a second and shared by every caller,
//! so a flood of `/readyz` never becomes a flood of database queries.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`
    pub status: &'static str,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`, or `degraded` when Redis is unreachable (shared limits degraded).
    pub status: &'static str,
    /// The configuration profile: `development`, `staging` or `production`.
    pub profile: &'static str,
    /// Each dependency and its state (`ok` or `unavailable`).
    pub checks: BTreeMap<&'static str, &'static str>,
    /// The features the operator switched off (`/api/v1/platform/features`); empty when
    /// everything is on.
    pub features_disabled: Vec<&'static str>,
    #[serde(skip)]
    pub ready: bool,
}

/// How long one probe's answer is reused.
const PROBE_TTL: Duration = Duration::from_secs(1);

/// The last probe, shared by the instance's callers.
#[derive(Default)]
pub struct ReadinessCache(Mutex<Option<(Instant, Readiness)>>);

/// Whether this instance can serve. A database that does not answer makes it unready; Redis
/// down degrades it (limits fail open or closed per rule) but keeps it ready: every instance
/// shares one Redis, and an unready fleet is an outage.
pub async fn readiness(app: &AppState) -> Readiness {
    let cache = app.readiness_cache();
    // The switches are this instance's own memory: always current, never cached here.
    let features_disabled = app.containment().switches.disabled();
    if let Some((at, answer)) = cache.0.lock().ok().and_then(|c| c.clone())
        && at.elapsed() < PROBE_TTL
    {
        return Readiness { features_disabled, ..answer };
    }
    let mut checks = BTreeMap::new();
    let mut ready = true;
    match app.store().check_ready().await {
        Ok(()) => {
            checks.insert("database", "ok");
        }
        Err(err) => {
            tracing::warn!(error = %err, "readiness: database check failed");
            checks.insert("database", "unavailable");
            ready = false;
        }
    }
    let mut status = "ready";
    if let Some(redis) = app.redis() {
        if redis.ping().await {
            checks.insert("redis", "ok");
        } else {
            checks.insert("redis", "unavailable");
            status = "degraded";
        }
    }
    let profile = app.config().env.as_str();
    let answer = Readiness { status, profile, checks, features_disabled, ready };
    if let Ok(mut cached) = cache.0.lock() {
        *cached = Some((Instant::now(), answer.clone()));
    }
    answer
}
