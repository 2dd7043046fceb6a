//! SQL of leads.

use super::LeadFilter;
use crate::audit::Action;
use crate::clock::Timestamp;
use crate::crm::Record;
use crate::crm::store::ListQuery;
use crate::ids::{CompanyId, ContactId, LeadId, UserId};
use crate::store::{Binds, Value};

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
    const WRITES: &'static [&'static str] =
        &["title", "status", "source", "contact_id", "company_id", "owner_id"];
    const RETURNING: &'static str = columns!();

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

keyed!(LeadRow);

/// The stored columns of a lead, checked.
pub struct LeadColumns<'a> {
    pub title: &'a str,
    pub status: &'static str,
    pub source: Option<&'a str>,
    pub contact_id: Option<ContactId>,
    pub company_id: Option<CompanyId>,
    pub owner_id: Option<UserId>,
}

/// A lead's values in the order of `Leads::WRITES`.
impl Binds for &LeadColumns<'_> {
    fn push_into(self, binds: &mut Vec<Value>) {
        (self.title, self.status, self.source, self.contact_id, self.company_id, self.owner_id)
            .push_into(binds);
    }
}
