//! SQL of the mail side.

use crate::clock::Timestamp;
use crate::ids::{EmailDomainId, EmailMessageId, SuppressionId, TenantId};
use crate::store::{AsRawTx as _, Backend, StoreError, SystemTx, TenantTx, query};

mod templates;
pub use templates::*;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DomainRow {
    pub id: EmailDomainId,
    pub domain: String,
    pub selector: String,
    /// The tenant data key `dkim_private` is sealed under (rotation finds older ones).
    pub key_version: i32,
    /// PKCS#1 PEM sealed under the tenant's key.
    pub dkim_private: Vec<u8>,
    pub dkim_public: String,
    pub status: String,
    pub created_at: Timestamp,
    pub verified_at: Option<Timestamp>,
    /// A rotation's next key: published beside the current one, signing once it verifies.
    pub next_selector: Option<String>,
    pub next_dkim_private: Option<Vec<u8>>,
    pub next_dkim_public: Option<String>,
}

/// The domains of the transaction's tenant (`$1`), narrowed by `$rest`.
macro_rules! domains_where {
    ($rest:literal) => {
        concat!(
            "SELECT id, domain, selector, key_version, dkim_private, dkim_public, status, \
             created_at, verified_at, next_selector, next_dkim_private, next_dkim_public FROM email_domains WHERE tenant_id = $1 ",
            $rest
        )
    };
}

pub async fn insert_domain(tx: &mut TenantTx, row: &DomainRow) -> Result<(), StoreError> {
    let tenant = tx.tenant_id();
    query(
        "INSERT INTO email_domains (id, tenant_id, domain, selector, key_version, dkim_private, \
         dkim_public, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .binds((
        row.id,
        tenant,
        row.domain.as_str(),
        row.selector.as_str(),
        row.key_version,
        row.dkim_private.as_slice(),
        row.dkim_public.as_str(),
        row.status.as_str(),
        row.created_at,
    ))
    .execute(tx)
    .await?;
    Ok(())
}

pub async fn domains(tx: &mut TenantTx) -> Result<Vec<DomainRow>, StoreError> {
    let tenant = tx.tenant_id();
    query(domains_where!("ORDER BY domain")).bind(tenant).fetch_all(tx).await
}

pub async fn domain(tx: &mut TenantTx, id: EmailDomainId) -> Result<Option<DomainRow>, StoreError> {
    let tenant = tx.tenant_id();
    query(domains_where!("AND id = $2")).binds((tenant, id)).fetch_optional(tx).await
}

pub async fn domain_by_name(
    tx: &mut TenantTx,
    name: &str,
) -> Result<Option<DomainRow>, StoreError> {
    let tenant = tx.tenant_id();
    query(domains_where!("AND domain = $2")).binds((tenant, name)).fetch_optional(tx).await
}

pub async fn delete_domain(tx: &mut TenantTx, id: EmailDomainId) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    query("DELETE FROM email_domains WHERE tenant_id = $1 AND id = $2")
        .binds((tenant, id))
        .execute_one(tx)
        .await
}

pub async fn mark_verified(
    tx: &mut TenantTx,
    id: EmailDomainId,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    query("UPDATE email_domains SET status = 'verified', verified_at = $3 WHERE tenant_id = $1 AND id = $2")
        .binds((tenant, id, now))
        .execute_one(tx)
        .await
}

/// Keeps a new key beside the current one (replacing an earlier rotation still pending).
pub async fn set_next_key(
    tx: &mut TenantTx,
    id: EmailDomainId,
    selector: &str,
    key_version: i32,
    private: &[u8],
    public: &str,
) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    query(
        "UPDATE email_domains SET next_selector = $3, next_key_version = $4, \
         next_dkim_private = $5, next_dkim_public = $6 WHERE tenant_id = $1 AND id = $2",
    )
    .binds((tenant, id, selector, key_version, private, public))
    .execute_one(tx)
    .await
}

/// The next key becomes the signing key (`private`: it, sealed for its new place), if it is
/// still the one `selector` names.
pub async fn promote_next_key(
    tx: &mut TenantTx,
    id: EmailDomainId,
    selector: &str,
    key_version: i32,
    private: &[u8],
) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    query(
        "UPDATE email_domains SET selector = next_selector, key_version = $4, \
         dkim_private = $5, dkim_public = next_dkim_public, \
         next_selector = NULL, next_key_version = NULL, next_dkim_private = NULL, \
         next_dkim_public = NULL WHERE tenant_id = $1 AND id = $2 AND next_selector = $3",
    )
    .binds((tenant, id, selector, key_version, private))
    .execute_one(tx)
    .await
}

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

