//! Companies (organisations the tenant deals with). No personal data: stored in the clear.

#![allow(clippy::disallowed_methods, reason = "this resource keeps its SQL beside its routes")]

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use uuid::Uuid;

use super::list::{self, BY_CREATED, BY_UPDATED, Bind, ListQuery, SortColumn};
use super::{Check, Ref, check_refs, decode_custom, decode_tags, encode_tags, tag_pattern};
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
        Endpoint::permission(routes!(create_company), CompaniesWrite, Write).idempotent(),
        Endpoint::permission(routes!(list_companies), CompaniesRead, Read),
        Endpoint::permission(routes!(get_company), CompaniesRead, Read),
        Endpoint::permission(routes!(update_company), CompaniesWrite, Write),
        Endpoint::permission(routes!(delete_company), CompaniesWrite, Write),
    ]
}

const SELECT: &str = "SELECT id, name, domain, industry, owner_id, tags, custom_fields, created_at, updated_at FROM companies";
const BY_NAME: SortColumn = SortColumn { name: "name", sql: "name", text: true };

#[derive(Debug, Clone, sqlx::FromRow)]
struct Row {
    id: Uuid,
    name: String,
    domain: Option<String>,
    industry: Option<String>,
    owner_id: Option<Uuid>,
    tags: String,
    custom_fields: String,
    created_at: i64,
    updated_at: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CompanyView {
    id: Uuid,
    name: String,
    domain: Option<String>,
    industry: Option<String>,
    owner_id: Option<Uuid>,
    tags: Vec<String>,
    #[schema(value_type = Object)]
    custom_fields: Map<String, Value>,
    created_at: String,
    updated_at: String,
}

impl From<Row> for CompanyView {
    fn from(r: Row) -> Self {
        CompanyView {
            id: r.id,
            name: r.name,
            domain: r.domain,
            industry: r.industry,
            owner_id: r.owner_id,
            tags: decode_tags(&r.tags),
            custom_fields: decode_custom(&r.custom_fields),
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompanyCreate {
    #[schema(max_length = 200)]
    name: String,
    domain: Option<String>,
    #[schema(max_length = 100)]
    industry: Option<String>,
    owner_id: Option<Uuid>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    custom_fields: Map<String, Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompanyPatch {
    #[schema(max_length = 200)]
    name: Option<String>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<String>)]
    domain: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<String>)]
    #[schema(max_length = 100)]
    industry: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<Uuid>)]
    owner_id: Option<Option<Uuid>>,
    tags: Option<Vec<String>>,
    #[schema(value_type = Option<Object>)]
    custom_fields: Option<Map<String, Value>>,
}

fn check(c: &CompanyCreate) -> DomainResult<()> {
    let mut check = Check::new();
    check.name("name", &c.name, 200);
    if let Some(domain) = &c.domain {
        let ok = (1..=253).contains(&domain.len())
            && domain.contains('.')
            && domain.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !ok {
            check.fail("domain", "must be a domain name such as example.com");
        }
    }
    check.opt_name("industry", c.industry.as_deref(), 100);
    check.tags("tags", Some(&c.tags));
    check.custom_fields("custom_fields", Some(&c.custom_fields));
    check.finish()
}

async fn get_row(tx: &mut TenantTx, id: Uuid) -> Result<Option<Row>, StoreError> {
    let tenant = tx.tenant_id();
    Ok(on_tx!(tx, |c| sqlx::query_as::<_, Row>(
        "SELECT id, name, domain, industry, owner_id, tags, custom_fields, created_at, updated_at \
         FROM companies WHERE id = $1 AND tenant_id = $2"
    )
    .bind(id)
    .bind(tenant)
    .fetch_optional(c)
    .await)?)
}

async fn write(tx: &mut TenantTx, id: Uuid, c: &CompanyCreate, insert: bool) -> DomainResult<()> {
    check(c)?;
    check_refs(tx, &[("owner_id", Ref::User, c.owner_id)]).await?;
    let (tenant, now) = (tx.tenant_id(), now_ms());
    let tags = encode_tags(&c.tags);
    let custom = serde_json::to_string(&c.custom_fields).unwrap_or_else(|_| "{}".into());
    let sql = if insert {
        "INSERT INTO companies (id, tenant_id, name, domain, industry, owner_id, tags, custom_fields, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)"
    } else {
        "UPDATE companies SET name = $3, domain = $4, industry = $5, owner_id = $6, tags = $7, \
         custom_fields = $8, updated_at = $9 WHERE id = $1 AND tenant_id = $2"
    };
    on_tx!(tx, |conn| sqlx::query(sql)
        .bind(id)
        .bind(tenant)
        .bind(c.name.trim())
        .bind(&c.domain)
        .bind(&c.industry)
        .bind(c.owner_id)
        .bind(&tags)
        .bind(&custom)
        .bind(now)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))
    .map_err(StoreError::from)?;
    Ok(())
}

/// Create a company.
#[utoipa::path(post, path = "/api/v1/companies", tag = "companies", request_body = CompanyCreate,
    responses((status = 201, body = CompanyView)))]
