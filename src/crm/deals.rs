//! Deals and the per-tenant pipelines whose stages they move through.

#![allow(clippy::disallowed_methods, reason = "this resource keeps its SQL beside its routes")]

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use uuid::Uuid;

use super::list::{self, BY_CREATED, BY_UPDATED, Bind, ListQuery, SortColumn};
use super::{Check, Ref, check_refs};
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::{now_ms, rfc3339};
use crate::error::{DomainError, DomainResult};
use crate::http::json::{Json, Query};
use crate::http::pagination::{Page, PageQuery, check_limit};
use crate::http::path::Id;
use crate::http::problem::Problem;
use crate::http::{Endpoint, RateCategory};
use crate::on_tx;
use crate::store::{StoreError, TenantTx};
use crate::tenancy::{Permission, TenantScope};

pub fn endpoints() -> Vec<Endpoint> {
    use Permission::*;
    use RateCategory::*;
    vec![
        Endpoint::permission(routes!(create_pipeline), PipelinesManage, Write).idempotent(),
        Endpoint::permission(routes!(list_pipelines), DealsRead, Read),
        Endpoint::permission(routes!(get_pipeline), DealsRead, Read),
        Endpoint::permission(routes!(update_pipeline), PipelinesManage, Write),
        Endpoint::permission(routes!(delete_pipeline), PipelinesManage, Write),
        Endpoint::permission(routes!(create_deal), DealsWrite, Write).idempotent(),
        Endpoint::permission(routes!(list_deals), DealsRead, Read),
        Endpoint::permission(routes!(get_deal), DealsRead, Read),
        Endpoint::permission(routes!(update_deal), DealsWrite, Write),
        Endpoint::permission(routes!(delete_deal), DealsWrite, Write),
    ]
}

// --- pipelines -------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StageKind {
    Open,
    Won,
    Lost,
}

