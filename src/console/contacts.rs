//! Contacts beyond the shared record pages (`records`): the detail page masks SSN and bank
//! details and offers "reveal", whose route needs `contacts:read_sensitive` and a step-up
//! and whose read is audited, exactly as `GET /api/v1/contacts/{id}?reveal=true`.

use axum::extract::State;
use axum::response::Response;
use serde_json::json;

use super::Chrome;
use super::records::{self, Listed, value_of};
use crate::app::AppState;
use crate::audit::RequestContext;
use crate::crm::contacts::{self, Contacts};
use crate::http::path::Id;
use crate::http::problem::Problem;
use crate::ids::ContactId;
use crate::tenancy::{Permission, TenantScope};

pub async fn show(
    State(app): State<AppState>,
    chrome: Chrome,
    scope: TenantScope,
    ctx: RequestContext,
    Id(id): Id<ContactId>,
) -> Result<Response, Problem> {
    page(&app, &chrome, &scope, &ctx, id, false).await
}

pub async fn reveal(
    State(app): State<AppState>,
    chrome: Chrome,
    scope: TenantScope,
    ctx: RequestContext,
    Id(id): Id<ContactId>,
) -> Result<Response, Problem> {
    page(&app, &chrome, &scope, &ctx, id, true).await
}

async fn page(
    app: &AppState,
    chrome: &Chrome,
    scope: &TenantScope,
    ctx: &RequestContext,
    id: ContactId,
    revealed: bool,
) -> Result<Response, Problem> {
    let view = value_of(&contacts::get(app, scope, ctx, id, revealed).await?);
    let related = super::related::of::<Contacts>(app, scope, ctx, &id.to_string()).await?;
    let reveal = json!({
        "may": scope.may(Permission::ContactsReadSensitive),
        "done": revealed,
    });
    let may_write = scope.may(Contacts::WRITE);
    let fields = Contacts::NEW_FIELDS;
    Ok(records::detail(chrome, Contacts::PATH, fields, &view, may_write, related, reveal))
}
