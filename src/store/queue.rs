//! Durable work queues: the email and webhook outboxes. A producer adds a row in the same
//! transaction as the work it describes (so nothing is queued for work that rolled back, and
//! nothing committed goes unqueued); workers of any instance claim due rows with a lease, and
//! write back only while their lease holds, so a worker that stalled past its lease (and whose
//! row another worker claimed since) changes nothing. One definition for every queue: the
//! tables differ only in their name and the name of the id column.

use std::time::Duration;

use super::{AsRawTx as _, Backend, Bind, Row, StoreError, SystemTx, TenantTx, query};
use crate::clock::Timestamp;
use crate::ids::TenantId;

/// The statements of one queue table.
pub struct Queue {
    enqueue: &'static str,
    /// Per backend: PostgreSQL skips rows other transactions have locked (`SKIP LOCKED`);
    /// SQLite has one writer, so its UPDATE alone is atomic.
    claim_postgres: &'static str,
    claim_sqlite: &'static str,
    dequeue: &'static str,
    reschedule: &'static str,
}

/// Leases up to $3 due rows until $2; `$lock` is the dialect's row-locking clause.
macro_rules! claim {
    ($table:literal, $id:literal, $lock:literal) => {
        concat!(
            "UPDATE ",
            $table,
            " SET lease_until = $2, attempts = attempts + 1 WHERE ",
            $id,
            " IN (SELECT ",
            $id,
            " FROM ",
            $table,
            " WHERE due_at <= $1 AND (lease_until IS NULL OR lease_until <= $1) \
             ORDER BY due_at LIMIT $3",
            $lock,
            ") RETURNING ",
            $id,
            ", tenant_id, attempts, lease_until"
        )
    };
}

macro_rules! queue {
    ($table:literal, $id:literal) => {
        Queue {
            enqueue: concat!(
                "INSERT INTO ",
                $table,
                " (",
                $id,
                ", tenant_id, due_at, attempts) VALUES ($1, $2, $3, 0)"
            ),
            claim_postgres: claim!($table, $id, " FOR UPDATE SKIP LOCKED"),
            claim_sqlite: claim!($table, $id, ""),
            dequeue: concat!("DELETE FROM ", $table, " WHERE ", $id, " = $1 AND lease_until = $2"),
            reschedule: concat!(
                "UPDATE ",
                $table,
                " SET due_at = $3, lease_until = NULL WHERE ",
                $id,
                " = $1 AND lease_until = $2"
            ),
        }
    };
}

/// Messages to hand to the relay (`email::delivery`).
pub const EMAIL: Queue = queue!("email_outbox", "message_id");
/// Webhook deliveries to post (`webhooks::delivery`).
pub const WEBHOOKS: Queue = queue!("webhook_outbox", "delivery_id");

/// Zoom's data-compliance confirmations (`integrations::zoom`).
pub const ZOOM_COMPLIANCE: Queue = queue!("zoom_compliance", "id");

/// A claimed entry: (its id, its tenant, attempts so far, the lease it holds). The lease's
/// end is the claim's token: writing back needs it.
pub type Claimed<I> = (I, TenantId, i32, Timestamp);

/// When a failed attempt (the `attempts`-th) is tried again along `schedule`, ±10 % so
/// retries of many entries that failed at once do not arrive together; `None` past its end.
pub fn retry_at(now: Timestamp, schedule: &[Duration], attempts: i32) -> Option<Timestamp> {
    let delay = usize::try_from(attempts - 1).ok().and_then(|n| schedule.get(n))?;
    let spread: [u8; 1] = crate::crypto::random_bytes();
    Some(now.plus(delay.mul_f64(0.9 + f64::from(spread[0]) / 255.0 * 0.2)))
}

impl Queue {
    /// Queues `id` of the transaction's tenant, due at `due_at`.
    pub async fn enqueue(
        &self,
        tx: &mut TenantTx,
        id: impl Bind,
        due_at: Timestamp,
    ) -> Result<(), StoreError> {
        let tenant = tx.tenant_id();
        query(self.enqueue).binds((id, tenant, due_at)).execute(tx).await?;
        Ok(())
    }

    /// Claims up to `limit` due entries until `lease_until`; a claim another worker holds is
    /// skipped.
    pub async fn claim<I>(
        &self,
        tx: &mut SystemTx,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
    ) -> Result<Vec<Claimed<I>>, StoreError>
    where
        Claimed<I>: Row,
    {
        let sql = match tx.backend() {
            Backend::Postgres => self.claim_postgres,
            Backend::Sqlite => self.claim_sqlite,
        };
        query(sql).binds((now, lease_until, limit)).fetch_all(tx).await
    }

    /// Done with an entry: out of the queue, if this worker's claim still holds.
    pub async fn dequeue(
        &self,
        tx: &mut SystemTx,
        id: impl Bind,
        lease: Timestamp,
    ) -> Result<bool, StoreError> {
        query(self.dequeue).binds((id, lease)).execute_one(tx).await
    }

    /// Deferred: due again at `due_at`, unclaimed, if this worker's claim still holds.
    pub async fn reschedule(
        &self,
        tx: &mut SystemTx,
        id: impl Bind,
        lease: Timestamp,
        due_at: Timestamp,
    ) -> Result<bool, StoreError> {
        query(self.reschedule).binds((id, lease, due_at)).execute_one(tx).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_follow_the_schedule_within_ten_percent_and_then_stop() {
        let now = Timestamp::from_millis(1_000_000);
        let schedule = [Duration::from_secs(100), Duration::from_secs(200)];
        for _ in 0..50 {
            let first = retry_at(now, &schedule, 1).map(|at| now.until(at).as_secs_f64());
            assert!(first.is_some_and(|s| (90.0..=110.0).contains(&s)), "{first:?}");
            let second = retry_at(now, &schedule, 2).map(|at| now.until(at).as_secs_f64());
            assert!(second.is_some_and(|s| (180.0..=220.0).contains(&s)), "{second:?}");
        }
        assert_eq!(retry_at(now, &schedule, 3), None);
        assert_eq!(retry_at(now, &schedule, 0), None);
    }
}
