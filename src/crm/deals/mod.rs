//! Deals: an opportunity worth an amount, moving through the stages of a pipeline; its
//! status (`open`, `won`, `lost`) is its stage's kind.

pub mod routes;
pub mod store;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use self::store::DealRow;
pub use self::store::Deals;
use super::list::{SortColumn, SortValue, sort_schema};
use super::pipelines::StageKind;
use super::resource::{Opened, Resource};
use super::{Check, Ref, check_refs};
use crate::app::AppState;
use crate::clock::Timestamp;
use crate::error::{DomainError, DomainResult};
use crate::ids::{CompanyId, ContactId, DealId, PipelineId, StageId, UserId};
use crate::store::TenantTx;
use crate::tenancy::TenantScope;
use crate::webhooks::EventKind;

#[derive(Debug, Serialize, ToSchema)]
pub struct DealView {
    id: DealId,
    title: String,
    pipeline_id: PipelineId,
    stage_id: StageId,
    /// `open`, `won` or `lost`, from the stage.
    status: StageKind,
    /// In minor units (cents).
    amount_minor: i64,
    /// ISO 4217
    currency: String,
    /// YYYY-MM-DD
    #[schema(format = Date)]
    expected_close_date: Option<String>,
    contact_id: Option<ContactId>,
    company_id: Option<CompanyId>,
    owner_id: Option<UserId>,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl From<DealRow> for DealView {
    fn from(r: DealRow) -> Self {
        DealView {
            id: r.id,
            title: r.title,
            pipeline_id: r.pipeline_id,
            stage_id: r.stage_id,
            status: StageKind::from_stored(&r.stage_kind),
            amount_minor: r.amount_minor,
            currency: r.currency,
            expected_close_date: r.expected_close_date,
            contact_id: r.contact_id,
            company_id: r.company_id,
            owner_id: r.owner_id,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DealCreate {
    #[schema(schema_with = crate::schema::line::<200>)]
    title: String,
    pipeline_id: PipelineId,
    /// A stage of the pipeline; default: its first stage.
    stage_id: Option<StageId>,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_000_000_000_000_000_i64)]
    amount_minor: i64,
    #[schema(pattern = "^[A-Z]{3}$")]
    currency: String,
    #[schema(format = Date, pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])$")]
    expected_close_date: Option<String>,
    contact_id: Option<ContactId>,
    company_id: Option<CompanyId>,
    owner_id: Option<UserId>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DealPatch {
    #[schema(schema_with = crate::schema::line_or_null::<200>)]
    title: Option<String>,
    pipeline_id: Option<PipelineId>,
    stage_id: Option<StageId>,
    #[schema(minimum = 0, maximum = 1_000_000_000_000_000_i64)]
    amount_minor: Option<i64>,
    #[schema(pattern = "^[A-Z]{3}$")]
    currency: Option<String>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<String>, format = Date, pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])$")]
    expected_close_date: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<ContactId>)]
    contact_id: Option<Option<ContactId>>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<CompanyId>)]
    company_id: Option<Option<CompanyId>>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<UserId>)]
    owner_id: Option<Option<UserId>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DealSort {
    CreatedAt,
    UpdatedAt,
    Amount,
}

sort_schema!(DealSort);

