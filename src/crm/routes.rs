//! The five routes of a CRM resource (create, list, get, update, delete), written once as
//! generic handlers over `crm::resource::Resource`, with their OpenAPI operations built from
//! the resource's types. A resource's `routes.rs` names its path, tag and permissions:
//!
//! ```ignore
//! crud::<Leads>(Crud { path: "/api/v1/leads", tag: "leads", read: LeadsRead, write: LeadsWrite })
//! ```
//!
//! Handlers stay plain functions (no macro writes them), so go-to-definition lands here, and
//! every one of them goes through the same endpoint gate as any other route.

use std::str::FromStr;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, patch, post};
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathsBuilder,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use super::list::Paging;
use super::resource::{self, Resource};
use crate::app::AppState;
use crate::audit::RequestContext;
use crate::http::Endpoint;
use crate::http::json::{Created, Json, QueryPair};
use crate::http::path::Id;
use crate::http::problem::Problem;
use crate::pagination::Page;
use crate::ratelimit::RateCategory;
use crate::tenancy::{Permission, TenantScope};

/// Every CRM route.
pub fn endpoints() -> Vec<Endpoint> {
    let mut all = vec![];
    all.extend(super::contacts::routes::endpoints());
    all.extend(super::companies::routes::endpoints());
    all.extend(super::leads::routes::endpoints());
    all.extend(super::pipelines::routes::endpoints());
    all.extend(super::deals::routes::endpoints());
    all.extend(super::notes::routes::endpoints());
    all.extend(super::activities::routes::endpoints());
    all.extend(super::tasks::routes::endpoints());
    all.extend(super::exports::routes::endpoints());
    all.extend(super::privacy::routes::endpoints());
    all
}

/// Where a resource lives and who may read and change it.
#[derive(Debug, Clone, Copy)]
pub struct Crud {
    /// The collection, e.g. `/api/v1/leads`; one record is `{path}/{id}`.
    pub path: &'static str,
    /// The OpenAPI tag, also the operation ids' suffix (`create_leads`).
    pub tag: &'static str,
    pub read: Permission,
    pub write: Permission,
}

/// The five endpoints of a resource.
pub fn crud<R>(spec: Crud) -> Vec<Endpoint>
where
    R: Resource,
    R::Id: FromStr + ToSchema + Send + 'static,
{
    use RateCategory::{Read, Write};
    let one = format!("{}/{{id}}", spec.path);
    let noun = R::NAME;
    let mut schemas = vec![];
    collect::<R::View>(&mut schemas);
    collect::<R::Create>(&mut schemas);
    collect::<R::Patch>(&mut schemas);
    let view = || json_response::<R::View>("The record");
    let id_param = || {
        ParameterBuilder::new()
            .name("id")
            .parameter_in(ParameterIn::Path)
            .required(Required::True)
            .description(Some(format!("The {noun}'s id")))
            .schema(Some(R::Id::schema()))
            .build()
    };
    let operation = |id: &str, summary: String| {
        OperationBuilder::new()
            .tag(spec.tag)
            .operation_id(Some(format!("{id}_{}", spec.tag)))
            .summary(Some(summary))
    };
    let create = operation("create", format!("Create a {noun}."))
        .request_body(Some(json_body::<R::Create>()))
        .response("201", json_response::<R::View>("The record created"));
    let mut list_params = R::Filter::into_params(|| Some(ParameterIn::Query));
    list_params.extend(Paging::<R::Sort>::params());
    let list = operation("list", format!("List {}.", spec.tag))
        .parameters(Some(list_params))
        .response("200", json_response::<Page<R::View>>("One page"));
    let get_one =
        operation("get", format!("One {noun}.")).parameter(id_param()).response("200", view());
    let update = operation("update", format!("Change a {noun}."))
        .parameter(id_param())
        .request_body(Some(json_body::<R::Patch>()))
        .response("200", view());
    let remove = operation("delete", format!("Delete a {noun}."))
        .parameter(id_param())
        .response("204", ResponseBuilder::new().description("Deleted").build());
    let endpoint =
        |path: &str, method: HttpMethod, op: OperationBuilder, router, access, category| {
            let paths =
                PathsBuilder::new().path(path, utoipa::openapi::PathItem::new(method, op)).build();
            Endpoint::new((schemas.clone(), paths, router), access, category)
        };
    use crate::http::Access::Permission as May;
    vec![
        endpoint(
            spec.path,
            HttpMethod::Post,
            create,
            post(create_record::<R>),
            May(spec.write),
            Write,
        )
        .idempotent(),
        endpoint(spec.path, HttpMethod::Get, list, get(list_records::<R>), May(spec.read), Read),
        endpoint(&one, HttpMethod::Get, get_one, get(get_record::<R>), May(spec.read), Read),
        endpoint(
            &one,
            HttpMethod::Patch,
            update,
            patch(update_record::<R>),
            May(spec.write),
            Write,
        ),
        endpoint(
            &one,
            HttpMethod::Delete,
            remove,
            delete(delete_record::<R>),
            May(spec.write),
            Write,
        ),
    ]
}

fn collect<T: ToSchema>(schemas: &mut Vec<(String, RefOr<Schema>)>) {
    schemas.push((T::name().into_owned(), T::schema()));
    T::schemas(schemas);
}

fn json_body<T: ToSchema>() -> utoipa::openapi::request_body::RequestBody {
    RequestBodyBuilder::new()
        .required(Some(Required::True))
        .content("application/json", ContentBuilder::new().schema(Some(schema_of::<T>())).build())
        .build()
}

fn json_response<T: PartialSchema + ToSchema>(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", ContentBuilder::new().schema(Some(schema_of::<T>())).build())
        .build()
}

/// A named schema by reference, a generic one (`Page<T>`) inline.
fn schema_of<T: PartialSchema + ToSchema>() -> RefOr<Schema> {
    let name = T::name();
    if name.is_empty() || name.contains('<') || name == "Page" {
        T::schema()
    } else {
        RefOr::Ref(Ref::from_schema_name(name))
    }
}

async fn create_record<R: Resource>(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Json(body): Json<R::Create>,
) -> Result<Created<R::View>, Problem> {
    Ok(Created(resource::create::<R>(&app, &scope, &ctx, body).await?))
}

async fn list_records<R: Resource>(
    State(app): State<AppState>,
    scope: TenantScope,
    QueryPair(filter, paging): QueryPair<R::Filter, Paging<R::Sort>>,
) -> Result<Json<Page<R::View>>, Problem> {
    Ok(Json(resource::list::<R>(&app, &scope, filter, paging).await?))
}

async fn get_record<R: Resource>(
    State(app): State<AppState>,
    scope: TenantScope,
    Id(id): Id<R::Id>,
) -> Result<Json<R::View>, Problem>
where
    R::Id: FromStr,
{
    Ok(Json(resource::get::<R>(&app, &scope, id).await?))
}

async fn update_record<R: Resource>(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<R::Id>,
    Json(patch): Json<R::Patch>,
) -> Result<Json<R::View>, Problem>
where
    R::Id: FromStr,
{
    Ok(Json(resource::update::<R>(&app, &scope, &ctx, id, patch).await?))
}

async fn delete_record<R: Resource>(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<R::Id>,
) -> Result<StatusCode, Problem>
where
    R::Id: FromStr,
{
    super::delete::<R>(&app, &scope, &ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
