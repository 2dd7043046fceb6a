//! Session liveness, checked on every request through a short cache.
//!
//! An access token is only as good as its session: each request's `sid` is checked, and the
//! answer is cached for at most `TTL`, so a session revoked on any instance stops working
//! everywhere within that time (the spec asks for one second). Revocations made by this
//! instance take effect here at once.
//!
//! With Redis configured the cache lives there instead, shared by every instance: a
//! revocation writes "revoked" for the session at once, and a liveness answer computed from
//! the database is shared for `TTL`. If Redis is unreachable, the local cache and the
//! database take over (correct, just more queries).
//!
//! What is cached is the session's owner (user, tenant, role), not a yes/no: a token is only
//! accepted when its claims name that owner, so a forged or confused token cannot pair one
//! account's live session with another account's identity.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::clock::Timestamp;
use crate::ids::{SessionId, TenantId, UserId};
use crate::redis_link::RedisLink;
use crate::store::{Store, StoreError};

use super::store as db;

pub const TTL: Duration = Duration::from_millis(500);
/// Bounds memory: past this many entries the cache starts over.
const MAX_ENTRIES: usize = 100_000;

pub struct SessionCache {
    /// The live session's owner, or `None` when the session may not be used.
    entries: Mutex<HashMap<SessionId, (Option<String>, Instant)>>,
    redis: Option<RedisLink>,
    /// How long a "revoked" mark must outlive the revocation: the access-token lifetime.
    revoked_ttl_ms: u64,
}

fn redis_key(sid: SessionId) -> String {
    format!("bulwark:session:{sid}")
}

impl SessionCache {
    pub fn new(redis: Option<RedisLink>, access_token_secs: u64) -> SessionCache {
        SessionCache {
            entries: Mutex::new(HashMap::new()),
            redis,
            revoked_ttl_ms: (access_token_secs + 60) * 1000,
        }
    }

    fn cached(&self, sid: SessionId) -> Option<Option<String>> {
        let entries = self.entries.lock().ok()?;
        entries.get(&sid).filter(|(_, at)| at.elapsed() < TTL).map(|(owner, _)| owner.clone())
    }

    fn put(&self, sid: SessionId, owner: Option<String>) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.retain(|_, (_, at)| at.elapsed() < TTL);
                if entries.len() >= MAX_ENTRIES {
                    entries.clear();
                }
            }
            entries.insert(sid, (owner, Instant::now()));
        }
    }

    /// Called after sessions were revoked (and committed).
    pub async fn revoked(&self, sids: &[SessionId]) {
        for sid in sids {
            self.put(*sid, None);
            if let Some(redis) = &self.redis {
                let mark = redis::cmd("SET")
                    .arg(redis_key(*sid))
                    .arg(REVOKED)
                    .arg("PX")
                    .arg(self.revoked_ttl_ms)
                    .clone();
                if redis.command::<()>(&mark).await.is_err() {
                    tracing::warn!(session_id = %sid, "revocation not shared through Redis; other instances see it within the cache lifetime");
                }
            }
        }
    }

    /// Whether the session may still be used by `owner` (see [`owner`]): not revoked,
    /// within its absolute and idle lifetimes, its user active and still that owner.
    pub async fn is_live(
        &self,
        store: &Store,
        sid: SessionId,
        owner: &str,
        idle: std::time::Duration,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        Ok(self.live_owner(store, sid, idle, now).await?.as_deref() == Some(owner))
    }

    async fn live_owner(
        &self,
        store: &Store,
        sid: SessionId,
        idle: std::time::Duration,
        now: Timestamp,
    ) -> Result<Option<String>, StoreError> {
        if let Some(redis) = &self.redis {
            match redis.command::<Option<String>>(redis::cmd("GET").arg(redis_key(sid))).await {
                // "0" marks a revocation; anything else is the owner.
                Ok(Some(mark)) => return Ok(Some(mark).filter(|mark| mark != REVOKED)),
                Ok(None) => {
                    let live = Self::from_database(store, sid, idle, now).await?;
                    // NX: never overwrite a revocation written meanwhile.
                    let ttl = u64::try_from(TTL.as_millis()).unwrap_or(500);
                    let share = redis::cmd("SET")
                        .arg(redis_key(sid))
                        .arg(live.as_deref().unwrap_or(REVOKED))
                        .arg("PX")
                        .arg(ttl)
                        .arg("NX")
                        .clone();
                    let _ = redis.command::<Option<String>>(&share).await;
                    return Ok(live);
                }
                Err(_) => {} // Redis is down: the local cache and the database answer.
            }
        }
        if let Some(live) = self.cached(sid) {
            return Ok(live);
        }
        let live = Self::from_database(store, sid, idle, now).await?;
        self.put(sid, live.clone());
        Ok(live)
    }

    async fn from_database(
        store: &Store,
        sid: SessionId,
        idle: std::time::Duration,
        now: Timestamp,
    ) -> Result<Option<String>, StoreError> {
        let mut tx = store.system_read().await?;
        let state = db::session_state(&mut tx, sid).await?;
        tx.commit().await?;
        Ok(state
            .filter(|s| {
                s.revoked_at.is_none()
                    && s.expires_at > now
                    && s.last_used_at.plus(idle) > now
                    && s.status == "active"
                    && s.tenant_status.as_deref().is_none_or(|t| t == "active")
            })
            .map(|s| {
                owner(
                    s.user_id,
                    s.tenant_id.unwrap_or(TenantId::PLATFORM),
                    s.role.as_deref().unwrap_or(SUPERADMIN),
                )
            }))
    }
}

const REVOKED: &str = "0";
const SUPERADMIN: &str = "superadmin";

/// Who a session belongs to, as compared with a token's `sub`, `tid` and `role` claims.
pub fn owner(user_id: UserId, tenant_id: TenantId, role: &str) -> String {
    format!("{user_id}/{tenant_id}/{role}")
}
