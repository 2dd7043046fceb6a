//! What a request needs to know about its session, kept in memory for at most `TTL`.
//!
//! Every request with an access token needs its session's state: live or not, whose it is,
//! the account's profile, whether the tenant's MFA policy still waits for an enrolment, and
//! when the session last proved a factor. One statement reads all of it
//! (`store::session_state`, outside any transaction), and the answer is kept here for at most
//! `TTL`, so a busy session costs no database work at all.
//!
//! Why that is safe: a change made by this instance (a revocation, a step-up, a factor
//! enrolled or removed, a tenant policy changed) evicts the affected entries at once and is
//! published on Redis (`ClusterEvent`), so every other instance evicts them within
//! milliseconds. Should an event be lost (Redis down), an entry is never older than `TTL`
//! (500 ms): a revoked session is refused by every instance within one second, as the spec
//! asks, with or without Redis.
//!
//! What is cached is the session's owner (user, tenant, role), not a yes/no: a token is only
//! accepted when its claims name that owner, so a forged or confused token cannot pair one
//! account's live session with another account's identity.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Timestamp;
use crate::ids::{SessionId, TenantId, UserId};
use crate::redis_link::{ClusterEvent, RedisLink};
use crate::store::{Store, StoreError};
use crate::ttl_cache::TtlCache;

use super::store as db;

pub const TTL: Duration = Duration::from_millis(500);
/// Bounds memory: past this many entries the cache starts over.
const MAX_ENTRIES: usize = 100_000;

/// A live session as the request path needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSession {
    /// `user/tenant/role`, compared with the token's claims (see [`owner`]).
    pub owner: String,
    pub profile: Arc<super::Profile>,
    /// The tenant policy (or the super-admin role) asks for a factor this user lacks.
    pub enrolment_required: bool,
    /// When this session last proved a second factor.
    pub step_up_at: Option<Timestamp>,
    /// When this session last proved the password (enrolment only).
    pub password_proof_at: Option<Timestamp>,
    /// Whose session it is (the owner's parts, for a console cookie, which has no claims).
    pub user_id: UserId,
    pub tenant_id: TenantId,
    pub role: String,
    /// SHA-256 of the console cookie's secret; `None` for an API session.
    pub cookie_hash: Option<Vec<u8>>,
    /// When the session was last used (a refresh, or a console request).
    pub last_used_at: Timestamp,
}

#[derive(Clone)]
struct Entry {
    /// `None`: the session may not be used.
    live: Option<Arc<LiveSession>>,
    user: Option<UserId>,
    tenant: Option<TenantId>,
}

pub struct SessionCache {
    entries: TtlCache<SessionId, Entry>,
    redis: Option<RedisLink>,
}

impl SessionCache {
    pub fn new(redis: Option<RedisLink>) -> SessionCache {
        SessionCache { entries: TtlCache::new(TTL, MAX_ENTRIES), redis }
    }

    /// The session's state if it may still be used: not revoked, within its absolute and
    /// idle lifetimes, its user and tenant active.
    pub async fn live(
        &self,
        store: &Store,
        sid: SessionId,
        idle: Duration,
        now: Timestamp,
    ) -> Result<Option<Arc<LiveSession>>, StoreError> {
        if let Some(entry) = self.entries.get(&sid) {
            return Ok(entry.live);
        }
        // Boxed: the database read's future is kilobytes, and every request's future would
        // otherwise carry (and copy) it even when the cache answers.
        Box::pin(async move {
            let mut conn = store.system_conn().await?;
            let state = db::session_state(&mut conn, sid).await?;
            drop(conn);
            let (user, tenant) =
                (state.as_ref().map(|s| s.user_id), state.as_ref().and_then(|s| s.tenant_id));
            let live = state.filter(|s| s.usable(idle, now)).map(|s| Arc::new(s.into_live()));
            self.entries.put(sid, Entry { live: live.clone(), user, tenant });
            Ok(live)
        })
        .await
    }