impl StageKind {
    fn as_str(self) -> &'static str {
        match self {
            StageKind::Open => "open",
            StageKind::Won => "won",
            StageKind::Lost => "lost",
        }
    }

    fn parse(text: &str) -> StageKind {
        match text {
            "won" => StageKind::Won,
            "lost" => StageKind::Lost,
            _ => StageKind::Open,
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct PipelineRow {
    id: Uuid,
    name: String,
    created_at: i64,
    updated_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct StageRow {
    id: Uuid,
    name: String,
    position: i32,
    kind: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StageView {
    id: Uuid,
    name: String,
    position: i32,
    kind: StageKind,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PipelineView {
    id: Uuid,
    name: String,
    stages: Vec<StageView>,
    created_at: String,
    updated_at: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StageInput {
    /// An existing stage to keep (renamed or moved); omit to add a stage.
    id: Option<Uuid>,
    #[schema(max_length = 100)]
    name: String,
    kind: Option<StageKind>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineInput {
    #[schema(max_length = 100)]
    name: String,
    /// In order. Stages left out are removed (refused while deals sit in them).
    stages: Vec<StageInput>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelinePatch {
    #[schema(max_length = 100)]
    name: Option<String>,
    stages: Option<Vec<StageInput>>,
}

async fn pipeline_view(tx: &mut TenantTx, id: Uuid) -> DomainResult<PipelineView> {
    let tenant = tx.tenant_id();
    let row: PipelineRow = on_tx!(tx, |c| {
        sqlx::query_as::<_, PipelineRow>(
        "SELECT id, name, created_at, updated_at FROM pipelines WHERE id = $1 AND tenant_id = $2"
    )
    .bind(id)
    .bind(tenant)
    .fetch_optional(c)
    .await
    })
    .map_err(StoreError::from)?
    .ok_or(DomainError::NotFound("pipeline"))?;
    let stages: Vec<StageRow> = on_tx!(tx, |c| sqlx::query_as::<_, StageRow>(
        "SELECT id, name, position, kind FROM pipeline_stages \
         WHERE pipeline_id = $1 AND tenant_id = $2 ORDER BY position"
    )
    .bind(id)
    .bind(tenant)
    .fetch_all(c)
    .await)
    .map_err(StoreError::from)?;
    Ok(PipelineView {
        id: row.id,
        name: row.name,
        stages: stages
            .into_iter()
            .map(|s| StageView {
                id: s.id,
                name: s.name,
                position: s.position,
                kind: StageKind::parse(&s.kind),
            })
            .collect(),
        created_at: rfc3339(row.created_at),
        updated_at: rfc3339(row.updated_at),
    })
}

fn check_pipeline(name: &str, stages: &[StageInput]) -> DomainResult<()> {
    let mut check = Check::new();
    check.name("name", name, 100);
    if stages.is_empty() || stages.len() > 30 {
        check.fail("stages", "a pipeline has 1 to 30 stages");
    }
    for stage in stages {
        check.name("stages.name", &stage.name, 100);
    }
    check.finish()
}

/// Writes the stages of a pipeline: keeps, moves and renames listed ones, adds new ones,
/// removes the rest.
async fn write_stages(
    tx: &mut TenantTx,
    pipeline: Uuid,
    stages: &[StageInput],
) -> DomainResult<()> {
    let tenant = tx.tenant_id();
    let existing: Vec<Uuid> = on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT id FROM pipeline_stages WHERE pipeline_id = $1 AND tenant_id = $2"
    )
    .bind(pipeline)
    .bind(tenant)
    .fetch_all(c)
    .await)
    .map_err(StoreError::from)?;
    for stage in stages {
        if let Some(id) = stage.id
            && !existing.contains(&id)
        {
            return Err(DomainError::invalid("stages.id", "names no stage of this pipeline"));
        }
    }
    let kept: Vec<Uuid> = stages.iter().filter_map(|s| s.id).collect();
    for gone in existing.iter().filter(|id| !kept.contains(id)) {
        let in_use: i64 = on_tx!(tx, |c| sqlx::query_scalar(
            "SELECT count(*) FROM deals WHERE tenant_id = $1 AND stage_id = $2"
        )
        .bind(tenant)
        .bind(gone)
        .fetch_one(c)
        .await)
        .map_err(StoreError::from)?;
        if in_use > 0 {
            return Err(DomainError::Conflict(
                "a stage with deals in it cannot be removed; move the deals first",
            ));
        }
        on_tx!(tx, |c| sqlx::query("DELETE FROM pipeline_stages WHERE id = $1 AND tenant_id = $2")
            .bind(gone)
            .bind(tenant)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(StoreError::from)?;
    }
    for (position, stage) in stages.iter().enumerate() {
        let position = i32::try_from(position).unwrap_or(i32::MAX);
        let kind = stage.kind.unwrap_or(StageKind::Open).as_str();
        let (sql, id) = match stage.id {
            Some(id) => (
                "UPDATE pipeline_stages SET name = $4, position = $5, kind = $6 \
                 WHERE id = $1 AND tenant_id = $2 AND pipeline_id = $3",
                id,
            ),
            None => (
                "INSERT INTO pipeline_stages (id, tenant_id, pipeline_id, name, position, kind) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                Uuid::now_v7(),
            ),
        };
        on_tx!(tx, |c| sqlx::query(sql)
            .bind(id)
            .bind(tenant)
            .bind(pipeline)
            .bind(stage.name.trim())
            .bind(position)
            .bind(kind)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(StoreError::from)?;
    }
    Ok(())
}

/// Create a pipeline with its stages.
#[utoipa::path(post, path = "/api/v1/pipelines", tag = "deals", request_body = PipelineInput,
    responses((status = 201, body = PipelineView)))]
async fn create_pipeline(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Json(body): Json<PipelineInput>,
) -> Result<Response, Problem> {
    check_pipeline(&body.name, &body.stages)?;
    if body.stages.iter().any(|s| s.id.is_some()) {
        return Err(DomainError::invalid("stages.id", "new pipelines have new stages").into());
    }
    let mut tx = app.store().tenant_tx(&scope).await?;
    let (id, tenant, now) = (Uuid::now_v7(), tx.tenant_id(), now_ms());
    on_tx!(&mut tx, |c| sqlx::query(
        "INSERT INTO pipelines (id, tenant_id, name, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)"
    )
    .bind(id)
    .bind(tenant)
    .bind(body.name.trim())
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))
    .map_err(StoreError::from)?;
    write_stages(&mut tx, id, &body.stages).await?;
    audit::record(
        &mut tx,
        &ctx,
        Event::new(Action::PipelineCreate).by_scope(&scope).target("pipeline", id),
    )
    .await?;
    let view = pipeline_view(&mut tx, id).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// The tenant's pipelines.
#[utoipa::path(get, path = "/api/v1/pipelines", tag = "deals", params(PageQuery),
    responses((status = 200, body = Page<PipelineView>)))]
async fn list_pipelines(
    State(app): State<AppState>,
    scope: TenantScope,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<PipelineView>>, Problem> {
    let limit = page.limit()?;
    let after = page.after::<Uuid>()?;
    let mut tx = app.store().tenant_read(&scope).await?;
    let tenant = tx.tenant_id();
    let ids: Vec<Uuid> = on_tx!(&mut tx, |c| sqlx::query_scalar(
        "SELECT id FROM pipelines WHERE tenant_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
    )
    .bind(tenant)
    .bind(after)
    .bind(limit + 1)
    .fetch_all(c)
    .await)
    .map_err(StoreError::from)?;
    let mut views = vec![];
    for id in ids.iter().take(usize::try_from(limit).unwrap_or(usize::MAX)) {
        views.push(pipeline_view(&mut tx, *id).await?);
    }
    tx.commit().await?;
    let next_cursor = (ids.len() > views.len())
        .then(|| views.last().map(|v| crate::http::pagination::encode_cursor(&v.id.to_string())))
        .flatten();
    Ok(Json(Page { items: views, next_cursor }))
}

/// One pipeline.
#[utoipa::path(get, path = "/api/v1/pipelines/{id}", tag = "deals",
    params(("id" = Uuid, Path, description = "Pipeline id")), responses((status = 200, body = PipelineView)))]
async fn get_pipeline(
    State(app): State<AppState>,
    scope: TenantScope,
    Id(id): Id<Uuid>,
) -> Result<Json<PipelineView>, Problem> {
    let mut tx = app.store().tenant_read(&scope).await?;
    let view = pipeline_view(&mut tx, id).await?;
    tx.commit().await?;
    Ok(Json(view))
}

/// Rename a pipeline or change its stages.
#[utoipa::path(patch, path = "/api/v1/pipelines/{id}", tag = "deals", request_body = PipelinePatch,
    params(("id" = Uuid, Path, description = "Pipeline id")), responses((status = 200, body = PipelineView)))]
async fn update_pipeline(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<Uuid>,
    Json(patch): Json<PipelinePatch>,
) -> Result<Json<PipelineView>, Problem> {
    let mut tx = app.store().tenant_tx(&scope).await?;
    let current = pipeline_view(&mut tx, id).await?;
    let name = patch.name.unwrap_or(current.name);
    let check_stages: Vec<StageInput> = match &patch.stages {
        Some(_) => vec![],
        None => current
            .stages
            .iter()
            .map(|s| StageInput { id: Some(s.id), name: s.name.clone(), kind: Some(s.kind) })
            .collect(),
    };
    let stages = patch.stages.as_deref().unwrap_or(&check_stages);
    check_pipeline(&name, stages)?;
    let tenant = tx.tenant_id();
    on_tx!(&mut tx, |c| sqlx::query(
        "UPDATE pipelines SET name = $3, updated_at = $4 WHERE id = $1 AND tenant_id = $2"
    )
    .bind(id)
    .bind(tenant)
    .bind(name.trim())
    .bind(now_ms())
    .execute(c)
    .await
    .map(|r| r.rows_affected()))
    .map_err(StoreError::from)?;
    if patch.stages.is_some() {
        write_stages(&mut tx, id, stages).await?;
    }
    audit::record(
        &mut tx,
        &ctx,
        Event::new(Action::PipelineUpdate).by_scope(&scope).target("pipeline", id),
    )
    .await?;
    let view = pipeline_view(&mut tx, id).await?;
    tx.commit().await?;
    Ok(Json(view))
}

/// Delete a pipeline without deals.
#[utoipa::path(delete, path = "/api/v1/pipelines/{id}", tag = "deals",
    params(("id" = Uuid, Path, description = "Pipeline id")), responses((status = 204)))]
