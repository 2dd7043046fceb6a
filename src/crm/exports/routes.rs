//! `POST /api/v1/exports/contacts`.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::routes;

use super::ExportRequest;
use crate::app::AppState;
use crate::audit::RequestContext;
use crate::clock::Timestamp;
use crate::containment::features::Feature;
use crate::http::Endpoint;
use crate::http::json::OptionalJson;
use crate::http::problem::Problem;
use crate::ratelimit::RateCategory;
use crate::tenancy::{Permission, TenantScope};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::permission(
            routes!(export_contacts),
            Permission::ExportRun,
            RateCategory::Sensitive,
        )
        .step_up()
        .feature(Feature::Exports),
    ]
}

/// Export contacts as CSV. An empty body (or `{}`) exports every contact the caller may see.
#[utoipa::path(post, path = "/api/v1/exports/contacts", tag = "contacts",
    request_body(content = Option<ExportRequest>, description = "Optional; `{\"filter\": {...}}`"),
    responses((status = 200, description = "The contacts, one per row", content_type = "text/csv")))]
async fn export_contacts(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    OptionalJson(request): OptionalJson<ExportRequest>,
) -> Result<Response, Problem> {
    let (csv, count) = super::export(&app, &scope, &ctx, &request.filter).await?;
    let date = Timestamp::now().rfc3339();
    let name =
        format!("attachment; filename=\"contacts-{}.csv\"", date.get(..10).unwrap_or("export"));
    let mut response = csv.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    if let Ok(value) = HeaderValue::from_str(&name) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert("x-export-rows", HeaderValue::from(count));
    Ok(response)
}
