//! `/api/v1/companies`: the five CRM routes (`crm::routes::crud`) over `crm::companies`, and
//! the credit limit's own route.

use axum::extract::State;

use super::{Companies, CompanyView, CreditLimitChange};
use crate::app::AppState;
use crate::audit::RequestContext;
use crate::crm::routes::{Crud, crud};
use crate::http::Endpoint;
use crate::http::json::Json;
use crate::http::path::Id;
use crate::http::problem::Problem;
use crate::ids::CompanyId;
use crate::ratelimit::RateCategory;
use crate::tenancy::Permission::{CompaniesRead, CompaniesWrite, CreditManage};
use crate::tenancy::TenantScope;

pub fn endpoints() -> Vec<Endpoint> {
    let (read, write) = (CompaniesRead, CompaniesWrite);
    let mut all =
        crud::<Companies>(Crud { path: "/api/v1/companies", tag: "companies", read, write });
    let credit = utoipa_axum::routes!(set_credit_limit);
    all.push(Endpoint::permission(credit, CreditManage, RateCategory::Sensitive).step_up());
    all
}

/// Set or remove a company's credit limit (needs a recent step-up; audited with the old and
/// the new value).
#[utoipa::path(put, path = "/api/v1/companies/{id}/credit-limit", tag = "companies",
    params(("id" = CompanyId, Path, description = "Company id")),
    request_body = CreditLimitChange, responses((status = 200, body = CompanyView)))]
async fn set_credit_limit(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<CompanyId>,
    Json(body): Json<CreditLimitChange>,
) -> Result<Json<CompanyView>, Problem> {
    Ok(Json(super::set_credit_limit(&app, &scope, &ctx, id, body).await?))
}
