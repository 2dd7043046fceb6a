//! Sending quotas: recipients per tenant per rolling hour and day — the platform's defaults
//! (`BULWARK_EMAIL_HOURLY_LIMIT`, `BULWARK_EMAIL_DAILY_LIMIT`) or a tenant's own, set by the
//! super-admin. Counted from the messages queued, so every instance sees the same count.
//! Passing 90 % of a window writes one `email.quota_warning` audit event and a metric.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::store;
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::Timestamp;
use crate::error::{DomainError, DomainResult};
use crate::identity::Principal;
use crate::ids::TenantId;
use crate::store::TenantTx;

/// A tenant's limits as the super-admin sets them; `null` returns to the default.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsChange {
    #[schema(minimum = 0, maximum = 100_000_000)]
    pub hourly_limit: Option<i64>,
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub daily_limit: Option<i64>,
}

/// The limits in force for a tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct Limits {
    pub hourly_limit: i64,
    pub daily_limit: i64,
    /// Whether each is the tenant's own (else the platform's default).
    pub hourly_custom: bool,
    pub daily_custom: bool,
}

fn effective(app: &AppState, (hourly, daily): (Option<i64>, Option<i64>)) -> Limits {
    let config = &app.config().email;
    Limits {
        hourly_limit: hourly.unwrap_or(config.hourly_limit),
        daily_limit: daily.unwrap_or(config.daily_limit),
        hourly_custom: hourly.is_some(),
        daily_custom: daily.is_some(),
    }
}

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3_600);
const DAY: Duration = Duration::from_secs(86_400);

/// The start of the `span`-long bucket holding `at`.
fn bucket(at: Timestamp, span: Duration) -> Timestamp {
    let span = i64::try_from(span.as_millis()).unwrap_or(i64::MAX);
    Timestamp::from_millis(at.millis() - at.millis().rem_euclid(span))
}

/// Refuses a send of `count` recipients that would take the tenant past a window's limit
/// (429 with the seconds until enough of the window has moved on), else counts them.
/// Counted in minute buckets for the hour and hour buckets for the day, so the check reads
/// at most 84 rows; a window includes its oldest, partly elapsed bucket whole (it refuses a
/// little early rather than late). Two sends racing may overshoot by one message.
pub(super) async fn within(
    app: &AppState,
    tx: &mut TenantTx,
    ctx: &RequestContext,
    count: i64,
    now: Timestamp,
) -> DomainResult<()> {
    let usage = store::usage(tx, now.minus(HOUR + MINUTE), now.minus(DAY + HOUR)).await?;
    let limits = effective(app, (usage.hourly_limit, usage.daily_limit));
    let windows = [
        ("hour", usage.hour, usage.hour_oldest, MINUTE, HOUR, limits.hourly_limit),
        ("day", usage.day, usage.day_oldest, HOUR, DAY, limits.daily_limit),
    ];
    for (name, used, oldest, span, window, limit) in windows {
        if used + count > limit {
            let until = oldest.map_or(now, |t| t.plus(span + window));
            // The oldest bucket's last message leaves the window by its end plus the window;
            // never longer than the window itself.
            let wait = (until.millis().saturating_sub(now.millis()) / 1000 + 1)
                .min(i64::try_from(window.as_secs()).unwrap_or(i64::MAX));
            metrics::counter!("email_quota_refusals_total", "window" => name).increment(1);
            return Err(DomainError::QuotaExceeded {
                retry_after: u64::try_from(wait).unwrap_or(1),
            });
        }
        // This send crosses 90 %: once per window, since the count only grows until the
        // window moves on.
        let mark = limit * 9 / 10;
        if used < mark && used + count >= mark {
            metrics::counter!("email_quota_warnings_total", "window" => name).increment(1);
            let event = Event::new(Action::EmailQuotaWarning)
                .by_system("email quota")
                .detail("window", name)
                .detail("used", used + count)
                .detail("limit", limit);
            audit::record(tx, ctx, event).await?;
        }
    }
    if count > 0 {
        store::count_usage(tx, bucket(now, MINUTE), bucket(now, HOUR), count).await?;
    }
    Ok(())
}

/// The limits in force for a tenant (super-admin).
pub async fn limits(app: &AppState, tenant: TenantId) -> DomainResult<Limits> {
    let scope = crate::tenancy::TenantScope::system(tenant, "email limits");
    let mut tx = app.store().tenant_read(&scope).await?;
    let own = store::tenant_limits(&mut tx).await?;
    tx.commit().await?;
    own.map(|own| effective(app, own)).ok_or(DomainError::NotFound("tenant"))
}

/// Sets a tenant's own limits (super-admin); audited in the platform chain and the tenant's.
pub async fn set_limits(
    app: &AppState,
    ctx: &RequestContext,
    principal: &Principal,
    tenant: TenantId,
    change: LimitsChange,
) -> DomainResult<Limits> {
    let mut problems = vec![];
    if change.hourly_limit.is_some_and(|n| !(0..=100_000_000).contains(&n)) {
        problems.push(("hourly_limit".to_owned(), "must be 0 to 100000000".to_owned()));
    }
    if change.daily_limit.is_some_and(|n| !(0..=1_000_000_000).contains(&n)) {
        problems.push(("daily_limit".to_owned(), "must be 0 to 1000000000".to_owned()));
    }
    if !problems.is_empty() {
        return Err(DomainError::Invalid(problems));
    }
    let mut tx = app.store().system_tx().await?;
    if !store::set_tenant_limits(&mut tx, tenant, change.hourly_limit, change.daily_limit).await? {
        return Err(DomainError::NotFound("tenant"));
    }
    let event = |event: Event| {
        event
            .by_user(principal.user_id())
            .detail("hourly_limit", change.hourly_limit.map_or("default".into(), |n| n.to_string()))
            .detail("daily_limit", change.daily_limit.map_or("default".into(), |n| n.to_string()))
    };
    for chain in [None, Some(tenant)] {
        let audit = event(Event::new(Action::PlatformEmailLimits)).target("tenant", tenant);
        audit::record_platform(&mut tx, chain, ctx, audit).await?;
    }
    tx.commit().await?;
    limits(app, tenant).await
}
