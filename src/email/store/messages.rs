//! SQL of messages, their events and the platform's directory of them; the quota counts
//! and content retention; receipts of signed webhooks.

use crate::clock::Timestamp;
use crate::ids::{EmailDomainId, EmailMessageId, TenantId};
use crate::store::{StoreError, SystemTx, TenantTx, query};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRow {
    pub id: EmailMessageId,
    /// The `Message-ID` header, the same on every attempt.
    pub message_id: String,
    /// The sending domain whose key signs it; none for the platform's own notices.
    pub domain_id: Option<EmailDomainId>,
    pub stream: String,
    pub key_version: i32,
    /// Addresses, subject, bodies and headers, sealed under the tenant's key.
    pub payload: Vec<u8>,
    pub recipients: i32,
    pub status: String,
    pub attempts: i32,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The messages of the transaction's tenant (`$1`), narrowed by `$rest`.
macro_rules! messages_where {
    ($rest:literal) => {
        concat!(
            "SELECT id, message_id, domain_id, stream, key_version, payload, recipients, status, \
             attempts, created_at, updated_at FROM email_messages WHERE tenant_id = $1 ",
            $rest
        )
    };
}

pub async fn insert_message(tx: &mut TenantTx, row: &MessageRow) -> Result<(), StoreError> {
    let tenant = tx.tenant_id();
    query(
        "INSERT INTO email_messages (id, tenant_id, message_id, domain_id, stream, key_version, \
         payload, recipients, status, attempts, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .binds((
        row.id,
        tenant,
        row.message_id.as_str(),
        row.domain_id,
        row.stream.as_str(),
        row.key_version,
        row.payload.as_slice(),
        row.recipients,
        row.status.as_str(),
        row.attempts,
        row.created_at,
        row.updated_at,
    ))
    .execute(tx)
    .await?;
    // The platform's way from a message id to its tenant (late bounce events).
    query("INSERT INTO email_message_directory (message_id, tenant_id) VALUES ($1, $2)")
        .binds((row.id, tenant))
        .execute(tx)
        .await?;
    Ok(())
}

/// The tenant a message belongs to (platform code: the message itself stays invisible).
pub async fn tenant_of_message(
    tx: &mut SystemTx,
    id: EmailMessageId,
) -> Result<Option<TenantId>, StoreError> {
    query("SELECT tenant_id FROM email_message_directory WHERE message_id = $1")
        .bind(id)
        .scalar_optional(tx)
        .await
}

