//! Activities: the communication log (calls, emails, meetings, SMS) with its time and links
//! to a contact and a deal. The free-text details are encrypted.

#![allow(clippy::disallowed_methods, reason = "this resource keeps its SQL beside its routes")]

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use uuid::Uuid;

use super::contacts::keys;
use super::list::{self, BY_CREATED, BY_UPDATED, Bind, ListQuery, SortColumn};
use super::{Check, Ref, check_refs};
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::{now_ms, parse_rfc3339, rfc3339};
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
        Endpoint::permission(routes!(create_activity), ActivitiesWrite, Write).idempotent(),
        Endpoint::permission(routes!(list_activities), ActivitiesRead, Read),
        Endpoint::permission(routes!(get_activity), ActivitiesRead, Read),
        Endpoint::permission(routes!(update_activity), ActivitiesWrite, Write),
        Endpoint::permission(routes!(delete_activity), ActivitiesWrite, Write),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActivityKind {
    Call,
    Email,
    Meeting,
    Sms,
}

impl ActivityKind {
    fn as_str(self) -> &'static str {
        match self {
            ActivityKind::Call => "call",
            ActivityKind::Email => "email",
            ActivityKind::Meeting => "meeting",
            ActivityKind::Sms => "sms",
        }
    }

    fn parse(text: &str) -> ActivityKind {
        match text {
            "email" => ActivityKind::Email,
            "meeting" => ActivityKind::Meeting,
            "sms" => ActivityKind::Sms,
            _ => ActivityKind::Call,
        }
    }
}

const SELECT: &str = "SELECT id, key_version, kind, subject, details_enc, occurred_at, contact_id, deal_id, \
    owner_id, created_at, updated_at FROM activities";
const BY_OCCURRED: SortColumn = SortColumn { name: "occurred_at", sql: "occurred_at", text: false };

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ActivityRow {
    pub id: Uuid,
    pub key_version: i32,
    pub kind: String,
    pub subject: String,
    pub details_enc: Option<Vec<u8>>,
    pub occurred_at: i64,
    pub contact_id: Option<Uuid>,
    pub deal_id: Option<Uuid>,
    pub owner_id: Option<Uuid>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityView {
    pub id: Uuid,
    pub kind: ActivityKind,
    pub subject: String,
    pub details: Option<String>,
    pub occurred_at: String,
    pub contact_id: Option<Uuid>,
    pub deal_id: Option<Uuid>,
    pub owner_id: Option<Uuid>,
    pub created_at: String,
    pub updated_at: String,
}

fn place(tenant: TenantId, id: Uuid) -> Place<'static> {
    Place { tenant, table: "activities", column: "details", row: id }
}

pub fn seal_details(keys: &KeySet, tenant: TenantId, id: Uuid, details: &str) -> Vec<u8> {
    keys.encrypt(&place(tenant, id), details.as_bytes())
}

pub fn view(keys: &KeySet, tenant: TenantId, row: ActivityRow) -> DomainResult<ActivityView> {
    let details = row
        .details_enc
        .as_ref()
        .map(|d| keys.decrypt_text(&place(tenant, row.id), d).map(|t| t.to_string()))
        .transpose()
        .map_err(|err| {
            DomainError::Internal(format!("stored activity details do not decrypt: {err}"))
        })?;
    Ok(ActivityView {
        id: row.id,
        kind: ActivityKind::parse(&row.kind),
        subject: row.subject,
        details,
        occurred_at: rfc3339(row.occurred_at),
        contact_id: row.contact_id,
        deal_id: row.deal_id,
        owner_id: row.owner_id,
        created_at: rfc3339(row.created_at),
        updated_at: rfc3339(row.updated_at),
    })
}

async fn get_row(tx: &mut TenantTx, id: Uuid) -> Result<Option<ActivityRow>, StoreError> {
    let tenant = tx.tenant_id();
    Ok(on_tx!(tx, |c| {
        sqlx::query_as::<_, ActivityRow>(
        "SELECT id, key_version, kind, subject, details_enc, occurred_at, contact_id, deal_id, owner_id, \
         created_at, updated_at FROM activities WHERE id = $1 AND tenant_id = $2"
    )
    .bind(id)
    .bind(tenant)
    .fetch_optional(c)
    .await
    })?)
}

pub async fn of_contact(tx: &mut TenantTx, contact: Uuid) -> Result<Vec<ActivityRow>, StoreError> {
    let tenant = tx.tenant_id();
    Ok(on_tx!(tx, |c| {
        sqlx::query_as::<_, ActivityRow>(
        "SELECT id, key_version, kind, subject, details_enc, occurred_at, contact_id, deal_id, owner_id, \
         created_at, updated_at FROM activities WHERE tenant_id = $1 AND contact_id = $2 ORDER BY id"
    )
    .bind(tenant)
    .bind(contact)
    .fetch_all(c)
    .await
    })?)
}

