//! Tasks: something to do, by a date, by someone, about a contact or a deal.

#![allow(clippy::disallowed_methods, reason = "this resource keeps its SQL beside its routes")]

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use uuid::Uuid;

use super::list::{self, BY_CREATED, BY_UPDATED, Bind, ListQuery};
use super::{Check, Ref, check_refs};
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::{now_ms, rfc3339};
use crate::error::{DomainError, DomainResult};
use crate::http::json::{Json, Query};
use crate::http::pagination::{Page, check_limit};
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
        Endpoint::permission(routes!(create_task), TasksWrite, Write).idempotent(),
        Endpoint::permission(routes!(list_tasks), TasksRead, Read),
        Endpoint::permission(routes!(get_task), TasksRead, Read),
        Endpoint::permission(routes!(update_task), TasksWrite, Write),
        Endpoint::permission(routes!(delete_task), TasksWrite, Write),
    ]
}

const SELECT: &str = "SELECT id, title, due_date, assignee_id, done, contact_id, deal_id, created_at, updated_at FROM tasks";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TaskRow {
    pub id: Uuid,
    pub title: String,
    pub due_date: Option<String>,
    pub assignee_id: Option<Uuid>,
    pub done: bool,
    pub contact_id: Option<Uuid>,
    pub deal_id: Option<Uuid>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TaskView {
    pub id: Uuid,
    pub title: String,
    /// YYYY-MM-DD
    pub due_date: Option<String>,
    pub assignee_id: Option<Uuid>,
    pub done: bool,
    pub contact_id: Option<Uuid>,
    pub deal_id: Option<Uuid>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<TaskRow> for TaskView {
    fn from(r: TaskRow) -> Self {
        TaskView {
            id: r.id,
            title: r.title,
            due_date: r.due_date,
            assignee_id: r.assignee_id,
            done: r.done,
            contact_id: r.contact_id,
            deal_id: r.deal_id,
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskInput {
    #[schema(max_length = 200)]
    title: String,
    due_date: Option<String>,
    assignee_id: Option<Uuid>,
    #[serde(default)]
    done: bool,
    contact_id: Option<Uuid>,
    deal_id: Option<Uuid>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskPatch {
    #[schema(max_length = 200)]
    title: Option<String>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<String>)]
    due_date: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<Uuid>)]
    assignee_id: Option<Option<Uuid>>,
    done: Option<bool>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<Uuid>)]
    contact_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<Uuid>)]
    deal_id: Option<Option<Uuid>>,
}

pub async fn of_contact(tx: &mut TenantTx, contact: Uuid) -> Result<Vec<TaskRow>, StoreError> {
    let tenant = tx.tenant_id();
    Ok(on_tx!(tx, |c| {
        sqlx::query_as::<_, TaskRow>(
        "SELECT id, title, due_date, assignee_id, done, contact_id, deal_id, created_at, updated_at \
         FROM tasks WHERE tenant_id = $1 AND contact_id = $2 ORDER BY id"
    )
    .bind(tenant)
    .bind(contact)
    .fetch_all(c)
    .await
    })?)
}

async fn get_row(tx: &mut TenantTx, id: Uuid) -> Result<Option<TaskRow>, StoreError> {
    let tenant = tx.tenant_id();
    Ok(on_tx!(tx, |c| {
        sqlx::query_as::<_, TaskRow>(
        "SELECT id, title, due_date, assignee_id, done, contact_id, deal_id, created_at, updated_at \
         FROM tasks WHERE id = $1 AND tenant_id = $2"
    )
    .bind(id)
    .bind(tenant)
    .fetch_optional(c)
    .await
    })?)
}

async fn write(tx: &mut TenantTx, id: Uuid, t: &TaskInput, insert: bool) -> DomainResult<()> {
    let mut check = Check::new();
    check.name("title", &t.title, 200);
    check.date("due_date", t.due_date.as_deref());
    check.finish()?;
    check_refs(
        tx,
        &[
            ("assignee_id", Ref::User, t.assignee_id),
            ("contact_id", Ref::Contact, t.contact_id),
            ("deal_id", Ref::Deal, t.deal_id),
        ],
    )
    .await?;
    let tenant = tx.tenant_id();
    let sql = if insert {
        "INSERT INTO tasks (id, tenant_id, title, due_date, assignee_id, done, contact_id, deal_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)"
    } else {
        "UPDATE tasks SET title = $3, due_date = $4, assignee_id = $5, done = $6, contact_id = $7, deal_id = $8, \
         updated_at = $9 WHERE id = $1 AND tenant_id = $2"
    };
    on_tx!(tx, |c| sqlx::query(sql)
        .bind(id)
        .bind(tenant)
        .bind(t.title.trim())
        .bind(&t.due_date)
        .bind(t.assignee_id)
        .bind(t.done)
        .bind(t.contact_id)
        .bind(t.deal_id)
        .bind(now_ms())
        .execute(c)
        .await
        .map(|r| r.rows_affected()))
    .map_err(StoreError::from)?;
    Ok(())
}

/// Create a task.
#[utoipa::path(post, path = "/api/v1/tasks", tag = "tasks", request_body = TaskInput,
    responses((status = 201, body = TaskView)))]
