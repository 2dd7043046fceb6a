//! Containment at the push of a button (docs/RUNBOOK.md, "Containment"): client addresses
//! blocked before anything else of the stack runs — rate limits, authentication, routing —
//! sessions and API keys revoked by tenant, by user or all at once, features switched off
//! (`features`), and the super-admin's break-glass access to a tenant (`grants`).
//!
//! Blocks and switches live in the database. Every instance keeps them in memory and
//! rereads them every `RELOAD` (two small reads), and at once when another instance
//! announces a change through Redis; so a change made on one instance applies on all of them
//! within a second, with or without Redis, and at once on the instance that made it. When the
//! database is unreachable the last state stays in force. Blocks are enforced in the edge
//! middleware (`http::request_id`) on the client address as the trusted-proxy rules compute
//! it; switches in the endpoint gate (`http::gate`) and in the workers they pause.

pub mod features;
pub mod grants;
pub mod routes;
pub mod store;

use std::net::IpAddr;
use std::str::FromStr as _;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ipnet::IpNet;
use tokio::sync::Notify;

use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::Timestamp;
use crate::error::{DomainError, DomainResult};
use crate::identity::Principal;
use crate::identity::store as identity_db;
use crate::ids::{BlockId, SessionId, TenantId, UserId};
use crate::redis_link::ClusterEvent;
use store::BlockedRow;

/// How often an instance rereads blocks and switches: a change reaches every instance
/// within this, even when Redis does not carry the news.
pub const RELOAD: Duration = Duration::from_millis(500);

/// The longest reason kept with a block.
const MAX_REASON: usize = 500;

/// This instance's copy of the containment state.
#[derive(Default)]
pub struct Containment {
    pub blocks: BlockList,
    pub switches: features::Switches,
    /// Wakes the reloader when another instance announced a change.
    wake: Notify,
}

impl Containment {
    /// Another instance changed blocks or switches: reread them now.
    pub fn on_changed(&self) {
        self.wake.notify_one();
    }
}

/// A blocked network and when its block ends (never: `None`).
type Block = (IpNet, Option<Timestamp>);

/// The blocks in force, as every request checks them.
#[derive(Default)]
pub struct BlockList {
    blocks: RwLock<Arc<[Block]>>,
}

impl BlockList {
    /// Whether `ip` is blocked now (a block that expired since the last reload no longer is).
    pub fn blocks(&self, ip: IpAddr) -> bool {
        // Checked under the read guard: every request passes here, and an Arc clone (two
        // atomic operations) would buy nothing.
        let blocks = match self.blocks.read() {
            Ok(blocks) => blocks,
            // A writer panicked mid-swap; the list it left is still a whole list.
            Err(poisoned) => poisoned.into_inner(),
        };
        if blocks.is_empty() {
            return false;
        }
        let now = Timestamp::now();
        blocks.iter().any(|(net, until)| net.contains(&ip) && until.is_none_or(|t| t > now))
    }

    fn replace(&self, rows: &[BlockedRow]) {
        // Rows were checked when written; one that no longer parses is skipped, not fatal.
        let blocks: Arc<[_]> = rows
            .iter()
            .filter_map(|row| IpNet::from_str(&row.cidr).ok().map(|net| (net, row.expires_at)))
            .collect();
        match self.blocks.write() {
            Ok(mut slot) => *slot = blocks,
            Err(poisoned) => *poisoned.into_inner() = blocks,
        }
    }
}

/// Rereads the blocks in force and the switches into this instance's copy.
pub async fn reload(app: &AppState) -> DomainResult<()> {
    let mut conn = app.store().system_conn().await?;
    let rows = store::active(&mut conn, Timestamp::now()).await?;
    let switches = store::switches(&mut conn).await?;
    drop(conn);
    app.containment().blocks.replace(&rows);
    app.containment().switches.replace(&switches);
    Ok(())
}

/// After a change: applies it here at once and tells the other instances.
async fn changed(app: &AppState) -> DomainResult<()> {
    reload(app).await?;
    if let Some(redis) = app.redis() {
        redis.publish(&ClusterEvent::ContainmentChanged).await;
    }
    Ok(())
}

/// Runs for the life of `serve`: keeps this instance's copy current.
pub async fn reloader(app: AppState) {
    let mut tick = tokio::time::interval(RELOAD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = app.containment().wake.notified() => {}
        }
        if let Err(err) = crate::store::background(reload(&app)).await {
            // The last state stays in force; the next tick tries again.
            tracing::warn!(error = %err, "blocked addresses and switches could not be reloaded");
        }
    }
}