pub async fn older_than(
    tx: &mut TenantTx,
    version: i32,
    limit: i64,
) -> Result<Vec<ActivityRow>, StoreError> {
    let tenant = tx.tenant_id();
    Ok(on_tx!(tx, |c| {
        sqlx::query_as::<_, ActivityRow>(
        "SELECT id, key_version, kind, subject, details_enc, occurred_at, contact_id, deal_id, owner_id, \
         created_at, updated_at FROM activities WHERE tenant_id = $1 AND key_version < $2 ORDER BY id LIMIT $3"
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
    details: Option<&[u8]>,
) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    let done = on_tx!(tx, |c| {
        sqlx::query(
        "UPDATE activities SET key_version = $4, details_enc = $5 WHERE id = $1 AND tenant_id = $2 AND key_version = $3"
    )
    .bind(id)
    .bind(tenant)
    .bind(was)
    .bind(version)
    .bind(details)
    .execute(c)
    .await
    .map(|r| r.rows_affected())
    })?;
    Ok(done == 1)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivityInput {
    kind: ActivityKind,
    #[schema(max_length = 200)]
    subject: String,
    #[schema(max_length = 10000)]
    details: Option<String>,
    /// RFC 3339
    occurred_at: String,
    contact_id: Option<Uuid>,
    deal_id: Option<Uuid>,
    /// Default: the caller.
    owner_id: Option<Uuid>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivityPatch {
    kind: Option<ActivityKind>,
    #[schema(max_length = 200)]
    subject: Option<String>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<String>)]
    #[schema(max_length = 10000)]
    details: Option<Option<String>>,
    occurred_at: Option<String>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<Uuid>)]
    contact_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<Uuid>)]
    deal_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<Uuid>)]
    owner_id: Option<Option<Uuid>>,
}

async fn write(
    app: &AppState,
    tx: &mut TenantTx,
    id: Uuid,
    a: &ActivityInput,
    insert: bool,
) -> DomainResult<()> {
    let mut check = Check::new();
    check.name("subject", &a.subject, 200);
    if let Some(details) = &a.details {
        check.text("details", details, 10_000);
    }
    let occurred = parse_rfc3339(&a.occurred_at);
    if occurred.is_none() {
        check.fail("occurred_at", "must be an RFC 3339 time");
    }
    check.finish()?;
    check_refs(
        tx,
        &[
            ("contact_id", Ref::Contact, a.contact_id),
            ("deal_id", Ref::Deal, a.deal_id),
            ("owner_id", Ref::User, a.owner_id),
        ],
    )
    .await?;
    let keys = keys(app, tx).await?;
    let tenant = tx.tenant_id();
    let details = a.details.as_deref().map(|d| seal_details(&keys, tenant, id, d));
    let version = i32::try_from(keys.current_version()).unwrap_or(i32::MAX);
    let sql = if insert {
        "INSERT INTO activities (id, tenant_id, key_version, kind, subject, details_enc, occurred_at, contact_id, \
         deal_id, owner_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)"
    } else {
        "UPDATE activities SET key_version = $3, kind = $4, subject = $5, details_enc = $6, occurred_at = $7, \
         contact_id = $8, deal_id = $9, owner_id = $10, updated_at = $11 WHERE id = $1 AND tenant_id = $2"
    };
    on_tx!(tx, |c| sqlx::query(sql)
        .bind(id)
        .bind(tenant)
        .bind(version)
        .bind(a.kind.as_str())
        .bind(a.subject.trim())
        .bind(&details)
        .bind(occurred.unwrap_or_default())
        .bind(a.contact_id)
        .bind(a.deal_id)
        .bind(a.owner_id)
        .bind(now_ms())
        .execute(c)
        .await
        .map(|r| r.rows_affected()))
    .map_err(StoreError::from)?;
    Ok(())
}

/// Log an activity.
#[utoipa::path(post, path = "/api/v1/activities", tag = "activities", request_body = ActivityInput,
    responses((status = 201, body = ActivityView)))]
async fn create_activity(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Json(mut body): Json<ActivityInput>,
) -> Result<Response, Problem> {
    body.owner_id = body.owner_id.or(scope.actor().user_id().map(|u| u.as_uuid()));
    let mut tx = app.store().tenant_tx(&scope).await?;
    let id = Uuid::now_v7();
    write(&app, &mut tx, id, &body, true).await?;
    audit::record(
        &mut tx,
        &ctx,
        Event::new(Action::ActivityCreate).by_scope(&scope).target("activity", id),
    )
    .await?;
    let row = get_row(&mut tx, id).await?.ok_or(DomainError::NotFound("activity"))?;
    let keys = keys(&app, &mut tx).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(view(&keys, scope.tenant_id(), row)?)).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ActivityQuery {
    kind: Option<ActivityKind>,
    contact_id: Option<Uuid>,
    deal_id: Option<Uuid>,
    owner_id: Option<Uuid>,
    /// RFC 3339
    occurred_after: Option<String>,
    /// RFC 3339
    occurred_before: Option<String>,
    /// `created_at`, `updated_at` or `occurred_at`; prefix `-` for descending.
    sort: Option<String>,
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    cursor: Option<String>,
}

/// List activities.
#[utoipa::path(get, path = "/api/v1/activities", tag = "activities", params(ActivityQuery),
    responses((status = 200, body = Page<ActivityView>)))]
