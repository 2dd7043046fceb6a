//! The link to Redis, where the instances of a deployment share state: rate-limit counters,
//! lockout counters and the session-revocation cache.
//!
//! One multiplexed connection per process, re-established automatically after Redis
//! restarts. Every call has a short deadline, so a dead Redis costs a request milliseconds,
//! not seconds; callers decide per use whether that fails open or closed. The transition to
//! and from "unreachable" is logged once and exported as the `redis_up` gauge.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// Deadline of one Redis round trip.
const DEADLINE: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("Redis is unreachable")]
    Unreachable,
    #[error("Redis refused the command: {0}")]
    Command(String),
}

#[derive(Clone)]
pub struct RedisLink {
    client: redis::Client,
    manager: ConnectionManager,
    up: Arc<AtomicBool>,
}

/// What one instance tells the others at once (through Redis pub/sub) when something it did
/// must take effect everywhere: state each instance caches in memory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ClusterEvent {
    /// A tenant was deleted: forget its unwrapped keys and its sessions now.
    TenantDeleted { tenant: crate::ids::TenantId },
    /// Sessions were revoked or their step-up changed: read them again.
    SessionsChanged { sessions: Vec<crate::ids::SessionId> },
    /// A user's factors changed: read their sessions again.
    UserChanged { user: crate::ids::UserId },
    /// A tenant's MFA policy changed: read its sessions again.
    TenantChanged { tenant: crate::ids::TenantId },
    /// API keys were revoked (or their owners changed): look keys up again.
    ApiKeysChanged,
    /// Blocked addresses or kill switches changed: reread them now.
    ContainmentChanged,
}

/// The channel every instance listens on.
const EVENTS: &str = "bulwark:events";

impl RedisLink {
    /// Connects lazily: the process starts even when Redis is down, and readiness says so.
    /// `ca_file` (PEM) replaces the system roots for verifying a `rediss://` server.
    pub fn connect(url: &str, ca_file: Option<&std::path::Path>) -> Result<RedisLink, String> {
        // rustls needs a process-wide provider for the Redis client; the server's own TLS
        // names ring explicitly. Installing twice is harmless (the first one stays).
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
        let invalid = |_| "BULWARK_REDIS_URL is not a valid Redis URL".to_owned();
        let client = match ca_file {
            None => redis::Client::open(url).map_err(invalid)?,
            Some(path) => {
                let root_cert = std::fs::read(path).map_err(|err| {
                    format!(
                        "BULWARK_REDIS_CA_FILE: {} cannot be read ({})",
                        path.display(),
                        err.kind()
                    )
                })?;
                let certificates =
                    redis::TlsCertificates { client_tls: None, root_cert: Some(root_cert) };
                redis::Client::build_with_tls(url, certificates).map_err(invalid)?
            }
        };
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(DEADLINE))
            .set_response_timeout(Some(DEADLINE))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let manager =
            client.get_connection_manager_lazy(config).map_err(|err| format!("Redis: {err}"))?;
        metrics::gauge!("redis_up").set(1.0);
        Ok(RedisLink { client, manager, up: Arc::new(AtomicBool::new(true)) })
    }

    /// Tells every instance (this one included) about `event`. Best effort: an instance that
    /// misses it still converges through the database checks each cache makes.
    pub async fn publish(&self, event: &ClusterEvent) {
        let Ok(payload) = serde_json::to_string(event) else { return };
        if self.command::<i64>(redis::cmd("PUBLISH").arg(EVENTS).arg(payload)).await.is_err() {
            tracing::warn!(?event, "cluster event not published: Redis is unreachable");
        }
    }

    /// Calls `handle` with every event published by any instance, for as long as the process
    /// runs; reconnects after Redis restarts.
    pub async fn listen(&self, handle: impl Fn(ClusterEvent) + Send + Sync) {
        use futures_util::StreamExt as _;
        loop {
            match self.client.get_async_pubsub().await {
                Ok(mut pubsub) => {
                    if pubsub.subscribe(EVENTS).await.is_ok() {
                        let mut messages = pubsub.on_message();
                        while let Some(message) = messages.next().await {
                            let payload: String = message.get_payload().unwrap_or_default();
                            match serde_json::from_str::<ClusterEvent>(&payload) {
                                Ok(event) => handle(event),
                                Err(_) => tracing::warn!("an unknown cluster event was ignored"),
                            }
                        }
                    }
                }
                Err(err) => tracing::debug!(error = %err, "cluster events: Redis unreachable"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Runs a script (one atomic decision) with the deadline.
    pub async fn script<T: redis::FromRedisValue>(
        &self,
        script: &redis::Script,
        keys: &[&str],
        args: &[&str],
    ) -> Result<T, RedisError> {
        let mut connection = self.manager.clone();
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(*key);
        }
        for arg in args {
            invocation.arg(*arg);
        }
        let call = invocation.invoke_async::<T>(&mut connection);
        self.observe(tokio::time::timeout(DEADLINE, call).await)
    }

    /// Runs a plain command with the deadline.
    pub async fn command<T: redis::FromRedisValue>(
        &self,
        command: &redis::Cmd,
    ) -> Result<T, RedisError> {
        let mut connection = self.manager.clone();
        let call = command.query_async::<T>(&mut connection);
        self.observe(tokio::time::timeout(DEADLINE, call).await)
    }

    pub async fn ping(&self) -> bool {
        self.command::<String>(&redis::cmd("PING")).await.is_ok()
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    fn observe<T>(
        &self,
        outcome: Result<redis::RedisResult<T>, tokio::time::error::Elapsed>,
    ) -> Result<T, RedisError> {
        let result = match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err))
                if err.is_io_error()
                    || err.is_connection_dropped()
                    || err.is_timeout()
                    || err.is_connection_refusal() =>
            {
                Err(RedisError::Unreachable)
            }
            Ok(Err(err)) => Err(RedisError::Command(err.to_string())),
            Err(_) => Err(RedisError::Unreachable),
        };
        let up = !matches!(result, Err(RedisError::Unreachable));
        if self.up.swap(up, Ordering::Relaxed) != up {
            if up {
                tracing::warn!("Redis is reachable again");
            } else {
                tracing::error!(
                    "Redis is unreachable: shared limits, lockouts and revocations are degraded"
                );
            }
            metrics::gauge!("redis_up").set(if up { 1.0 } else { 0.0 });
        }
        if !up {
            metrics::counter!("redis_errors_total").increment(1);
        }
        result
    }
}
