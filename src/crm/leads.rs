//! Leads: a prospective deal with a status and a source, linked to a contact and a company
//! (the person's data stays in the contact, encrypted).

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
        Endpoint::permission(routes!(create_lead), LeadsWrite, Write).idempotent(),
        Endpoint::permission(routes!(list_leads), LeadsRead, Read),
        Endpoint::permission(routes!(get_lead), LeadsRead, Read),
        Endpoint::permission(routes!(update_lead), LeadsWrite, Write),
        Endpoint::permission(routes!(delete_lead), LeadsWrite, Write),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LeadStatus {
    New,
    Contacted,
    Qualified,
    Unqualified,
    Converted,
}

impl LeadStatus {
    fn as_str(self) -> &'static str {
        match self {
            LeadStatus::New => "new",
            LeadStatus::Contacted => "contacted",
            LeadStatus::Qualified => "qualified",
            LeadStatus::Unqualified => "unqualified",
            LeadStatus::Converted => "converted",
        }
    }

    fn parse(text: &str) -> LeadStatus {
        match text {
            "contacted" => LeadStatus::Contacted,
            "qualified" => LeadStatus::Qualified,
            "unqualified" => LeadStatus::Unqualified,
            "converted" => LeadStatus::Converted,
            _ => LeadStatus::New,
        }
    }
}

const SELECT: &str = "SELECT id, title, status, source, contact_id, company_id, owner_id, created_at, updated_at FROM leads";

#[derive(Debug, Clone, sqlx::FromRow)]
struct Row {
    id: Uuid,
    title: String,
    status: String,
    source: Option<String>,
    contact_id: Option<Uuid>,
    company_id: Option<Uuid>,
    owner_id: Option<Uuid>,
    created_at: i64,
    updated_at: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LeadView {
    id: Uuid,
    title: String,
    status: LeadStatus,
    source: Option<String>,
    contact_id: Option<Uuid>,
    company_id: Option<Uuid>,
    owner_id: Option<Uuid>,
    created_at: String,
    updated_at: String,
}

impl From<Row> for LeadView {
    fn from(r: Row) -> Self {
        LeadView {
            id: r.id,
            title: r.title,
            status: LeadStatus::parse(&r.status),
            source: r.source,
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
pub struct LeadCreate {
    #[schema(max_length = 200)]
    title: String,
    status: Option<LeadStatus>,
    /// Where the lead came from (`website`, `referral`, …).
    #[schema(max_length = 100)]
    source: Option<String>,
    contact_id: Option<Uuid>,
    company_id: Option<Uuid>,
    owner_id: Option<Uuid>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadPatch {
    #[schema(max_length = 200)]
    title: Option<String>,
    status: Option<LeadStatus>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<String>)]
    #[schema(max_length = 100)]
    source: Option<Option<String>>,
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

async fn get_row(tx: &mut TenantTx, id: Uuid) -> Result<Option<Row>, StoreError> {
    let tenant = tx.tenant_id();
    Ok(on_tx!(tx, |c| {
        sqlx::query_as::<_, Row>(
        "SELECT id, title, status, source, contact_id, company_id, owner_id, created_at, updated_at \
         FROM leads WHERE id = $1 AND tenant_id = $2"
    )
    .bind(id)
    .bind(tenant)
    .fetch_optional(c)
    .await
    })?)
}

async fn write(tx: &mut TenantTx, id: Uuid, l: &LeadCreate, insert: bool) -> DomainResult<()> {
    let mut check = Check::new();
    check.name("title", &l.title, 200);
    check.opt_name("source", l.source.as_deref(), 100);
    check.finish()?;
    check_refs(
        tx,
        &[
            ("contact_id", Ref::Contact, l.contact_id),
            ("company_id", Ref::Company, l.company_id),
            ("owner_id", Ref::User, l.owner_id),
        ],
    )
    .await?;
    let (tenant, now) = (tx.tenant_id(), now_ms());
    let status = l.status.unwrap_or(LeadStatus::New).as_str();
    let sql = if insert {
        "INSERT INTO leads (id, tenant_id, title, status, source, contact_id, company_id, owner_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)"
    } else {
        "UPDATE leads SET title = $3, status = $4, source = $5, contact_id = $6, company_id = $7, owner_id = $8, \
         updated_at = $9 WHERE id = $1 AND tenant_id = $2"
    };
    on_tx!(tx, |c| sqlx::query(sql)
        .bind(id)
        .bind(tenant)
        .bind(l.title.trim())
        .bind(status)
        .bind(&l.source)
        .bind(l.contact_id)
        .bind(l.company_id)
        .bind(l.owner_id)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))
    .map_err(StoreError::from)?;
    Ok(())
}

/// Create a lead.
#[utoipa::path(post, path = "/api/v1/leads", tag = "leads", request_body = LeadCreate,
    responses((status = 201, body = LeadView)))]
async fn create_lead(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Json(body): Json<LeadCreate>,
) -> Result<Response, Problem> {
    let mut tx = app.store().tenant_tx(&scope).await?;
    let id = Uuid::now_v7();
    write(&mut tx, id, &body, true).await?;
    audit::record(
        &mut tx,
        &ctx,
        Event::new(Action::LeadCreate).by_scope(&scope).target("lead", id),
    )
    .await?;
    let row = get_row(&mut tx, id).await?.ok_or(DomainError::NotFound("lead"))?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(LeadView::from(row))).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LeadQuery {
    status: Option<LeadStatus>,
    source: Option<String>,
    owner_id: Option<Uuid>,
    contact_id: Option<Uuid>,
    company_id: Option<Uuid>,
    /// `created_at` or `updated_at`; prefix `-` for descending.
    sort: Option<String>,
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    cursor: Option<String>,
}

/// List leads.
#[utoipa::path(get, path = "/api/v1/leads", tag = "leads", params(LeadQuery),
    responses((status = 200, body = Page<LeadView>)))]
