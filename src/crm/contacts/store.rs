//! SQL of contacts.

use super::{ContactFilter, ContactSort};
use crate::audit::Action;
use crate::clock::Timestamp;
use crate::crm::Record;
use crate::crm::list::PageRequest;
use crate::crm::store::ListQuery;
use crate::ids::{CompanyId, ContactId, UserId};
use crate::store::{Binds, StoreError, TenantTx, Value, query};
use crate::webhooks::EventKind;

pub struct Contacts;

/// A contact row's columns, as `ContactRow` reads them: the list's SELECT and the RETURNING
/// of a write, which thereby hands back the row as stored without reading it again.
macro_rules! columns {
    () => {
        "id, key_version, first_name_enc, last_name_enc, email_enc, phone_enc, date_of_birth_enc, \
         ssn_enc, address_enc, bank_account_enc, company_id, owner_id, tags, custom_fields, \
         erased_at, created_at, updated_at"
    };
}

impl Record for Contacts {
    const NAME: &'static str = "contact";
    const TABLE: &'static str = "contacts";
    // Records linked to it are unlinked; notes about it go with it (ON DELETE CASCADE).
    const UNLINK: &'static [&'static str] = &[
        "UPDATE leads SET contact_id = NULL WHERE tenant_id = $1 AND contact_id = $2",
        "UPDATE deals SET contact_id = NULL WHERE tenant_id = $1 AND contact_id = $2",
        "UPDATE tasks SET contact_id = NULL WHERE tenant_id = $1 AND contact_id = $2",
        "UPDATE activities SET contact_id = NULL WHERE tenant_id = $1 AND contact_id = $2",
    ];
    const CREATED: Action = Action::ContactCreate;
    const UPDATED: Action = Action::ContactUpdate;
    const DELETED: Action = Action::ContactDelete;
    const DELETED_EVENT: Option<EventKind> = Some(EventKind::ContactDeleted);
    type Id = ContactId;
    type Row = ContactRow;
    const SELECT: &'static str = concat!("SELECT ", columns!(), " FROM contacts");
    type Filter = ContactFilter;
    const WRITES: &'static [&'static str] = &[
        "key_version",
        "first_name_enc",
        "last_name_enc",
        "email_enc",
        "phone_enc",
        "date_of_birth_enc",
        "ssn_enc",
        "address_enc",
        "bank_account_enc",
        "email_bidx",
        "phone_bidx",
        "company_id",
        "owner_id",
        "tags",
        "custom_fields",
    ];
    // An erased contact is a tombstone: no edit brings its data back.
    const REWRITE_IF: &'static str = "erased_at IS NULL";
    const RETURNING: &'static str = columns!();

    /// The filters on clear columns; `list` adds the blind-index lookups.
    fn filter(query: &mut ListQuery, f: &ContactFilter) {
        query
            .and("erased_at IS NULL")
            .and_if("owner_id = ?", f.owner_id)
            .and_if("company_id = ?", f.company_id)
            .and_if("tags LIKE ?", f.tag.as_deref().map(crate::crm::tag_pattern))
            .and_if("created_at >= ?", f.created_after)
            .and_if("created_at < ?", f.created_before);
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ContactRow {
    pub id: ContactId,
    pub key_version: i32,
    pub first_name_enc: Option<Vec<u8>>,
    pub last_name_enc: Option<Vec<u8>>,
    pub email_enc: Option<Vec<u8>>,
    pub phone_enc: Option<Vec<u8>>,
    pub date_of_birth_enc: Option<Vec<u8>>,
    pub ssn_enc: Option<Vec<u8>>,
    pub address_enc: Option<Vec<u8>>,
    pub bank_account_enc: Option<Vec<u8>>,
    pub company_id: Option<CompanyId>,
    pub owner_id: Option<UserId>,
    pub tags: String,
    pub custom_fields: String,
    pub erased_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

keyed!(ContactRow);

/// The stored (encrypted) form of a contact, written whole.
pub struct Sealed {
    pub key_version: i32,
    pub first_name: Option<Vec<u8>>,
    pub last_name: Option<Vec<u8>>,
    pub email: Option<Vec<u8>>,
    pub phone: Option<Vec<u8>>,
    pub date_of_birth: Option<Vec<u8>>,
    pub ssn: Option<Vec<u8>>,
    pub address: Option<Vec<u8>>,
    pub bank_account: Option<Vec<u8>>,
    pub email_bidx: Option<Vec<u8>>,
    pub phone_bidx: Option<Vec<u8>>,
    pub company_id: Option<CompanyId>,
    pub owner_id: Option<UserId>,
    pub tags: String,
    pub custom_fields: String,
}

/// A contact's values in the order of `Contacts::WRITES`.
impl Binds for &Sealed {
    fn push_into(self, binds: &mut Vec<Value>) {
        let s = self;
        (
            s.key_version,
            &s.first_name,
            &s.last_name,
            &s.email,
            &s.phone,
            &s.date_of_birth,
            &s.ssn,
            &s.address,
            &s.bank_account,
            &s.email_bidx,
            &s.phone_bidx,
            s.company_id,
            s.owner_id,
            &s.tags,
            &s.custom_fields,
        )
            .push_into(binds);
    }
}

/// Erasure: the personal data and its indexes are overwritten; the row stays as a tombstone.
/// Notes about the contact go, activities keep their time and kind but lose their details.
pub async fn erase(tx: &mut TenantTx, id: ContactId, now: Timestamp) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    let done = query(
        "UPDATE contacts SET first_name_enc = NULL, last_name_enc = NULL, email_enc = NULL, \
         phone_enc = NULL, date_of_birth_enc = NULL, ssn_enc = NULL, address_enc = NULL, \
         bank_account_enc = NULL, email_bidx = NULL, phone_bidx = NULL, company_id = NULL, \
         owner_id = NULL, tags = '', custom_fields = '{}', erased_at = $3, updated_at = $3 \
         WHERE id = $1 AND tenant_id = $2 AND erased_at IS NULL",
    )
    .binds((id, tenant, now))
    .execute(tx)
    .await?;
    if done == 0 {
        return Ok(false);
    }
    query("DELETE FROM notes WHERE tenant_id = $1 AND contact_id = $2")
        .binds((tenant, id))
        .execute(tx)
        .await?;
    // Their keys go with the rows; a trigger queues the objects for removal.
    query("DELETE FROM documents WHERE tenant_id = $1 AND contact_id = $2")
        .binds((tenant, id))
        .execute(tx)
        .await?;
    query(
        "UPDATE activities SET details_enc = NULL, subject = '[erased]' WHERE tenant_id = $1 \
             AND contact_id = $2",
    )
    .binds((tenant, id))
    .execute(tx)
    .await?;
    Ok(true)
}

/// Rotation's write: only if the row is still under the key it was read with.
pub async fn reseal(
    tx: &mut TenantTx,
    id: ContactId,
    was: i32,
    s: &Sealed,
) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    query(
        "UPDATE contacts SET key_version = $4, first_name_enc = $5, last_name_enc = $6, email_enc = $7, \
         phone_enc = $8, date_of_birth_enc = $9, ssn_enc = $10, address_enc = $11, bank_account_enc = $12 \
         WHERE id = $1 AND tenant_id = $2 AND key_version = $3"
    )
    .binds((id, tenant, was, s.key_version, &s.first_name, &s.last_name, &s.email, &s.phone, &s.date_of_birth, &s.ssn, &s.address, &s.bank_account))
    .execute_one(tx).await
}

/// Filters of a contact list or export. Email and phone match through their blind indexes
/// (`email_bidx`, `phone_bidx`: HMACs the caller computed), never in the clear.
pub struct ContactQuery<'a> {
    pub filter: &'a ContactFilter,
    pub email_bidx: Option<Vec<u8>>,
    pub phone_bidx: Option<Vec<u8>>,
}

pub async fn list(
    tx: &mut TenantTx,
    q: &ContactQuery<'_>,
    page: &PageRequest<ContactSort>,
) -> Result<Vec<ContactRow>, StoreError> {
    let mut list = ListQuery::new(Contacts::SELECT, "", tx.tenant_id());
    Contacts::filter(&mut list, q.filter);
    list.and_if("email_bidx = ?", q.email_bidx.clone())
        .and_if("phone_bidx = ?", q.phone_bidx.clone());
    list.page(page).fetch_all(tx).await
}
