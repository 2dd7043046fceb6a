//! `/api/v1/documents`: upload (multipart), list, metadata, content, delete.

use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt as _;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use super::{DocumentView, Link, NewDocument};
use crate::app::AppState;
use crate::audit::RequestContext;
use crate::error::DomainError;
use crate::http::Endpoint;
use crate::http::json::{Json, Query};
use crate::http::path::Id;
use crate::http::problem::Problem;
use crate::ids::{CompanyId, ContactId, DealId, DocumentId};
use crate::pagination::Page;
use crate::ratelimit::{RateCategory, RouteFamily};
use crate::tenancy::Permission::{DocumentsRead, DocumentsWrite};
use crate::tenancy::TenantScope;

pub fn endpoints() -> Vec<Endpoint> {
    use RateCategory::*;
    vec![
        Endpoint::permission(routes!(upload), DocumentsWrite, Write)
            .family(RouteFamily::Uploads)
            .upload(),
        Endpoint::permission(routes!(list), DocumentsRead, Read),
        Endpoint::permission(routes!(get_document), DocumentsRead, Read),
        Endpoint::permission(routes!(content), DocumentsRead, Read),
        Endpoint::permission(routes!(delete_document), DocumentsWrite, Write),
    ]
}

/// The form of an upload: the fields first, then the one file.
#[derive(ToSchema)]
#[allow(dead_code, reason = "documents the multipart form; the handler reads it part by part")]
struct UploadForm {
    /// Exactly one of `contact_id`, `company_id`, `deal_id`.
    contact_id: Option<ContactId>,
    company_id: Option<CompanyId>,
    deal_id: Option<DealId>,
    #[schema(max_length = 200)]
    title: Option<String>,
    /// The file, last. Its type is decided from its content.
    #[schema(format = Binary, content_media_type = "application/octet-stream")]
    file: String,
}

fn multipart_error(err: axum::extract::multipart::MultipartError) -> DomainError {
    if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return DomainError::TooLarge { limit: 0 };
    }
    DomainError::invalid("file", "the multipart body is malformed")
}

/// Upload a document (multipart: the fields, then `file`).
#[utoipa::path(post, path = "/api/v1/documents", tag = "documents",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 201, body = DocumentView), (status = 413, description = "Over the size cap"),
        (status = 415, description = "A type the allowlist does not name")))]
async fn upload(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    form: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<DocumentView>), Problem> {
    let Ok(mut form) = form else {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Unsupported media type",
            "Send the body as multipart/form-data: the fields, then `file`.",
        ));
    };
    let (mut contact, mut company, mut deal, mut title) = (None, None, None, None);
    while let Some(field) = form.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            let link = Link::exactly_one(contact, company, deal)?;
            let filename = field.file_name().unwrap_or_default().to_owned();
            let new = NewDocument { link, title, filename };
            let body = field.map_err(multipart_error);
            let view = super::upload(&app, &scope, &ctx, new, Box::pin(body)).await?;
            return Ok((StatusCode::CREATED, Json(view)));
        }
        // A form field: small text.
        let value = field.text().await.map_err(multipart_error)?;
        let not_an_id = || DomainError::invalid(&name, "is not an id");
        match name.as_str() {
            "contact_id" => contact = Some(value.trim().parse().map_err(|_| not_an_id())?),
            "company_id" => company = Some(value.trim().parse().map_err(|_| not_an_id())?),
            "deal_id" => deal = Some(value.trim().parse().map_err(|_| not_an_id())?),
            "title" => title = Some(value),
            _ => return Err(DomainError::invalid(&name, "is not a field of an upload").into()),
        }
    }
    Err(DomainError::invalid("file", "is required (after the other fields)").into())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DocumentFilter {
    /// Exactly one of `contact_id`, `company_id`, `deal_id`.
    contact_id: Option<ContactId>,
    company_id: Option<CompanyId>,
    deal_id: Option<DealId>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// A record's documents, newest first.
#[utoipa::path(get, path = "/api/v1/documents", tag = "documents", params(DocumentFilter),
    responses((status = 200, body = Page<DocumentView>)))]
async fn list(
    State(app): State<AppState>,
    scope: TenantScope,
    Query(filter): Query<DocumentFilter>,
) -> Result<Json<Page<DocumentView>>, Problem> {
    let link = Link::exactly_one(filter.contact_id, filter.company_id, filter.deal_id)?;
    Ok(Json(super::list(&app, &scope, link, filter.limit, filter.cursor.as_deref()).await?))
}

/// A document's metadata (audited).
#[utoipa::path(get, path = "/api/v1/documents/{id}", tag = "documents",
    params(("id" = DocumentId, Path, description = "Document id")), responses((status = 200, body = DocumentView)))]
async fn get_document(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<DocumentId>,
) -> Result<Json<DocumentView>, Problem> {
    Ok(Json(super::get(&app, &scope, &ctx, id).await?))
}

/// A document's content (audited), as an attachment that no browser renders in place.
#[utoipa::path(get, path = "/api/v1/documents/{id}/content", tag = "documents",
    params(("id" = DocumentId, Path, description = "Document id")),
    responses((status = 200, description = "The content", content_type = "application/octet-stream")))]
async fn content(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<DocumentId>,
) -> Result<Response, Problem> {
    let content = super::content(&app, &scope, &ctx, id).await?;
    let disposition = super::sniff::content_disposition(&content.view.filename);
    let mut response = Body::from_stream(content.body).into_response();
    let headers = response.headers_mut();
    let value =
        |v: &str| HeaderValue::from_str(v).map_err(|_| DomainError::Internal("a header".into()));
    headers.insert(header::CONTENT_TYPE, value(&content.view.content_type)?);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(content.view.size.max(0) as u64));
    headers.insert(header::CONTENT_DISPOSITION, value(&disposition)?);
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Delete a document: unreadable at once, its stored object removed within seconds.
#[utoipa::path(delete, path = "/api/v1/documents/{id}", tag = "documents",
    params(("id" = DocumentId, Path, description = "Document id")), responses((status = 204)))]
async fn delete_document(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<DocumentId>,
) -> Result<StatusCode, Problem> {
    super::delete(&app, &scope, &ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
