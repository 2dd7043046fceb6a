//! Pipelines: a tenant's sales processes, each an ordered list of 1 to 30 stages that deals
//! move through. A stage is `open`, `won` or `lost`.

pub mod routes;
pub mod store;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub use self::store::Pipelines;
use self::store::{PipelineRow, StageRow};
use super::Check;
use super::list::{SortColumn, SortValue, sort_schema};
use super::resource::{Opened, Resource};
use crate::app::AppState;
use crate::clock::Timestamp;
use crate::error::{DomainError, DomainResult};
use crate::ids::{PipelineId, StageId};
use crate::store::TenantTx;
use crate::tenancy::TenantScope;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StageKind {
    Open,
    Won,
    Lost,
}

impl StageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StageKind::Open => "open",
            StageKind::Won => "won",
            StageKind::Lost => "lost",
        }
    }

    /// As stored; the database holds only the names `as_str` writes.
    pub fn from_stored(text: &str) -> StageKind {
        match text {
            "won" => StageKind::Won,
            "lost" => StageKind::Lost,
            _ => StageKind::Open,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StageView {
    id: StageId,
    name: String,
    position: i32,
    kind: StageKind,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PipelineView {
    id: PipelineId,
    name: String,
    stages: Vec<StageView>,
    created_at: Timestamp,
    updated_at: Timestamp,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StageInput {
    /// An existing stage to keep (renamed or moved); omit to add a stage.
    id: Option<StageId>,
    #[schema(schema_with = crate::schema::line::<100>)]
    name: String,
    kind: Option<StageKind>,
}

/// A stage of a new pipeline: `StageInput` without an id (a new pipeline has only new
/// stages). For the OpenAPI document; the body is read as `StageInput`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code, reason = "a schema only")]
pub struct NewStage {
    #[schema(schema_with = crate::schema::line::<100>)]
    name: String,
    kind: Option<StageKind>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineInput {
    #[schema(schema_with = crate::schema::line::<100>)]
    name: String,
    /// In order. Stages left out are removed (refused while deals sit in them).
    #[schema(value_type = Vec<NewStage>, min_items = 1, max_items = 30)]
    stages: Vec<StageInput>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelinePatch {
    #[schema(schema_with = crate::schema::line_or_null::<100>)]
    name: Option<String>,
    #[schema(min_items = 1, max_items = 30)]
    stages: Option<Vec<StageInput>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipelineSort {
    CreatedAt,
    Name,
}

sort_schema!(PipelineSort);

impl SortColumn for PipelineSort {
    type Row = PipelineRow;
    const ALL: &'static [PipelineSort] = &[PipelineSort::CreatedAt, PipelineSort::Name];
    fn name(self) -> &'static str {
        match self {
            PipelineSort::CreatedAt => "created_at",
            PipelineSort::Name => "name",
        }
    }
    fn sql(self) -> &'static str {
        self.name()
    }
    fn is_text(self) -> bool {
        self == PipelineSort::Name
    }
    fn value(self, row: &PipelineRow) -> SortValue {
        match self {
            PipelineSort::CreatedAt => SortValue::Int(row.created_at.millis()),
            PipelineSort::Name => SortValue::Text(row.name.clone()),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PipelineFilter {}

fn check(p: &PipelineInput, insert: bool) -> DomainResult<()> {
    let mut check = Check::new();
    check.name("name", &p.name, 100);
    if p.stages.is_empty() || p.stages.len() > 30 {
        check.fail("stages", "a pipeline has 1 to 30 stages");
    }
    for stage in &p.stages {
        check.name("stages.name", &stage.name, 100);
    }
    if insert && p.stages.iter().any(|s| s.id.is_some()) {
        check.fail("stages.id", "new pipelines have new stages");
    }
    check.finish()
}

/// Writes the stages of a pipeline: keeps, moves and renames listed ones, adds new ones,
/// removes the rest (refused while deals sit in one).
async fn write_stages(
    tx: &mut TenantTx,
    pipeline: PipelineId,
    stages: &[StageInput],
) -> DomainResult<()> {
    let existing: Vec<StageId> =
        store::stages_of(tx, &[pipeline]).await?.into_iter().map(|s| s.id).collect();
    if stages.iter().filter_map(|s| s.id).any(|id| !existing.contains(&id)) {
        return Err(DomainError::invalid("stages.id", "names no stage of this pipeline"));
    }
    let kept: Vec<StageId> = stages.iter().filter_map(|s| s.id).collect();
    for gone in existing.into_iter().filter(|id| !kept.contains(id)) {
        if store::deals_in_stage(tx, gone).await? > 0 {
            return Err(DomainError::Conflict(
                "a stage with deals in it cannot be removed; move the deals first",
            ));
        }
        store::delete_stage(tx, gone).await?;
    }
    for (position, stage) in stages.iter().enumerate() {
        let position = i32::try_from(position).unwrap_or(i32::MAX);
        let kind = stage.kind.unwrap_or(StageKind::Open).as_str();
        let (id, insert) = match stage.id {
            Some(id) => (id, false),
            None => (StageId::new(), true),
        };
        store::write_stage(tx, pipeline, id, stage.name.trim(), position, kind, insert).await?;
    }
    Ok(())
}

impl Resource for Pipelines {
    type View = PipelineView;
    type Create = PipelineInput;
    type Patch = PipelinePatch;
    type Sort = PipelineSort;

    async fn write(
        _: &AppState,
        _: &TenantScope,
        tx: &mut TenantTx,
        id: PipelineId,
        p: &PipelineInput,
        insert: bool,
    ) -> DomainResult<Option<Self::Row>> {
        check(p, insert)?;
        super::store::write::<Pipelines>(tx, id, (p.name.trim(),), insert, Timestamp::now())
            .await?;
        write_stages(tx, id, &p.stages).await?;
        Ok(None)
    }

    async fn body_of(
        _: &AppState,
        tx: &mut TenantTx,
        row: PipelineRow,
    ) -> DomainResult<PipelineInput> {
        let stages = store::stages_of(tx, &[row.id])
            .await?
            .into_iter()
            .map(|s| StageInput {
                id: Some(s.id),
                kind: Some(StageKind::from_stored(&s.kind)),
                name: s.name,
            })
            .collect();
        Ok(PipelineInput { name: row.name, stages })
    }

    fn patch(body: PipelineInput, patch: PipelinePatch) -> PipelineInput {
        PipelineInput {
            name: patch.name.unwrap_or(body.name),
            stages: patch.stages.unwrap_or(body.stages),
        }
    }

    /// Pipelines are shown with their stages: see `views`.
    fn view(row: PipelineRow, _: Option<&Opened>) -> DomainResult<PipelineView> {
        Ok(PipelineView {
            id: row.id,
            name: row.name,
            stages: vec![],
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }

    async fn views(
        _: &AppState,
        tx: &mut TenantTx,
        rows: Vec<PipelineRow>,
    ) -> DomainResult<Vec<PipelineView>> {
        let ids: Vec<PipelineId> = rows.iter().map(|r| r.id).collect();
        let mut stages: Vec<StageRow> = store::stages_of(tx, &ids).await?;
        rows.into_iter()
            .map(|row| {
                let (mine, rest): (Vec<StageRow>, _) =
                    stages.drain(..).partition(|s| s.pipeline_id == row.id);
                stages = rest;
                let mut view = Self::view(row, None)?;
                view.stages = mine
                    .into_iter()
                    .map(|s| StageView {
                        id: s.id,
                        name: s.name,
                        position: s.position,
                        kind: StageKind::from_stored(&s.kind),
                    })
                    .collect();
                Ok(view)
            })
            .collect()
    }
}
