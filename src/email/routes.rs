//! `/api/v1/email/domains` (a tenant's sending domains), `/api/v1/emails` (its messages) and
//! `/api/v1/email/suppressions` (addresses that get no mail).

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;

use super::domains::{self, DomainView, Verification};
use super::messages::{self, Accepted, MessageStatus, MessageView, NewMessage};
use super::suppressions::{self, NewSuppression, SuppressionView};
use super::templates::{self, Content, NewTemplate, TemplateChange, TemplateView, Variables};
use crate::app::AppState;
use crate::audit::RequestContext;
use crate::clock::Timestamp;
use crate::containment::features::Feature;
use crate::http::Endpoint;
use crate::http::json::{Json, Query};
use crate::http::path::Id;
use crate::http::problem::Problem;
use crate::ids::{EmailDomainId, EmailMessageId, EmailTemplateId, SuppressionId};
use crate::pagination::Page;
use crate::ratelimit::RateCategory;
use crate::tenancy::{Permission, TenantScope};

pub fn endpoints() -> Vec<Endpoint> {
    use Permission::EmailManage;
    use RateCategory::*;
    vec![
        Endpoint::permission(routes!(create_domain), EmailManage, Write).idempotent(),
        Endpoint::permission(routes!(list_domains), EmailManage, Read),
        Endpoint::permission(routes!(get_domain), EmailManage, Read),
        Endpoint::permission(routes!(delete_domain), EmailManage, Write),
        Endpoint::permission(routes!(verify_domain), EmailManage, Write),
        Endpoint::permission(routes!(rotate_dkim), EmailManage, Write),
        Endpoint::permission(routes!(send_email), Permission::EmailSend, Write)
            .idempotent()
            .feature(Feature::EmailSending)
            .body_limit(messages::MAX_BODY + 256 * 1024),
        Endpoint::permission(routes!(list_emails), Permission::EmailSend, Read),
        Endpoint::permission(routes!(get_email), Permission::EmailSend, Read),
        Endpoint::permission(routes!(list_suppressions), EmailManage, Read),
        Endpoint::permission(routes!(create_suppression), EmailManage, Write),
        Endpoint::permission(routes!(delete_suppression), EmailManage, Write),
        Endpoint::permission(routes!(create_template), EmailManage, Write).idempotent(),
        Endpoint::permission(routes!(list_templates), Permission::EmailSend, Read),
        Endpoint::permission(routes!(get_template), Permission::EmailSend, Read),
        Endpoint::permission(routes!(update_template), EmailManage, Write),
        Endpoint::permission(routes!(delete_template), EmailManage, Write),
        Endpoint::permission(routes!(render_template), Permission::EmailSend, Read),
    ]
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDomain {
    /// The domain mail will come from, e.g. `mail.example.com`.
    #[schema(min_length = 3, max_length = 253, example = "mail.example.com")]
    domain: String,
}

#[derive(Serialize, ToSchema)]
pub struct DomainList {
    items: Vec<DomainView>,
}

/// Add a sending domain: its DKIM key is generated and kept sealed; the answer lists the DNS
/// records to publish, then `verify`.
#[utoipa::path(post, path = "/api/v1/email/domains", tag = "email", request_body = NewDomain,
    responses((status = 201, body = DomainView)))]
async fn create_domain(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Json(body): Json<NewDomain>,
) -> Result<(StatusCode, Json<DomainView>), Problem> {
    let view = domains::create(&app, &scope, &ctx, &body.domain).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// The tenant's sending domains.
#[utoipa::path(get, path = "/api/v1/email/domains", tag = "email",
    responses((status = 200, body = DomainList)))]
async fn list_domains(
    State(app): State<AppState>,
    scope: TenantScope,
) -> Result<Json<DomainList>, Problem> {
    Ok(Json(DomainList { items: domains::list(&app, &scope).await? }))
}

/// One sending domain and its records.
#[utoipa::path(get, path = "/api/v1/email/domains/{id}", tag = "email",
    params(("id" = EmailDomainId, Path, description = "Domain id")),
    responses((status = 200, body = DomainView)))]
async fn get_domain(
    State(app): State<AppState>,
    scope: TenantScope,
    Id(id): Id<EmailDomainId>,
) -> Result<Json<DomainView>, Problem> {
    Ok(Json(domains::get(&app, &scope, id).await?))
}