async fn create_company(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Json(body): Json<CompanyCreate>,
) -> Result<Response, Problem> {
    let mut tx = app.store().tenant_tx(&scope).await?;
    let id = Uuid::now_v7();
    write(&mut tx, id, &body, true).await?;
    audit::record(
        &mut tx,
        &ctx,
        Event::new(Action::CompanyCreate).by_scope(&scope).target("company", id),
    )
    .await?;
    let row = get_row(&mut tx, id).await?.ok_or(DomainError::NotFound("company"))?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(CompanyView::from(row))).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CompanyQuery {
    owner_id: Option<Uuid>,
    tag: Option<String>,
    /// Exact name.
    name: Option<String>,
    /// `created_at`, `updated_at` or `name`; prefix `-` for descending.
    sort: Option<String>,
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    cursor: Option<String>,
}

/// List companies.
#[utoipa::path(get, path = "/api/v1/companies", tag = "companies", params(CompanyQuery),
    responses((status = 200, body = Page<CompanyView>)))]
async fn list_companies(
    State(app): State<AppState>,
    scope: TenantScope,
    Query(q): Query<CompanyQuery>,
) -> Result<Json<Page<CompanyView>>, Problem> {
    let sort = list::parse_sort(q.sort.as_deref(), &[BY_CREATED, BY_UPDATED, BY_NAME])?;
    let limit = check_limit(q.limit)?;
    let mut tx = app.store().tenant_read(&scope).await?;
    let mut query = ListQuery::new(SELECT, "", &tx);
    query.and_if("owner_id = ?", q.owner_id, Bind::Uuid);
    query.and_if("tags LIKE ?", q.tag.as_deref(), |t| Bind::Text(tag_pattern(t)));
    query.and_if("name = ?", q.name, Bind::Text);
    query.page(sort, q.cursor.as_deref(), limit, "")?;
    let rows: Vec<Row> = query.fetch(&mut tx).await?;
    tx.commit().await?;
    let page = list::paginate(
        rows,
        limit,
        |r| match sort.column.name {
            "name" => list::cursor_after(sort, Some(&r.name), None, r.id),
            "updated_at" => list::cursor_after(sort, None, Some(r.updated_at), r.id),
            _ => list::cursor_after(sort, None, Some(r.created_at), r.id),
        },
        |r| Ok(CompanyView::from(r)),
    )?;
    Ok(Json(page))
}

/// One company.
#[utoipa::path(get, path = "/api/v1/companies/{id}", tag = "companies",
    params(("id" = Uuid, Path, description = "Company id")), responses((status = 200, body = CompanyView)))]
async fn get_company(
    State(app): State<AppState>,
    scope: TenantScope,
    Id(id): Id<Uuid>,
) -> Result<Json<CompanyView>, Problem> {
    let mut tx = app.store().tenant_read(&scope).await?;
    let row = get_row(&mut tx, id).await?.ok_or(DomainError::NotFound("company"))?;
    tx.commit().await?;
    Ok(Json(row.into()))
}

/// Change a company.
#[utoipa::path(patch, path = "/api/v1/companies/{id}", tag = "companies", request_body = CompanyPatch,
    params(("id" = Uuid, Path, description = "Company id")), responses((status = 200, body = CompanyView)))]
async fn update_company(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<Uuid>,
    Json(patch): Json<CompanyPatch>,
) -> Result<Json<CompanyView>, Problem> {
    let mut tx = app.store().tenant_tx(&scope).await?;
    let row = get_row(&mut tx, id).await?.ok_or(DomainError::NotFound("company"))?;
    let next = CompanyCreate {
        name: patch.name.unwrap_or(row.name),
        domain: patch.domain.unwrap_or(row.domain),
        industry: patch.industry.unwrap_or(row.industry),
        owner_id: patch.owner_id.unwrap_or(row.owner_id),
        tags: patch.tags.unwrap_or_else(|| decode_tags(&row.tags)),
        custom_fields: patch.custom_fields.unwrap_or_else(|| decode_custom(&row.custom_fields)),
    };
    write(&mut tx, id, &next, false).await?;
    audit::record(
        &mut tx,
        &ctx,
        Event::new(Action::CompanyUpdate).by_scope(&scope).target("company", id),
    )
    .await?;
    let row = get_row(&mut tx, id).await?.ok_or(DomainError::NotFound("company"))?;
    tx.commit().await?;
    Ok(Json(row.into()))
}

/// Delete a company (contacts, leads and deals are unlinked; its notes go with it).
#[utoipa::path(delete, path = "/api/v1/companies/{id}", tag = "companies",
    params(("id" = Uuid, Path, description = "Company id")), responses((status = 204)))]
async fn delete_company(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<Uuid>,
) -> Result<StatusCode, Problem> {
    let mut tx = app.store().tenant_tx(&scope).await?;
    get_row(&mut tx, id).await?.ok_or(DomainError::NotFound("company"))?;
    let tenant = tx.tenant_id();
    for sql in [
        "UPDATE contacts SET company_id = NULL WHERE tenant_id = $1 AND company_id = $2",
        "UPDATE leads SET company_id = NULL WHERE tenant_id = $1 AND company_id = $2",
        "UPDATE deals SET company_id = NULL WHERE tenant_id = $1 AND company_id = $2",
        "DELETE FROM companies WHERE tenant_id = $1 AND id = $2",
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
        Event::new(Action::CompanyDelete).by_scope(&scope).target("company", id),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