    /// Whether the session may still be used by `owner` (see [`owner`]).
    pub async fn is_live(
        &self,
        store: &Store,
        sid: SessionId,
        owner: &str,
        idle: Duration,
        now: Timestamp,
    ) -> Result<Option<Arc<LiveSession>>, StoreError> {
        Ok(self.live(store, sid, idle, now).await?.filter(|live| live.owner == owner))
    }

    fn evict(&self, which: impl Fn(&SessionId, &Entry) -> bool) {
        self.entries.evict(which);
    }

    /// After sessions were revoked (and committed): refused here at once, and on every
    /// instance as soon as the event arrives.
    pub async fn revoked(&self, sids: &[SessionId]) {
        for sid in sids {
            self.entries.put(*sid, Entry { live: None, user: None, tenant: None });
        }
        self.publish(ClusterEvent::SessionsChanged { sessions: sids.to_vec() }).await;
    }

    /// After a session's step-up or password proof changed: read again everywhere.
    pub async fn changed(&self, sid: SessionId) {
        self.evict(|s, _| *s == sid);
        self.publish(ClusterEvent::SessionsChanged { sessions: vec![sid] }).await;
    }

    /// After a user's factors changed (enrolment requirement, step-ups): read again
    /// everywhere.
    pub async fn user_changed(&self, user: UserId) {
        self.evict(|_, e| e.user == Some(user));
        self.publish(ClusterEvent::UserChanged { user }).await;
    }

    /// After a tenant's MFA policy or status changed.
    pub async fn tenant_changed(&self, tenant: TenantId) {
        self.evict(|_, e| e.tenant == Some(tenant));
        self.publish(ClusterEvent::TenantChanged { tenant }).await;
    }

    /// What another instance published.
    pub fn on_event(&self, event: &ClusterEvent) {
        match event {
            ClusterEvent::SessionsChanged { sessions } => self.evict(|s, _| sessions.contains(s)),
            ClusterEvent::UserChanged { user } => self.evict(|_, e| e.user == Some(*user)),
            ClusterEvent::TenantChanged { tenant } | ClusterEvent::TenantDeleted { tenant } => {
                self.evict(|_, e| e.tenant == Some(*tenant));
            }
            ClusterEvent::ApiKeysChanged | ClusterEvent::ContainmentChanged => {}
        }
    }

    async fn publish(&self, event: ClusterEvent) {
        if let Some(redis) = &self.redis {
            redis.publish(&event).await;
        }
    }
}

/// Who a session belongs to, as compared with a token's `sub`, `tid` and `role` claims.
pub fn owner(user_id: UserId, tenant_id: TenantId, role: &str) -> String {
    format!("{user_id}/{tenant_id}/{role}")
}

impl db::SessionState {
    fn usable(&self, idle: Duration, now: Timestamp) -> bool {
        self.revoked_at.is_none()
            && self.expires_at > now
            && self.last_used_at.plus(idle) > now
            && self.status == "active"
            && self.tenant_status.as_deref().is_none_or(|t| t == "active")
    }

    fn into_live(self) -> LiveSession {
        let role = self.role.as_deref().unwrap_or("superadmin").to_owned();
        let tenant_id = self.tenant_id.unwrap_or(TenantId::PLATFORM);
        let enrolment_required = super::mfa::policy::requires_enrolment(
            self.mfa_policy.as_deref(),
            self.role.as_deref(),
            self.is_superadmin,
            self.has_factor,
        );
        LiveSession {
            owner: owner(self.user_id, tenant_id, &role),
            profile: Arc::new(super::Profile {
                email: self.email,
                display_name: self.display_name,
                email_verified: self.email_verified_at.is_some(),
            }),
            enrolment_required,
            step_up_at: self.step_up_at,
            password_proof_at: self.password_proof_at,
            user_id: self.user_id,
            tenant_id,
            role,
            cookie_hash: self.cookie_hash,
            last_used_at: self.last_used_at,
        }
    }
}
