//! Brute-force protection: per-account lockout and a per-address throttle, shared by every
//! place that checks a credential (password login, second factors, password proofs).
//!
//! `threshold` failures within `window` lock an account for `lock`, doubling with each
//! repeat lock (reset by a successful login). A locked account answers exactly like a wrong
//! password, and costs the same hashing time, so a lock reveals nothing — not even that the
//! account exists.
//!
//! An attempt is *reserved* before the credential is checked ([`Lockout::admit`]): the
//! failure is counted first, atomically, and a success clears it afterwards. Counting after
//! the check would let a burst of concurrent guesses all pass the "is it locked?" test
//! before any of them is counted (thirty guesses against a threshold of five). Unknown
//! accounts reserve against a key derived from the email, so both paths do the same work
//! and the same writes.

use std::time::Duration;

use crate::clock::Timestamp;
use crate::error::DomainError;
use crate::redis_link::{RedisError, RedisLink};
use crate::store::{Store, StoreError};

use super::store::{self as db, ThrottleRow};

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub threshold: u32,
    pub window: Duration,
    pub lock: Duration,
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
    // Boxed: the client and three scripts are ten times the size of a Store handle.
    Redis(Box<RedisCounters>),
}

struct RedisCounters {
    link: RedisLink,
    record: redis::Script,
    check: redis::Script,
    refund: redis::Script,
}

#[derive(Debug, thiserror::Error)]
pub enum LockoutError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The counters are on Redis and Redis is down: logins fail closed.
    #[error(transparent)]
    Redis(#[from] RedisError),
}

impl From<LockoutError> for DomainError {
    fn from(err: LockoutError) -> DomainError {
        match err {
            LockoutError::Store(err) => DomainError::Store(err),
            LockoutError::Redis(_) => {
                DomainError::Unavailable("the lockout counters are unreachable")
            }
        }
    }
}

/// `apply_failure` on Redis, atomically, on the Redis clock. Returns {outcome, remaining_ms}
/// with outcome 0 counted, 1 locked by this failure, 2 already locked.
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

/// `refund_failure` on Redis. ARGV[1] = 1 when the refunded attempt had locked the key;
/// ARGV[2] = the failures counted before it (threshold - 1).
const REFUND_SCRIPT: &str = r#"
local h = redis.call('HMGET', KEYS[1], 'f', 'n')
local f = tonumber(h[1]) or 0
local n = tonumber(h[2]) or 0
if ARGV[1] == '1' then
  redis.call('HSET', KEYS[1], 'u', 0, 'n', math.max(0, n - 1), 'f', tonumber(ARGV[2]))
elseif f > 0 then
  redis.call('HSET', KEYS[1], 'f', f - 1)
end
return 1
"#;

/// What a recorded failure did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Counted,
    /// This failure locked the key until the given time.
    LockedUntil(Timestamp),
    /// The key was locked already (until the given time); the failure is not counted, so a
    /// burst that raced past the lock check neither extends the lock nor slips under it.
    AlreadyLocked(Timestamp),
}

/// The answer to "may this credential be checked?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Check it. The attempt is already counted against the account: call
    /// [`Lockout::succeeded`] or [`Lockout::refund`] if the credential turns out right.
    Granted(Attempt),
    /// The account is locked: do the same work as a check, then answer as for a wrong
    /// credential.
    AccountLocked,
    /// This client address failed too often: 429 until then.
    AddressThrottled(Timestamp),
}

/// A reserved attempt: the account it counts against and whether it was the one that
/// reached the threshold (it is still checked; if it was right, the lock is lifted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    pub locked_until: Option<Timestamp>,
}

/// Longest lock: 2^10 × the base (about 10 days for 15 minutes).
const MAX_DOUBLINGS: i32 = 10;

/// The lockout key of an account.
pub fn account_key(user: crate::ids::UserId) -> String {
    format!("user:{user}")
}

/// The lockout key of an email address that names no account. Keyed (not a plain hash), so
/// the counter table does not list which addresses were tried.
pub fn unknown_account_key(keys: &crate::crypto::KeyRing, email: &str) -> String {
    let mac = keys.derive_mac("lockout-unknown-accounts", email.as_bytes());
    format!("email:{}", &hex(&mac)[..32])
}

/// The lockout key of a client network (see `ratelimit::ClientNet`).
pub fn ip_key(net: &crate::ratelimit::ClientNet) -> String {
    format!("ip:{net}")
}

use crate::crypto::hex;

