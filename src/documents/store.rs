//! SQL of documents and of the queue of objects to delete.

use crate::clock::Timestamp;
use crate::ids::{CompanyId, ContactId, DealId, DocumentId, TenantId, UserId};
use crate::store::sql::Query;
use crate::store::{AsRawTx as _, Backend, StoreError, SystemTx, TenantTx, query};

use super::Link;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DocumentRow {
    pub id: DocumentId,
    pub contact_id: Option<ContactId>,
    pub company_id: Option<CompanyId>,
    pub deal_id: Option<DealId>,
    pub key_version: i32,
    pub key_enc: Vec<u8>,
    pub nonce_prefix: Vec<u8>,
    pub title_enc: Option<Vec<u8>>,
    pub filename_enc: Vec<u8>,
    pub content_type: String,
    pub size: i64,
    pub sha256: Vec<u8>,
    pub scan: String,
    pub created_by: Option<UserId>,
    pub created_at: Timestamp,
}

const SELECT: &str = "SELECT id, contact_id, company_id, deal_id, key_version, key_enc, \
    nonce_prefix, title_enc, filename_enc, content_type, size, sha256, scan, created_by, \
    created_at FROM documents";

/// Whether the record a document would be attached to exists in the transaction's tenant
/// (another tenant's id is as absent as a made-up one).
pub async fn link_exists(tx: &mut TenantTx, link: Link) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    let q = match link {
        Link::Contact(id) => query(
            "SELECT count(*) FROM contacts WHERE tenant_id = $1 AND id = $2 AND erased_at IS NULL",
        )
        .binds((tenant, id)),
        Link::Company(id) => {
            query("SELECT count(*) FROM companies WHERE tenant_id = $1 AND id = $2")
                .binds((tenant, id))
        }
        Link::Deal(id) => {
            query("SELECT count(*) FROM deals WHERE tenant_id = $1 AND id = $2").binds((tenant, id))
        }
    };
    Ok(q.scalar::<i64>(tx).await? == 1)
}

/// In the transaction that records an upload: whether its record still exists (a contact
/// not erased meanwhile), holding the contact FOR SHARE on PostgreSQL so an erasure that
/// runs now waits for this commit and then deletes the document with the others (SQLite's
/// one writer orders them anyway).
pub async fn link_still_exists(tx: &mut TenantTx, link: Link) -> Result<bool, StoreError> {
    if let Link::Contact(id) = link
        && tx.backend() == Backend::Postgres
    {
        let tenant = tx.tenant_id();
        // PostgreSQL only (marked): SQLite has no row locks.
        let held: Vec<i32> = query(
            "SELECT 1 FROM contacts WHERE tenant_id = $1 AND id = $2 AND erased_at IS NULL \
             FOR SHARE",
        )
        .binds((tenant, id))
        .scalars(tx)
        .await?;
        return Ok(!held.is_empty());
    }
    link_exists(tx, link).await
}

pub async fn insert(tx: &mut TenantTx, row: &DocumentRow) -> Result<(), StoreError> {
    let tenant = tx.tenant_id();
    query(
        "INSERT INTO documents (id, tenant_id, contact_id, company_id, deal_id, key_version, \
         key_enc, nonce_prefix, title_enc, filename_enc, content_type, size, sha256, scan, \
         created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .binds((
        row.id,
        tenant,
        row.contact_id,
        row.company_id,
        row.deal_id,
        row.key_version,
        &row.key_enc,
        &row.nonce_prefix,
        &row.title_enc,
        &row.filename_enc,
        &row.content_type,
        row.size,
        &row.sha256,
        &row.scan,
        row.created_by,
        row.created_at,
    ))
    .execute(tx)
    .await?;
    Ok(())
}

pub async fn get(tx: &mut TenantTx, id: DocumentId) -> Result<Option<DocumentRow>, StoreError> {
    let tenant = tx.tenant_id();
    Query::assembled(format!("{SELECT} WHERE tenant_id = $1 AND id = $2"), vec![])
        .binds((tenant, id))
        .fetch_optional(tx)
        .await
}

/// One page of a record's documents, newest first, after `after` (its time and id).
pub async fn list(
    tx: &mut TenantTx,
    link: Link,
    after: Option<(Timestamp, DocumentId)>,
    limit: i64,
) -> Result<Vec<DocumentRow>, StoreError> {
    let tenant = tx.tenant_id();
    let (column, id) = match link {
        Link::Contact(id) => ("contact_id", id.as_uuid()),
        Link::Company(id) => ("company_id", id.as_uuid()),
        Link::Deal(id) => ("deal_id", id.as_uuid()),
    };
    // No cursor: after the end of time.
    let (at, after_id) = after
        .map_or((Timestamp::from_millis(i64::MAX), uuid::Uuid::max()), |(t, d)| (t, d.as_uuid()));
    // `column` is one of three literals above.
    Query::assembled(
        format!(
            "{SELECT} WHERE tenant_id = $1 AND {column} = $2 \
             AND (created_at < $3 OR (created_at = $3 AND id < $4)) \
             ORDER BY created_at DESC, id DESC LIMIT $5"
        ),
        vec![],
    )
    .binds((tenant, id, at, after_id, limit + 1))
    .fetch_all(tx)
    .await
}

pub async fn delete(tx: &mut TenantTx, id: DocumentId) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    query("DELETE FROM documents WHERE tenant_id = $1 AND id = $2")
        .binds((tenant, id))
        .execute_one(tx)
        .await
}

/// Sealed keys still under a data-key version older than `version` (rotation re-wraps them).
pub async fn keys_older_than(
    tx: &mut TenantTx,
    version: i32,
) -> Result<Vec<(DocumentId, i32, Vec<u8>, Option<Vec<u8>>, Vec<u8>)>, StoreError> {
    let tenant = tx.tenant_id();
    query(
        "SELECT id, key_version, key_enc, title_enc, filename_enc FROM documents \
         WHERE tenant_id = $1 AND key_version < $2 LIMIT 500",
    )
    .binds((tenant, version))
    .fetch_all(tx)
    .await
}

pub async fn reseal(
    tx: &mut TenantTx,
    id: DocumentId,
    was: i32,
    version: i32,
    sealed: (&[u8], Option<&[u8]>, &[u8]),
) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    let (key, title, filename) = sealed;
    query(
        "UPDATE documents SET key_version = $4, key_enc = $5, title_enc = $6, filename_enc = $7 \
         WHERE id = $1 AND tenant_id = $2 AND key_version = $3",
    )
    .binds((id, tenant, was, version, key, title.map(<[u8]>::to_vec), filename))
    .execute_one(tx)
    .await
}

/// Objects queued for deletion (their rows are gone), oldest first.
pub async fn queued_deletions(
    tx: &mut SystemTx,
    limit: i64,
) -> Result<Vec<(DocumentId, TenantId)>, StoreError> {
    query("SELECT document_id, tenant_id FROM document_deletions ORDER BY queued_at LIMIT $1")
        .bind(limit)
        .fetch_all(tx)
        .await
}

pub async fn forget_deletion(tx: &mut SystemTx, id: DocumentId) -> Result<(), StoreError> {
    query("DELETE FROM document_deletions WHERE document_id = $1").bind(id).execute(tx).await?;
    Ok(())
}