async fn delete_pipeline(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<Uuid>,
) -> Result<StatusCode, Problem> {
    let mut tx = app.store().tenant_tx(&scope).await?;
    pipeline_view(&mut tx, id).await?;
    let tenant = tx.tenant_id();
    let deals: i64 = on_tx!(&mut tx, |c| sqlx::query_scalar(
        "SELECT count(*) FROM deals WHERE tenant_id = $1 AND pipeline_id = $2"
    )
    .bind(tenant)
    .bind(id)
    .fetch_one(c)
    .await)
    .map_err(StoreError::from)?;
    if deals > 0 {
        return Err(DomainError::Conflict("a pipeline with deals cannot be deleted").into());
    }
    on_tx!(&mut tx, |c| sqlx::query("DELETE FROM pipelines WHERE id = $1 AND tenant_id = $2")
        .bind(id)
        .bind(tenant)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))
    .map_err(StoreError::from)?;
    audit::record(
        &mut tx,
        &ctx,
        Event::new(Action::PipelineDelete).by_scope(&scope).target("pipeline", id),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- deals -----------------------------------------------------------------------------

const SELECT: &str = "SELECT d.id, d.title, d.pipeline_id, d.stage_id, s.kind AS stage_kind, d.amount_minor, \
    d.currency, d.expected_close_date, d.contact_id, d.company_id, d.owner_id, d.created_at, d.updated_at \
    FROM deals d JOIN pipeline_stages s ON s.id = d.stage_id";
const BY_AMOUNT: SortColumn = SortColumn { name: "amount", sql: "amount_minor", text: false };

#[derive(Debug, Clone, sqlx::FromRow)]
struct DealRow {
    id: Uuid,
    title: String,
    pipeline_id: Uuid,
    stage_id: Uuid,
    stage_kind: String,
    amount_minor: i64,
    currency: String,
    expected_close_date: Option<String>,
    contact_id: Option<Uuid>,
    company_id: Option<Uuid>,
    owner_id: Option<Uuid>,
    created_at: i64,
    updated_at: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DealView {
    id: Uuid,
    title: String,
    pipeline_id: Uuid,
    stage_id: Uuid,
    /// `open`, `won` or `lost`, from the stage.
    status: StageKind,
    /// In minor units (cents).
    amount_minor: i64,
    /// ISO 4217
    currency: String,
    /// YYYY-MM-DD
    expected_close_date: Option<String>,
    contact_id: Option<Uuid>,
    company_id: Option<Uuid>,
    owner_id: Option<Uuid>,
    created_at: String,
    updated_at: String,
}

impl From<DealRow> for DealView {
    fn from(r: DealRow) -> Self {
        DealView {
            id: r.id,
            title: r.title,
            pipeline_id: r.pipeline_id,
            stage_id: r.stage_id,
            status: StageKind::parse(&r.stage_kind),
            amount_minor: r.amount_minor,
            currency: r.currency,
            expected_close_date: r.expected_close_date,
            contact_id: r.contact_id,
            company_id: r.company_id,
            owner_id: r.owner_id,
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DealCreate {
    #[schema(max_length = 200)]
    title: String,
    pipeline_id: Uuid,
    /// A stage of the pipeline; default: its first stage.
    stage_id: Option<Uuid>,
    #[serde(default)]
    amount_minor: i64,
    currency: String,
    expected_close_date: Option<String>,
    contact_id: Option<Uuid>,
    company_id: Option<Uuid>,
    owner_id: Option<Uuid>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DealPatch {
    #[schema(max_length = 200)]
    title: Option<String>,
    pipeline_id: Option<Uuid>,
    stage_id: Option<Uuid>,
    amount_minor: Option<i64>,
    currency: Option<String>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<String>)]
    expected_close_date: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<Uuid>)]
    contact_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<Uuid>)]
    company_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<Uuid>)]
    owner_id: Option<Option<Uuid>>,
}

