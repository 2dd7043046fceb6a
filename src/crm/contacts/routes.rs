//! `/api/v1/contacts`: the CRM routes (`crm::routes::crud`) over `crm::contacts`, but for
//! reading one contact, which may reveal its sensitive fields.

use axum::extract::State;
use axum::http::Method;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::routes;

use super::{ContactView, Contacts};
use crate::app::AppState;
use crate::audit::RequestContext;
use crate::crm::routes::{Crud, crud};
use crate::http::Endpoint;
use crate::http::json::{Json, Query};
use crate::http::path::Id;
use crate::http::problem::Problem;
use crate::ids::ContactId;
use crate::ratelimit::RateCategory;
use crate::tenancy::Permission::{ContactsRead, ContactsWrite};
use crate::tenancy::TenantScope;

pub fn endpoints() -> Vec<Endpoint> {
    let (read, write) = (ContactsRead, ContactsWrite);
    let mut endpoints =
        crud::<Contacts>(Crud { path: "/api/v1/contacts", tag: "contacts", read, write });
    endpoints.retain(|e| !(e.policy.method == Method::GET && e.policy.path.ends_with("{id}")));
    endpoints.push(Endpoint::permission(routes!(get_contact), read, RateCategory::Read));
    endpoints
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Reveal {
    /// Show SSN and bank details unmasked: needs `contacts:read_sensitive` and, for a
    /// session, a recent step-up; audited.
    #[serde(default)]
    reveal: bool,
}

/// One contact (sensitive fields masked unless revealed).
#[utoipa::path(get, path = "/api/v1/contacts/{id}", tag = "contacts", operation_id = "get_contacts",
    params(("id" = ContactId, Path, description = "The contact's id"), Reveal),
    responses((status = 200, body = ContactView)))]
async fn get_contact(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<ContactId>,
    Query(q): Query<Reveal>,
) -> Result<Json<ContactView>, Problem> {
    Ok(Json(super::get(&app, &scope, &ctx, id, q.reveal).await?))
}
