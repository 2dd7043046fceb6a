//! SQL of the audit log.

use serde::Serialize;
use uuid::Uuid;

use super::chain::{Canonical, GENESIS, event_hash};
use super::{Event, RequestContext};
use crate::clock::Timestamp;
use crate::ids::{AuditEventId, TenantId};
use crate::store::{AsRawTx, Backend, Query, StoreError, SystemTx, TenantTx, query};

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct AuditRow {
    pub id: Uuid,
    pub chain_id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub seq: i64,
    pub occurred_at: Timestamp,
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub outcome: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub details: String,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

pub(super) async fn append(
    tx: &mut impl AsRawTx,
    tenant: Option<TenantId>,
    ctx: &RequestContext,
    event: &Event,
) -> Result<AuditEventId, StoreError> {
    let chain = tenant.unwrap_or(TenantId::PLATFORM).as_uuid();
    // SQLite's writer hints where this connection left the head, which saves reading it. A
    // stale hint (a member rolled back, a failed group, another process) inserts nothing
    // (`append_after`) and the append reads the head as below.
    if let Some((seq, hash)) = tx.raw().audit_head_hint(chain) {
        let row = event_row(chain, tenant.map(|t| t.as_uuid()), ctx, event, seq, hash);
        if append_after(tx, &row).await? {
            return Ok(AuditEventId::from_uuid(row.id));
        }
    }
    append_at_head(tx, chain, tenant, ctx, event).await
}

/// `append`'s hinted insert, queued to ride along with the transaction's next statement
/// (`audit::Ahead`); the row if it was queued.
pub(super) fn ride_along(
    tx: &mut TenantTx,
    tenant: TenantId,
    ctx: &RequestContext,
    event: &Event,
) -> Option<AuditRow> {
    let chain = tenant.as_uuid();
    let (seq, hash) = tx.raw().audit_head_hint(chain)?;
    let row = event_row(chain, Some(chain), ctx, event, seq, hash);
    tx.raw().ride_along(insert_after(&row)).then_some(row)
}

/// Completes an `audit::Ahead`: done if the row that rode along was inserted; sent now if
/// nothing took it along; appended anew, from the head it reads, if its hint was stale.
pub(super) async fn finish(
    tx: &mut TenantTx,
    tenant: TenantId,
    ctx: &RequestContext,
    event: &Event,
    riding: Option<AuditRow>,
) -> Result<AuditEventId, StoreError> {
    let Some(row) = riding else { return append(tx, Some(tenant), ctx, event).await };
    let inserted = match tx.raw().take_rider() {
        Some(Ok(changed)) => changed == 1,
        Some(Err(unsent)) => unsent.execute_one(tx).await?,
        // Queued, and then neither sent nor kept: whether it was inserted is unknown, and
        // appending again could log the event twice. Fail the transaction instead.
        None => {
            return Err(StoreError::Database(sqlx::Error::Protocol(
                "the audit event queued with this write was lost".into(),
            )));
        }
    };
    if inserted {
        tx.raw().hint_audit_head(row.chain_id, row.seq, row.hash);
        return Ok(AuditEventId::from_uuid(row.id));
    }
    append_at_head(tx, row.chain_id, Some(tenant), ctx, event).await
}

/// Appends to `chain` (the tenant's, or the platform's) after its head as read (and on
/// PostgreSQL locked) in this transaction.
async fn append_at_head(
    tx: &mut impl AsRawTx,
    chain: Uuid,
    tenant: Option<TenantId>,
    ctx: &RequestContext,
    event: &Event,
) -> Result<AuditEventId, StoreError> {
    let tenant = tenant.map(|t| t.as_uuid());
    // The head row serializes appends to one chain: locked (PostgreSQL) or protected by
    // SQLite's single writer. A chain's first append creates it (one statement saved on
    // every later append, which finds it).
    let lock = match tx.backend() {
        Backend::Postgres => "SELECT seq, hash FROM audit_heads WHERE chain_id = $1 FOR UPDATE",
        Backend::Sqlite => "SELECT seq, hash FROM audit_heads WHERE chain_id = $1",
    };
    let head: Option<(i64, Vec<u8>)> = query(lock).bind(chain).fetch_optional(tx).await?;
    let (head_seq, head_hash) = match head {
        Some(head) => head,
        None => {
            query(
                "INSERT INTO audit_heads (chain_id, tenant_id, seq, hash) VALUES ($1, $2, 0, $3) \
                 ON CONFLICT (chain_id) DO NOTHING",
            )
            .binds((chain, tenant, GENESIS.to_vec()))
            .execute(tx)
            .await?;
            query(lock).bind(chain).fetch_one(tx).await?
        }
    };
    let row = event_row(chain, tenant, ctx, event, head_seq, head_hash);
    if !append_after(tx, &row).await? {
        // The head was read (and on PostgreSQL locked) in this transaction: nothing can have
        // moved it, so an insert that found it moved is a broken invariant, not a race.
        return Err(StoreError::Database(sqlx::Error::Protocol(format!(
            "the head of audit chain {chain} moved under its lock"
        ))));
    }
    Ok(AuditEventId::from_uuid(row.id))
}

/// Inserts `row` if its chain's head is still the one it follows (sequence number and hash),
/// checked in the insert itself; whether it was. The head advances by the trigger of
/// migration 0008 in the same statement, and the writer's hint with it.
async fn append_after(tx: &mut impl AsRawTx, row: &AuditRow) -> Result<bool, StoreError> {
    let inserted = insert_after(row).execute_one(tx).await?;
    if inserted {
        tx.raw().hint_audit_head(row.chain_id, row.seq, row.hash.clone());
    }
    Ok(inserted)
}

/// The insert of `append_after`, which changes one row if the head is still the row's.
fn insert_after(row: &AuditRow) -> Query {
    query(
        "INSERT INTO audit_events (id, chain_id, tenant_id, seq, occurred_at, actor_type, actor_id, \
         action, target_type, target_id, outcome, ip, user_agent, request_id, details, prev_hash, hash) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17 \
         WHERE EXISTS (SELECT 1 FROM audit_heads WHERE chain_id = $2 AND seq = $4 - 1 AND hash = $16)"
    )
    .binds((row.id, row.chain_id, row.tenant_id, row.seq, row.occurred_at, &row.actor_type, &row.actor_id, &row.action, &row.target_type, &row.target_id, &row.outcome, &row.ip, &row.user_agent, &row.request_id, &row.details, &row.prev_hash, &row.hash))
}

/// The event that follows the head `(head_seq, head_hash)` of `chain`, its hash computed.
fn event_row(
    chain: Uuid,
    tenant: Option<Uuid>,
    ctx: &RequestContext,
    event: &Event,
    head_seq: i64,
    head_hash: Vec<u8>,
) -> AuditRow {
    let details = serde_json::to_string(&event.details).unwrap_or_else(|_| "{}".into());
    let row = AuditRow {
        id: AuditEventId::new().as_uuid(),
        chain_id: chain,
        tenant_id: tenant,
        seq: head_seq + 1,
        occurred_at: Timestamp::now(),
        actor_type: event.actor_type.to_owned(),
        actor_id: event.actor_id.clone(),
        action: event.action.as_str().to_owned(),
        target_type: event.target_type.map(str::to_owned),
        target_id: event.target_id.clone(),
        outcome: event.outcome.as_str().to_owned(),
        ip: ctx.ip.map(|ip| ip.to_string()),
        user_agent: ctx.user_agent.clone(),
        request_id: ctx.request_id.clone(),
        details,
        prev_hash: head_hash,
        hash: vec![],
    };
    let mut row = row;
    row.hash = event_hash(&row.prev_hash, &Canonical::of(&row)).to_vec();
    row
}

/// Filters of `GET /audit-events`.
#[derive(Debug, Default, Clone)]
pub struct AuditQuery {
    pub action: Option<String>,
    pub actor_id: Option<String>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// Events with a smaller sequence number than this (newest first).
    pub before_seq: Option<i64>,
    pub limit: i64,
}

pub async fn list(tx: &mut TenantTx, filter: &AuditQuery) -> Result<Vec<AuditRow>, StoreError> {
    let tenant = tx.tenant_id().as_uuid();
    let sql = "SELECT id, chain_id, tenant_id, seq, occurred_at, actor_type, actor_id, action, \
        target_type, target_id, outcome, ip, user_agent, request_id, details, prev_hash, hash \
        FROM audit_events WHERE chain_id = $1 \
        AND ($2 IS NULL OR action = $2) AND ($3 IS NULL OR actor_id = $3) \
        AND ($4 IS NULL OR occurred_at >= $4) AND ($5 IS NULL OR occurred_at < $5) \
        AND ($6 IS NULL OR seq < $6) ORDER BY seq DESC LIMIT $7";
    query(sql)
        .binds((
            tenant,
            &filter.action,
            &filter.actor_id,
            filter.from,
            filter.to,
            filter.before_seq,
            filter.limit,
        ))
        .fetch_all::<AuditRow>(tx)
        .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HeadRow {
    pub chain_id: Uuid,
    pub seq: i64,
    pub hash: Vec<u8>,
}

/// Every chain's head.
pub(super) async fn heads(tx: &mut SystemTx) -> Result<Vec<HeadRow>, StoreError> {
    query("SELECT chain_id, seq, hash FROM audit_heads ORDER BY chain_id").fetch_all(tx).await
}

/// The hash of one event of a chain, if the chain still has it.
pub(super) async fn event_hash_at(
    tx: &mut SystemTx,
    chain: Uuid,
    seq: i64,
) -> Result<Option<Vec<u8>>, StoreError> {
    query("SELECT hash FROM audit_events WHERE chain_id = $1 AND seq = $2")
        .binds((chain, seq))
        .scalar_optional(tx)
        .await
}

/// Every chain, from the heads and from the events (a chain whose head row was deleted
/// still gets verified).
pub(super) async fn chains(
    tx: &mut SystemTx,
    only: Option<Uuid>,
) -> Result<Vec<(Uuid, Option<HeadRow>)>, StoreError> {
    let heads: Vec<HeadRow> = query(
        "SELECT chain_id, seq, hash FROM audit_heads \
         WHERE ($1 IS NULL OR chain_id = $1) ORDER BY chain_id",
    )
    .bind(only)
    .fetch_all(tx)
    .await?;
    let ids: Vec<Uuid> = query(
        "SELECT DISTINCT chain_id FROM audit_events WHERE ($1 IS NULL OR chain_id = $1) ORDER \
             BY chain_id",
    )
    .bind(only)
    .scalars(tx)
    .await?;
    let mut all: Vec<(Uuid, Option<HeadRow>)> =
        heads.into_iter().map(|head| (head.chain_id, Some(head))).collect();
    for id in ids {
        if !all.iter().any(|(chain, _)| *chain == id) {
            all.push((id, None));
        }
    }
    Ok(all)
}

pub(super) async fn chain_page(
    tx: &mut SystemTx,
    chain: Uuid,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<AuditRow>, StoreError> {
    query(
        "SELECT id, chain_id, tenant_id, seq, occurred_at, actor_type, actor_id, action, \
         target_type, target_id, outcome, ip, user_agent, request_id, details, prev_hash, hash \
         FROM audit_events WHERE chain_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
    )
    .binds((chain, after_seq, limit))
    .fetch_all::<AuditRow>(tx)
    .await
}

/// Where retention left a chain: verification starts after this event.
pub(super) async fn anchor(
    tx: &mut SystemTx,
    chain: Uuid,
) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
    query("SELECT seq, hash FROM audit_anchors WHERE chain_id = $1")
        .bind(chain)
        .fetch_optional::<(i64, Vec<u8>)>(tx)
        .await
}