async fn list_leads(
    State(app): State<AppState>,
    scope: TenantScope,
    Query(q): Query<LeadQuery>,
) -> Result<Json<Page<LeadView>>, Problem> {
    let sort = list::parse_sort(q.sort.as_deref(), &[BY_CREATED, BY_UPDATED])?;
    let limit = check_limit(q.limit)?;
    let mut tx = app.store().tenant_read(&scope).await?;
    let mut query = ListQuery::new(SELECT, "", &tx);
    query.and_if("status = ?", q.status, |s| Bind::Text(s.as_str().to_owned()));
    query.and_if("source = ?", q.source, Bind::Text);
    query.and_if("owner_id = ?", q.owner_id, Bind::Uuid);
    query.and_if("contact_id = ?", q.contact_id, Bind::Uuid);
    query.and_if("company_id = ?", q.company_id, Bind::Uuid);
    query.page(sort, q.cursor.as_deref(), limit, "")?;
    let rows: Vec<Row> = query.fetch(&mut tx).await?;
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
        |r| Ok(LeadView::from(r)),
    )?))
}

/// One lead.
#[utoipa::path(get, path = "/api/v1/leads/{id}", tag = "leads",
    params(("id" = Uuid, Path, description = "Lead id")), responses((status = 200, body = LeadView)))]
async fn get_lead(
    State(app): State<AppState>,
    scope: TenantScope,
    Id(id): Id<Uuid>,
) -> Result<Json<LeadView>, Problem> {
    let mut tx = app.store().tenant_read(&scope).await?;
    let row = get_row(&mut tx, id).await?.ok_or(DomainError::NotFound("lead"))?;
    tx.commit().await?;
    Ok(Json(row.into()))
}

/// Change a lead.
#[utoipa::path(patch, path = "/api/v1/leads/{id}", tag = "leads", request_body = LeadPatch,
    params(("id" = Uuid, Path, description = "Lead id")), responses((status = 200, body = LeadView)))]
async fn update_lead(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<Uuid>,
    Json(patch): Json<LeadPatch>,
) -> Result<Json<LeadView>, Problem> {
    let mut tx = app.store().tenant_tx(&scope).await?;
    let row = get_row(&mut tx, id).await?.ok_or(DomainError::NotFound("lead"))?;
    let next = LeadCreate {
        title: patch.title.unwrap_or(row.title),
        status: Some(patch.status.unwrap_or(LeadStatus::parse(&row.status))),
        source: patch.source.unwrap_or(row.source),
        contact_id: patch.contact_id.unwrap_or(row.contact_id),
        company_id: patch.company_id.unwrap_or(row.company_id),
        owner_id: patch.owner_id.unwrap_or(row.owner_id),
    };
    write(&mut tx, id, &next, false).await?;
    audit::record(
        &mut tx,
        &ctx,
        Event::new(Action::LeadUpdate).by_scope(&scope).target("lead", id),
    )
    .await?;
    let row = get_row(&mut tx, id).await?.ok_or(DomainError::NotFound("lead"))?;
    tx.commit().await?;
    Ok(Json(row.into()))
}

/// Delete a lead (its notes go with it).
#[utoipa::path(delete, path = "/api/v1/leads/{id}", tag = "leads",
    params(("id" = Uuid, Path, description = "Lead id")), responses((status = 204)))]
async fn delete_lead(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<Uuid>,
) -> Result<StatusCode, Problem> {
    let mut tx = app.store().tenant_tx(&scope).await?;
    get_row(&mut tx, id).await?.ok_or(DomainError::NotFound("lead"))?;
    let tenant = tx.tenant_id();
    on_tx!(&mut tx, |c| sqlx::query("DELETE FROM leads WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))
    .map_err(StoreError::from)?;
    audit::record(
        &mut tx,
        &ctx,
        Event::new(Action::LeadDelete).by_scope(&scope).target("lead", id),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
