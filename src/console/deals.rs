//! Deals as a pipeline board: one column per stage, each deal a card with a "move to" form
//! (the API's `PATCH /deals/{id}` with a `stage_id`, so a move emits `deal.stage_changed`
//! and is audited like any change). New pipelines are named with their stages in order.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::context;
use serde::Deserialize;
use serde_json::{Value, json};

use super::page::value;
use super::records::{self, Field, Kind, Listed, field, value_of};
use super::{Chrome, Form, done};
use crate::app::AppState;
use crate::audit::RequestContext;
use crate::crm::deals::Deals;
use crate::crm::list::Paging;
use crate::crm::pipelines::Pipelines;
use crate::crm::resource;
use crate::http::path::Id;
use crate::http::problem::Problem;
use crate::ids::DealId;
use crate::tenancy::{Permission, TenantScope};

/// A board reads its deals a page (the API's largest) at a time, up to `BOARD_MAX`; past
/// that it says so rather than grow a page without bound.
const BOARD_PAGE: i64 = 100;
const BOARD_MAX: usize = 1000;

const PIPELINE_FIELDS: &[Field] = &[
    field("name", "Name", Kind::Text),
    field(
        "stages",
        "Stages, in order, one per line (end a line with :won or :lost)",
        Kind::LongText,
    ),
];

#[derive(Deserialize)]
pub struct Board {
    pipeline: Option<String>,
}

pub async fn board(
    State(app): State<AppState>,
    chrome: Chrome,
    scope: TenantScope,
    Query(query): Query<Board>,
) -> Result<Response, Problem> {
    let pipelines =
        resource::list::<Pipelines>(&app, &scope, records::parse(&json!({}))?, Paging::default())
            .await?
            .items
            .iter()
            .map(value_of)
            .collect::<Vec<_>>();
    let chosen = pipelines
        .iter()
        .find(|p| query.pipeline.as_deref().is_some_and(|id| p["id"] == id))
        .or_else(|| pipelines.first())
        .cloned();
    let mut columns = vec![];
    let mut truncated = false;
    if let Some(pipeline) = &chosen {
        let mut deals: Vec<Value> = vec![];
        let mut cursor = None;
        loop {
            let filter = records::parse(&json!({"pipeline_id": pipeline["id"]}))?;
            let paging = Paging { limit: Some(BOARD_PAGE), cursor, ..Paging::default() };
            let page = resource::list::<Deals>(&app, &scope, filter, paging).await?;
            deals.extend(page.items.iter().map(value_of));
            cursor = page.next_cursor;
            if cursor.is_none() || deals.len() >= BOARD_MAX {
                break;
            }
        }
        truncated = cursor.is_some();
        let stages = pipeline["stages"].as_array().cloned().unwrap_or_default();
        for stage in &stages {
            let cards: Vec<&Value> =
                deals.iter().filter(|d| d["stage_id"] == stage["id"]).collect();
            columns.push(json!({"stage": stage, "deals": cards}));
        }
    }
    Ok(chrome.render(
        "deals.html",
        "Deals",
        context! {
            pipelines => value(&pipelines),
            pipeline => value(&chosen),
            columns => value(&columns),
            truncated => truncated.then_some(BOARD_MAX),
            may_write => scope.may(Permission::DealsWrite),
            may_manage => scope.may(Permission::PipelinesManage),
        },
    ))
}

/// The new-deal form, its pipeline filled in from the board it was opened from.
pub async fn new_form(chrome: Chrome, Query(query): Query<Board>) -> Response {
    let values = json!({"pipeline_id": query.pipeline, "currency": "USD"});
    records::render_form(
        &chrome,
        Deals::NEW,
        Deals::PATH,
        Deals::FIELDS,
        &values,
        None,
        StatusCode::OK,
    )
}

/// `POST /deals/{id}/stage`: moves a card.
pub async fn move_stage(
    State(app): State<AppState>,
    scope: TenantScope,
    ctx: RequestContext,
    Id(id): Id<DealId>,
    form: Form,
) -> Result<Response, Problem> {
    let patch = records::parse(&json!({"stage_id": form.get("stage_id").unwrap_or_default()}))?;
    let deal = value_of(&resource::update::<Deals>(&app, &scope, &ctx, id, patch).await?);
    Ok(done(&format!("/deals?pipeline={}", records::display(&deal["pipeline_id"]))))
}

pub async fn new_pipeline(chrome: Chrome) -> Response {
    records::render_form(
        &chrome,
        "New pipeline",
        "/pipelines",
        PIPELINE_FIELDS,
        &Value::Null,
        None,
        StatusCode::OK,
    )
}

pub async fn create_pipeline(
    State(app): State<AppState>,
    chrome: Chrome,
    scope: TenantScope,
    ctx: RequestContext,
    form: Form,
) -> Result<Response, Problem> {
    let name = form.get("name").unwrap_or_default().trim().to_owned();
    let stages: Vec<Value> = form
        .get("stages")
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(|line| match line.rsplit_once(':') {
            Some((name, kind @ ("won" | "lost" | "open"))) => {
                json!({"name": name.trim(), "kind": kind})
            }
            _ => json!({"name": line}),
        })
        .collect();
    let body = json!({"name": name, "stages": stages});
    let created = match records::parse(&body) {
        Ok(input) => resource::create::<Pipelines>(&app, &scope, &ctx, input).await,
        Err(err) => Err(err),
    };
    match created {
        Ok(pipeline) => {
            Ok(done(&format!("/deals?pipeline={}", records::id_of(&value_of(&pipeline)))))
        }
        Err(err) => {
            let typed = json!({"name": name, "stages": form.get("stages").unwrap_or_default()});
            records::form_problem(
                &chrome,
                "New pipeline",
                "/pipelines",
                PIPELINE_FIELDS,
                &typed,
                err,
            )
        }
    }
}