impl SortColumn for DealSort {
    type Row = DealRow;
    const ALL: &'static [DealSort] = &[DealSort::CreatedAt, DealSort::UpdatedAt, DealSort::Amount];
    fn name(self) -> &'static str {
        match self {
            DealSort::CreatedAt => "created_at",
            DealSort::UpdatedAt => "updated_at",
            DealSort::Amount => "amount",
        }
    }
    fn sql(self) -> &'static str {
        match self {
            DealSort::CreatedAt => "d.created_at",
            DealSort::UpdatedAt => "d.updated_at",
            DealSort::Amount => "d.amount_minor",
        }
    }
    fn is_text(self) -> bool {
        false
    }
    fn value(self, row: &DealRow) -> SortValue {
        SortValue::Int(match self {
            DealSort::CreatedAt => row.created_at.millis(),
            DealSort::UpdatedAt => row.updated_at.millis(),
            DealSort::Amount => row.amount_minor,
        })
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DealFilter {
    pipeline_id: Option<PipelineId>,
    stage_id: Option<StageId>,
    status: Option<StageKind>,
    owner_id: Option<UserId>,
    contact_id: Option<ContactId>,
    company_id: Option<CompanyId>,
    #[param(pattern = "^[A-Z]{3}$")]
    currency: Option<String>,
    /// Expected to close on or before this date (YYYY-MM-DD).
    #[param(format = Date, pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])$")]
    closing_before: Option<String>,
}

impl Resource for Deals {
    type View = DealView;
    type Create = DealCreate;
    type Patch = DealPatch;
    type Sort = DealSort;

    fn check_filter(filter: &Self::Filter) -> DomainResult<()> {
        let mut check = Check::new();
        check.date("closing_before", filter.closing_before.as_deref());
        if let Some(currency) = &filter.currency {
            check.currency("currency", currency);
        }
        check.finish()
    }

    async fn write(
        _: &AppState,
        _: &TenantScope,
        tx: &mut TenantTx,
        id: DealId,
        d: &DealCreate,
        insert: bool,
    ) -> DomainResult<Option<Self::Row>> {
        let mut check = Check::new();
        check.name("title", &d.title, 200);
        check.currency("currency", &d.currency);
        check.date("expected_close_date", d.expected_close_date.as_deref());
        if !(0..=1_000_000_000_000_000).contains(&d.amount_minor) {
            check.fail("amount_minor", "must be between 0 and 10^18");
        }
        check.finish()?;
        check_refs(
            tx,
            &[
                ("pipeline_id", Ref::Pipeline, Some(d.pipeline_id.as_uuid())),
                ("contact_id", Ref::Contact, d.contact_id.map(|id| id.as_uuid())),
                ("company_id", Ref::Company, d.company_id.map(|id| id.as_uuid())),
                ("owner_id", Ref::User, d.owner_id.map(|id| id.as_uuid())),
            ],
        )
        .await?;
        let stages = store::stage_ids(tx, d.pipeline_id).await?;
        let stage = match d.stage_id {
            Some(stage) if stages.contains(&stage) => stage,
            Some(_) => {
                return Err(DomainError::invalid("stage_id", "names no stage of this pipeline"));
            }
            None => *stages
                .first()
                .ok_or_else(|| DomainError::invalid("pipeline_id", "the pipeline has no stages"))?,
        };
        let values = store::values(d, stage);
        super::store::write::<Deals>(tx, id, values, insert, Timestamp::now()).await?;
        Ok(None)
    }

    async fn body_of(_: &AppState, _: &mut TenantTx, row: DealRow) -> DomainResult<DealCreate> {
        Ok(DealCreate {
            title: row.title,
            pipeline_id: row.pipeline_id,
            stage_id: Some(row.stage_id),
            amount_minor: row.amount_minor,
            currency: row.currency,
            expected_close_date: row.expected_close_date,
            contact_id: row.contact_id,
            company_id: row.company_id,
            owner_id: row.owner_id,
        })
    }

    fn patch(body: DealCreate, patch: DealPatch) -> DealCreate {
        let moved_pipeline = patch.pipeline_id.is_some_and(|p| p != body.pipeline_id);
        DealCreate {
            title: patch.title.unwrap_or(body.title),
            pipeline_id: patch.pipeline_id.unwrap_or(body.pipeline_id),
            // A new pipeline without a stage starts at its first stage.
            stage_id: patch.stage_id.or(body.stage_id.filter(|_| !moved_pipeline)),
            amount_minor: patch.amount_minor.unwrap_or(body.amount_minor),
            currency: patch.currency.unwrap_or(body.currency),
            expected_close_date: patch.expected_close_date.unwrap_or(body.expected_close_date),
            contact_id: patch.contact_id.unwrap_or(body.contact_id),
            company_id: patch.company_id.unwrap_or(body.company_id),
            owner_id: patch.owner_id.unwrap_or(body.owner_id),
        }
    }

    /// A move to another stage (a new deal starts somewhere; that is no move).
    fn event(
        before: Option<&DealCreate>,
        _: &DealCreate,
        row: &DealRow,
    ) -> Option<(EventKind, serde_json::Value)> {
        let from = before?.stage_id?;
        (from != row.stage_id).then(|| {
            let data = serde_json::json!({
                "id": row.id,
                "pipeline_id": row.pipeline_id,
                "from_stage_id": from,
                "to_stage_id": row.stage_id,
                "status": row.stage_kind,
            });
            (EventKind::DealStageChanged, data)
        })
    }

    fn view(row: DealRow, _: Option<&Opened>) -> DomainResult<DealView> {
        Ok(row.into())
    }
}
