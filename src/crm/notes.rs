//! Notes on a contact, company, deal or lead. Their text may hold anything about a person,
//! so it is encrypted like contact fields.

#![allow(clippy::disallowed_methods, reason = "this resource keeps its SQL beside its routes")]

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use uuid::Uuid;

use super::contacts::keys;
use super::list::{self, BY_CREATED, BY_UPDATED, Bind, ListQuery};
use super::{Check, Ref, check_refs};
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::{now_ms, rfc3339};
use crate::crypto::KeySet;
use crate::crypto::field::Place;
use crate::error::{DomainError, DomainResult};
use crate::http::json::{Json, Query};
use crate::http::pagination::{Page, check_limit};
use crate::http::path::Id;
use crate::http::problem::Problem;
use crate::http::{Endpoint, RateCategory};
use crate::ids::TenantId;
use crate::on_tx;
use crate::store::{StoreError, TenantTx};
use crate::tenancy::{Permission, TenantScope};

pub fn endpoints() -> Vec<Endpoint> {
    use Permission::*;
    use RateCategory::*;
    vec![
        Endpoint::permission(routes!(create_note), NotesWrite, Write).idempotent(),
        Endpoint::permission(routes!(list_notes), NotesRead, Read),
        Endpoint::permission(routes!(get_note), NotesRead, Read),
        Endpoint::permission(routes!(update_note), NotesWrite, Write),
        Endpoint::permission(routes!(delete_note), NotesWrite, Write),
    ]
}

const SELECT: &str = "SELECT id, key_version, body_enc, contact_id, company_id, deal_id, lead_id, author_id, \
    created_at, updated_at FROM notes";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NoteRow {
    pub id: Uuid,
    pub key_version: i32,
    pub body_enc: Vec<u8>,
    pub contact_id: Option<Uuid>,
    pub company_id: Option<Uuid>,
    pub deal_id: Option<Uuid>,
    pub lead_id: Option<Uuid>,
    pub author_id: Option<Uuid>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NoteView {
    pub id: Uuid,
    pub body: String,
    pub contact_id: Option<Uuid>,
    pub company_id: Option<Uuid>,
    pub deal_id: Option<Uuid>,
    pub lead_id: Option<Uuid>,
    pub author_id: Option<Uuid>,
    pub created_at: String,
    pub updated_at: String,
}

fn place(tenant: TenantId, id: Uuid) -> Place<'static> {
    Place { tenant, table: "notes", column: "body", row: id }
}

pub fn seal_body(keys: &KeySet, tenant: TenantId, id: Uuid, body: &str) -> Vec<u8> {
    keys.encrypt(&place(tenant, id), body.as_bytes())
}

pub fn view(keys: &KeySet, tenant: TenantId, row: NoteRow) -> DomainResult<NoteView> {
    let body = keys
        .decrypt_text(&place(tenant, row.id), &row.body_enc)
        .map_err(|err| DomainError::Internal(format!("a stored note does not decrypt: {err}")))?;
    Ok(NoteView {
        id: row.id,
        body: body.to_string(),
        contact_id: row.contact_id,
        company_id: row.company_id,
        deal_id: row.deal_id,
        lead_id: row.lead_id,
        author_id: row.author_id,
        created_at: rfc3339(row.created_at),
        updated_at: rfc3339(row.updated_at),
    })
}

async fn get_row(tx: &mut TenantTx, id: Uuid) -> Result<Option<NoteRow>, StoreError> {
    let tenant = tx.tenant_id();
    Ok(on_tx!(tx, |c| {
        sqlx::query_as::<_, NoteRow>(
        "SELECT id, key_version, body_enc, contact_id, company_id, deal_id, lead_id, author_id, created_at, \
         updated_at FROM notes WHERE id = $1 AND tenant_id = $2"
    )
    .bind(id)
    .bind(tenant)
    .fetch_optional(c)
    .await
    })?)
}

/// Notes of one contact, for the privacy export.
pub async fn of_contact(tx: &mut TenantTx, contact: Uuid) -> Result<Vec<NoteRow>, StoreError> {
    let tenant = tx.tenant_id();
    Ok(on_tx!(tx, |c| {
        sqlx::query_as::<_, NoteRow>(
        "SELECT id, key_version, body_enc, contact_id, company_id, deal_id, lead_id, author_id, created_at, \
         updated_at FROM notes WHERE tenant_id = $1 AND contact_id = $2 ORDER BY id"
    )
    .bind(tenant)
    .bind(contact)
    .fetch_all(c)
    .await
    })?)
}

