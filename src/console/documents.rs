//! Documents on a record's page: the list, an upload form, download and delete, through the
//! API's own code (`documents::routes::receive` reads the same multipart form, `content`
//! serves the same attachment). The upload form is multipart, so its CSRF token travels in
//! the query string (the guard reads it there for multipart bodies only).

use axum::extract::Multipart;
use axum::extract::State;
use axum::extract::multipart::MultipartRejection;
use axum::response::Response;

use super::done;
use crate::app::AppState;
use crate::audit::RequestContext;
use crate::documents::{self, DocumentView, Link};
use crate::error::DomainResult;
use crate::http::path::Id;
use crate::http::problem::Problem;
use crate::ids::DocumentId;
use crate::tenancy::TenantScope;

/// A record's documents, for its page (`link` is `contact_id`, `company_id` or `deal_id`).
pub async fn of(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    link: &str,
    id: &str,
) -> DomainResult<Option<Vec<DocumentView>>> {
    let parsed = match link {
        "contact_id" => id.parse().ok().map(Link::Contact),
        "company_id" => id.parse().ok().map(Link::Company),
        "deal_id" => id.parse().ok().map(Link::Deal),
        _ => None,
    };
    let Some(link) = parsed else { return Ok(None) };
    Ok(Some(documents::list(app, scope, ctx, link, None, None).await?.items))
}

/// The page of the record a document belongs to.
fn back(view: &DocumentView) -> String {
    let plural = match view.linked_to.kind {
        "company" => "companies",
        "deal" => "deals",
        _ => "contacts",
    };
    format!("/{plural}/{}", view.linked_to.id)
}

pub async fn upload(
    State(app): State<AppState>,
    scope: TenantScope,
    ctx: RequestContext,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, Problem> {
    let view = documents::routes::receive(&app, &scope, &ctx, form).await?;
    Ok(done(&back(&view)))
}

pub async fn delete(
    State(app): State<AppState>,
    scope: TenantScope,
    ctx: RequestContext,
    Id(id): Id<DocumentId>,
) -> Result<Response, Problem> {
    let view = documents::get(&app, &scope, &ctx, id).await?;
    documents::delete(&app, &scope, &ctx, id).await?;
    Ok(done(&back(&view)))
}