fn redis_key(key: &str) -> String {
    format!("bulwark:lock:{key}")
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Lockout {
    pub fn new(store: Store, redis: Option<RedisLink>, policy: Policy) -> Lockout {
        let backend = match redis {
            Some(link) => Backend::Redis(Box::new(RedisCounters {
                link,
                record: redis::Script::new(RECORD_SCRIPT),
                check: redis::Script::new(CHECK_SCRIPT),
                refund: redis::Script::new(REFUND_SCRIPT),
            })),
            None => Backend::Database(store),
        };
        Lockout { backend, policy }
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Before a credential of `account` from `ip` is checked: the address throttle, then one
    /// attempt reserved from the account's budget.
    pub async fn admit(&self, ip: &str, account: &str) -> Result<Admission, LockoutError> {
        let now = Timestamp::now();
        if let Some(until) = self.locked_until(ip, now).await? {
            return Ok(Admission::AddressThrottled(until));
        }
        Ok(match self.record_failure(account, self.policy.threshold, now).await? {
            Failure::Counted => Admission::Granted(Attempt { locked_until: None }),
            Failure::LockedUntil(until) => {
                Admission::Granted(Attempt { locked_until: Some(until) })
            }
            Failure::AlreadyLocked(_) => Admission::AccountLocked,
        })
    }

    /// The credential was wrong: the account's attempt is already counted; count the
    /// address too.
    pub async fn failed(&self, ip: &str) -> Result<(), LockoutError> {
        self.record_failure(ip, self.policy.ip_threshold, Timestamp::now()).await.map(|_| ())
    }

    /// The credential was right and completes the sign-in: the account starts over.
    pub async fn succeeded(&self, account: &str) -> Result<(), LockoutError> {
        self.clear(account).await
    }

    /// The credential was right but proves only part of a sign-in (a password before its
    /// second factor): give back this attempt, keep the earlier failures, so a password
    /// alone never refills the budget of guesses at the second factor.
    pub async fn refund(&self, account: &str, attempt: Attempt) -> Result<(), LockoutError> {
        match &self.backend {
            Backend::Database(store) => {
                let mut tx = store.system_tx().await?;
                let mut row = db::throttle_for_update(&mut tx, account, Timestamp::now()).await?;
                refund_failure(&mut row, attempt, self.policy.threshold);
                db::save_throttle(&mut tx, &row).await?;
                tx.commit().await?;
            }
            Backend::Redis(redis) => {
                let RedisCounters { link, refund, .. } = &**redis;
                let locked = if attempt.locked_until.is_some() { "1" } else { "0" };
                let before = self.policy.threshold.saturating_sub(1).to_string();
                link.script::<i64>(refund, &[&redis_key(account)], &[locked, &before]).await?;
            }
        }
        Ok(())
    }

    /// Until when `key` is locked, if it is.
    pub async fn locked_until(
        &self,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, LockoutError> {
        match &self.backend {
            Backend::Database(store) => {
                let mut tx = store.system_read().await?;
                let row = db::throttle(&mut tx, key).await?;
                tx.commit().await?;
                Ok(row.map(|r| r.locked_until).filter(|until| *until > now))
            }
            Backend::Redis(redis) => {
                let RedisCounters { link, check, .. } = &**redis;
                let remaining: i64 = link.script(check, &[&redis_key(key)], &[]).await?;
                Ok((remaining > 0)
                    .then(|| now.plus(Duration::from_millis(remaining.unsigned_abs()))))
            }
        }
    }

    async fn record_failure(
        &self,
        key: &str,
        threshold: u32,
        now: Timestamp,
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
            Backend::Redis(redis) => {
                let RedisCounters { link, record, .. } = &**redis;
                let args = [
                    threshold.to_string(),
                    millis(self.policy.window).to_string(),
                    millis(self.policy.lock).to_string(),
                    MAX_DOUBLINGS.to_string(),
                ];
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let (locked, remaining): (i64, i64) =
                    link.script(record, &[&redis_key(key)], &args).await?;
                let until = now.plus(Duration::from_millis(remaining.unsigned_abs()));
                Ok(match locked {
                    1 => Failure::LockedUntil(until),
                    2 => Failure::AlreadyLocked(until),
                    _ => Failure::Counted,
                })
            }
        }
    }

    async fn clear(&self, key: &str) -> Result<(), LockoutError> {
        match &self.backend {
            Backend::Database(store) => {
                let mut tx = store.system_tx().await?;
                db::clear_throttle(&mut tx, key).await?;
                tx.commit().await?;
            }
            Backend::Redis(redis) => {
                let RedisCounters { link, .. } = &**redis;
                link.command::<i64>(redis::cmd("DEL").arg(redis_key(key))).await?;
            }
        }
        Ok(())
    }
}

/// The counting rule, shared by every backend and every kind of credential.
pub fn apply_failure(
    row: &mut ThrottleRow,
    threshold: u32,
    policy: Policy,
    now: Timestamp,
) -> Failure {
    if row.locked_until > now {
        return Failure::AlreadyLocked(row.locked_until);
    }
    if row.window_started_at.plus(policy.window) < now {
        row.failures = 0;
        row.window_started_at = now;
    }
    row.failures += 1;
    if i64::from(row.failures) < i64::from(threshold) {
        return Failure::Counted;
    }
    let doublings = row.lock_count.clamp(0, MAX_DOUBLINGS);
    row.lock_count += 1;
    row.locked_until = now.plus(policy.lock.saturating_mul(1 << doublings));
    row.failures = 0;
    row.window_started_at = now;
    Failure::LockedUntil(row.locked_until)
}

/// Gives back one reserved attempt (see [`Lockout::refund`]). A refunded attempt that had
/// locked the account leaves it one failure short of the threshold, exactly as before that
/// attempt: the next wrong factor locks again.
pub fn refund_failure(row: &mut ThrottleRow, attempt: Attempt, threshold: u32) {
    if attempt.locked_until.is_some() {
        row.locked_until = Timestamp::EPOCH;
        row.lock_count = (row.lock_count - 1).max(0);
        row.failures = i32::try_from(threshold.saturating_sub(1)).unwrap_or(i32::MAX);
    } else {
        row.failures = (row.failures - 1).max(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN15: Duration = Duration::from_secs(900);
    const POLICY: Policy = Policy { threshold: 5, window: MIN15, lock: MIN15, ip_threshold: 50 };

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    fn row() -> ThrottleRow {
        ThrottleRow {
            key: "user:x".into(),
            failures: 0,
            window_started_at: at(0),
            locked_until: at(0),
            lock_count: 0,
        }
    }

    #[test]
    fn the_fifth_failure_in_the_window_locks_and_repeat_locks_double() {
        let mut r = row();
        for n in 1..5 {
            assert_eq!(apply_failure(&mut r, 5, POLICY, at(n * 1000)), Failure::Counted);
        }
        assert_eq!(apply_failure(&mut r, 5, POLICY, at(5000)), Failure::LockedUntil(at(905_000)));
        for n in 1..5 {
            apply_failure(&mut r, 5, POLICY, at(1_000_000 + n));
        }
        assert_eq!(
            apply_failure(&mut r, 5, POLICY, at(1_000_005)),
            Failure::LockedUntil(at(1_000_005 + 1_800_000))
        );
    }

    #[test]
    fn failures_during_a_lock_neither_count_nor_extend_it() {
        let mut r = row();
        for n in 1..=5 {
            apply_failure(&mut r, 5, POLICY, at(n));
        }
        let until = r.locked_until;
        for n in 0..20 {
            assert_eq!(apply_failure(&mut r, 5, POLICY, at(10 + n)), Failure::AlreadyLocked(until));
        }
        assert_eq!((r.failures, r.locked_until, r.lock_count), (0, until, 1));
    }

    #[test]
    fn failures_outside_the_window_start_a_new_count() {
        let mut r = row();
        for n in 0..4 {
            apply_failure(&mut r, 5, POLICY, at(n));
        }
        assert_eq!(apply_failure(&mut r, 5, POLICY, at(2_000_000)), Failure::Counted);
        assert_eq!(r.failures, 1);
    }

    #[test]
    fn the_lock_duration_is_capped() {
        let mut r = row();
        r.lock_count = 40;
        match apply_failure(&mut r, 1, POLICY, at(0)) {
            Failure::LockedUntil(until) => assert_eq!(until, at(900_000 * 1024)),
            other => panic!("should lock: {other:?}"),
        }
    }

    #[test]
    fn a_refund_gives_back_one_attempt_and_lifts_the_lock_it_caused() {
        let mut r = row();
        for n in 1..=3 {
            apply_failure(&mut r, 5, POLICY, at(n));
        }
        refund_failure(&mut r, Attempt { locked_until: None }, 5);
        assert_eq!(r.failures, 2);
        apply_failure(&mut r, 5, POLICY, at(10));
        apply_failure(&mut r, 5, POLICY, at(11));
        let Failure::LockedUntil(until) = apply_failure(&mut r, 5, POLICY, at(12)) else {
            panic!("the fifth reservation locks")
        };
        refund_failure(&mut r, Attempt { locked_until: Some(until) }, 5);
        assert_eq!((r.locked_until, r.lock_count, r.failures), (Timestamp::EPOCH, 0, 4));
        // The next wrong attempt locks again: a right password never buys more guesses.
        assert!(matches!(apply_failure(&mut r, 5, POLICY, at(13)), Failure::LockedUntil(_)));
    }
}
