//! Delivery: workers claim due deliveries from the outbox with a lease (several instances
//! post each delivery once at a time; a crashed worker's deliveries are retried after the
//! lease), open the subscription's URL and secret inside its tenant, sign the body (Standard
//! Webhooks: `webhook-id` stable across retries, `webhook-timestamp`, `webhook-signature`)
//! and post it through the guarded client (`target::client`: every resolved address checked,
//! the connection to exactly those, no redirects, one deadline).
//!
//! A 2xx is `delivered`. Anything else (another status, a redirect, a refused or unreachable
//! address, a timeout) is retried along `BULWARK_WEBHOOK_RETRY_SCHEDULE`, then `failed`.
//! `BULWARK_WEBHOOK_DISABLE_AFTER` deliveries in a row that failed for good disable the
//! subscription, audited, and its creator is mailed. The `webhooks` kill switch pauses the
//! workers; what is queued waits.

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use tokio::sync::watch;

use super::store::{self, Attempt, DeliveryRow};
use super::{Sealed, open, target};
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::Timestamp;
use crate::config::WebhooksConfig;
use crate::containment::features::Feature;
use crate::crypto::standard_webhooks;
use crate::error::DomainResult;
use crate::ids::WebhookDeliveryId;
use crate::store::queue::{self, Claimed, WEBHOOKS};
use crate::tenancy::TenantScope;

/// How often an idle worker looks for due deliveries.
const POLL: Duration = Duration::from_secs(1);