/// Notes under an older data key, for rotation.
pub async fn older_than(
    tx: &mut TenantTx,
    version: i32,
    limit: i64,
) -> Result<Vec<NoteRow>, StoreError> {
    let tenant = tx.tenant_id();
    Ok(on_tx!(tx, |c| {
        sqlx::query_as::<_, NoteRow>(
        "SELECT id, key_version, body_enc, contact_id, company_id, deal_id, lead_id, author_id, created_at, \
         updated_at FROM notes WHERE tenant_id = $1 AND key_version < $2 ORDER BY id LIMIT $3"
    )
    .bind(tenant)
    .bind(version)
    .bind(limit)
    .fetch_all(c)
    .await
    })?)
}

pub async fn reseal(
    tx: &mut TenantTx,
    id: Uuid,
    was: i32,
    version: i32,
    body: &[u8],
) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    let done = on_tx!(tx, |c| {
        sqlx::query(
        "UPDATE notes SET key_version = $4, body_enc = $5 WHERE id = $1 AND tenant_id = $2 AND key_version = $3"
    )
    .bind(id)
    .bind(tenant)
    .bind(was)
    .bind(version)
    .bind(body)
    .execute(c)
    .await
    .map(|r| r.rows_affected())
    })?;
    Ok(done == 1)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteCreate {
    #[schema(max_length = 20000)]
    body: String,
    /// Exactly one of contact_id, company_id, deal_id, lead_id.
    contact_id: Option<Uuid>,
    company_id: Option<Uuid>,
    deal_id: Option<Uuid>,
    lead_id: Option<Uuid>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotePatch {
    #[schema(max_length = 20000)]
    body: String,
}

/// Add a note to a contact, company, deal or lead.
#[utoipa::path(post, path = "/api/v1/notes", tag = "notes", request_body = NoteCreate,
    responses((status = 201, body = NoteView)))]
async fn create_note(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Json(body): Json<NoteCreate>,
) -> Result<Response, Problem> {
    let mut check = Check::new();
    check.text("body", &body.body, 20_000);
    let parents = [body.contact_id, body.company_id, body.deal_id, body.lead_id]
        .iter()
        .filter(|p| p.is_some())
        .count();
    if parents != 1 {
        check.fail(
            "contact_id",
            "a note belongs to exactly one of contact_id, company_id, deal_id, lead_id",
        );
    }
    check.finish()?;
    let mut tx = app.store().tenant_tx(&scope).await?;
    check_refs(
        &mut tx,
        &[
            ("contact_id", Ref::Contact, body.contact_id),
            ("company_id", Ref::Company, body.company_id),
            ("deal_id", Ref::Deal, body.deal_id),
            ("lead_id", Ref::Lead, body.lead_id),
        ],
    )
    .await?;
    let keys = keys(&app, &mut tx).await?;
    let (id, tenant, now) = (Uuid::now_v7(), tx.tenant_id(), now_ms());
    let sealed = seal_body(&keys, tenant, id, &body.body);
    let version = i32::try_from(keys.current_version()).unwrap_or(i32::MAX);
    let author = scope.actor().user_id();
    on_tx!(&mut tx, |c| sqlx::query(
        "INSERT INTO notes (id, tenant_id, key_version, body_enc, contact_id, company_id, deal_id, lead_id, \
         author_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)"
    )
    .bind(id)
    .bind(tenant)
    .bind(version)
    .bind(&sealed)
    .bind(body.contact_id)
    .bind(body.company_id)
    .bind(body.deal_id)
    .bind(body.lead_id)
    .bind(author)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))
    .map_err(StoreError::from)?;
    audit::record(
        &mut tx,
        &ctx,
        Event::new(Action::NoteCreate).by_scope(&scope).target("note", id),
    )
    .await?;
    let row = get_row(&mut tx, id).await?.ok_or(DomainError::NotFound("note"))?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(view(&keys, tenant, row)?)).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NoteQuery {
    contact_id: Option<Uuid>,
    company_id: Option<Uuid>,
    deal_id: Option<Uuid>,
    lead_id: Option<Uuid>,
    author_id: Option<Uuid>,
    /// `created_at` or `updated_at`; prefix `-` for descending.
    sort: Option<String>,
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    cursor: Option<String>,
}

/// List notes.
#[utoipa::path(get, path = "/api/v1/notes", tag = "notes", params(NoteQuery),
    responses((status = 200, body = Page<NoteView>)))]
