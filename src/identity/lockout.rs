//! Brute-force protection: per-account lockout and a per-IP throttle.
//!
//! `threshold` failures within `window` lock an account for `lock`, doubling with each
//! repeat lock (reset by a successful login). A locked account answers exactly like a wrong
//! password, and costs the same hashing time, so a lock reveals nothing — not even that the
//! account exists. Failures for unknown accounts are not counted per account (there is none
//! to lock) but do count towards the IP's budget.

use crate::cluster::{Cluster, ClusterError};
use crate::error::DomainError;
use crate::store::{Store, StoreError};

use super::store::{self as db, ThrottleRow};

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub threshold: u32,
    pub window_ms: i64,
    pub lock_ms: i64,
    pub ip_threshold: u32,
}

/// Where the counters live. With Redis configured they live there, shared by every
/// instance; otherwise in the database (still shared by instances on one PostgreSQL).
pub struct Lockout {
    backend: Backend,
    policy: Policy,
}

enum Backend {
    Database(Store),
    Redis { cluster: Cluster, record: redis::Script, check: redis::Script },
}

#[derive(Debug, thiserror::Error)]
pub enum LockoutError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The counters are on Redis and Redis is down: logins fail closed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

impl From<LockoutError> for DomainError {
    fn from(err: LockoutError) -> DomainError {
        match err {
            LockoutError::Store(err) => DomainError::Store(err),
            LockoutError::Cluster(_) => {
                DomainError::Unavailable("the lockout counters are unreachable")
            }
        }
    }
}

/// `apply_failure` on Redis, atomically, on the Redis clock. Returns {locked, remaining_ms}.
const RECORD_SCRIPT: &str = r#"
local threshold = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local lock = tonumber(ARGV[3])
local maxd = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 'f', 's', 'u', 'n')
local f = tonumber(h[1]) or 0
local s = tonumber(h[2]) or now
local u = tonumber(h[3]) or 0
local n = tonumber(h[4]) or 0
if u > now then
  return {2, u - now}
end
if now - s > window then
  f = 0
  s = now
end
f = f + 1
local locked = 0
if f >= threshold then
  local d = math.min(n, maxd)
  n = n + 1
  u = now + lock * (2 ^ d)
  f = 0
  s = now
  locked = 1
end
redis.call('HSET', KEYS[1], 'f', f, 's', s, 'u', u, 'n', n)
redis.call('PEXPIRE', KEYS[1], math.max(window, u - now) + 86400000)
return {locked, math.max(0, u - now)}
"#;

/// Milliseconds the key stays locked (0: not locked), on the Redis clock.
const CHECK_SCRIPT: &str = r#"
local u = tonumber(redis.call('HGET', KEYS[1], 'u') or '0')
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return math.max(0, u - now)
"#;

/// What a recorded failure did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Counted,
    /// This failure locked the key until the given time (ms).
    LockedUntil(i64),
    /// The key was locked already (until the given time); the failure is not counted, so a
    /// burst that raced past the lock check neither extends the lock nor slips under it.
    AlreadyLocked(i64),
}

/// Longest lock: 2^10 × the base (about 10 days for 15 minutes).
const MAX_DOUBLINGS: i32 = 10;

pub fn account_key(user: crate::ids::UserId) -> String {
    format!("user:{user}")
}

pub fn ip_key(ip: &str) -> String {
    format!("ip:{ip}")
}

fn redis_key(key: &str) -> String {
    format!("bulwark:lock:{key}")
}

