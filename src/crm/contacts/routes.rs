//! `/api/v1/contacts`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use uuid::Uuid;

use super::store::{self, ContactRow};
use super::{Address, BankAccount, ContactData, ContactPatch, ContactView, TABLE};
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::parse_rfc3339;
use crate::crm::list::{self, BY_CREATED, BY_UPDATED, Bind, ListQuery};
use crate::crm::tag_pattern;
use crate::crypto::field::{normalise_email, normalise_phone};
use crate::error::{DomainError, DomainResult};
use crate::http::json::{Json, Query};
use crate::http::pagination::{Page, check_limit};
use crate::http::path::Id;
use crate::http::problem::Problem;
use crate::http::{Endpoint, RateCategory};
use crate::tenancy::{Permission, TenantScope};

pub fn endpoints() -> Vec<Endpoint> {
    use Permission::*;
    use RateCategory::*;
    vec![
        Endpoint::permission(routes!(create_contact), ContactsWrite, Write).idempotent(),
        Endpoint::permission(routes!(list_contacts), ContactsRead, Read),
        Endpoint::permission(routes!(get_contact), ContactsRead, Read),
        Endpoint::permission(routes!(update_contact), ContactsWrite, Write),
        Endpoint::permission(routes!(delete_contact), ContactsWrite, Write),
    ]
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactCreate {
    #[schema(max_length = 100)]
    first_name: Option<String>,
    #[schema(max_length = 100)]
    last_name: Option<String>,
    email: Option<String>,
    #[schema(max_length = 32)]
    phone: Option<String>,
    /// YYYY-MM-DD
    date_of_birth: Option<String>,
    ssn: Option<String>,
    address: Option<Address>,
    bank_account: Option<BankAccount>,
    company_id: Option<Uuid>,
    owner_id: Option<Uuid>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    custom_fields: Map<String, Value>,
}

/// Create a contact.
#[utoipa::path(post, path = "/api/v1/contacts", tag = "contacts", request_body = ContactCreate,
    responses((status = 201, body = ContactView)))]
async fn create_contact(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Json(body): Json<ContactCreate>,
) -> Result<Response, Problem> {
    let data = ContactData {
        first_name: body.first_name,
        last_name: body.last_name,
        email: body.email,
        phone: body.phone,
        date_of_birth: body.date_of_birth,
        ssn: body.ssn,
        address: body.address,
        bank_account: body.bank_account,
        company_id: body.company_id,
        owner_id: body.owner_id,
        tags: body.tags,
        custom_fields: body.custom_fields,
    };
    let view = super::create(&app, &scope, &ctx, data).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ContactQuery {
    /// Exact match (case-insensitive), through the blind index.
    email: Option<String>,
    /// Exact match on the digits, through the blind index.
    phone: Option<String>,
    owner_id: Option<Uuid>,
    company_id: Option<Uuid>,
    tag: Option<String>,
    /// RFC 3339
    created_after: Option<String>,
    /// RFC 3339
    created_before: Option<String>,
    /// `created_at`, `updated_at`, or either prefixed with `-` for descending.
    sort: Option<String>,
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    cursor: Option<String>,
}

fn time_filter(field: &str, value: Option<&str>) -> DomainResult<Option<i64>> {
    value
        .map(|t| {
            parse_rfc3339(t).ok_or_else(|| DomainError::invalid(field, "must be an RFC 3339 time"))
        })
        .transpose()
}

/// The filters every contact listing shares (the list and the CSV export).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactFilter {
    /// Exact match (case-insensitive), through the blind index.
    pub email: Option<String>,
    /// Exact match on the digits, through the blind index.
    pub phone: Option<String>,
    pub owner_id: Option<Uuid>,
    pub company_id: Option<Uuid>,
    pub tag: Option<String>,
    /// RFC 3339
    pub created_after: Option<String>,
    /// RFC 3339
    pub created_before: Option<String>,
}