/// A block as the super-admin asks for it.
pub struct BlockRequest {
    pub cidr: String,
    pub reason: String,
    pub expires_at: Option<Timestamp>,
}

/// Blocks a network (or one address); audited in the platform chain.
pub async fn block(
    app: &AppState,
    ctx: &RequestContext,
    principal: &Principal,
    request: BlockRequest,
) -> DomainResult<BlockedRow> {
    let now = Timestamp::now();
    let net = parse_network(&request.cidr)?;
    let mut problems = vec![];
    if net.prefix_len() == 0 {
        problems.push(("cidr".into(), "would block every address".into()));
    }
    if ctx.ip.is_some_and(|ip| net.contains(&ip)) {
        // The super-admin would lock themselves out of the switch that undoes it.
        problems.push(("cidr".into(), "would block the address this request comes from".into()));
    }
    let reason = request.reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON {
        problems.push(("reason".into(), format!("must be 1 to {MAX_REASON} characters")));
    }
    if request.expires_at.is_some_and(|t| t <= now) {
        problems.push(("expires_at".into(), "must be in the future".into()));
    }
    if !problems.is_empty() {
        return Err(DomainError::Invalid(problems));
    }
    let row = BlockedRow {
        id: BlockId::new(),
        cidr: net.to_string(),
        reason: reason.to_owned(),
        expires_at: request.expires_at,
        created_by: Some(principal.user_id()),
        created_at: now,
    };
    let mut tx = app.store().system_tx().await?;
    store::insert(&mut tx, &row).await?;
    let event = Event::new(Action::PlatformIpBlock)
        .by_user(principal.user_id())
        .target("blocked_ip", row.id)
        .detail("cidr", row.cidr.as_str());
    audit::record_platform(&mut tx, None, ctx, event).await?;
    tx.commit().await?;
    changed(app).await?;
    Ok(row)
}

/// The blocks in force; audited like every platform read.
pub async fn list(
    app: &AppState,
    ctx: &RequestContext,
    principal: &Principal,
) -> DomainResult<Vec<BlockedRow>> {
    let mut tx = app.store().system_tx().await?;
    let rows = store::active(&mut tx, Timestamp::now()).await?;
    let event = Event::new(Action::PlatformIpBlockList)
        .by_user(principal.user_id())
        .detail("count", rows.len());
    audit::record_platform(&mut tx, None, ctx, event).await?;
    tx.commit().await?;
    Ok(rows)
}

/// Lifts a block; audited.
pub async fn unblock(
    app: &AppState,
    ctx: &RequestContext,
    principal: &Principal,
    id: BlockId,
) -> DomainResult<()> {
    let mut tx = app.store().system_tx().await?;
    if !store::delete(&mut tx, id).await? {
        return Err(DomainError::NotFound("blocked address"));
    }
    let event =
        Event::new(Action::PlatformIpUnblock).by_user(principal.user_id()).target("blocked_ip", id);
    audit::record_platform(&mut tx, None, ctx, event).await?;
    tx.commit().await?;
    changed(app).await?;
    Ok(())
}

/// Who contains: the super-admin through the API, or the operator at the command line
/// (`bulwark sessions revoke`, `bulwark api-keys revoke`), recorded as the system actor `cli`.
#[derive(Clone, Copy)]
pub enum Operator<'a> {
    SuperAdmin(&'a Principal),
    Cli,
}

impl Operator<'_> {
    fn sign(self, event: Event) -> Event {
        match self {
            Operator::SuperAdmin(principal) => event.by_user(principal.user_id()),
            Operator::Cli => event.by_system("cli"),
        }
    }

    /// The session that survives a revocation of everyone's: the caller's own.
    fn own_session(self) -> Option<SessionId> {
        match self {
            Operator::SuperAdmin(principal) => principal.session_id(),
            Operator::Cli => None,
        }
    }
}

/// Which sessions a containment revocation ends: a tenant's, a user's, both, or (neither)
/// everyone's. The caller's own session always survives.
pub struct SessionsToRevoke {
    pub tenant_id: Option<TenantId>,
    pub user_id: Option<UserId>,
}