/// Remove a sending domain and its key.
#[utoipa::path(delete, path = "/api/v1/email/domains/{id}", tag = "email",
    params(("id" = EmailDomainId, Path, description = "Domain id")), responses((status = 204)))]
async fn delete_domain(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<EmailDomainId>,
) -> Result<StatusCode, Problem> {
    domains::delete(&app, &scope, &ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Look the domain's DKIM, SPF and DMARC records up; `verified` once all three are there.
#[utoipa::path(post, path = "/api/v1/email/domains/{id}/verify", tag = "email",
    params(("id" = EmailDomainId, Path, description = "Domain id")),
    responses((status = 200, body = Verification)))]
async fn verify_domain(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<EmailDomainId>,
) -> Result<Json<Verification>, Problem> {
    Ok(Json(domains::verify(&app, &scope, &ctx, id).await?))
}

/// Start a DKIM key rotation: a new key under a new selector; publish its record, then
/// `verify` — the current key signs until the new record is found.
#[utoipa::path(post, path = "/api/v1/email/domains/{id}/rotate-dkim", tag = "email",
    params(("id" = EmailDomainId, Path, description = "Domain id")),
    responses((status = 200, body = DomainView)))]
async fn rotate_dkim(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<EmailDomainId>,
) -> Result<Json<DomainView>, Problem> {
    Ok(Json(domains::rotate_dkim(&app, &scope, &ctx, id).await?))
}

/// The message list's filter and page.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MessageFilter {
    /// Only messages in this status. Inline: a query parameter's `$ref` would name a
    /// component that no body registers.
    #[param(inline)]
    status: Option<MessageStatus>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Send a message: checked, sealed and queued (202); delivered by the workers, DKIM-signed.
/// `from` must be on a verified sending domain. With `Idempotency-Key`, a retry is sent once.
#[utoipa::path(post, path = "/api/v1/emails", tag = "email", request_body = NewMessage,
    responses((status = 202, body = Accepted)))]
async fn send_email(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Json(body): Json<NewMessage>,
) -> Result<(StatusCode, Json<Accepted>), Problem> {
    let accepted = messages::send(&app, &scope, &ctx, body).await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

/// The tenant's messages, newest first.
#[utoipa::path(get, path = "/api/v1/emails", tag = "email", params(MessageFilter),
    responses((status = 200, body = Page<MessageView>)))]
async fn list_emails(
    State(app): State<AppState>,
    scope: TenantScope,
    Query(filter): Query<MessageFilter>,
) -> Result<Json<Page<MessageView>>, Problem> {
    let page =
        messages::list(&app, &scope, filter.status, filter.limit, filter.cursor.as_deref()).await?;
    Ok(Json(page))
}

/// One message and what happened to it.
#[utoipa::path(get, path = "/api/v1/emails/{id}", tag = "email",
    params(("id" = EmailMessageId, Path, description = "Message id")),
    responses((status = 200, body = MessageView)))]
async fn get_email(
    State(app): State<AppState>,
    scope: TenantScope,
    Id(id): Id<EmailMessageId>,
) -> Result<Json<MessageView>, Problem> {
    Ok(Json(messages::get(&app, &scope, id).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SuppressionFilter {
    /// Only this address.
    #[param(max_length = 320)]
    email: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSuppressionBody {
    #[schema(max_length = 320)]
    email: String,
    /// Always `manual` (bounces, complaints and unsubscribes add themselves).
    reason: ManualReason,
    /// When the suppression ends by itself; never, if absent.
    expires_at: Option<Timestamp>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ManualReason {
    Manual,
}

/// The tenant's suppression list: addresses that get no mail.
#[utoipa::path(get, path = "/api/v1/email/suppressions", tag = "email", params(SuppressionFilter),
    responses((status = 200, body = Page<SuppressionView>)))]
async fn list_suppressions(
    State(app): State<AppState>,
    scope: TenantScope,
    Query(filter): Query<SuppressionFilter>,
) -> Result<Json<Page<SuppressionView>>, Problem> {
    let page = suppressions::list(
        &app,
        &scope,
        filter.email.as_deref(),
        filter.limit,
        filter.cursor.as_deref(),
    )
    .await?;
    Ok(Json(page))
}

/// Suppress an address: it gets no mail from this tenant until the entry is removed (or ends).
#[utoipa::path(post, path = "/api/v1/email/suppressions", tag = "email",
    request_body = NewSuppressionBody, responses((status = 201, body = SuppressionView)))]
async fn create_suppression(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Json(body): Json<NewSuppressionBody>,
) -> Result<(StatusCode, Json<SuppressionView>), Problem> {
    let ManualReason::Manual = body.reason;
    let new = NewSuppression { email: body.email, expires_at: body.expires_at };
    let view = suppressions::create(&app, &scope, &ctx, new).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Take an address off the suppression list.
#[utoipa::path(delete, path = "/api/v1/email/suppressions/{id}", tag = "email",
    params(("id" = SuppressionId, Path, description = "Suppression id")), responses((status = 204)))]
