//! The dashboard: how many records of each kind, the tasks due this week, recent contacts
//! and, for those who may read the audit log, the latest events.

use axum::extract::State;
use axum::response::Response;
use minijinja::context;
use serde_json::{Value, json};

use super::Chrome;
use super::page::value;
use super::records::{self, Listed, value_of};
use crate::app::AppState;
use crate::audit::{self, AuditQuery};
use crate::clock::Timestamp;
use crate::crm::companies::Companies;
use crate::crm::contacts::Contacts;
use crate::crm::deals::Deals;
use crate::crm::leads::Leads;
use crate::crm::list::Paging;
use crate::crm::resource;
use crate::crm::tasks::Tasks;
use crate::error::DomainResult;
use crate::http::problem::Problem;
use crate::identity::Principal;
use crate::tenancy::{Permission, TenantScope};

/// How many recent contacts and audit events the dashboard lists.
const RECENT: i64 = 5;
/// Tasks due within this many days.
const DUE_WITHIN_DAYS: i64 = 7;

pub async fn show(
    State(app): State<AppState>,
    chrome: Chrome,
    principal: Principal,
    scope: Option<axum::Extension<TenantScope>>,
) -> Result<Response, Problem> {
    let Some(axum::Extension(scope)) = scope else {
        // The platform's super-admin has no tenant: nothing to count.
        return Ok(chrome.render("dashboard.html", "Dashboard", context! {}));
    };
    let counts = vec![
        count::<Contacts>(&app, &scope).await?,
        count::<Companies>(&app, &scope).await?,
        count::<Leads>(&app, &scope).await?,
        count::<Deals>(&app, &scope).await?,
    ];
    let recent = if scope.may(Permission::ContactsRead) {
        let paging = Paging { limit: Some(RECENT), ..Paging::default() };
        let filter = records::parse(&json!({}))?;
        resource::list::<Contacts>(&app, &scope, filter, paging)
            .await?
            .items
            .iter()
            .map(value_of)
            .collect()
    } else {
        vec![]
    };
    let due = if scope.may(Permission::TasksRead) {
        let before =
            Timestamp::now().plus(std::time::Duration::from_secs(86_400 * DUE_WITHIN_DAYS as u64));
        let day = before.rfc3339().get(..10).unwrap_or_default().to_owned();
        let filter = records::parse(&json!({"due_before": day, "done": false}))?;
        resource::list::<Tasks>(&app, &scope, filter, Paging::default())
            .await?
            .items
            .iter()
            .map(value_of)
            .collect::<Vec<_>>()
    } else {
        vec![]
    };
    let events = if principal.may(Permission::AuditRead) {
        let query = AuditQuery { limit: RECENT, ..AuditQuery::default() };
        audit::search(&app, &scope, &query)
            .await?
            .into_iter()
            .map(
                |e| json!({"action": e.action, "occurred_at": e.occurred_at, "outcome": e.outcome}),
            )
            .collect()
    } else {
        vec![]
    };
    Ok(chrome.render(
        "dashboard.html",
        "Dashboard",
        context! {
            counts => value(counts.into_iter().flatten().collect::<Vec<Value>>()),
            recent => value(&recent),
            due => value(&due),
            events => value(&events),
        },
    ))
}

/// `{title, path, count}` of a kind the caller may read.
async fn count<R: Listed>(app: &AppState, scope: &TenantScope) -> DomainResult<Option<Value>> {
    if !scope.may(R::READ) {
        return Ok(None);
    }
    let count = resource::count::<R>(app, scope).await?;
    Ok(Some(json!({"title": R::TITLE, "path": R::PATH, "count": count})))
}