async fn list_activities(
    State(app): State<AppState>,
    scope: TenantScope,
    Query(q): Query<ActivityQuery>,
) -> Result<Json<Page<ActivityView>>, Problem> {
    let sort = list::parse_sort(q.sort.as_deref(), &[BY_CREATED, BY_UPDATED, BY_OCCURRED])?;
    let limit = check_limit(q.limit)?;
    let time = |field: &str, v: Option<&str>| -> DomainResult<Option<i64>> {
        v.map(|t| {
            parse_rfc3339(t).ok_or_else(|| DomainError::invalid(field, "must be an RFC 3339 time"))
        })
        .transpose()
    };
    let after = time("occurred_after", q.occurred_after.as_deref())?;
    let before = time("occurred_before", q.occurred_before.as_deref())?;
    let mut tx = app.store().tenant_read(&scope).await?;
    let keys = keys(&app, &mut tx).await?;
    let mut query = ListQuery::new(SELECT, "", &tx);
    query.and_if("kind = ?", q.kind, |k| Bind::Text(k.as_str().to_owned()));
    query.and_if("contact_id = ?", q.contact_id, Bind::Uuid);
    query.and_if("deal_id = ?", q.deal_id, Bind::Uuid);
    query.and_if("owner_id = ?", q.owner_id, Bind::Uuid);
    query.and_if("occurred_at >= ?", after, Bind::Int);
    query.and_if("occurred_at < ?", before, Bind::Int);
    query.page(sort, q.cursor.as_deref(), limit, "")?;
    let rows: Vec<ActivityRow> = query.fetch(&mut tx).await?;
    tx.commit().await?;
    let tenant = scope.tenant_id();
    Ok(Json(list::paginate(
        rows,
        limit,
        |r| {
            let value = match sort.column.name {
                "occurred_at" => r.occurred_at,
                "updated_at" => r.updated_at,
                _ => r.created_at,
            };
            list::cursor_after(sort, None, Some(value), r.id)
        },
        |r| view(&keys, tenant, r),
    )?))
}

/// One activity.
#[utoipa::path(get, path = "/api/v1/activities/{id}", tag = "activities",
    params(("id" = Uuid, Path, description = "Activity id")), responses((status = 200, body = ActivityView)))]
async fn get_activity(
    State(app): State<AppState>,
    scope: TenantScope,
    Id(id): Id<Uuid>,
) -> Result<Json<ActivityView>, Problem> {
    let mut tx = app.store().tenant_read(&scope).await?;
    let row = get_row(&mut tx, id).await?.ok_or(DomainError::NotFound("activity"))?;
    let keys = keys(&app, &mut tx).await?;
    tx.commit().await?;
    Ok(Json(view(&keys, scope.tenant_id(), row)?))
}

/// Change an activity.
#[utoipa::path(patch, path = "/api/v1/activities/{id}", tag = "activities", request_body = ActivityPatch,
    params(("id" = Uuid, Path, description = "Activity id")), responses((status = 200, body = ActivityView)))]
async fn update_activity(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<Uuid>,
    Json(patch): Json<ActivityPatch>,
) -> Result<Json<ActivityView>, Problem> {
    let mut tx = app.store().tenant_tx(&scope).await?;
    let row = get_row(&mut tx, id).await?.ok_or(DomainError::NotFound("activity"))?;
    let keys = keys(&app, &mut tx).await?;
    let tenant = tx.tenant_id();
    let current = view(&keys, tenant, row)?;
    let next = ActivityInput {
        kind: patch.kind.unwrap_or(current.kind),
        subject: patch.subject.unwrap_or(current.subject),
        details: patch.details.unwrap_or(current.details),
        occurred_at: patch.occurred_at.unwrap_or(current.occurred_at),
        contact_id: patch.contact_id.unwrap_or(current.contact_id),
        deal_id: patch.deal_id.unwrap_or(current.deal_id),
        owner_id: patch.owner_id.unwrap_or(current.owner_id),
    };
    write(&app, &mut tx, id, &next, false).await?;
    audit::record(
        &mut tx,
        &ctx,
        Event::new(Action::ActivityUpdate).by_scope(&scope).target("activity", id),
    )
    .await?;
    let row = get_row(&mut tx, id).await?.ok_or(DomainError::NotFound("activity"))?;
    tx.commit().await?;
    Ok(Json(view(&keys, tenant, row)?))
}

/// Delete an activity.
#[utoipa::path(delete, path = "/api/v1/activities/{id}", tag = "activities",
    params(("id" = Uuid, Path, description = "Activity id")), responses((status = 204)))]
async fn delete_activity(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<Uuid>,
) -> Result<StatusCode, Problem> {
    let mut tx = app.store().tenant_tx(&scope).await?;
    get_row(&mut tx, id).await?.ok_or(DomainError::NotFound("activity"))?;
    let tenant = tx.tenant_id();
    on_tx!(&mut tx, |c| sqlx::query("DELETE FROM activities WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))
    .map_err(StoreError::from)?;
    audit::record(
        &mut tx,
        &ctx,
        Event::new(Action::ActivityDelete).by_scope(&scope).target("activity", id),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
