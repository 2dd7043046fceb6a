//! Brute-force protection: per-account lockout and a per-IP throttle.
//!
//! `threshold` failures within `window` lock an account for `lock`, doubling with each
//! repeat lock (reset by a successful login). A locked account answers exactly like a wrong
//! password, and costs the same hashing time, so a lock reveals nothing — not even that the
//! account exists. Failures for unknown accounts are not counted per account (there is none
//! to lock) but do count towards the IP's budget.

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
    store: Store,
    policy: Policy,
}

/// What a recorded failure did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Counted,
    /// This failure locked the key until the given time (ms).
    LockedUntil(i64),
}

/// Longest lock: 2^10 × the base (about 10 days for 15 minutes).
const MAX_DOUBLINGS: i32 = 10;

pub fn account_key(user: crate::ids::UserId) -> String {
    format!("user:{user}")
}

pub fn ip_key(ip: &str) -> String {
    format!("ip:{ip}")
}

impl Lockout {
    pub fn new(store: Store, policy: Policy) -> Lockout {
        Lockout { store, policy }
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The time (ms) until which `key` is locked, if it is.
    pub async fn locked_until(&self, key: &str, now: i64) -> Result<Option<i64>, StoreError> {
        let mut tx = self.store.system_read().await?;
        let row = db::throttle(&mut tx, key).await?;
        tx.commit().await?;
        Ok(row.map(|r| r.locked_until).filter(|until| *until > now))
    }

    pub async fn record_failure(
        &self,
        key: &str,
        threshold: u32,
        now: i64,
    ) -> Result<Failure, StoreError> {
        let mut tx = self.store.system_tx().await?;
        let mut row = db::throttle_for_update(&mut tx, key, now).await?;
        let outcome = apply_failure(&mut row, threshold, self.policy, now);
        db::save_throttle(&mut tx, &row).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    pub async fn clear(&self, key: &str) -> Result<(), StoreError> {
        let mut tx = self.store.system_tx().await?;
        db::clear_throttle(&mut tx, key).await?;
        tx.commit().await
    }
}

/// The counting rule, shared by every backend.
pub fn apply_failure(row: &mut ThrottleRow, threshold: u32, policy: Policy, now: i64) -> Failure {
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
            Failure::Counted => panic!("should lock"),
        }
    }
}
