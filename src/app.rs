//! `Application::build(config)`: the one way to assemble a running Bulwark, shared by `main`
//! and the integration tests (which bind port 0 and run several applications in one
//! process).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::config::{Config, Profile};
use crate::crypto::{KeyRing, TenantKeys};
use crate::http::{self, server};
use crate::identity::Identity;
use crate::ratelimit::RateLimiter;
use crate::redis_link::RedisLink;
use crate::store::Store;
use crate::telemetry;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<Config>,
    store: Store,
    redis: Option<RedisLink>,
    tenant_keys: TenantKeys,
    identity: Identity,
    limiter: RateLimiter,
    storage: crate::documents::storage::Storage,
    readiness: telemetry::health::ReadinessCache,
    openapi_json: axum::body::Bytes,
    containment: Arc<crate::containment::Containment>,
    /// Wakes the email workers when a message is queued.
    email_wake: tokio::sync::Notify,
}

impl AppState {
    /// Migrates and opens the database, checks the application role and builds the services:
    /// everything but the listeners. CLI commands use it alone.
    pub async fn open(config: Config, openapi_json: axum::body::Bytes) -> anyhow::Result<AppState> {
        Store::migrate(&config.database).await.context("migrating the database")?;
        let store = Store::open(&config.database).await.context("opening the database")?;
        if let Some(report) = store.role_report().await.context("inspecting the database role")? {
            let problems = report.problems();
            if !problems.is_empty() {
                if config.env == Profile::Development {
                    for problem in problems {
                        tracing::warn!("PostgreSQL: {problem}");
                    }
                } else {
                    anyhow::bail!("PostgreSQL: {}", problems.join("; "));
                }
            }
        }
        let redis = match &config.redis_url {
            Some(url) => Some(
                RedisLink::connect(url.expose(), config.redis_ca_file.as_deref())
                    .map_err(anyhow::Error::msg)?,
            ),
            None => None,
        };
        // One TLS provider for every client (the object store's and Redis's): ring.
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
        let storage = crate::documents::storage::Storage::open(&config.storage)
            .context("opening the document store (BULWARK_STORAGE_URL)")?;
        let ring = KeyRing::new(&config.secrets.master_keys).context("BULWARK_MASTER_KEYS")?;
        let tenant_keys = TenantKeys::new(Arc::new(ring));
        let identity = Identity::new(&config, store.clone(), redis.clone())?;
        let limiter = RateLimiter::new(
            config.rate_limits.rules.clone(),
            config.rate_limits.enabled,
            redis.clone(),
            config.rate_limits.max_keys,
        );
        Ok(AppState {
            inner: Arc::new(Inner {
                config: Arc::new(config),
                store,
                redis,
                tenant_keys,
                identity,
                limiter,
                storage,
                readiness: telemetry::health::ReadinessCache::default(),
                openapi_json,
                containment: Arc::default(),
                email_wake: tokio::sync::Notify::new(),
            }),
        })
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.inner.config
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The client networks blocked on this instance (see `containment`).
    /// Wakes this instance's email workers (a message was queued).
    pub fn email_wake(&self) -> &tokio::sync::Notify {
        &self.inner.email_wake
    }

    /// Blocked addresses and kill switches as this instance last read them.
    pub fn containment(&self) -> &Arc<crate::containment::Containment> {
        &self.inner.containment
    }

    pub fn redis(&self) -> Option<&RedisLink> {
        self.inner.redis.as_ref()
    }

    /// The master keys.
    pub fn keys(&self) -> &KeyRing {
        self.inner.tenant_keys.ring()
    }

    /// The tenants' data and index keys.
    pub fn tenant_keys(&self) -> &TenantKeys {
        &self.inner.tenant_keys
    }

    pub fn limiter(&self) -> &RateLimiter {
        &self.inner.limiter
    }

    /// The object store of document contents.
    pub fn storage(&self) -> &crate::documents::storage::Storage {
        &self.inner.storage
    }

    pub fn identity(&self) -> &Identity {
        &self.inner.identity
    }

    /// What another instance (or this one) announced through Redis.
    pub fn on_cluster_event(&self, event: crate::redis_link::ClusterEvent) {
        use crate::redis_link::ClusterEvent;
        self.identity().sessions.on_event(&event);
        match event {
            ClusterEvent::TenantDeleted { tenant } => {
                self.tenant_keys().forget(tenant);
                self.identity().api_keys.clear();
            }
            ClusterEvent::ApiKeysChanged => self.identity().api_keys.clear(),
            ClusterEvent::ContainmentChanged => self.containment().on_changed(),
            ClusterEvent::SessionsChanged { .. }
            | ClusterEvent::UserChanged { .. }
            | ClusterEvent::TenantChanged { .. } => {}
        }
    }

    pub fn readiness_cache(&self) -> &telemetry::health::ReadinessCache {
        &self.inner.readiness
    }

    pub fn openapi_json(&self) -> axum::body::Bytes {
        self.inner.openapi_json.clone()
    }
}

pub struct Application {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    metrics: PrometheusHandle,
    router: http::App,
    state: AppState,
    tls: Option<TlsAcceptor>,
}

impl Application {
    /// Migrates the database, opens it, checks the application role, builds the router and
    /// binds the listeners. Nothing is served until `run`.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let tls = config
            .http
            .tls
            .as_ref()
            .map(server::tls_acceptor)
            .transpose()
            .map_err(anyhow::Error::msg)?;
        let metrics = telemetry::metrics::install().map_err(anyhow::Error::msg)?;
        let endpoints = http::endpoints();
        let document = http::openapi::document(&endpoints, config.public_url.as_str());
        let openapi_json = serde_json::to_vec(&document).context("serializing OpenAPI")?.into();
        let state = AppState::open(config, openapi_json).await?;
        // A restored backup may predate a tenant's deletion: delete it again before serving.
        let redeleted = crate::maintenance::tenant_deletion::apply_ledger(&state)
            .await
            .map_err(|err| anyhow::anyhow!("applying the shred ledger: {err}"))?;
        if !redeleted.is_empty() {
            tracing::warn!(tenants = ?redeleted, "tenants of the shred ledger deleted again");
        }
        // The blocks in force before the first request is served.
        crate::containment::reload(&state)
            .await
            .map_err(|err| anyhow::anyhow!("reading the blocked addresses: {err}"))?;
        let router = http::router(state.clone(), endpoints, crate::console::router(state.clone()));