async fn get_deal_row(tx: &mut TenantTx, id: Uuid) -> Result<Option<DealRow>, StoreError> {
    let tenant = tx.tenant_id();
    Ok(on_tx!(tx, |c| {
        sqlx::query_as::<_, DealRow>(
        "SELECT d.id, d.title, d.pipeline_id, d.stage_id, s.kind AS stage_kind, d.amount_minor, d.currency, \
         d.expected_close_date, d.contact_id, d.company_id, d.owner_id, d.created_at, d.updated_at \
         FROM deals d JOIN pipeline_stages s ON s.id = d.stage_id WHERE d.id = $1 AND d.tenant_id = $2"
    )
    .bind(id)
    .bind(tenant)
    .fetch_optional(c)
    .await
    })?)
}

async fn write_deal(tx: &mut TenantTx, id: Uuid, d: &DealCreate, insert: bool) -> DomainResult<()> {
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
            ("pipeline_id", Ref::Pipeline, Some(d.pipeline_id)),
            ("contact_id", Ref::Contact, d.contact_id),
            ("company_id", Ref::Company, d.company_id),
            ("owner_id", Ref::User, d.owner_id),
        ],
    )
    .await?;
    let tenant = tx.tenant_id();
    let stages: Vec<Uuid> = on_tx!(tx, |c| {
        sqlx::query_scalar(
        "SELECT id FROM pipeline_stages WHERE pipeline_id = $1 AND tenant_id = $2 ORDER BY position"
    )
    .bind(d.pipeline_id)
    .bind(tenant)
    .fetch_all(c)
    .await
    })
    .map_err(StoreError::from)?;
    let stage = match d.stage_id {
        Some(stage) if stages.contains(&stage) => stage,
        Some(_) => return Err(DomainError::invalid("stage_id", "names no stage of this pipeline")),
        None => *stages
            .first()
            .ok_or_else(|| DomainError::invalid("pipeline_id", "the pipeline has no stages"))?,
    };
    let sql = if insert {
        "INSERT INTO deals (id, tenant_id, title, pipeline_id, stage_id, amount_minor, currency, \
         expected_close_date, contact_id, company_id, owner_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)"
    } else {
        "UPDATE deals SET title = $3, pipeline_id = $4, stage_id = $5, amount_minor = $6, currency = $7, \
         expected_close_date = $8, contact_id = $9, company_id = $10, owner_id = $11, updated_at = $12 \
         WHERE id = $1 AND tenant_id = $2"
    };
    on_tx!(tx, |c| sqlx::query(sql)
        .bind(id)
        .bind(tenant)
        .bind(d.title.trim())
        .bind(d.pipeline_id)
        .bind(stage)
        .bind(d.amount_minor)
        .bind(&d.currency)
        .bind(&d.expected_close_date)
        .bind(d.contact_id)
        .bind(d.company_id)
        .bind(d.owner_id)
        .bind(now_ms())
        .execute(c)
        .await
        .map(|r| r.rows_affected()))
    .map_err(StoreError::from)?;
    Ok(())
}

