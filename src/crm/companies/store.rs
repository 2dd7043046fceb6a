//! SQL of companies.

use super::CompanyFilter;
use crate::audit::Action;
use crate::clock::Timestamp;
use crate::crm::Record;
use crate::crm::store::ListQuery;
use crate::ids::{CompanyId, UserId};
use crate::store::{Binds, StoreError, TenantTx, Value, query};

pub struct Companies;

/// A company row's columns, as `CompanyRow` reads them: the list's SELECT and the RETURNING of
/// a write, which thereby hands back the row as stored without reading it again.
macro_rules! columns {
    () => {
        "id, name, domain, industry, owner_id, tags, custom_fields, credit_limit_minor, \
         credit_limit_currency, created_at, updated_at"
    };
}

impl Record for Companies {
    const NAME: &'static str = "company";
    const TABLE: &'static str = "companies";
    // Contacts, leads and deals are unlinked; its notes go with it (ON DELETE CASCADE).
    const UNLINK: &'static [&'static str] = &[
        "UPDATE contacts SET company_id = NULL WHERE tenant_id = $1 AND company_id = $2",
        "UPDATE leads SET company_id = NULL WHERE tenant_id = $1 AND company_id = $2",
        "UPDATE deals SET company_id = NULL WHERE tenant_id = $1 AND company_id = $2",
    ];
    const CREATED: Action = Action::CompanyCreate;
    const UPDATED: Action = Action::CompanyUpdate;
    const DELETED: Action = Action::CompanyDelete;
    type Id = CompanyId;
    type Row = CompanyRow;
    const SELECT: &'static str = concat!("SELECT ", columns!(), " FROM companies");
    type Filter = CompanyFilter;
    const WRITES: &'static [&'static str] =
        &["name", "domain", "industry", "owner_id", "tags", "custom_fields"];
    const RETURNING: &'static str = columns!();

    fn filter(query: &mut ListQuery, f: &CompanyFilter) {
        query
            .and_if("owner_id = ?", f.owner_id)
            .and_if("tags LIKE ?", f.tag.as_deref().map(crate::crm::tag_pattern))
            .and_if("name = ?", f.name.as_deref());
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CompanyRow {
    pub id: CompanyId,
    pub name: String,
    pub domain: Option<String>,
    pub industry: Option<String>,
    pub owner_id: Option<UserId>,
    pub tags: String,
    pub custom_fields: String,
    pub credit_limit_minor: Option<i64>,
    pub credit_limit_currency: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

keyed!(CompanyRow);

/// The stored columns of a company, checked and encoded.
pub struct CompanyColumns<'a> {
    pub name: &'a str,
    pub domain: Option<&'a str>,
    pub industry: Option<&'a str>,
    pub owner_id: Option<UserId>,
    pub tags: String,
    pub custom_fields: String,
}

/// A company's values in the order of `Companies::WRITES`.
impl Binds for &CompanyColumns<'_> {
    fn push_into(self, binds: &mut Vec<Value>) {
        let c = self;
        (c.name, c.domain, c.industry, c.owner_id, &c.tags, &c.custom_fields).push_into(binds);
    }
}

/// Sets (or, with `None`, clears) a company's credit limit; whether the company exists.
pub async fn set_credit_limit(
    tx: &mut TenantTx,
    id: CompanyId,
    limit: Option<(i64, &str)>,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    query(
        "UPDATE companies SET credit_limit_minor = $3, credit_limit_currency = $4, \
         updated_at = $5 WHERE id = $1 AND tenant_id = $2",
    )
    .binds((id, tenant, limit.map(|l| l.0), limit.map(|l| l.1), now))
    .execute_one(tx)
    .await
}
