//! SQL of activities.

use super::ActivityFilter;
use crate::audit::Action;
use crate::clock::Timestamp;
use crate::crm::Record;
use crate::crm::store::ListQuery;
use crate::ids::{ActivityId, ContactId, DealId, UserId};
use crate::store::{Binds, StoreError, TenantTx, Value, query};

pub struct Activities;

/// An activity row's columns, as `ActivityRow` reads them: the list's SELECT and the RETURNING of
/// a write, which thereby hands back the row as stored without reading it again.
macro_rules! columns {
    () => {
        "id, key_version, kind, subject, details_enc, occurred_at, contact_id, deal_id, \
         owner_id, created_at, updated_at"
    };
}

impl Record for Activities {
    const NAME: &'static str = "activity";
    const TABLE: &'static str = "activities";
    const CREATED: Action = Action::ActivityCreate;
    const UPDATED: Action = Action::ActivityUpdate;
    const DELETED: Action = Action::ActivityDelete;
    type Id = ActivityId;
    type Row = ActivityRow;
    const SELECT: &'static str = concat!("SELECT ", columns!(), " FROM activities");
    type Filter = ActivityFilter;
    const WRITES: &'static [&'static str] = &[
        "key_version",
        "kind",
        "subject",
        "details_enc",
        "occurred_at",
        "contact_id",
        "deal_id",
        "owner_id",
    ];
    const RETURNING: &'static str = columns!();

    fn filter(query: &mut ListQuery, f: &ActivityFilter) {
        query
            .and_if("kind = ?", f.kind.map(|k| k.as_str()))
            .and_if("contact_id = ?", f.contact_id)
            .and_if("deal_id = ?", f.deal_id)
            .and_if("owner_id = ?", f.owner_id)
            .and_if("occurred_at >= ?", f.occurred_after)
            .and_if("occurred_at < ?", f.occurred_before);
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ActivityRow {
    pub id: ActivityId,
    pub key_version: i32,
    pub kind: String,
    pub subject: String,
    pub details_enc: Option<Vec<u8>>,
    pub occurred_at: Timestamp,
    pub contact_id: Option<ContactId>,
    pub deal_id: Option<DealId>,
    pub owner_id: Option<UserId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

keyed!(ActivityRow);

/// The stored columns of an activity, checked and sealed.
pub struct ActivityColumns<'a> {
    pub key_version: i32,
    pub kind: &'static str,
    pub subject: &'a str,
    pub details: Option<Vec<u8>>,
    pub occurred_at: Timestamp,
    pub contact_id: Option<ContactId>,
    pub deal_id: Option<DealId>,
    pub owner_id: Option<UserId>,
}

/// An activity's values in the order of `Activities::WRITES`.
impl Binds for &ActivityColumns<'_> {
    fn push_into(self, binds: &mut Vec<Value>) {
        let a = self;
        (
            a.key_version,
            a.kind,
            a.subject,
            &a.details,
            a.occurred_at,
            a.contact_id,
            a.deal_id,
            a.owner_id,
        )
            .push_into(binds);
    }
}

/// Rotation's write: only if the row is still under the key it was read with.
pub async fn reseal(
    tx: &mut TenantTx,
    id: ActivityId,
    was: i32,
    version: i32,
    details: Option<&[u8]>,
) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    query(
        "UPDATE activities SET key_version = $4, details_enc = $5 \
         WHERE id = $1 AND tenant_id = $2 AND key_version = $3",
    )
    .binds((id, tenant, was, version, details))
    .execute_one(tx)
    .await
}