        let config = state.config();
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding the API listener {}", config.listen))?;
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding the metrics listener {addr}"))?,
            ),
            None => None,
        };
        Ok(Application { listener, metrics_listener, metrics, router, state, tls })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    fn checkpointer(
        &self,
    ) -> Result<crate::audit::checkpoint::Checkpointer, crate::audit::checkpoint::CheckpointError>
    {
        let audit = &self.state.config().audit;
        crate::audit::checkpoint::Checkpointer::new(
            self.state.keys(),
            crate::audit::checkpoint::Policy {
                events: audit.checkpoint_events,
                interval: audit.checkpoint_interval,
                sink: audit.checkpoint_file.clone(),
            },
        )
    }

    /// Serves until `shutdown` completes, then drains open connections.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let (stop_tx, stop_rx) = watch::channel(false);
        let config = self.state.config().clone();
        let upkeep = tokio::spawn(telemetry::metrics::run_upkeep(self.metrics.clone()));
        let sweeper = tokio::spawn(maintain(self.state.clone()));
        if let Err(err) = crate::backup::schedule::publish_state(&self.state).await {
            tracing::warn!(error = %err, "the last backup's time could not be read");
        }
        let backups = tokio::spawn(crate::backup::schedule::scheduler(self.state.clone()));
        let blocks = tokio::spawn(crate::containment::reloader(self.state.clone()));
        // Without a relay, messages stay queued (and `/readyz` says so).
        let mailer = config.email.smtp.as_ref().and_then(|smtp| {
            match crate::email::delivery::transport(smtp, config.email.workers) {
                Ok(transport) => Some(tokio::spawn(crate::email::delivery::worker(
                    self.state.clone(),
                    Arc::new(transport),
                    stop_rx.clone(),
                ))),
                Err(err) => {
                    tracing::error!(error = %err, "email delivery is off");
                    None
                }
            }
        });
        let mut hooks =
            tokio::spawn(crate::webhooks::delivery::worker(self.state.clone(), stop_rx.clone()));
        let refresher = tokio::spawn(crate::integrations::refresher(self.state.clone()));
        let compliance =
            tokio::spawn(crate::integrations::zoom::compliance_worker(self.state.clone()));
        let checkpointer = match self.checkpointer() {
            Ok(checkpointer) => {
                metrics::gauge!("audit_checkpoints_enabled").set(1.0);
                Some(Arc::new(tokio::sync::Mutex::new(checkpointer)))
            }
            Err(err) => {
                // A gauge, not a counter: a failure before the first scrape would be the
                // series' first sample, which increase() never counts.
                tracing::error!(error = %err, "audit checkpoints are off");
                metrics::gauge!("audit_checkpoints_enabled").set(0.0);
                None
            }
        };
        let checkpoints = checkpointer.clone().map(|checkpointer| {
            let store = self.state.store().clone();
            let every = config.audit.checkpoint_interval.min(std::time::Duration::from_secs(10));
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    if let Err(err) = checkpointer.lock().await.run(&store, false).await {
                        tracing::error!(error = %err, "audit checkpoint failed");
                        metrics::counter!("audit_checkpoint_failures_total").increment(1);
                    }
                }
            })
        });
        let listener = self.state.redis().cloned().map(|redis| {
            let state = self.state.clone();
            tokio::spawn(
                async move { redis.listen(move |event| state.on_cluster_event(event)).await },
            )
        });
        let metrics_server = self.metrics_listener.map(|listener| {
            let token = config
                .metrics_token
                .as_ref()
                .map(|t| crate::crypto::Secret::new(t.expose().clone()));
            let router = telemetry::routes::metrics_router(self.metrics.clone(), token);
            let options = server::ServeOptions {
                tls: None,
                header_read_timeout: config.http.header_read_timeout,
                idle_timeout: config.http.idle_timeout,
            };
            tokio::spawn(server::serve(listener, router, options, stopped(stop_rx.clone())))
        });
        let options = server::ServeOptions {
            tls: self.tls,
            header_read_timeout: config.http.header_read_timeout,
            idle_timeout: config.http.idle_timeout,
        };
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        server::serve(self.listener, self.router, options, stopped(stop_rx)).await;
        if let Some(task) = metrics_server {
            let _ = task.await;
        }
        upkeep.abort();
        sweeper.abort();
        backups.abort();
        blocks.abort();
        refresher.abort();
        compliance.abort();
        // The delivery round in flight finishes (bounded): what the relay accepted is
        // recorded. Past the bound, a message keeps its lease and is retried after it, with
        // the same Message-ID.
        if let Some(mut task) = mailer
            && tokio::time::timeout(std::time::Duration::from_secs(30), &mut task).await.is_err()
        {
            task.abort();
        }
        // Likewise the webhook round in flight (each attempt has its own deadline).
        if tokio::time::timeout(std::time::Duration::from_secs(30), &mut hooks).await.is_err() {
            hooks.abort();
        }
        if let (Some(task), Some(checkpointer)) = (checkpoints, checkpointer) {
            task.abort();
            // The last word: every chain that moved since its checkpoint gets one now.
            if let Err(err) = checkpointer.lock().await.run(self.state.store(), true).await {
                tracing::error!(error = %err, "audit checkpoint at shutdown failed");
            }
        }
        if let Some(listener) = listener {
            listener.abort();
        }
        self.state.store().close().await;
    }
}

