//! Notes and activities on a record's detail page, and the forms that add them: the API's
//! notes and activities, filtered by the record (`contact_id`, `deal_id`, …), created with
//! the record's id in the same field.

use std::str::FromStr;

use axum::extract::State;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::records::{self, Listed, value_of};
use super::{Form, done};
use crate::app::AppState;
use crate::audit::RequestContext;
use crate::crm::activities::Activities;
use crate::crm::list::Paging;
use crate::crm::notes::Notes;
use crate::crm::resource::{self, Resource};
use crate::error::DomainResult;
use crate::http::path::Id;
use crate::http::problem::Problem;
use crate::tenancy::{Permission, TenantScope};

/// What the activities form offers (the API's `ActivityKind`).
pub const ACTIVITY_KINDS: &[&str] = &["call", "email", "meeting", "sms"];
/// Which records activities may point at (`ActivityFilter`, `ActivityInput`).
const ACTIVITY_LINKS: &[&str] = &["contact_id", "deal_id"];

/// The notes and activities of the record `id` of kind `R`, as far as the caller may read
/// them (`None` for a kind the caller may not read or that has none).
pub async fn of<R: Listed>(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    id: &str,
) -> DomainResult<Value> {
    let Some(link) = R::LINK else { return Ok(Value::Null) };
    let filter = json!({ link: id });
    let notes = if scope.may(Permission::NotesRead) {
        let page = resource::list::<Notes>(app, scope, records::parse(&filter)?, Paging::default())
            .await?;
        Some(page.items.iter().map(value_of).collect::<Vec<_>>())
    } else {
        None
    };
    let activities = if ACTIVITY_LINKS.contains(&link) && scope.may(Permission::ActivitiesRead) {
        let page =
            resource::list::<Activities>(app, scope, records::parse(&filter)?, Paging::default())
                .await?;
        Some(page.items.iter().map(value_of).collect::<Vec<_>>())
    } else {
        None
    };
    let documents = if scope.may(Permission::DocumentsRead) {
        super::documents::of(app, scope, ctx, link, id).await?
    } else {
        None
    };
    Ok(json!({
        "notes": notes,
        "documents": documents,
        "link": link,
        "id": id,
        "may_write_documents": scope.may(Permission::DocumentsWrite),
        "activities": activities,
        "may_write_notes": scope.may(Permission::NotesWrite),
        "may_write_activities": scope.may(Permission::ActivitiesWrite),
        "kinds": ACTIVITY_KINDS,
    }))
}

/// `POST {R::PATH}/{id}/notes`: a note about the record.
pub async fn add_note<R: Listed>(
    State(app): State<AppState>,
    scope: TenantScope,
    ctx: RequestContext,
    Id(id): Id<R::Id>,
    form: Form,
) -> Result<Response, Problem>
where
    R::Id: FromStr,
{
    let mut body = Map::new();
    body.insert("body".into(), Value::String(form.get("body").unwrap_or_default().to_owned()));
    add::<Notes, R>(&app, &scope, &ctx, &id.to_string(), body).await
}

/// `POST {R::PATH}/{id}/activities`: a call, email, meeting or text with the record. The
/// form's local date and time are taken as UTC (the page says so).
pub async fn add_activity<R: Listed>(
    State(app): State<AppState>,
    scope: TenantScope,
    ctx: RequestContext,
    Id(id): Id<R::Id>,
    form: Form,
) -> Result<Response, Problem>
where
    R::Id: FromStr,
{
    let mut body = Map::new();
    for name in ["kind", "subject", "details"] {
        if let Some(value) = form.get(name).filter(|v| !v.trim().is_empty()) {
            body.insert(name.into(), Value::String(value.trim().to_owned()));
        }
    }
    let at = form.get("occurred_at").unwrap_or_default();
    // `datetime-local` sends `YYYY-MM-DDTHH:MM`: seconds and the zone are added.
    let at = if at.len() == 16 { format!("{at}:00Z") } else { at.to_owned() };
    body.insert("occurred_at".into(), Value::String(at));
    add::<Activities, R>(&app, &scope, &ctx, &id.to_string(), body).await
}

/// Creates the note or activity `body` linked to the record; back to the record's page. A
/// rule the API refuses is shown on a page of its own (these forms are one field or three).
async fn add<T: Resource, R: Listed>(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    id: &str,
    mut body: Map<String, Value>,
) -> Result<Response, Problem> {
    let link = R::LINK.unwrap_or("contact_id");
    body.insert(link.to_owned(), Value::String(id.to_owned()));
    let input = records::parse::<T::Create>(&Value::Object(body))?;
    resource::create::<T>(app, scope, ctx, input).await?;
    Ok(done(&format!("{}/{id}", R::PATH)))
}
