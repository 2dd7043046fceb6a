//! SQL of notes.

use super::NoteFilter;
use crate::audit::Action;
use crate::clock::Timestamp;
use crate::crm::store::ListQuery;
use crate::crm::{Keyed, Record, RowKey};
use crate::ids::{CompanyId, ContactId, DealId, LeadId, NoteId, UserId};
use crate::store::{StoreError, TenantTx, query};

pub struct Notes;

/// A note row's columns, as `NoteRow` reads them: the list's SELECT and the RETURNING of
/// a write, which thereby hands back the row as stored without reading it again.
macro_rules! columns {
    () => {
        "id, key_version, body_enc, contact_id, company_id, deal_id, lead_id, author_id, \
         created_at, updated_at"
    };
}

impl Record for Notes {
    const NAME: &'static str = "note";
    const TABLE: &'static str = "notes";
    const CREATED: Action = Action::NoteCreate;
    const UPDATED: Action = Action::NoteUpdate;
    const DELETED: Action = Action::NoteDelete;
    type Id = NoteId;
    type Row = NoteRow;
    const SELECT: &'static str = concat!("SELECT ", columns!(), " FROM notes");
    type Filter = NoteFilter;

    fn filter(query: &mut ListQuery, f: &NoteFilter) {
        query
            .and_if("contact_id = ?", f.contact_id)
            .and_if("company_id = ?", f.company_id)
            .and_if("deal_id = ?", f.deal_id)
            .and_if("lead_id = ?", f.lead_id)
            .and_if("author_id = ?", f.author_id);
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NoteRow {
    pub id: NoteId,
    pub key_version: i32,
    pub body_enc: Vec<u8>,
    pub contact_id: Option<ContactId>,
    pub company_id: Option<CompanyId>,
    pub deal_id: Option<DealId>,
    pub lead_id: Option<LeadId>,
    pub author_id: Option<UserId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Keyed for NoteRow {
    fn key(&self) -> RowKey {
        RowKey { id: self.id.as_uuid(), created_at: self.created_at, updated_at: self.updated_at }
    }
}

/// The record a new note is attached to, and who wrote it.
pub struct NoteLinks {
    pub contact_id: Option<ContactId>,
    pub company_id: Option<CompanyId>,
    pub deal_id: Option<DealId>,
    pub lead_id: Option<LeadId>,
    pub author_id: Option<UserId>,
}

pub async fn insert(
    tx: &mut TenantTx,
    id: NoteId,
    version: i32,
    body: &[u8],
    links: &NoteLinks,
    now: Timestamp,
) -> Result<Option<NoteRow>, StoreError> {
    let tenant = tx.tenant_id();
    query(concat!(
        "INSERT INTO notes (id, tenant_id, key_version, body_enc, contact_id, company_id, \
         deal_id, lead_id, author_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
        " RETURNING ",
        columns!()
    ))
    .binds((
        id,
        tenant,
        version,
        body,
        links.contact_id,
        links.company_id,
        links.deal_id,
        links.lead_id,
        links.author_id,
        now,
    ))
    .fetch_optional(tx)
    .await
}

/// A note's text changes (its links never do).
pub async fn rewrite(
    tx: &mut TenantTx,
    id: NoteId,
    version: i32,
    body: &[u8],
    now: Timestamp,
) -> Result<Option<NoteRow>, StoreError> {
    let tenant = tx.tenant_id();
    query(concat!(
        "UPDATE notes SET body_enc = $3, key_version = $4, updated_at = $5 \
         WHERE id = $1 AND tenant_id = $2",
        " RETURNING ",
        columns!()
    ))
    .binds((id, tenant, body, version, now))
    .fetch_optional(tx)
    .await
}

/// Rotation's write: only if the row is still under the key it was read with.
pub async fn reseal(
    tx: &mut TenantTx,
    id: NoteId,
    was: i32,
    version: i32,
    body: &[u8],
) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    query(
        "UPDATE notes SET key_version = $4, body_enc = $5 \
         WHERE id = $1 AND tenant_id = $2 AND key_version = $3",
    )
    .binds((id, tenant, was, version, body))
    .execute_one(tx)
    .await
}