/// Revokes sessions for containment; audited in the platform chain and in the chain of every
/// tenant that lost a session. Refused on every instance within a second (the session cache's
/// lifetime, or at once through Redis).
pub async fn revoke_sessions(
    app: &AppState,
    ctx: &RequestContext,
    by: Operator<'_>,
    which: SessionsToRevoke,
) -> DomainResult<u64> {
    let now = Timestamp::now();
    let keep = by.own_session();
    let mut tx = app.store().system_tx().await?;
    let revoked =
        identity_db::revoke_sessions_where(&mut tx, which.tenant_id, which.user_id, keep, now)
            .await?;
    let event = || {
        let mut event =
            by.sign(Event::new(Action::PlatformSessionsRevoke)).detail("count", revoked.len());
        if let Some(tenant) = which.tenant_id {
            event = event.detail("tenant_id", tenant.to_string());
        }
        if let Some(user) = which.user_id {
            event = event.detail("user_id", user.to_string());
        }
        event
    };
    audit::record_platform(&mut tx, None, ctx, event()).await?;
    let tenants: std::collections::BTreeSet<TenantId> =
        revoked.iter().filter_map(|(_, tenant)| *tenant).collect();
    for tenant in tenants {
        audit::record_platform(&mut tx, Some(tenant), ctx, event()).await?;
    }
    tx.commit().await?;
    let sids: Vec<_> = revoked.iter().map(|(sid, _)| *sid).collect();
    app.identity().sessions.revoked(&sids).await;
    Ok(u64::try_from(sids.len()).unwrap_or(u64::MAX))
}

/// Revokes every API key of a tenant for containment; audited in the platform chain and the
/// tenant's. Refused on every instance within a second (the key cache's lifetime, or at once
/// through Redis).
pub async fn revoke_api_keys(
    app: &AppState,
    ctx: &RequestContext,
    by: Operator<'_>,
    tenant: TenantId,
) -> DomainResult<u64> {
    let mut tx = app.store().system_tx().await?;
    let revoked = identity_db::revoke_tenant_api_keys(&mut tx, tenant, Timestamp::now()).await?;
    let event = || {
        by.sign(Event::new(Action::PlatformApiKeysRevoke))
            .detail("tenant_id", tenant.to_string())
            .detail("count", revoked)
    };
    audit::record_platform(&mut tx, None, ctx, event()).await?;
    audit::record_platform(&mut tx, Some(tenant), ctx, event()).await?;
    tx.commit().await?;
    app.identity().api_keys.changed().await;
    Ok(revoked)
}

/// `203.0.113.0/24`, `2001:db8::/32` or one address; host bits are cleared.
fn parse_network(text: &str) -> DomainResult<IpNet> {
    let text = text.trim();
    IpNet::from_str(text)
        .or_else(|_| IpAddr::from_str(text).map(IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| {
            DomainError::Invalid(vec![(
                "cidr".into(),
                "must be an address or a CIDR network".into(),
            )])
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cidr: &str, expires_at: Option<Timestamp>) -> BlockedRow {
        BlockedRow {
            id: BlockId::new(),
            cidr: cidr.into(),
            reason: "test".into(),
            expires_at,
            created_by: None,
            created_at: Timestamp::now(),
        }
    }

    #[test]
    fn a_block_covers_its_network_only_until_it_expires() {
        let list = BlockList::default();
        let ip = |s: &str| s.parse::<IpAddr>().expect("an address");
        assert!(!list.blocks(ip("203.0.113.7")), "an empty list blocks nothing");
        let past = Timestamp::now().minus(Duration::from_secs(1));
        list.replace(&[
            row("203.0.113.0/24", None),
            row("2001:db8::/32", None),
            row("198.51.100.0/24", Some(past)),
        ]);
        assert!(list.blocks(ip("203.0.113.7")));
        assert!(list.blocks(ip("2001:db8::1")));
        assert!(!list.blocks(ip("203.0.114.7")));
        assert!(!list.blocks(ip("198.51.100.1")), "an expired block");
    }

    #[test]
    fn networks_parse_with_host_bits_cleared_and_nonsense_refused() {
        assert_eq!(parse_network("203.0.113.7/24").expect("parses").to_string(), "203.0.113.0/24");
        assert_eq!(parse_network(" 192.0.2.1 ").expect("parses").to_string(), "192.0.2.1/32");
        for bad in ["", "203.0.113.0/33", "example.com", "1.2.3.4/24/1"] {
            assert!(parse_network(bad).is_err(), "{bad}");
        }
    }
}