async fn create_task(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Json(body): Json<TaskInput>,
) -> Result<Response, Problem> {
    let mut tx = app.store().tenant_tx(&scope).await?;
    let id = Uuid::now_v7();
    write(&mut tx, id, &body, true).await?;
    audit::record(
        &mut tx,
        &ctx,
        Event::new(Action::TaskCreate).by_scope(&scope).target("task", id),
    )
    .await?;
    let row = get_row(&mut tx, id).await?.ok_or(DomainError::NotFound("task"))?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(TaskView::from(row))).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TaskQuery {
    assignee_id: Option<Uuid>,
    done: Option<bool>,
    contact_id: Option<Uuid>,
    deal_id: Option<Uuid>,
    /// Due on or before this date (YYYY-MM-DD).
    due_before: Option<String>,
    /// `created_at` or `updated_at`; prefix `-` for descending.
    sort: Option<String>,
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    cursor: Option<String>,
}

/// List tasks.
#[utoipa::path(get, path = "/api/v1/tasks", tag = "tasks", params(TaskQuery),
    responses((status = 200, body = Page<TaskView>)))]
async fn list_tasks(
    State(app): State<AppState>,
    scope: TenantScope,
    Query(q): Query<TaskQuery>,
) -> Result<Json<Page<TaskView>>, Problem> {
    let sort = list::parse_sort(q.sort.as_deref(), &[BY_CREATED, BY_UPDATED])?;
    let limit = check_limit(q.limit)?;
    if let Some(date) = &q.due_before
        && super::validate::parse_date(date).is_none()
    {
        return Err(DomainError::invalid("due_before", "must be a date, YYYY-MM-DD").into());
    }
    let mut tx = app.store().tenant_read(&scope).await?;
    let mut query = ListQuery::new(SELECT, "", &tx);
    query.and_if("assignee_id = ?", q.assignee_id, Bind::Uuid);
    query.and_if("done = ?", q.done, Bind::Bool);
    query.and_if("contact_id = ?", q.contact_id, Bind::Uuid);
    query.and_if("deal_id = ?", q.deal_id, Bind::Uuid);
    query.and_if("due_date <= ?", q.due_before, Bind::Text);
    query.page(sort, q.cursor.as_deref(), limit, "")?;
    let rows: Vec<TaskRow> = query.fetch(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(list::paginate(
        rows,
        limit,
        |r| {
            list::cursor_after(
                sort,
                None,
                Some(if sort.column.name == "updated_at" { r.updated_at } else { r.created_at }),
                r.id,
            )
        },
        |r| Ok(TaskView::from(r)),
    )?))
}

/// One task.
#[utoipa::path(get, path = "/api/v1/tasks/{id}", tag = "tasks",
    params(("id" = Uuid, Path, description = "Task id")), responses((status = 200, body = TaskView)))]
async fn get_task(
    State(app): State<AppState>,
    scope: TenantScope,
    Id(id): Id<Uuid>,
) -> Result<Json<TaskView>, Problem> {
    let mut tx = app.store().tenant_read(&scope).await?;
    let row = get_row(&mut tx, id).await?.ok_or(DomainError::NotFound("task"))?;
    tx.commit().await?;
    Ok(Json(row.into()))
}

/// Change a task (e.g. mark it done).
#[utoipa::path(patch, path = "/api/v1/tasks/{id}", tag = "tasks", request_body = TaskPatch,
    params(("id" = Uuid, Path, description = "Task id")), responses((status = 200, body = TaskView)))]
async fn update_task(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<Uuid>,
    Json(patch): Json<TaskPatch>,
) -> Result<Json<TaskView>, Problem> {
    let mut tx = app.store().tenant_tx(&scope).await?;
    let row = get_row(&mut tx, id).await?.ok_or(DomainError::NotFound("task"))?;
    let next = TaskInput {
        title: patch.title.unwrap_or(row.title),
        due_date: patch.due_date.unwrap_or(row.due_date),
        assignee_id: patch.assignee_id.unwrap_or(row.assignee_id),
        done: patch.done.unwrap_or(row.done),
        contact_id: patch.contact_id.unwrap_or(row.contact_id),
        deal_id: patch.deal_id.unwrap_or(row.deal_id),
    };
    write(&mut tx, id, &next, false).await?;
    audit::record(
        &mut tx,
        &ctx,
        Event::new(Action::TaskUpdate).by_scope(&scope).target("task", id),
    )
    .await?;
    let row = get_row(&mut tx, id).await?.ok_or(DomainError::NotFound("task"))?;
    tx.commit().await?;
    Ok(Json(row.into()))
}

/// Delete a task.
#[utoipa::path(delete, path = "/api/v1/tasks/{id}", tag = "tasks",
    params(("id" = Uuid, Path, description = "Task id")), responses((status = 204)))]
async fn delete_task(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<Uuid>,
) -> Result<StatusCode, Problem> {
    let mut tx = app.store().tenant_tx(&scope).await?;
    get_row(&mut tx, id).await?.ok_or(DomainError::NotFound("task"))?;
    let tenant = tx.tenant_id();
    on_tx!(&mut tx, |c| sqlx::query("DELETE FROM tasks WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))
    .map_err(StoreError::from)?;
    audit::record(
        &mut tx,
        &ctx,
        Event::new(Action::TaskDelete).by_scope(&scope).target("task", id),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