pub fn filtered(
    query: &mut ListQuery,
    keys: &crate::crypto::KeySet,
    f: &ContactFilter,
) -> DomainResult<()> {
    if let Some(tag) = &f.tag
        && (tag.contains([',', '%', '_', '\\']) || tag.len() > 50)
    {
        return Err(DomainError::invalid("tag", "is not a tag"));
    }
    query.and_raw("erased_at IS NULL");
    query.and_if("email_bidx = ?", f.email.as_deref(), |e| {
        Bind::Bytes(keys.blind_index(TABLE, "email", &normalise_email(e)))
    });
    query.and_if("phone_bidx = ?", f.phone.as_deref(), |p| {
        Bind::Bytes(keys.blind_index(TABLE, "phone", &normalise_phone(p)))
    });
    query.and_if("owner_id = ?", f.owner_id, Bind::Uuid);
    query.and_if("company_id = ?", f.company_id, Bind::Uuid);
    query.and_if("tags LIKE ?", f.tag.as_deref(), |t| Bind::Text(tag_pattern(t)));
    query.and_if(
        "created_at >= ?",
        time_filter("created_after", f.created_after.as_deref())?,
        Bind::Int,
    );
    query.and_if(
        "created_at < ?",
        time_filter("created_before", f.created_before.as_deref())?,
        Bind::Int,
    );
    Ok(())
}

/// List contacts (filters, sorting, cursor pagination; exact lookup by email or phone).
#[utoipa::path(get, path = "/api/v1/contacts", tag = "contacts", params(ContactQuery),
    responses((status = 200, body = Page<ContactView>)))]
async fn list_contacts(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Query(q): Query<ContactQuery>,
) -> Result<Json<Page<ContactView>>, Problem> {
    let sort = list::parse_sort(q.sort.as_deref(), &[BY_CREATED, BY_UPDATED])?;
    let limit = check_limit(q.limit)?;
    let unmasked = scope.may(Permission::ContactsReadSensitive);
    // A read: it runs beside writers. Only a page that showed sensitive values takes a write
    // turn, for its audit event, and the page is returned only once that event is stored.
    let mut tx = app.store().tenant_read(&scope).await?;
    let keys = super::keys(&app, &mut tx).await?;
    let mut query = ListQuery::new(store::SELECT, "", &tx);
    let filter = ContactFilter {
        email: q.email,
        phone: q.phone,
        owner_id: q.owner_id,
        company_id: q.company_id,
        tag: q.tag,
        created_after: q.created_after,
        created_before: q.created_before,
    };
    filtered(&mut query, &keys, &filter)?;
    query.page(sort, q.cursor.as_deref(), limit, "")?;
    let rows: Vec<ContactRow> = query.fetch(&mut tx).await?;
    let mut sensitive = 0usize;
    let tenant = scope.tenant_id();
    let page = list::paginate(
        rows,
        limit,
        |r| {
            let at = if sort.column.name == "updated_at" { r.updated_at } else { r.created_at };
            list::cursor_after(sort, None, Some(at), r.id)
        },
        |row| {
            let data = super::open(&keys, tenant, &row)?;
            if data.ssn.is_some() || data.bank_account.is_some() {
                sensitive += 1;
            }
            Ok(super::view(&row, data, unmasked))
        },
    )?;
    tx.commit().await?;
    if unmasked && sensitive > 0 {
        let mut tx = app.store().tenant_tx(&scope).await?;
        audit::record(
            &mut tx,
            &ctx,
            Event::new(Action::ContactSensitiveRead).by_scope(&scope).detail("contacts", sensitive),
        )
        .await?;
        tx.commit().await?;
    }
    Ok(Json(page))
}

/// One contact.
#[utoipa::path(get, path = "/api/v1/contacts/{id}", tag = "contacts",
    params(("id" = Uuid, Path, description = "Contact id")), responses((status = 200, body = ContactView)))]
async fn get_contact(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<Uuid>,
) -> Result<Json<ContactView>, Problem> {
    Ok(Json(super::get(&app, &scope, &ctx, id).await?))
}

/// Change a contact (absent fields stay, `null` clears).
#[utoipa::path(patch, path = "/api/v1/contacts/{id}", tag = "contacts", request_body = ContactPatch,
    params(("id" = Uuid, Path, description = "Contact id")), responses((status = 200, body = ContactView)))]
async fn update_contact(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<Uuid>,
    Json(patch): Json<ContactPatch>,
) -> Result<Json<ContactView>, Problem> {
    Ok(Json(super::update(&app, &scope, &ctx, id, patch).await?))
}

/// Delete a contact (records linked to it are unlinked; notes about it go with it).
#[utoipa::path(delete, path = "/api/v1/contacts/{id}", tag = "contacts",
    params(("id" = Uuid, Path, description = "Contact id")), responses((status = 204)))]
async fn delete_contact(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<Uuid>,
) -> Result<StatusCode, Problem> {
    super::delete(&app, &scope, &ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
