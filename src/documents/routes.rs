//! `/api/v1/documents`: upload (multipart), list, metadata, content, delete.

use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt as _;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use super::{DocumentView, Link, NewDocument};
use crate::app::AppState;
use crate::audit::RequestContext;
use crate::containment::features::Feature;
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
    [
        Endpoint::permission(routes!(upload), DocumentsWrite, Write)
            .family(RouteFamily::Uploads)
            .upload(),
        Endpoint::permission(routes!(list), DocumentsRead, Read),
        Endpoint::permission(routes!(get_document), DocumentsRead, Read),
        Endpoint::permission(routes!(content), DocumentsRead, Read),
        Endpoint::permission(routes!(delete_document), DocumentsWrite, Write),
    ]
    .into_iter()
    .map(|endpoint| endpoint.feature(Feature::Documents))
    .collect()
}

/// The form of an upload: the fields first, then the one file.
#[derive(ToSchema)]
#[allow(dead_code, reason = "documents the multipart form; the handler reads it part by part")]
struct UploadForm {
    /// Exactly one of `contact_id`, `company_id`, `deal_id` (absent fields are left out of
    /// the form, never sent as `null`).
    #[schema(nullable = false)]
    contact_id: Option<ContactId>,
    #[schema(nullable = false)]
    company_id: Option<CompanyId>,
    #[schema(nullable = false)]
    deal_id: Option<DealId>,
    #[schema(max_length = 200, nullable = false)]
    title: Option<String>,
    /// The file, last. Its type is decided from its content.
    #[schema(format = Binary, content_media_type = "application/octet-stream")]
    file: String,
}

/// A form field's text: small, and read no further than its cap (only the file is large).
async fn small_text(
    mut field: axum::extract::multipart::Field<'_>,
    name: &str,
) -> Result<String, DomainError> {
    const FIELD_LIMIT: usize = 4096;
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        if bytes.len() + chunk.len() > FIELD_LIMIT {
            return Err(DomainError::invalid(name, "is longer than a form field may be"));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(|_| DomainError::invalid(name, "is not UTF-8 text"))
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
    let view = receive(&app, &scope, &ctx, form).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Reads an upload's form (the fields, then `file`) and stores the file as it streams in.
/// The console's upload form posts the same form.
pub(crate) async fn receive(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    form: Result<Multipart, MultipartRejection>,
) -> Result<DocumentView, Problem> {
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
            return Ok(super::upload(app, scope, ctx, new, Box::pin(body)).await?);
        }
        let value = small_text(field, &name).await?;
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

/// A record's documents, newest first (audited when it shows any).
#[utoipa::path(get, path = "/api/v1/documents", tag = "documents", params(DocumentFilter),
    responses((status = 200, body = Page<DocumentView>)))]
async fn list(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Query(filter): Query<DocumentFilter>,
) -> Result<Json<Page<DocumentView>>, Problem> {
    let link = Link::exactly_one(filter.contact_id, filter.company_id, filter.deal_id)?;
    let cursor = filter.cursor.as_deref();
    Ok(Json(super::list(&app, &scope, &ctx, link, filter.limit, cursor).await?))
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

/// A document's content (audited), as an attachment that no browser renders in place; one
/// `Range: bytes=…` gives 206 with that part (several ranges are answered whole).
#[utoipa::path(get, path = "/api/v1/documents/{id}/content", tag = "documents",
    params(("id" = DocumentId, Path, description = "Document id"),
        ("range" = Option<String>, Header, description = "One byte range, e.g. `bytes=0-1023`")),
    responses((status = 200, description = "The content", content_type = "application/octet-stream"),
        (status = 206, description = "The requested range", content_type = "application/octet-stream"),
        (status = 416, description = "No byte of the range is in the content", body = crate::http::problem::ProblemBody, content_type = "application/problem+json")))]
pub(crate) async fn content(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<DocumentId>,
    request: HeaderMap,
) -> Result<Response, Problem> {
    let range = request.get(header::RANGE).and_then(|v| v.to_str().ok()).and_then(byte_range);
    let content = match super::content(&app, &scope, &ctx, id, range).await {
        Ok(content) => content,
        Err(DomainError::RangeNotSatisfiable { size }) => {
            let mut response =
                Problem::from(DomainError::RangeNotSatisfiable { size }).into_response();
            let unsatisfied = HeaderValue::from_str(&format!("bytes */{size}"))
                .map_err(|_| DomainError::Internal("a header".into()))?;
            response.headers_mut().insert(header::CONTENT_RANGE, unsatisfied);
            return Ok(response);
        }
        Err(err) => return Err(err.into()),
    };
    let disposition = super::sniff::content_disposition(&content.view.filename);
    let size = content.view.size.max(0) as u64;
    let mut response = Body::from_stream(content.body).into_response();
    let value =
        |v: &str| HeaderValue::from_str(v).map_err(|_| DomainError::Internal("a header".into()));
    let headers = response.headers_mut();
    match content.range {
        Some((start, end)) => {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start + 1));
            headers.insert(header::CONTENT_RANGE, value(&format!("bytes {start}-{end}/{size}"))?);
        }
        None => {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
        }
    }
    headers.insert(header::CONTENT_TYPE, value(&content.view.content_type)?);
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(header::CONTENT_DISPOSITION, value(&disposition)?);
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if content.range.is_some() {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    Ok(response)
}

/// One range of `Range: bytes=A-B | A- | -N`; anything else (several ranges, another unit,
/// a malformed value) is ignored and the whole content sent, as RFC 9110 §14.2 allows.
fn byte_range(value: &str) -> Option<super::ByteRange> {
    let spec = value.trim().strip_prefix("bytes=")?.trim();
    let (start, end) = spec.split_once('-')?;
    let number = |s: &str| {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse::<u64>().ok())?
    };
    match (start.trim().is_empty(), end.trim().is_empty()) {
        (true, false) => number(end).map(super::ByteRange::Suffix),
        (false, true) => number(start).map(|a| super::ByteRange::From(a, None)),
        (false, false) => {
            let (a, b) = (number(start)?, number(end)?);
            (a <= b).then_some(super::ByteRange::From(a, Some(b)))
        }
        (true, true) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::ByteRange;
    use super::byte_range;

    #[test]
    fn one_byte_range_is_read_and_anything_else_ignored() {
        assert_eq!(byte_range("bytes=0-99"), Some(ByteRange::From(0, Some(99))));
        assert_eq!(byte_range("bytes=100-"), Some(ByteRange::From(100, None)));
        assert_eq!(byte_range("bytes=-5"), Some(ByteRange::Suffix(5)));
        for ignored in ["bytes=0-1,5-6", "items=0-1", "bytes=5-1", "bytes=-", "bytes=a-b", "0-1"] {
            assert_eq!(byte_range(ignored), None, "{ignored}");
        }
        assert_eq!(ByteRange::From(0, Some(99)).resolve(10), Some((0, 9)));
        assert_eq!(ByteRange::From(10, None).resolve(10), None);
        assert_eq!(ByteRange::Suffix(20).resolve(10), Some((0, 9)));
        assert_eq!(ByteRange::Suffix(0).resolve(10), None);
        assert_eq!(ByteRange::From(0, None).resolve(0), None);
    }
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
