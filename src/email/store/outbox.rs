//! SQL of the delivery queue: claims with a lease, and what a worker writes back.

use crate::clock::Timestamp;
use crate::ids::{EmailMessageId, TenantId};
use crate::store::{AsRawTx as _, Backend, StoreError, SystemTx, query};

/// A claimed queue entry: (message, tenant, attempts so far, the lease it holds). The lease's
/// end is the claim's token: writing back needs it, so a worker whose lease ran out (and
/// whose message another worker has claimed since) changes nothing.
pub type Claimed = (EmailMessageId, TenantId, i32, Timestamp);

/// Claims up to `limit` due messages until `lease_until`; a claim another worker holds is
/// skipped. Per backend: PostgreSQL skips rows other transactions have locked (`SKIP
/// LOCKED`), SQLite has one writer, so its UPDATE alone is atomic.
pub async fn claim(
    tx: &mut SystemTx,
    now: Timestamp,
    lease_until: Timestamp,
    limit: i64,
) -> Result<Vec<Claimed>, StoreError> {
    let sql = match tx.backend() {
        Backend::Postgres => {
            "UPDATE email_outbox SET lease_until = $2, attempts = attempts + 1 WHERE message_id IN \
             (SELECT message_id FROM email_outbox WHERE due_at <= $1 \
              AND (lease_until IS NULL OR lease_until <= $1) ORDER BY due_at LIMIT $3 \
              FOR UPDATE SKIP LOCKED) RETURNING message_id, tenant_id, attempts, lease_until"
        }
        Backend::Sqlite => {
            "UPDATE email_outbox SET lease_until = $2, attempts = attempts + 1 WHERE message_id IN \
             (SELECT message_id FROM email_outbox WHERE due_at <= $1 \
              AND (lease_until IS NULL OR lease_until <= $1) ORDER BY due_at LIMIT $3) \
             RETURNING message_id, tenant_id, attempts, lease_until"
        }
    };
    query(sql).binds((now, lease_until, limit)).fetch_all(tx).await
}

/// Done with a message: out of the queue, if this worker's claim still holds.
pub async fn dequeue(
    tx: &mut SystemTx,
    message: EmailMessageId,
    lease: Timestamp,
) -> Result<bool, StoreError> {
    query("DELETE FROM email_outbox WHERE message_id = $1 AND lease_until = $2")
        .binds((message, lease))
        .execute_one(tx)
        .await
}

/// Deferred: due again at `due_at`, unclaimed.
pub async fn reschedule(
    tx: &mut SystemTx,
    message: EmailMessageId,
    lease: Timestamp,
    due_at: Timestamp,
) -> Result<bool, StoreError> {
    query(
        "UPDATE email_outbox SET due_at = $3, lease_until = NULL \
         WHERE message_id = $1 AND lease_until = $2",
    )
    .binds((message, lease, due_at))
    .execute_one(tx)
    .await
}