impl Lockout {
    pub fn new(store: Store, cluster: Option<Cluster>, policy: Policy) -> Lockout {
        let backend = match cluster {
            Some(cluster) => Backend::Redis {
                cluster,
                record: redis::Script::new(RECORD_SCRIPT),
                check: redis::Script::new(CHECK_SCRIPT),
            },
            None => Backend::Database(store),
        };
        Lockout { backend, policy }
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The time (ms since the epoch) until which `key` is locked, if it is.
    pub async fn locked_until(&self, key: &str, now: i64) -> Result<Option<i64>, LockoutError> {
        match &self.backend {
            Backend::Database(store) => {
                let mut tx = store.system_read().await?;
                let row = db::throttle(&mut tx, key).await?;
                tx.commit().await?;
                Ok(row.map(|r| r.locked_until).filter(|until| *until > now))
            }
            Backend::Redis { cluster, check, .. } => {
                let remaining: i64 = cluster.script(check, &[&redis_key(key)], &[]).await?;
                Ok((remaining > 0).then_some(now + remaining))
            }
        }
    }

    pub async fn record_failure(
        &self,
        key: &str,
        threshold: u32,
        now: i64,
    ) -> Result<Failure, LockoutError> {
        match &self.backend {
            Backend::Database(store) => {
                let mut tx = store.system_tx().await?;
                let mut row = db::throttle_for_update(&mut tx, key, now).await?;
                let outcome = apply_failure(&mut row, threshold, self.policy, now);
                db::save_throttle(&mut tx, &row).await?;
                tx.commit().await?;
                Ok(outcome)
            }
            Backend::Redis { cluster, record, .. } => {
                let args = [
                    threshold.to_string(),
                    self.policy.window_ms.to_string(),
                    self.policy.lock_ms.to_string(),
                    MAX_DOUBLINGS.to_string(),
                ];
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let (locked, remaining): (i64, i64) =
                    cluster.script(record, &[&redis_key(key)], &args).await?;
                Ok(match locked {
                    1 => Failure::LockedUntil(now + remaining),
                    2 => Failure::AlreadyLocked(now + remaining),
                    _ => Failure::Counted,
                })
            }
        }
    }

    pub async fn clear(&self, key: &str) -> Result<(), LockoutError> {
        match &self.backend {
            Backend::Database(store) => {
                let mut tx = store.system_tx().await?;
                db::clear_throttle(&mut tx, key).await?;
                tx.commit().await?;
            }
            Backend::Redis { cluster, .. } => {
                cluster.command::<i64>(redis::cmd("DEL").arg(redis_key(key))).await?;
            }
        }
        Ok(())
    }
}

/// The counting rule, shared by every backend.
pub fn apply_failure(row: &mut ThrottleRow, threshold: u32, policy: Policy, now: i64) -> Failure {
    if row.locked_until > now {
        return Failure::AlreadyLocked(row.locked_until);
    }
    if now - row.window_started_at > policy.window_ms {
        row.failures = 0;
        row.window_started_at = now;
    }
    row.failures += 1;
    if i64::from(row.failures) < i64::from(threshold) {
        return Failure::Counted;
    }
    let doublings = row.lock_count.clamp(0, MAX_DOUBLINGS);
    row.lock_count += 1;
    row.locked_until = now + policy.lock_ms.saturating_mul(1 << doublings);
    row.failures = 0;
    row.window_started_at = now;
    Failure::LockedUntil(row.locked_until)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Policy =
        Policy { threshold: 5, window_ms: 900_000, lock_ms: 900_000, ip_threshold: 50 };

    fn row() -> ThrottleRow {
        ThrottleRow {
            key: "user:x".into(),
            failures: 0,
            window_started_at: 0,
            locked_until: 0,
            lock_count: 0,
        }
    }

    #[test]
    fn the_fifth_failure_in_the_window_locks_and_repeat_locks_double() {
        let mut r = row();
        for n in 1..5 {
            assert_eq!(apply_failure(&mut r, 5, POLICY, n * 1000), Failure::Counted);
        }
        assert_eq!(apply_failure(&mut r, 5, POLICY, 5000), Failure::LockedUntil(5000 + 900_000));
        for n in 1..5 {
            apply_failure(&mut r, 5, POLICY, 1_000_000 + n);
        }
        assert_eq!(
            apply_failure(&mut r, 5, POLICY, 1_000_005),
            Failure::LockedUntil(1_000_005 + 1_800_000)
        );
    }

    #[test]
    fn failures_during_a_lock_neither_count_nor_extend_it() {
        let mut r = row();
        for n in 1..=5 {
            apply_failure(&mut r, 5, POLICY, n);
        }
        let until = r.locked_until;
        for n in 0..20 {
            assert_eq!(apply_failure(&mut r, 5, POLICY, 10 + n), Failure::AlreadyLocked(until));
        }
        assert_eq!((r.failures, r.locked_until, r.lock_count), (0, until, 1));
    }

    #[test]
    fn failures_outside_the_window_start_a_new_count() {
        let mut r = row();
        for n in 0..4 {
            apply_failure(&mut r, 5, POLICY, n);
        }
        assert_eq!(apply_failure(&mut r, 5, POLICY, 2_000_000), Failure::Counted);
        assert_eq!(r.failures, 1);
    }

    #[test]
    fn the_lock_duration_is_capped() {
        let mut r = row();
        r.lock_count = 40;
        match apply_failure(&mut r, 1, POLICY, 0) {
            Failure::LockedUntil(until) => assert_eq!(until, 900_000 * 1024),
            other => panic!("should lock: {other:?}"),
        }
    }
}