async fn list_notes(
    State(app): State<AppState>,
    scope: TenantScope,
    Query(q): Query<NoteQuery>,
) -> Result<Json<Page<NoteView>>, Problem> {
    let sort = list::parse_sort(q.sort.as_deref(), &[BY_CREATED, BY_UPDATED])?;
    let limit = check_limit(q.limit)?;
    let mut tx = app.store().tenant_read(&scope).await?;
    let keys = keys(&app, &mut tx).await?;
    let mut query = ListQuery::new(SELECT, "", &tx);
    query.and_if("contact_id = ?", q.contact_id, Bind::Uuid);
    query.and_if("company_id = ?", q.company_id, Bind::Uuid);
    query.and_if("deal_id = ?", q.deal_id, Bind::Uuid);
    query.and_if("lead_id = ?", q.lead_id, Bind::Uuid);
    query.and_if("author_id = ?", q.author_id, Bind::Uuid);
    query.page(sort, q.cursor.as_deref(), limit, "")?;
    let rows: Vec<NoteRow> = query.fetch(&mut tx).await?;
    tx.commit().await?;
    let tenant = scope.tenant_id();
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
        |r| view(&keys, tenant, r),
    )?))
}

/// One note.
#[utoipa::path(get, path = "/api/v1/notes/{id}", tag = "notes",
    params(("id" = Uuid, Path, description = "Note id")), responses((status = 200, body = NoteView)))]
async fn get_note(
    State(app): State<AppState>,
    scope: TenantScope,
    Id(id): Id<Uuid>,
) -> Result<Json<NoteView>, Problem> {
    let mut tx = app.store().tenant_read(&scope).await?;
    let row = get_row(&mut tx, id).await?.ok_or(DomainError::NotFound("note"))?;
    let keys = keys(&app, &mut tx).await?;
    tx.commit().await?;
    Ok(Json(view(&keys, scope.tenant_id(), row)?))
}

/// Rewrite a note's text.
#[utoipa::path(patch, path = "/api/v1/notes/{id}", tag = "notes", request_body = NotePatch,
    params(("id" = Uuid, Path, description = "Note id")), responses((status = 200, body = NoteView)))]
async fn update_note(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<Uuid>,
    Json(patch): Json<NotePatch>,
) -> Result<Json<NoteView>, Problem> {
    let mut check = Check::new();
    check.text("body", &patch.body, 20_000);
    check.finish()?;
    let mut tx = app.store().tenant_tx(&scope).await?;
    get_row(&mut tx, id).await?.ok_or(DomainError::NotFound("note"))?;
    let keys = keys(&app, &mut tx).await?;
    let tenant = tx.tenant_id();
    let sealed = seal_body(&keys, tenant, id, &patch.body);
    let version = i32::try_from(keys.current_version()).unwrap_or(i32::MAX);
    on_tx!(&mut tx, |c| sqlx::query(
        "UPDATE notes SET body_enc = $3, key_version = $4, updated_at = $5 WHERE id = $1 AND tenant_id = $2"
    )
    .bind(id)
    .bind(tenant)
    .bind(&sealed)
    .bind(version)
    .bind(now_ms())
    .execute(c)
    .await
    .map(|r| r.rows_affected()))
    .map_err(StoreError::from)?;
    audit::record(
        &mut tx,
        &ctx,
        Event::new(Action::NoteUpdate).by_scope(&scope).target("note", id),
    )
    .await?;
    let row = get_row(&mut tx, id).await?.ok_or(DomainError::NotFound("note"))?;
    tx.commit().await?;
    Ok(Json(view(&keys, tenant, row)?))
}

/// Delete a note.
#[utoipa::path(delete, path = "/api/v1/notes/{id}", tag = "notes",
    params(("id" = Uuid, Path, description = "Note id")), responses((status = 204)))]
async fn delete_note(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<Uuid>,
) -> Result<StatusCode, Problem> {
    let mut tx = app.store().tenant_tx(&scope).await?;
    get_row(&mut tx, id).await?.ok_or(DomainError::NotFound("note"))?;
    let tenant = tx.tenant_id();
    on_tx!(&mut tx, |c| sqlx::query("DELETE FROM notes WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))
    .map_err(StoreError::from)?;
    audit::record(
        &mut tx,
        &ctx,
        Event::new(Action::NoteDelete).by_scope(&scope).target("note", id),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