/// Records a signed webhook delivery; `false` when its id was seen before.
pub async fn claim_receipt(
    tx: &mut SystemTx,
    source: &str,
    webhook_id: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    query(
        "INSERT INTO webhook_receipts (source, webhook_id, received_at) VALUES ($1, $2, $3) \
         ON CONFLICT (source, webhook_id) DO NOTHING",
    )
    .binds((source, webhook_id, now))
    .execute_one(tx)
    .await
}

/// Forgets a delivery whose processing failed, so the sender's retry is processed.
pub async fn release_receipt(
    tx: &mut SystemTx,
    source: &str,
    webhook_id: &str,
) -> Result<bool, StoreError> {
    query("DELETE FROM webhook_receipts WHERE source = $1 AND webhook_id = $2")
        .binds((source, webhook_id))
        .execute_one(tx)
        .await
}

pub async fn insert_event(
    tx: &mut TenantTx,
    message: EmailMessageId,
    kind: &str,
    at: Timestamp,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    let tenant = tx.tenant_id();
    query(
        "INSERT INTO email_events (id, tenant_id, message_id, kind, at, detail) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .binds((uuid::Uuid::now_v7(), tenant, message, kind, at, detail))
    .execute(tx)
    .await?;
    Ok(())
}

/// Puts a message in the delivery queue, due at once.
pub async fn enqueue(
    tx: &mut TenantTx,
    message: EmailMessageId,
    now: Timestamp,
) -> Result<(), StoreError> {
    let tenant = tx.tenant_id();
    query(
        "INSERT INTO email_outbox (message_id, tenant_id, due_at, attempts) VALUES ($1, $2, $3, 0)",
    )
    .binds((message, tenant, now))
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

/// A message's events, oldest first: (kind, at, detail).
pub async fn events(
    tx: &mut TenantTx,
    id: EmailMessageId,
) -> Result<Vec<(String, Timestamp, Option<String>)>, StoreError> {
    let tenant = tx.tenant_id();
    query(
        "SELECT kind, at, detail FROM email_events WHERE tenant_id = $1 AND message_id = $2 \
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

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SuppressionRow {
    pub id: SuppressionId,
    /// Keyed blind index of the normalised address (lookups).
    pub email_index: Vec<u8>,
    pub key_version: i32,
    /// The normalised address, sealed under the tenant's key.
    pub email_enc: Vec<u8>,
    pub reason: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
}

/// The suppressions of the transaction's tenant (`$1`), narrowed by `$rest`.
macro_rules! suppressions_where {
    ($rest:literal) => {
        concat!(
            "SELECT id, email_index, key_version, email_enc, reason, created_at, expires_at \
             FROM email_suppressions WHERE tenant_id = $1 ",
            $rest
        )
    };
}

/// Adds a suppression; `false` when the address is already on the list.
pub async fn insert_suppression(
    tx: &mut TenantTx,
    row: &SuppressionRow,
) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    let inserted = query(
        "INSERT INTO email_suppressions (id, tenant_id, email_index, key_version, email_enc, \
         reason, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (tenant_id, email_index) DO NOTHING",
    )
    .binds((
        row.id,
        tenant,
        row.email_index.as_slice(),
        row.key_version,
        row.email_enc.as_slice(),
        row.reason.as_str(),
        row.created_at,
        row.expires_at,
    ))
    .execute(tx)
    .await?;
    Ok(inserted == 1)
}

/// The suppressions in force at `now` whose index is one of `indexes`.
pub async fn suppressed(
    tx: &mut TenantTx,
    index: &[u8],
    now: Timestamp,
) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    let n: i64 = query(
        "SELECT count(*) FROM email_suppressions WHERE tenant_id = $1 AND email_index = $2 \
         AND (expires_at IS NULL OR expires_at > $3)",
    )
    .binds((tenant, index, now))
    .scalar(tx)
    .await?;
    Ok(n > 0)
}

/// Newest first, optionally one address (by its index); `before`: the previous page's last id.
pub async fn suppressions(
    tx: &mut TenantTx,
    index: Option<&[u8]>,
    before: Option<SuppressionId>,
    limit: i64,
) -> Result<Vec<SuppressionRow>, StoreError> {
    let tenant = tx.tenant_id();
    query(suppressions_where!(
        "AND ($2 IS NULL OR email_index = $2) AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"
    ))
    .binds((tenant, index, before, limit))
    .fetch_all(tx)
    .await
}

pub async fn delete_suppression(tx: &mut TenantTx, id: SuppressionId) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    query("DELETE FROM email_suppressions WHERE tenant_id = $1 AND id = $2")
        .binds((tenant, id))
        .execute_one(tx)
        .await
}

/// The mail tables with values sealed under a tenant data key.
#[derive(Debug, Clone, Copy)]
pub enum Sealed {
    Domains,
    /// A domain's next DKIM key, while a rotation waits for its record.
    NextDkim,
    Messages,
    Suppressions,
    Templates,
}

impl Sealed {
    pub const ALL: [Sealed; 5] = [
        Sealed::Domains,
        Sealed::NextDkim,
        Sealed::Messages,
        Sealed::Suppressions,
        Sealed::Templates,
    ];
}

/// Up to 200 rows of `table` sealed under a data key older than `version`: (id, its key
/// version, the sealed value).
pub async fn sealed_older_than(
    tx: &mut TenantTx,
    table: Sealed,
    version: i32,
) -> Result<Vec<(uuid::Uuid, i32, Vec<u8>)>, StoreError> {
    let tenant = tx.tenant_id();
    let sql = match table {
        Sealed::Domains => {
            "SELECT id, key_version, dkim_private FROM email_domains \
             WHERE tenant_id = $1 AND key_version < $2 ORDER BY id LIMIT 200"
        }
        Sealed::NextDkim => {
            "SELECT id, next_key_version, next_dkim_private FROM email_domains \
             WHERE tenant_id = $1 AND next_key_version < $2 ORDER BY id LIMIT 200"
        }
        Sealed::Templates => {
            "SELECT id, key_version, content FROM email_templates \
             WHERE tenant_id = $1 AND key_version < $2 ORDER BY id LIMIT 200"
        }
        Sealed::Messages => {
            "SELECT id, key_version, payload FROM email_messages \
             WHERE tenant_id = $1 AND key_version < $2 ORDER BY id LIMIT 200"
        }
        Sealed::Suppressions => {
            "SELECT id, key_version, email_enc FROM email_suppressions \
             WHERE tenant_id = $1 AND key_version < $2 ORDER BY id LIMIT 200"
        }
    };
    query(sql).binds((tenant, version)).fetch_all(tx).await
}

/// Rewrites one sealed value, unless its row changed since it was read.
pub async fn reseal(
    tx: &mut TenantTx,
    table: Sealed,
    id: uuid::Uuid,
    was: i32,
    version: i32,
    sealed: &[u8],
) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    let sql = match table {
        Sealed::Domains => {
            "UPDATE email_domains SET key_version = $4, dkim_private = $5 \
             WHERE tenant_id = $1 AND id = $2 AND key_version = $3"
        }
        Sealed::NextDkim => {
            "UPDATE email_domains SET next_key_version = $4, next_dkim_private = $5 \
             WHERE tenant_id = $1 AND id = $2 AND next_key_version = $3"
        }
        Sealed::Templates => {
            "UPDATE email_templates SET key_version = $4, content = $5 \
             WHERE tenant_id = $1 AND id = $2 AND key_version = $3"
        }
        Sealed::Messages => {
            "UPDATE email_messages SET key_version = $4, payload = $5 \
             WHERE tenant_id = $1 AND id = $2 AND key_version = $3"
        }
        Sealed::Suppressions => {
            "UPDATE email_suppressions SET key_version = $4, email_enc = $5 \
             WHERE tenant_id = $1 AND id = $2 AND key_version = $3"
        }
    };
    query(sql).binds((tenant, id, was, version, sealed)).execute_one(tx).await
}

/// Recipients the transaction's tenant sent to since `since`, and when the oldest of those
/// messages was queued.
pub async fn recipients_since(
    tx: &mut TenantTx,
    since: Timestamp,
) -> Result<(i64, Option<Timestamp>), StoreError> {
    let tenant = tx.tenant_id();
    query(
        "SELECT coalesce(sum(recipients), 0), min(created_at) FROM email_messages \
         WHERE tenant_id = $1 AND created_at > $2 AND domain_id IS NOT NULL",
    )
    .binds((tenant, since))
    .fetch_one(tx)
    .await
}

/// The transaction's tenant's own recipient limits (hourly, daily), where the platform set them.
pub async fn tenant_limits(tx: &mut TenantTx) -> Result<(Option<i64>, Option<i64>), StoreError> {
    let tenant = tx.tenant_id();
    query("SELECT email_hourly_limit, email_daily_limit FROM tenants WHERE id = $1")
        .bind(tenant)
        .fetch_one(tx)
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
