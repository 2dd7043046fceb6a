//! The dashboard: where a signed-in user lands.

use axum::extract::State;
use axum::response::Response;
use minijinja::context;

use super::Chrome;
use super::page::value;
use crate::app::AppState;
use crate::crm::contacts::{ContactFilter, Contacts};
use crate::crm::list::Paging;
use crate::crm::resource;
use crate::http::problem::Problem;
use crate::identity::Principal;
use crate::tenancy::{Permission, TenantScope};

/// How many recent contacts the dashboard lists.
const RECENT: i64 = 5;

pub async fn show(
    State(app): State<AppState>,
    chrome: Chrome,
    principal: Principal,
    scope: Option<axum::Extension<TenantScope>>,
) -> Result<Response, Problem> {
    let recent = match &scope {
        Some(axum::Extension(scope)) if principal.may(Permission::ContactsRead) => {
            let paging = Paging { limit: Some(RECENT), ..Paging::default() };
            resource::list::<Contacts>(&app, scope, ContactFilter::default(), paging).await?.items
        }
        _ => vec![],
    };
    Ok(chrome.render("dashboard.html", "Dashboard", context! { recent => value(&recent) }))
}
