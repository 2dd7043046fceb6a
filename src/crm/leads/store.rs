//! SQL of leads.

use super::LeadFilter;
use crate::audit::Action;
use crate::clock::Timestamp;
use crate::crm::store::ListQuery;
use crate::crm::{Keyed, Record, RowKey};
use crate::ids::{CompanyId, ContactId, LeadId, UserId};
use crate::store::{StoreError, TenantTx, query};

pub struct Leads;

/// A lead row's columns, as `LeadRow` reads them: the list's SELECT and the RETURNING of
/// a write, which thereby hands back the row as stored without reading it again.
macro_rules! columns {
    () => {
        "id, title, status, source, contact_id, company_id, owner_id, created_at, updated_at"
    };
}

impl Record for Leads {
    const NAME: &'static str = "lead";
    const TABLE: &'static str = "leads";
    // Its notes go with it (ON DELETE CASCADE).
    const CREATED: Action = Action::LeadCreate;
    const UPDATED: Action = Action::LeadUpdate;
    const DELETED: Action = Action::LeadDelete;
    type Id = LeadId;
    type Row = LeadRow;
    const SELECT: &'static str = concat!("SELECT ", columns!(), " FROM leads");
    type Filter = LeadFilter;

    fn filter(query: &mut ListQuery, f: &LeadFilter) {
        query
            .and_if("status = ?", f.status.map(|s| s.as_str()))
            .and_if("source = ?", f.source.as_deref())
            .and_if("owner_id = ?", f.owner_id)
            .and_if("contact_id = ?", f.contact_id)
            .and_if("company_id = ?", f.company_id);
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LeadRow {
    pub id: LeadId,
    pub title: String,
    pub status: String,
    pub source: Option<String>,
    pub contact_id: Option<ContactId>,
    pub company_id: Option<CompanyId>,
    pub owner_id: Option<UserId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Keyed for LeadRow {
    fn key(&self) -> RowKey {
        RowKey { id: self.id.as_uuid(), created_at: self.created_at, updated_at: self.updated_at }
    }
}

/// The stored columns of a lead, checked.
pub struct LeadColumns<'a> {
    pub title: &'a str,
    pub status: &'static str,
    pub source: Option<&'a str>,
    pub contact_id: Option<ContactId>,
    pub company_id: Option<CompanyId>,
    pub owner_id: Option<UserId>,
}

/// Inserts a lead, or rewrites it whole.
pub async fn write(
    tx: &mut TenantTx,
    id: LeadId,
    l: &LeadColumns<'_>,
    insert: bool,
    now: Timestamp,
) -> Result<Option<LeadRow>, StoreError> {
    let tenant = tx.tenant_id();
    let sql = if insert {
        concat!(
            "INSERT INTO leads (id, tenant_id, title, status, source, contact_id, company_id, \
             owner_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
            " RETURNING ",
            columns!()
        )
    } else {
        concat!(
            "UPDATE leads SET title = $3, status = $4, source = $5, contact_id = $6, \
             company_id = $7, owner_id = $8, updated_at = $9 WHERE id = $1 AND tenant_id = $2",
            " RETURNING ",
            columns!()
        )
    };
    query(sql)
        .binds((
            id,
            tenant,
            l.title,
            l.status,
            l.source,
            l.contact_id,
            l.company_id,
            l.owner_id,
            now,
        ))
        .fetch_optional(tx)
        .await
}
