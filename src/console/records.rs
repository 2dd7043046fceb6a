//! The pages every CRM resource shares — list, new, create, detail, edit, update — written
//! once over `crm::resource` (the API's own create/read/update/list) and a [`Listed`]
//! description of the resource: its path, its permissions, its form fields and list columns.
//! A form posts the API's field names; its values become the API's JSON body, so a page
//! enforces exactly what the API enforces and shows the API's problem next to each field.

use std::str::FromStr;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::context;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::page::value;
use super::{Chrome, Form, done, field_errors};
use crate::app::AppState;
use crate::audit::RequestContext;
use crate::crm::list::Paging;
use crate::crm::resource::{self, Resource};
use crate::error::DomainError;
use crate::http::path::Id;
use crate::http::problem::Problem;
use crate::tenancy::{Permission, TenantScope};

/// How a form field is typed in and turned into JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Email,
    LongText,
    Date,
    /// An integer (JSON number).
    Number,
    /// One of these values (the API's enum).
    Choice(&'static [&'static str]),
    /// Yes or no (a JSON boolean).
    Flag,
    /// A UUID of another record (typed in, or carried by the page).
    Reference,
}

#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub label: &'static str,
    pub kind: Kind,
}

pub const fn field(name: &'static str, label: &'static str, kind: Kind) -> Field {
    Field { name, label, kind }
}

/// A CRM resource as the console shows it.
pub trait Listed: Resource {
    /// `/companies`: the list; `/companies/{id}` one record.
    const PATH: &'static str;
    const TITLE: &'static str;
    /// "New company".
    const NEW: &'static str;
    const READ: Permission;
    const WRITE: Permission;
    /// The form's fields (edit, and create unless `NEW_FIELDS` says otherwise), and what the
    /// detail page shows.
    const FIELDS: &'static [Field];
    /// The create form's fields.
    const NEW_FIELDS: &'static [Field] = Self::FIELDS;
    /// The list's columns (name, heading); the first links to the record.
    const COLUMNS: &'static [(&'static str, &'static str)];
    /// A list filter the search box sets (by the API's filter name), if any.
    const SEARCH: Option<Field> = None;
    /// The field of a note or activity that points at this kind of record.
    const LINK: Option<&'static str> = None;
}

#[derive(Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    cursor: Option<String>,
}

pub async fn list<R: Listed>(
    State(app): State<AppState>,
    chrome: Chrome,
    scope: TenantScope,
    Query(query): Query<ListQuery>,
) -> Result<Response, Problem>
where
    R::Filter: DeserializeOwned,
{
    let search = query.q.filter(|q| !q.trim().is_empty());
    let mut filter = Map::new();
    if let (Some(field), Some(q)) = (R::SEARCH, &search) {
        filter.insert(field.name.to_owned(), Value::String(q.trim().to_owned()));
    }
    let filter = serde_json::from_value::<R::Filter>(Value::Object(filter))
        .map_err(|err| DomainError::invalid("q", err.to_string()))?;
    let paging = Paging { cursor: query.cursor, ..Paging::default() };
    let page = resource::list::<R>(&app, &scope, filter, paging).await?;
    let rows: Vec<Value> = page.items.iter().map(|item| row(R::PATH, R::COLUMNS, item)).collect();
    let columns: Vec<&str> = R::COLUMNS.iter().map(|(_, heading)| *heading).collect();
    Ok(chrome.render(
        "records.html",
        R::TITLE,
        context! {
            path => R::PATH,
            new => R::NEW,
            columns => value(&columns),
            rows => value(&rows),
            next_cursor => page.next_cursor,
            search => R::SEARCH.map(|f| value(json!({"label": f.label, "kind": kind_name(f.kind)}))),
            q => search,
            may_write => scope.may(R::WRITE),
        },
    ))
}

pub async fn new_form<R: Listed>(chrome: Chrome) -> Response {
    render_form(&chrome, R::NEW, R::PATH, R::NEW_FIELDS, &Value::Null, None, StatusCode::OK)
}

pub async fn create<R: Listed>(
    State(app): State<AppState>,
    chrome: Chrome,
    scope: TenantScope,
    ctx: RequestContext,
    form: Form,
) -> Result<Response, Problem> {
    let body = body_of(&form, R::NEW_FIELDS);
    let created = match parse::<R::Create>(&body) {
        Ok(input) => resource::create::<R>(&app, &scope, &ctx, input).await,
        Err(err) => Err(err),
    };
    match created {
        Ok(view) => Ok(done(&format!("{}/{}", R::PATH, id_of(&value_of(&view))))),
        Err(err) => form_problem(&chrome, R::NEW, R::PATH, R::NEW_FIELDS, &body, err),
    }
}

pub async fn show<R: Listed>(
    State(app): State<AppState>,
    chrome: Chrome,
    scope: TenantScope,
    ctx: RequestContext,
    Id(id): Id<R::Id>,
) -> Result<Response, Problem>
where
    R::Id: FromStr,
{
    let view = value_of(&resource::get::<R>(&app, &scope, id).await?);
    let related = super::related::of::<R>(&app, &scope, &ctx, &id.to_string()).await?;
    let may_write = scope.may(R::WRITE);
    Ok(detail(&chrome, R::PATH, R::FIELDS, &view, may_write, related, Value::Null))
}

