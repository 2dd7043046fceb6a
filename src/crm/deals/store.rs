//! SQL of deals.

use super::DealFilter;
use crate::audit::Action;
use crate::clock::Timestamp;
use crate::crm::Record;
use crate::crm::store::ListQuery;
use crate::ids::{CompanyId, ContactId, DealId, PipelineId, StageId, UserId};
use crate::store::{Binds, StoreError, TenantTx, query};

pub struct Deals;

impl Record for Deals {
    const NAME: &'static str = "deal";
    const TABLE: &'static str = "deals";
    // Its notes go with it (ON DELETE CASCADE); tasks and activities are unlinked.
    const UNLINK: &'static [&'static str] = &[
        "UPDATE tasks SET deal_id = NULL WHERE tenant_id = $1 AND deal_id = $2",
        "UPDATE activities SET deal_id = NULL WHERE tenant_id = $1 AND deal_id = $2",
    ];
    const CREATED: Action = Action::DealCreate;
    const UPDATED: Action = Action::DealUpdate;
    const DELETED: Action = Action::DealDelete;
    type Id = DealId;
    type Row = DealRow;
    const SELECT: &'static str = "SELECT d.id, d.title, d.pipeline_id, d.stage_id, s.kind AS stage_kind, \
    d.amount_minor, d.currency, d.expected_close_date, d.contact_id, d.company_id, d.owner_id, \
    d.created_at, d.updated_at FROM deals d JOIN pipeline_stages s ON s.id = d.stage_id";
    const ALIAS: &'static str = "d.";
    type Filter = DealFilter;
    const WRITES: &'static [&'static str] = &[
        "title",
        "pipeline_id",
        "stage_id",
        "amount_minor",
        "currency",
        "expected_close_date",
        "contact_id",
        "company_id",
        "owner_id",
    ];

    fn filter(query: &mut ListQuery, f: &DealFilter) {
        query
            .and_if("d.pipeline_id = ?", f.pipeline_id)
            .and_if("d.stage_id = ?", f.stage_id)
            .and_if("s.kind = ?", f.status.map(|k| k.as_str()))
            .and_if("d.owner_id = ?", f.owner_id)
            .and_if("d.contact_id = ?", f.contact_id)
            .and_if("d.company_id = ?", f.company_id)
            .and_if("d.currency = ?", f.currency.as_deref())
            .and_if("d.expected_close_date <= ?", f.closing_before.as_deref());
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DealRow {
    pub id: DealId,
    pub title: String,
    pub pipeline_id: PipelineId,
    pub stage_id: StageId,
    pub stage_kind: String,
    pub amount_minor: i64,
    pub currency: String,
    pub expected_close_date: Option<String>,
    pub contact_id: Option<ContactId>,
    pub company_id: Option<CompanyId>,
    pub owner_id: Option<UserId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

keyed!(DealRow);

/// The stages of a pipeline of this tenant, in order.
pub async fn stage_ids(
    tx: &mut TenantTx,
    pipeline: PipelineId,
) -> Result<Vec<StageId>, StoreError> {
    let tenant = tx.tenant_id();
    query("SELECT id FROM pipeline_stages WHERE pipeline_id = $1 AND tenant_id = $2 ORDER BY position")
        .binds((pipeline, tenant))
        .scalars(tx)
        .await
}

/// A deal's values in the order of `Deals::WRITES`, in `stage`.
pub fn values(d: &super::DealCreate, stage: StageId) -> impl Binds + '_ {
    (
        d.title.trim(),
        d.pipeline_id,
        stage,
        d.amount_minor,
        &d.currency,
        &d.expected_close_date,
        d.contact_id,
        d.company_id,
        d.owner_id,
    )
}
