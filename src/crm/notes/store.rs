//! SQL of notes.

use super::NoteFilter;
use crate::audit::Action;
use crate::clock::Timestamp;
use crate::crm::Record;
use crate::crm::store::ListQuery;
use crate::ids::{CompanyId, ContactId, DealId, LeadId, NoteId, UserId};
use crate::store::{Binds, StoreError, TenantTx, query};

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
    // What a new note sets; a rewrite changes its text alone (`rewrite`).
    const WRITES: &'static [&'static str] =
        &["key_version", "body_enc", "contact_id", "company_id", "deal_id", "lead_id", "author_id"];
    const RETURNING: &'static str = columns!();

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

keyed!(NoteRow);

/// The record a new note is attached to, and who wrote it.
pub struct NoteLinks {
    pub contact_id: Option<ContactId>,
    pub company_id: Option<CompanyId>,
    pub deal_id: Option<DealId>,
    pub lead_id: Option<LeadId>,
    pub author_id: Option<UserId>,
}

/// A new note's values in the order of `Notes::WRITES`.
pub fn values<'a>(version: i32, body: &'a [u8], links: &NoteLinks) -> impl Binds + 'a {
    let l = links;
    (version, body, l.contact_id, l.company_id, l.deal_id, l.lead_id, l.author_id)
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
