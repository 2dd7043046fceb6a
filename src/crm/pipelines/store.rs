//! SQL of pipelines and their stages.

use crate::audit::Action;
use crate::clock::Timestamp;
use crate::crm::Record;
use crate::crm::store::ListQuery;
use crate::ids::{PipelineId, StageId};
use crate::store::{StoreError, TenantTx, query};

pub struct Pipelines;

impl Record for Pipelines {
    const NAME: &'static str = "pipeline";
    const TABLE: &'static str = "pipelines";
    // Its stages go with it (ON DELETE CASCADE); deals keep it alive.
    const IN_USE: Option<(&'static str, &'static str)> = Some((
        "SELECT count(*) FROM deals WHERE tenant_id = $1 AND pipeline_id = $2",
        "a pipeline with deals cannot be deleted",
    ));
    const CREATED: Action = Action::PipelineCreate;
    const UPDATED: Action = Action::PipelineUpdate;
    const DELETED: Action = Action::PipelineDelete;
    type Id = PipelineId;
    type Row = PipelineRow;
    const SELECT: &'static str = "SELECT id, name, created_at, updated_at FROM pipelines";
    type Filter = super::PipelineFilter;
    const WRITES: &'static [&'static str] = &["name"];

    fn filter(_: &mut ListQuery, _: &super::PipelineFilter) {}
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PipelineRow {
    pub id: PipelineId,
    pub name: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

keyed!(PipelineRow);

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StageRow {
    pub id: StageId,
    pub pipeline_id: PipelineId,
    pub name: String,
    pub position: i32,
    pub kind: String,
}

/// The stages of some pipelines, in order.
pub async fn stages_of(
    tx: &mut TenantTx,
    pipelines: &[PipelineId],
) -> Result<Vec<StageRow>, StoreError> {
    let tenant = tx.tenant_id();
    let mut stages = vec![];
    for pipeline in pipelines {
        let mut of_one: Vec<StageRow> = query(
            "SELECT id, pipeline_id, name, position, kind FROM pipeline_stages \
             WHERE pipeline_id = $1 AND tenant_id = $2 ORDER BY position",
        )
        .binds((*pipeline, tenant))
        .fetch_all(tx)
        .await?;
        stages.append(&mut of_one);
    }
    Ok(stages)
}

/// How many deals sit in a stage.
pub async fn deals_in_stage(tx: &mut TenantTx, stage: StageId) -> Result<i64, StoreError> {
    let tenant = tx.tenant_id();
    query("SELECT count(*) FROM deals WHERE tenant_id = $1 AND stage_id = $2")
        .binds((tenant, stage))
        .scalar(tx)
        .await
}

pub async fn delete_stage(tx: &mut TenantTx, stage: StageId) -> Result<(), StoreError> {
    let tenant = tx.tenant_id();
    query("DELETE FROM pipeline_stages WHERE id = $1 AND tenant_id = $2")
        .binds((stage, tenant))
        .execute(tx)
        .await?;
    Ok(())
}

/// Inserts a stage, or renames and moves it.
pub async fn write_stage(
    tx: &mut TenantTx,
    pipeline: PipelineId,
    stage: StageId,
    name: &str,
    position: i32,
    kind: &str,
    insert: bool,
) -> Result<(), StoreError> {
    let tenant = tx.tenant_id();
    let sql = if insert {
        "INSERT INTO pipeline_stages (id, tenant_id, pipeline_id, name, position, kind) \
         VALUES ($1, $2, $3, $4, $5, $6)"
    } else {
        "UPDATE pipeline_stages SET name = $4, position = $5, kind = $6 \
         WHERE id = $1 AND tenant_id = $2 AND pipeline_id = $3"
    };
    query(sql).binds((stage, tenant, pipeline, name, position, kind)).execute(tx).await?;
    Ok(())
}