/// Create a deal.
#[utoipa::path(post, path = "/api/v1/deals", tag = "deals", request_body = DealCreate,
    responses((status = 201, body = DealView)))]
async fn create_deal(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Json(body): Json<DealCreate>,
) -> Result<Response, Problem> {
    let mut tx = app.store().tenant_tx(&scope).await?;
    let id = Uuid::now_v7();
    write_deal(&mut tx, id, &body, true).await?;
    audit::record(
        &mut tx,
        &ctx,
        Event::new(Action::DealCreate).by_scope(&scope).target("deal", id),
    )
    .await?;
    let row = get_deal_row(&mut tx, id).await?.ok_or(DomainError::NotFound("deal"))?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(DealView::from(row))).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DealQuery {
    pipeline_id: Option<Uuid>,
    stage_id: Option<Uuid>,
    status: Option<StageKind>,
    owner_id: Option<Uuid>,
    contact_id: Option<Uuid>,
    company_id: Option<Uuid>,
    currency: Option<String>,
    /// Expected to close on or before this date (YYYY-MM-DD).
    closing_before: Option<String>,
    /// `created_at`, `updated_at` or `amount`; prefix `-` for descending.
    sort: Option<String>,
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    cursor: Option<String>,
}

/// List deals.
#[utoipa::path(get, path = "/api/v1/deals", tag = "deals", params(DealQuery),
    responses((status = 200, body = Page<DealView>)))]
async fn list_deals(
    State(app): State<AppState>,
    scope: TenantScope,
    Query(q): Query<DealQuery>,
) -> Result<Json<Page<DealView>>, Problem> {
    let sort = list::parse_sort(q.sort.as_deref(), &[BY_CREATED, BY_UPDATED, BY_AMOUNT])?;
    let limit = check_limit(q.limit)?;
    if let Some(date) = &q.closing_before
        && super::validate::parse_date(date).is_none()
    {
        return Err(DomainError::invalid("closing_before", "must be a date, YYYY-MM-DD").into());
    }
    let mut tx = app.store().tenant_read(&scope).await?;
    let mut query = ListQuery::new(SELECT, "d.", &tx);
    query.and_if("d.pipeline_id = ?", q.pipeline_id, Bind::Uuid);
    query.and_if("d.stage_id = ?", q.stage_id, Bind::Uuid);
    query.and_if("s.kind = ?", q.status, |k| Bind::Text(k.as_str().to_owned()));
    query.and_if("d.owner_id = ?", q.owner_id, Bind::Uuid);
    query.and_if("d.contact_id = ?", q.contact_id, Bind::Uuid);
    query.and_if("d.company_id = ?", q.company_id, Bind::Uuid);
    query.and_if("d.currency = ?", q.currency, Bind::Text);
    query.and_if("d.expected_close_date <= ?", q.closing_before, Bind::Text);
    query.page(sort, q.cursor.as_deref(), limit, "d.")?;
    let rows: Vec<DealRow> = query.fetch(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(list::paginate(
        rows,
        limit,
        |r| {
            let value = match sort.column.name {
                "amount" => r.amount_minor,
                "updated_at" => r.updated_at,
                _ => r.created_at,
            };
            list::cursor_after(sort, None, Some(value), r.id)
        },
        |r| Ok(DealView::from(r)),
    )?))
}