async fn delete_suppression(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<SuppressionId>,
) -> Result<StatusCode, Problem> {
    suppressions::delete(&app, &scope, &ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The template list's page.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TemplateFilter {
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenderBody {
    /// The values the template's `{{ … }}` read; escaped in the HTML part.
    #[serde(default)]
    #[schema(value_type = Object)]
    variables: Variables,
}

/// Add a template: subject, text and HTML in a sandboxed Jinja dialect (HTML auto-escaped).
#[utoipa::path(post, path = "/api/v1/email/templates", tag = "email", request_body = NewTemplate,
    responses((status = 201, body = TemplateView)))]
async fn create_template(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Json(body): Json<NewTemplate>,
) -> Result<(StatusCode, Json<TemplateView>), Problem> {
    let view = templates::create(&app, &scope, &ctx, body).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// The tenant's templates, by name.
#[utoipa::path(get, path = "/api/v1/email/templates", tag = "email", params(TemplateFilter),
    responses((status = 200, body = Page<TemplateView>)))]
async fn list_templates(
    State(app): State<AppState>,
    scope: TenantScope,
    Query(filter): Query<TemplateFilter>,
) -> Result<Json<Page<TemplateView>>, Problem> {
    Ok(Json(templates::list(&app, &scope, filter.limit, filter.cursor.as_deref()).await?))
}

/// One template.
#[utoipa::path(get, path = "/api/v1/email/templates/{id}", tag = "email",
    params(("id" = EmailTemplateId, Path, description = "Template id")),
    responses((status = 200, body = TemplateView)))]
async fn get_template(
    State(app): State<AppState>,
    scope: TenantScope,
    Id(id): Id<EmailTemplateId>,
) -> Result<Json<TemplateView>, Problem> {
    Ok(Json(templates::get(&app, &scope, id).await?))
}

/// Change a template's name, subject or bodies (`null` removes a body).
#[utoipa::path(patch, path = "/api/v1/email/templates/{id}", tag = "email",
    params(("id" = EmailTemplateId, Path, description = "Template id")),
    request_body = TemplateChange, responses((status = 200, body = TemplateView)))]
async fn update_template(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<EmailTemplateId>,
    Json(body): Json<TemplateChange>,
) -> Result<Json<TemplateView>, Problem> {
    Ok(Json(templates::update(&app, &scope, &ctx, id, body).await?))
}

/// Remove a template.
#[utoipa::path(delete, path = "/api/v1/email/templates/{id}", tag = "email",
    params(("id" = EmailTemplateId, Path, description = "Template id")), responses((status = 204)))]
async fn delete_template(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    Id(id): Id<EmailTemplateId>,
) -> Result<StatusCode, Problem> {
    templates::delete(&app, &scope, &ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Render a template with variables, as a send with `template_id` would.
#[utoipa::path(post, path = "/api/v1/email/templates/{id}/render", tag = "email",
    params(("id" = EmailTemplateId, Path, description = "Template id")),
    request_body = RenderBody, responses((status = 200, body = Content)))]
async fn render_template(
    State(app): State<AppState>,
    scope: TenantScope,
    Id(id): Id<EmailTemplateId>,
    Json(body): Json<RenderBody>,
) -> Result<Json<Content>, Problem> {
    Ok(Json(templates::preview(&app, &scope, id, &body.variables).await?))
}
