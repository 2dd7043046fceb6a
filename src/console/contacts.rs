//! Contacts: the list (search by email through the blind index), create, detail with masked
//! sensitive fields, edit, and reveal (the route needs `contacts:read_sensitive` and a
//! step-up, and the read is audited, exactly as `GET /api/v1/contacts/{id}?reveal=true`).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::context;
use serde::Deserialize;

use super::page::value;
use super::{Chrome, Form, done, field_errors};
use crate::app::AppState;
use crate::audit::RequestContext;
use crate::crm::contacts::{self, ContactData, ContactFilter, ContactPatch, Contacts};
use crate::crm::list::Paging;
use crate::crm::resource;
use crate::error::DomainError;
use crate::http::path::Id;
use crate::http::problem::Problem;
use crate::ids::ContactId;
use crate::tenancy::{Permission, TenantScope};

/// The fields the forms carry, by the API's names. SSN is written at creation only: the
/// edit form shows it masked and must not write the mask back.
const CREATE_FIELDS: &[&str] =
    &["first_name", "last_name", "email", "phone", "date_of_birth", "ssn"];
const EDIT_FIELDS: &[&str] = &["first_name", "last_name", "email", "phone", "date_of_birth"];

#[derive(Deserialize)]
pub struct Search {
    email: Option<String>,
    cursor: Option<String>,
}

pub async fn list(
    State(app): State<AppState>,
    chrome: Chrome,
    scope: TenantScope,
    Query(q): Query<Search>,
) -> Result<Response, Problem> {
    let email = q.email.filter(|e| !e.trim().is_empty());
    let filter = ContactFilter { email: email.clone(), ..ContactFilter::default() };
    let paging = Paging { cursor: q.cursor, ..Paging::default() };
    let page = resource::list::<Contacts>(&app, &scope, filter, paging).await?;
    let may_write = scope.may(Permission::ContactsWrite);
    Ok(chrome.render(
        "contacts.html",
        "Contacts",
        context! { contacts => value(&page.items), next_cursor => page.next_cursor, email => email, may_write => may_write },
    ))
}

pub async fn new_form(chrome: Chrome) -> Response {
    chrome.render("contact_form.html", "New contact", context! { fields => value(CREATE_FIELDS) })
}

pub async fn create(
    State(app): State<AppState>,
    chrome: Chrome,
    scope: TenantScope,
    ctx: RequestContext,
    form: Form,
) -> Result<Response, Problem> {
    let body = form.to_json(CREATE_FIELDS);
    let created = match serde_json::from_value::<ContactData>(body.clone()) {
        Ok(data) => resource::create::<Contacts>(&app, &scope, &ctx, data).await,
        Err(err) => Err(DomainError::invalid("body", err.to_string())),
    };
    match created {
        Ok(contact) => Ok(done(&format!("/contacts/{}", contact.id))),
        Err(err) => Ok(form_again(&chrome, "New contact", None, CREATE_FIELDS, body, err)),
    }
}

pub async fn show(
    State(app): State<AppState>,
    chrome: Chrome,
    scope: TenantScope,
    ctx: RequestContext,
    Id(id): Id<ContactId>,
) -> Result<Response, Problem> {
    let contact = contacts::get(&app, &scope, &ctx, id, false).await?;
    let may_reveal = scope.may(Permission::ContactsReadSensitive);
    let may_write = scope.may(Permission::ContactsWrite);
    let title = display_name(&contact);
    Ok(chrome.render(
        "contact.html",
        &title,
        context! { contact => value(&contact), revealed => false, may_reveal => may_reveal, may_write => may_write },
    ))
}

pub async fn reveal(
    State(app): State<AppState>,
    chrome: Chrome,
    scope: TenantScope,
    ctx: RequestContext,
    Id(id): Id<ContactId>,
) -> Result<Response, Problem> {
    let contact = contacts::get(&app, &scope, &ctx, id, true).await?;
    let title = display_name(&contact);
    let may_write = scope.may(Permission::ContactsWrite);
    Ok(chrome.render(
        "contact.html",
        &title,
        context! { contact => value(&contact), revealed => true, may_reveal => true, may_write => may_write },
    ))
}

pub async fn edit_form(
    State(app): State<AppState>,
    chrome: Chrome,
    scope: TenantScope,
    ctx: RequestContext,
    Id(id): Id<ContactId>,
) -> Result<Response, Problem> {
    let contact = contacts::get(&app, &scope, &ctx, id, false).await?;
    let values = serde_json::to_value(&contact).unwrap_or_default();
    let title = format!("Edit {}", display_name(&contact));
    Ok(chrome.render(
        "contact_form.html",
        &title,
        context! { fields => value(EDIT_FIELDS), values => value(&values), action => format!("/contacts/{id}") },
    ))
}

pub async fn update(
    State(app): State<AppState>,
    chrome: Chrome,
    scope: TenantScope,
    ctx: RequestContext,
    Id(id): Id<ContactId>,
    form: Form,
) -> Result<Response, Problem> {
    let body = form.to_json(EDIT_FIELDS);
    let updated = match serde_json::from_value::<ContactPatch>(body.clone()) {
        Ok(patch) => resource::update::<Contacts>(&app, &scope, &ctx, id, patch).await,
        Err(err) => Err(DomainError::invalid("body", err.to_string())),
    };
    match updated {
        Ok(_) => Ok(done(&format!("/contacts/{id}"))),
        Err(err @ DomainError::Invalid(_)) => {
            let action = format!("/contacts/{id}");
            Ok(form_again(&chrome, "Edit contact", Some(&action), EDIT_FIELDS, body, err))
        }
        Err(err) => Err(err.into()),
    }
}

/// The form again, with what was typed and the API's problem next to each field.
fn form_again(
    chrome: &Chrome,
    title: &str,
    action: Option<&str>,
    fields: &[&str],
    values: serde_json::Value,
    err: DomainError,
) -> Response {
    let problem = Problem::from(err);
    if problem.status != StatusCode::UNPROCESSABLE_ENTITY {
        return chrome.problem(problem);
    }
    chrome.render_status(
        problem.status,
        "contact_form.html",
        title,
        context! {
            fields => value(fields),
            values => value(&values),
            action => action,
            errors => value(field_errors(&problem)),
        },
    )
}

fn display_name(contact: &contacts::ContactView) -> String {
    let name = [contact.first_name.as_deref(), contact.last_name.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    if !name.is_empty() {
        return name;
    }
    contact.email.clone().unwrap_or_else(|| "Contact".to_owned())
}