/// One deal.
#[utoipa::path(get, path = "/api/v1/deals/{id}", tag = "deals",
    params(("id" = Uuid, Path, description = "Deal id")), responses((status = 200, body = DealView)))]
async fn get_deal(
    State(app): State<AppState>,
    scope: TenantScope,
    Id(id): Id<Uuid>,
) -> Result<Json<DealView>, Problem> {
    let mut tx = app.store().tenant_read(&scope).await?;
    let row = get_deal_row(&mut tx, id).await?.ok_or(DomainError::NotFound("deal"))?;
    tx.commit().await?;
    Ok(Json(row.into()))
}

/// Change a deal (moving it through stages, too).
#[utoipa::path(patch, path = "/api/v1/deals/{id}", tag = "deals", request_body = DealPatch,
    params(("id" = Uuid, Path, description = "Deal id")), responses((status = 200, body = DealView)))]
async fn update_deal(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<Uuid>,
    Json(patch): Json<DealPatch>,
) -> Result<Json<DealView>, Problem> {
    let mut tx = app.store().tenant_tx(&scope).await?;
    let row = get_deal_row(&mut tx, id).await?.ok_or(DomainError::NotFound("deal"))?;
    let moved_pipeline = patch.pipeline_id.is_some_and(|p| p != row.pipeline_id);
    let next = DealCreate {
        title: patch.title.unwrap_or(row.title),
        pipeline_id: patch.pipeline_id.unwrap_or(row.pipeline_id),
        // A new pipeline without a stage starts at its first stage.
        stage_id: patch.stage_id.or((!moved_pipeline).then_some(row.stage_id)),
        amount_minor: patch.amount_minor.unwrap_or(row.amount_minor),
        currency: patch.currency.unwrap_or(row.currency),
        expected_close_date: patch.expected_close_date.unwrap_or(row.expected_close_date),
        contact_id: patch.contact_id.unwrap_or(row.contact_id),
        company_id: patch.company_id.unwrap_or(row.company_id),
        owner_id: patch.owner_id.unwrap_or(row.owner_id),
    };
    write_deal(&mut tx, id, &next, false).await?;
    audit::record(
        &mut tx,
        &ctx,
        Event::new(Action::DealUpdate).by_scope(&scope).target("deal", id),
    )
    .await?;
    let row = get_deal_row(&mut tx, id).await?.ok_or(DomainError::NotFound("deal"))?;
    tx.commit().await?;
    Ok(Json(row.into()))
}

/// Delete a deal (its notes go with it; tasks and activities are unlinked).
#[utoipa::path(delete, path = "/api/v1/deals/{id}", tag = "deals",
    params(("id" = Uuid, Path, description = "Deal id")), responses((status = 204)))]
async fn delete_deal(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<Uuid>,
) -> Result<StatusCode, Problem> {
    let mut tx = app.store().tenant_tx(&scope).await?;
    get_deal_row(&mut tx, id).await?.ok_or(DomainError::NotFound("deal"))?;
    let tenant = tx.tenant_id();
    for sql in [
        "UPDATE tasks SET deal_id = NULL WHERE tenant_id = $1 AND deal_id = $2",
        "UPDATE activities SET deal_id = NULL WHERE tenant_id = $1 AND deal_id = $2",
        "DELETE FROM deals WHERE tenant_id = $1 AND id = $2",
    ] {
        on_tx!(&mut tx, |c| sqlx::query(sql)
            .bind(tenant)
            .bind(id)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(StoreError::from)?;
    }
    audit::record(
        &mut tx,
        &ctx,
        Event::new(Action::DealDelete).by_scope(&scope).target("deal", id),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