pub async fn insert_event(
    tx: &mut TenantTx,
    message: EmailMessageId,
    kind: &str,
    at: Timestamp,
    detail: Option<&str>,
    recipient: Option<i32>,
) -> Result<(), StoreError> {
    let tenant = tx.tenant_id();
    query(
        "INSERT INTO email_events (id, tenant_id, message_id, kind, at, detail, recipient_index) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .binds((uuid::Uuid::now_v7(), tenant, message, kind, at, detail, recipient))
    .execute(tx)
    .await?;
    Ok(())
}

/// Newest first; `before` is the last id of the previous page (ids grow with time).
pub async fn messages(
    tx: &mut TenantTx,
    status: Option<&str>,
    before: Option<EmailMessageId>,
    limit: i64,
) -> Result<Vec<MessageRow>, StoreError> {
    let tenant = tx.tenant_id();
    query(messages_where!(
        "AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"
    ))
    .binds((tenant, status, before, limit))
    .fetch_all(tx)
    .await
}

pub async fn message(
    tx: &mut TenantTx,
    id: EmailMessageId,
) -> Result<Option<MessageRow>, StoreError> {
    let tenant = tx.tenant_id();
    query(messages_where!("AND id = $2")).binds((tenant, id)).fetch_optional(tx).await
}

/// A message's events, oldest first: (kind, at, detail, the recipient's position in the
/// message's to, cc and bcc).
pub async fn events(
    tx: &mut TenantTx,
    id: EmailMessageId,
) -> Result<Vec<(String, Timestamp, Option<String>, Option<i32>)>, StoreError> {
    let tenant = tx.tenant_id();
    query(
        "SELECT kind, at, detail, recipient_index FROM email_events WHERE tenant_id = $1 AND message_id = $2 \
         ORDER BY at, id",
    )
    .binds((tenant, id))
    .fetch_all(tx)
    .await
}

/// After an attempt: the message's new status.
pub async fn set_status(
    tx: &mut TenantTx,
    id: EmailMessageId,
    status: &str,
    attempts: i32,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    query(
        "UPDATE email_messages SET status = $3, attempts = $4, updated_at = $5 \
         WHERE tenant_id = $1 AND id = $2",
    )
    .binds((tenant, id, status, attempts, now))
    .execute_one(tx)
    .await
}

/// What the quota check reads, in one statement: recipients counted in the minute buckets
/// after `hour_since` and the hour buckets after `day_since` (with each window's oldest
/// bucket), and the tenant's own limits.
#[derive(Debug, sqlx::FromRow)]
pub struct Usage {
    pub hour: i64,
    pub hour_oldest: Option<Timestamp>,
    pub day: i64,
    pub day_oldest: Option<Timestamp>,
    pub hourly_limit: Option<i64>,
    pub daily_limit: Option<i64>,
}

pub async fn usage(
    tx: &mut TenantTx,
    hour_since: Timestamp,
    day_since: Timestamp,
) -> Result<Usage, StoreError> {
    let tenant = tx.tenant_id();
    query(
        "SELECT CAST(coalesce((SELECT sum(recipients) FROM email_usage WHERE tenant_id = $1 \
         AND span = 'minute' AND start > $2), 0) AS BIGINT) AS hour, \
         (SELECT min(start) FROM email_usage WHERE tenant_id = $1 AND span = 'minute' \
         AND start > $2) AS hour_oldest, \
         CAST(coalesce((SELECT sum(recipients) FROM email_usage WHERE tenant_id = $1 \
         AND span = 'hour' AND start > $3), 0) AS BIGINT) AS day, \
         (SELECT min(start) FROM email_usage WHERE tenant_id = $1 AND span = 'hour' \
         AND start > $3) AS day_oldest, \
         email_hourly_limit AS hourly_limit, email_daily_limit AS daily_limit \
         FROM tenants WHERE id = $1",
    )
    .binds((tenant, hour_since, day_since))
    .fetch_one(tx)
    .await
}

/// Counts `recipients` in the minute and hour buckets that hold `minute` and `hour`.
pub async fn count_usage(
    tx: &mut TenantTx,
    minute: Timestamp,
    hour: Timestamp,
    recipients: i64,
) -> Result<(), StoreError> {
    let tenant = tx.tenant_id();
    for (span, start) in [("minute", minute), ("hour", hour)] {
        query(
            "INSERT INTO email_usage (tenant_id, span, start, recipients) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, span, start) \
             DO UPDATE SET recipients = email_usage.recipients + excluded.recipients",
        )
        .binds((tenant, span, start, recipients))
        .execute(tx)
        .await?;
    }
    Ok(())
}

/// Forgets the transaction's tenant's counters that started before `before`.
pub async fn purge_usage(tx: &mut TenantTx, before: Timestamp) -> Result<u64, StoreError> {
    let tenant = tx.tenant_id();
    query("DELETE FROM email_usage WHERE tenant_id = $1 AND start < $2")
        .binds((tenant, before))
        .execute(tx)
        .await
}

/// The transaction's tenant's own recipient limits (hourly, daily), where the platform set
/// them; `None` when there is no such tenant.
pub async fn tenant_limits(
    tx: &mut TenantTx,
) -> Result<Option<(Option<i64>, Option<i64>)>, StoreError> {
    let tenant = tx.tenant_id();
    query("SELECT email_hourly_limit, email_daily_limit FROM tenants WHERE id = $1")
        .bind(tenant)
        .fetch_optional(tx)
        .await
}

/// Sets a tenant's own limits (`None`: the platform's defaults); `false` when no such tenant.
pub async fn set_tenant_limits(
    tx: &mut SystemTx,
    tenant: TenantId,
    hourly: Option<i64>,
    daily: Option<i64>,
) -> Result<bool, StoreError> {
    query("UPDATE tenants SET email_hourly_limit = $2, email_daily_limit = $3 WHERE id = $1")
        .binds((tenant, hourly, daily))
        .execute_one(tx)
        .await
}

/// Finished messages created before `before` whose bodies are still kept.
pub async fn bodies_to_purge(
    tx: &mut TenantTx,
    before: Timestamp,
    limit: i64,
) -> Result<Vec<MessageRow>, StoreError> {
    let tenant = tx.tenant_id();
    query(messages_where!(
        "AND created_at < $2 AND content_purged_at IS NULL \
         AND status IN ('sent', 'bounced', 'failed', 'suppressed') ORDER BY id LIMIT $3"
    ))
    .binds((tenant, before, limit))
    .fetch_all(tx)
    .await
}

/// Replaces a message's payload with its body-less form, unless it changed meanwhile.
pub async fn purge_body(
    tx: &mut TenantTx,
    id: EmailMessageId,
    was: i32,
    version: i32,
    sealed: &[u8],
    now: Timestamp,
) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    query(
        "UPDATE email_messages SET payload = $5, key_version = $4, content_purged_at = $6 \
         WHERE tenant_id = $1 AND id = $2 AND key_version = $3 AND content_purged_at IS NULL",
    )
    .binds((tenant, id, was, version, sealed, now))
    .execute_one(tx)
    .await
}