/// A record's detail page (shared with contacts, which add their reveal).
pub fn detail(
    chrome: &Chrome,
    path: &str,
    fields: &[Field],
    view: &Value,
    may_write: bool,
    related: Value,
    reveal: Value,
) -> Response {
    let lines: Vec<Value> = fields
        .iter()
        .map(|f| json!({"label": f.label, "name": f.name, "value": display(&view[f.name])}))
        .collect();
    let title = title_of(view);
    chrome.render(
        "record.html",
        &title,
        context! {
            base => format!("{path}/{}", id_of(view)),
            lines => value(&lines),
            may_write => may_write,
            related => value(&related),
            reveal => value(&reveal),
        },
    )
}

pub async fn edit_form<R: Listed>(
    State(app): State<AppState>,
    chrome: Chrome,
    scope: TenantScope,
    Id(id): Id<R::Id>,
) -> Result<Response, Problem>
where
    R::Id: FromStr,
{
    let view = value_of(&resource::get::<R>(&app, &scope, id).await?);
    let title = format!("Edit {}", title_of(&view));
    let action = format!("{}/{id}", R::PATH);
    Ok(render_form(&chrome, &title, &action, R::FIELDS, &view, None, StatusCode::OK))
}

pub async fn update<R: Listed>(
    State(app): State<AppState>,
    chrome: Chrome,
    scope: TenantScope,
    ctx: RequestContext,
    Id(id): Id<R::Id>,
    form: Form,
) -> Result<Response, Problem>
where
    R::Id: FromStr,
{
    let body = body_of(&form, R::FIELDS);
    let updated = match parse::<R::Patch>(&body) {
        Ok(patch) => resource::update::<R>(&app, &scope, &ctx, id, patch).await,
        Err(err) => Err(err),
    };
    let action = format!("{}/{id}", R::PATH);
    match updated {
        Ok(_) => Ok(done(&action)),
        Err(err) => form_problem(&chrome, "Edit", &action, R::FIELDS, &body, err),
    }
}

/// The form's fields as the API's JSON body: empty is `null`, numbers are numbers.
pub fn body_of(form: &Form, fields: &[Field]) -> Value {
    let mut body = Map::new();
    for field in fields {
        let Some(raw) = form.get(field.name) else { continue };
        let raw = raw.trim();
        let value = match field.kind {
            _ if raw.is_empty() => Value::Null,
            Kind::Number => {
                raw.parse::<i64>().map_or_else(|_| Value::String(raw.to_owned()), Value::from)
            }
            Kind::Flag => Value::Bool(raw == "true"),
            _ => Value::String(raw.to_owned()),
        };
        body.insert(field.name.to_owned(), value);
    }
    Value::Object(body)
}

/// A body into the API's input type; a type error is the API's 422 on the body.
pub fn parse<T: DeserializeOwned>(body: &Value) -> Result<T, DomainError> {
    serde_json::from_value(body.clone())
        .map_err(|err| DomainError::invalid("body", err.to_string()))
}

/// The form again with what was typed, the problem next to its field; a problem that is
/// not about the input (403, 404, …) is a page of its own.
pub fn form_problem(
    chrome: &Chrome,
    title: &str,
    action: &str,
    fields: &[Field],
    values: &Value,
    err: DomainError,
) -> Result<Response, Problem> {
    let problem = Problem::from(err);
    if problem.status != StatusCode::UNPROCESSABLE_ENTITY && problem.status != StatusCode::CONFLICT
    {
        return Err(problem);
    }
    let errors = field_errors(&problem);
    Ok(render_form(chrome, title, action, fields, values, Some(errors), problem.status))
}

pub fn render_form(
    chrome: &Chrome,
    title: &str,
    action: &str,
    fields: &[Field],
    values: &Value,
    errors: Option<Value>,
    status: StatusCode,
) -> Response {
    let fields: Vec<Value> = fields
        .iter()
        .map(|f| {
            let options = match f.kind {
                Kind::Choice(options) => options.to_vec(),
                Kind::Flag => vec!["false", "true"],
                _ => vec![],
            };
            json!({
                "name": f.name, "label": f.label, "kind": kind_name(f.kind), "options": options,
                "value": display(&values[f.name]),
            })
        })
        .collect();
    chrome.render_status(
        status,
        "record_form.html",
        title,
        context! { action => action, fields => value(&fields), errors => errors.map(value) },
    )
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Text | Kind::Reference => "text",
        Kind::Email => "email",
        Kind::LongText => "textarea",
        Kind::Date => "date",
        Kind::Number => "number",
        Kind::Choice(_) | Kind::Flag => "select",
    }
}

pub fn value_of(view: &impl serde::Serialize) -> Value {
    serde_json::to_value(view).unwrap_or(Value::Null)
}

pub fn id_of(view: &Value) -> String {
    display(&view["id"])
}

/// A record's name for its page: its name, title, subject or people's names.
pub fn title_of(view: &Value) -> String {
    for key in ["name", "title", "subject"] {
        if let Some(text) = view[key].as_str().filter(|t| !t.is_empty()) {
            return text.to_owned();
        }
    }
    let person = [display(&view["first_name"]), display(&view["last_name"])]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if !person.is_empty() {
        return person;
    }
    view["email"].as_str().unwrap_or("Record").to_owned()
}

/// A value as text: strings as they are, numbers and booleans written out, lists joined.
pub fn display(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        Value::Array(items) => items.iter().map(display).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

fn row(path: &str, columns: &[(&str, &str)], item: &impl serde::Serialize) -> Value {
    let view = value_of(item);
    let cells: Vec<String> = columns.iter().map(|(name, _)| display(&view[*name])).collect();
    json!({"href": format!("{path}/{}", id_of(&view)), "cells": cells})
}