/// Runs for the life of `serve`. At shutdown the round in flight finishes (each attempt is
/// bounded by the timeout), so what a receiver accepted is recorded.
pub async fn worker(app: AppState, mut stop: watch::Receiver<bool>) {
    let config = &app.config().webhooks;
    let dns = crate::dns::Resolver::new(app.config().email.dns_resolver);
    let client = match target::client(dns, config.allow_private.clone(), config.timeout) {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(error = %err, "webhook delivery is off");
            return;
        }
    };
    while !*stop.borrow() {
        if app.containment().switches.enabled(Feature::Webhooks) {
            match crate::store::background(round(&app, &client, config)).await {
                // A full round: there may be more due right now.
                Ok(n) if n == config.workers => continue,
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "webhook delivery round failed"),
            }
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Claims and posts up to `workers` due deliveries at once; how many were claimed.
async fn round(
    app: &AppState,
    client: &reqwest::Client,
    config: &WebhooksConfig,
) -> DomainResult<usize> {
    let now = Timestamp::now();
    // Longer than any attempt, so a live worker never loses its claim mid-attempt.
    let lease = now.plus(config.timeout * 2 + Duration::from_secs(30));
    let limit = i64::try_from(config.workers).unwrap_or(1);
    let mut tx = app.store().system_tx().await?;
    let claimed: Vec<Claimed<WebhookDeliveryId>> =
        WEBHOOKS.claim(&mut tx, now, lease, limit).await?;
    tx.commit().await?;
    let n = claimed.len();
    futures_util::stream::iter(claimed)
        .for_each_concurrent(config.workers, |claim| async move {
            let id = claim.0;
            if let Err(err) = deliver(app, client, config, claim).await {
                // The lease runs out and another round retries it.
                tracing::warn!(error = %err, delivery = %id, "webhook delivery failed");
            }
        })
        .await;
    Ok(n)
}

/// What an attempt came to.
enum Outcome {
    Delivered(u16),
    /// Worth another attempt: the receiver's status, if it answered, and why.
    Failed(Option<u16>, String),
    /// No attempt can succeed (the subscription is gone or disabled, its values do not open).
    Abandoned(String),
}

async fn deliver(
    app: &AppState,
    client: &reqwest::Client,
    config: &WebhooksConfig,
    (id, tenant, attempts, lease): Claimed<WebhookDeliveryId>,
) -> DomainResult<()> {
    let scope = TenantScope::system(tenant, "webhook delivery");
    let mut tx = app.store().tenant_read(&scope).await?;
    let row = store::delivery(&mut tx, id).await?.filter(|row| row.status == "pending");
    let Some(row) = row else {
        // Gone with its subscription, or finished by a worker that stopped before it could
        // take it out of the queue.
        tx.commit().await?;
        let mut tx = app.store().system_tx().await?;
        WEBHOOKS.dequeue(&mut tx, id, lease).await?;
        return Ok(tx.commit().await?);
    };
    let subscription =
        store::get(&mut tx, row.subscription_id).await?.filter(|s| s.status == "active");
    let target = match subscription {
        Some(subscription) => {
            let keys = crate::crm::tenant_keys(app, &mut tx).await?;
            open(&keys, tenant, &subscription).ok()
        }
        None => None,
    };
    tx.commit().await?;
    let started = Instant::now();
    let outcome = match target {
        Some(target) => attempt(app, client, &target, &row).await,
        None => Outcome::Abandoned("the subscription is disabled or cannot be opened".into()),
    };
    let elapsed = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
    record(app, &scope, config, &row, attempts, lease, outcome, elapsed).await
}

/// Signs and posts the body once.
async fn attempt(
    app: &AppState,
    client: &reqwest::Client,
    target: &Sealed,
    row: &DeliveryRow,
) -> Outcome {
    let config = app.config();
    // IP literals and `localhost` never reach the guarded resolver: check the URL again
    // (the operator's allowlist may also have changed since it was written).
    let https_only = !config.env.is_development();
    let url = match target::check_url(&target.url, https_only, &config.webhooks.allow_private) {
        Ok(url) => url,
        Err(why) => return Outcome::Failed(None, format!("refused: the URL {why}")),
    };
    let Ok(key) = standard_webhooks::parse_secret(&target.secret) else {
        return Outcome::Abandoned("the signing secret cannot be read".into());
    };
    let webhook_id = format!("msg_{}", row.id.as_uuid().simple());
    let timestamp = Timestamp::now().secs();
    let signature =
        standard_webhooks::sign(key.expose(), &webhook_id, timestamp, row.payload.as_bytes());
    let sent = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &webhook_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(row.payload.clone())
        .send()
        .await;
    match sent {
        Ok(response) if response.status().is_success() => {
            Outcome::Delivered(response.status().as_u16())
        }
        Ok(response) => {
            let status = response.status().as_u16();
            Outcome::Failed(Some(status), format!("the receiver answered {status}"))
        }
        Err(err) => Outcome::Failed(None, why(&err)),
    }
}

/// Why a request failed, without the URL (it may carry the receiver's secret) or anything
/// the receiver wrote.
fn why(err: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = Some(err);
    while let Some(inner) = source {
        if inner.is::<target::Refused>() {
            return format!("refused: {inner}");
        }
        source = inner.source();
    }
    if err.is_timeout() {
        "timed out".into()
    } else if err.is_connect() {
        "could not connect".into()
    } else {
        "the request failed".into()
    }
}

/// Writes what an attempt came to, then the queue.
#[allow(clippy::too_many_arguments, reason = "one attempt's facts, written together")]
async fn record(
    app: &AppState,
    scope: &TenantScope,
    config: &WebhooksConfig,
    row: &DeliveryRow,
    attempts: i32,
    lease: Timestamp,
    outcome: Outcome,
    duration_ms: i32,
) -> DomainResult<()> {
    let now = Timestamp::now();
    let (status, response_status, error, due, label) = match &outcome {
        Outcome::Delivered(code) => ("delivered", Some(*code), None, None, "delivered"),
        Outcome::Failed(code, why) => {
            match queue::retry_at(now, &config.retry_schedule, attempts) {
                Some(at) => ("pending", *code, Some(why.as_str()), Some(at), "retry"),
                None => ("failed", *code, Some(why.as_str()), None, "failed"),
            }
        }
        Outcome::Abandoned(why) => ("failed", None, Some(why.as_str()), None, "abandoned"),
    };
    let attempt = Attempt {
        status,
        attempts,
        response_status: response_status.map(i32::from),
        error,
        duration_ms,
        next_attempt_at: due,
    };
    let mut tx = app.store().tenant_tx(scope).await?;
    store::record_attempt(&mut tx, row.id, &attempt, now).await?;
    let mut disabled_for = None;
    match (&outcome, status) {
        (Outcome::Delivered(_), _) => store::reset_failures(&mut tx, row.subscription_id).await?,
        (Outcome::Failed(..), "failed") => {
            let failures = store::count_failure(&mut tx, row.subscription_id).await?;
            if failures >= config.disable_after
                && store::disable(&mut tx, row.subscription_id, now).await?
            {
                let event = Event::new(Action::WebhookDisable)
                    .by_scope(scope)
                    .target("webhook", row.subscription_id)
                    .detail("failures", i64::from(failures));
                audit::record(&mut tx, &RequestContext::system(), event).await?;
                disabled_for =
                    store::get(&mut tx, row.subscription_id).await?.and_then(|s| s.created_by);
            }
        }
        _ => {}
    }
    tx.commit().await?;
    let mut tx = app.store().system_tx().await?;
    match due {
        Some(due) => WEBHOOKS.reschedule(&mut tx, row.id, lease, due).await?,
        None => WEBHOOKS.dequeue(&mut tx, row.id, lease).await?,
    };
    tx.commit().await?;
    if let Some(owner) = disabled_for {
        let text = format!(
            "Deliveries to your webhook {} kept failing, so it was disabled. Fix the receiver, \
             then set its status to active again.\n",
            row.subscription_id
        );
        crate::identity::mail::owner_notice(app, owner, "A webhook was disabled", text);
    }
    metrics::counter!("webhook_attempts_total", "outcome" => label).increment(1);
    tracing::info!(delivery = %row.id, outcome = label, attempt = attempts, "webhook delivery");
    Ok(())
}