/// Periodic housekeeping of this instance: stale rate-limit counters every 10 s, expired
/// idempotency records every 10 minutes, retention every hour.
async fn maintain(state: AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
    let mut ticks: u64 = 0;
    loop {
        tick.tick().await;
        state.limiter().sweep();
        state.tenant_keys().sweep();
        // Objects of deleted documents go within seconds (their content is already
        // unreadable: the key went with the row); the documents kill switch pauses this, and
        // the queue waits for it.
        let documents = crate::containment::features::Feature::Documents;
        if state.containment().switches.enabled(documents) {
            match crate::documents::purge_deleted(&state).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "objects of deleted documents removed"),
                Err(err) => {
                    tracing::warn!(error = %err, "removing deleted documents' objects failed");
                }
            }
        }
        // First a minute after start (not while the instance warms up), then hourly.
        if ticks % 360 == 6 {
            match crate::maintenance::retention::purge_all(&state).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "retention purge"),
                Err(err) => tracing::warn!(error = %err, "retention purge failed"),
            }
        }
        if ticks % 60 == 3 {
            match crate::idempotency::purge_expired(&state).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "expired idempotency records purged"),
                Err(err) => tracing::warn!(error = %err, "idempotency purge failed"),
            }
        }
        ticks += 1;
    }
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    // An error means the sender is gone: stop as well.
    let _ = rx.wait_for(|stop| *stop).await;
}
