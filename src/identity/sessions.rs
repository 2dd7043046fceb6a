//! Session liveness, checked on every request through a short cache.
//!
//! An access token is only as good as its session: each request's `sid` is checked, and the
//! answer is cached for at most `TTL`, so a session revoked on any instance stops working
//! everywhere within that time (the spec asks for one second). Revocations made by this
//! instance take effect here at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::ids::SessionId;
use crate::store::{Store, StoreError};

use super::store as db;

pub const TTL: Duration = Duration::from_millis(500);
/// Bounds memory: past this many entries the cache starts over.
const MAX_ENTRIES: usize = 100_000;

#[derive(Default)]
pub struct SessionCache {
    entries: Mutex<HashMap<SessionId, (bool, Instant)>>,
}

impl SessionCache {
    pub fn new() -> SessionCache {
        SessionCache::default()
    }

    fn cached(&self, sid: SessionId) -> Option<bool> {
        let entries = self.entries.lock().ok()?;
        entries.get(&sid).filter(|(_, at)| at.elapsed() < TTL).map(|(live, _)| *live)
    }

    fn put(&self, sid: SessionId, live: bool) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.retain(|_, (_, at)| at.elapsed() < TTL);
                if entries.len() >= MAX_ENTRIES {
                    entries.clear();
                }
            }
            entries.insert(sid, (live, Instant::now()));
        }
    }

    /// Called after this instance revoked sessions.
    pub fn revoked(&self, sids: &[SessionId]) {
        for sid in sids {
            self.put(*sid, false);
        }
    }

    /// Whether the session may still be used: not revoked, within its absolute and idle
    /// lifetimes, its user active.
    pub async fn is_live(
        &self,
        store: &Store,
        sid: SessionId,
        idle_ms: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        if let Some(live) = self.cached(sid) {
            return Ok(live);
        }
        let mut tx = store.system_read().await?;
        let state = db::session_state(&mut tx, sid).await?;
        tx.commit().await?;
        let live = state.is_some_and(|s| {
            s.revoked_at.is_none()
                && s.expires_at > now
                && s.last_used_at.saturating_add(idle_ms) > now
                && s.status == "active"
        });
        self.put(sid, live);
        Ok(live)
    }
}
