//! Templates: a tenant's reusable messages, rendered by minijinja in a sandbox. The HTML part
//! is auto-escaped (a variable never becomes markup); subject and text are not (they are not
//! markup), and a rendered subject still has to pass the header checks of a send. The
//! environment has no loader (a template cannot read files or include others), no functions
//! that reach out, a fuel budget (a loop cannot run forever or fill memory) and a recursion
//! limit. Subject and bodies are sealed under the tenant's key; the name is not.

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::store::{self, TemplateRow};
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::Timestamp;
use crate::crypto::KeySet;
use crate::crypto::field::Place;
use crate::error::{DomainError, DomainResult};
use crate::ids::{EmailTemplateId, TenantId};
use crate::pagination::{Page, check_limit, decode_cursor};
use crate::store::TenantTx;
use crate::tenancy::{Permission, TenantScope};

/// The largest template source (subject, text and HTML together), in bytes.
pub const MAX_SOURCE: usize = 512 * 1024;
/// Roughly 100,000 template instructions or 6 MB of output per render.
const FUEL: u64 = 100_000;

/// Variables a template is rendered with: a JSON object.
pub type Variables = serde_json::Map<String, serde_json::Value>;

/// Subject and bodies, as sealed (and as a render returns them).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Content {
    pub subject: String,
    pub text: Option<String>,
    pub html: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTemplate {
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    #[schema(min_length = 1, max_length = 998)]
    pub subject: String,
    pub text: Option<String>,
    pub html: Option<String>,
}

/// A change; absent fields stay as they are, `null` removes a body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateChange {
    #[schema(min_length = 1, max_length = 100, nullable = false)]
    pub name: Option<String>,
    #[schema(min_length = 1, max_length = 998, nullable = false)]
    pub subject: Option<String>,
    #[serde(default, deserialize_with = "crate::crm::patch")]
    #[schema(value_type = Option<String>)]
    pub text: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::crm::patch")]
    #[schema(value_type = Option<String>)]
    pub html: Option<Option<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateView {
    pub id: EmailTemplateId,
    pub name: String,
    pub subject: String,
    pub text: Option<String>,
    pub html: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

pub(super) fn place(tenant: TenantId, id: EmailTemplateId) -> Place<'static> {
    Place { tenant, table: "email_templates", column: "content", row: id.as_uuid() }
}

/// The sandbox: no loader, no globals beyond the built-in filters and tests.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(16);
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    // Only the HTML part escapes, by its name; `.txt` parts are plain text.
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None }
    });
    env
}

/// Why a part does not compile or render (field, message), without its variables' values.
fn problem(field: &str, err: &minijinja::Error) -> (String, String) {
    let line = err.line().map(|n| format!(" (line {n})")).unwrap_or_default();
    let detail = err.detail().unwrap_or("cannot be rendered");
    (field.to_owned(), format!("{}{line}: {detail}", err.kind()))
}

/// The parts: their field, and the name the engine knows them by (only `*.html` escapes).
const SUBJECT: (&str, &str) = ("subject", "subject.txt");
const TEXT: (&str, &str) = ("text", "body.txt");
const HTML: (&str, &str) = ("html", "body.html");

/// Each part present, with its source.
fn parts(content: &Content) -> impl Iterator<Item = ((&'static str, &'static str), &str)> {
    [
        (SUBJECT, Some(&content.subject)),
        (TEXT, content.text.as_ref()),
        (HTML, content.html.as_ref()),
    ]
    .into_iter()
    .filter_map(|(part, source)| source.map(|s| (part, s.as_str())))
}

/// Checks that every part compiles; every problem at once.
fn check(name: &str, content: &Content) -> DomainResult<()> {
    let mut problems = vec![];
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        problems.push(("name".to_owned(), "must be 1 to 100 characters".to_owned()));
    }
    let size = content.subject.len()
        + content.text.as_ref().map_or(0, String::len)
        + content.html.as_ref().map_or(0, String::len);
    if size > MAX_SOURCE {
        return Err(DomainError::TooLarge { limit: MAX_SOURCE as u64 });
    }
    if content.subject.trim().is_empty() || content.subject.chars().count() > 998 {
        problems.push(("subject".to_owned(), "must be 1 to 998 characters".to_owned()));
    }
    if content.text.is_none() && content.html.is_none() {
        problems.push(("text".to_owned(), "give `text`, `html` or both".to_owned()));
    }
    let env = environment();
    for ((field, name), source) in parts(content) {
        if let Err(err) = env.template_from_named_str(name, source) {
            problems.push(problem(field, &err));
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(DomainError::Invalid(problems)) }
}

/// Renders a template's parts with `variables`.
pub fn render(content: &Content, variables: &Variables) -> DomainResult<Content> {
    let env = environment();
    let context = minijinja::Value::from(minijinja::value::Serde(variables));
    let one = |(field, name): (&str, &'static str), source: &str| -> DomainResult<String> {
        env.template_from_named_str(name, source)
            .and_then(|template| template.render(&context))
            .map_err(|err| DomainError::Invalid(vec![problem(field, &err)]))
    };
    Ok(Content {
        subject: one(SUBJECT, &content.subject)?.trim().to_owned(),
        text: content.text.as_deref().map(|t| one(TEXT, t)).transpose()?,
        html: content.html.as_deref().map(|h| one(HTML, h)).transpose()?,
    })
}

fn seal(
    keys: &KeySet,
    tenant: TenantId,
    id: EmailTemplateId,
    content: &Content,
) -> DomainResult<Vec<u8>> {
    let plain = Zeroizing::new(
        serde_json::to_vec(content).map_err(|err| DomainError::Internal(err.to_string()))?,
    );
    Ok(keys.encrypt(&place(tenant, id), &plain))
}

fn open(keys: &KeySet, tenant: TenantId, row: &TemplateRow) -> DomainResult<Content> {
    let plain = keys
        .decrypt(&place(tenant, row.id), &row.content)
        .map_err(|err| DomainError::Internal(format!("email template {}: {err}", row.id)))?;
    serde_json::from_slice(&plain).map_err(|err| DomainError::Internal(err.to_string()))
}

fn view(keys: &KeySet, tenant: TenantId, row: TemplateRow) -> DomainResult<TemplateView> {
    let content = open(keys, tenant, &row)?;
    Ok(TemplateView {
        id: row.id,
        name: row.name,
        subject: content.subject,
        text: content.text,
        html: content.html,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// A template of the transaction's tenant, opened; for sending.
pub(super) async fn load(
    app: &AppState,
    tx: &mut TenantTx,
    id: EmailTemplateId,
) -> DomainResult<Option<Content>> {
    let Some(row) = store::template(tx, id).await? else { return Ok(None) };
    let keys = crate::crm::tenant_keys(app, tx).await?;
    open(&keys, tx.tenant_id(), &row).map(Some)
}

pub async fn create(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    new: NewTemplate,
) -> DomainResult<TemplateView> {
    scope.require(Permission::EmailManage)?;
    let content = Content { subject: new.subject, text: new.text, html: new.html };
    check(&new.name, &content)?;
    let id = EmailTemplateId::new();
    let now = Timestamp::now();
    let mut tx = app.store().tenant_tx(scope).await?;
    let keys = crate::crm::sealing_keys(app, &mut tx).await?;
    let row = TemplateRow {
        id,
        name: new.name.trim().to_owned(),
        key_version: i32::try_from(keys.current_version()).unwrap_or(i32::MAX),
        content: seal(&keys, scope.tenant_id(), id, &content)?,
        created_at: now,
        updated_at: now,
    };
    if !store::insert_template(&mut tx, &row).await? {
        return Err(DomainError::Conflict("a template of that name exists"));
    }
    audit::record(
        &mut tx,
        ctx,
        Event::new(Action::EmailTemplateCreate).by_scope(scope).target("email_template", id),
    )
    .await?;
    tx.commit().await?;
    view(&keys, scope.tenant_id(), row)
}

/// The tenant's templates in name order.
pub async fn list(
    app: &AppState,
    scope: &TenantScope,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> DomainResult<Page<TemplateView>> {
    scope.require(Permission::EmailSend)?;
    let limit = check_limit(limit)?;
    let after = decode_cursor::<String>(cursor)?;
    let read = async |tx: &mut TenantTx| store::templates(tx, after.as_deref(), limit + 1).await;
    crate::crm::sealed_page(app, scope, limit, read, |r| r.name.clone(), view).await
}

pub async fn get(
    app: &AppState,
    scope: &TenantScope,
    id: EmailTemplateId,
) -> DomainResult<TemplateView> {
    scope.require(Permission::EmailSend)?;
    let (row, keys) =
        crate::crm::read_sealed(app, scope, async |tx| store::template(tx, id).await).await?;
    view(&keys, scope.tenant_id(), row.ok_or(DomainError::NotFound("email template"))?)
}

pub async fn update(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    id: EmailTemplateId,
    change: TemplateChange,
) -> DomainResult<TemplateView> {
    scope.require(Permission::EmailManage)?;
    let mut tx = app.store().tenant_tx(scope).await?;
    let mut row =
        store::template(&mut tx, id).await?.ok_or(DomainError::NotFound("email template"))?;
    let keys = crate::crm::sealing_keys(app, &mut tx).await?;
    let tenant = scope.tenant_id();
    let mut content = open(&keys, tenant, &row)?;
    if let Some(subject) = change.subject {
        content.subject = subject;
    }
    if let Some(text) = change.text {
        content.text = text;
    }
    if let Some(html) = change.html {
        content.html = html;
    }
    if let Some(name) = change.name {
        row.name = name.trim().to_owned();
    }
    check(&row.name, &content)?;
    row.key_version = i32::try_from(keys.current_version()).unwrap_or(i32::MAX);
    row.content = seal(&keys, tenant, id, &content)?;
    row.updated_at = Timestamp::now();
    if !store::update_template(&mut tx, &row).await? {
        return Err(DomainError::Conflict("a template of that name exists"));
    }
    audit::record(
        &mut tx,
        ctx,
        Event::new(Action::EmailTemplateUpdate).by_scope(scope).target("email_template", id),
    )
    .await?;
    tx.commit().await?;
    view(&keys, tenant, row)
}

pub async fn delete(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    id: EmailTemplateId,
) -> DomainResult<()> {
    scope.require(Permission::EmailManage)?;
    let mut tx = app.store().tenant_tx(scope).await?;
    if !store::delete_template(&mut tx, id).await? {
        return Err(DomainError::NotFound("email template"));
    }
    audit::record(
        &mut tx,
        ctx,
        Event::new(Action::EmailTemplateDelete).by_scope(scope).target("email_template", id),
    )
    .await?;
    Ok(tx.commit().await?)
}

/// Renders a stored template with `variables`, for a preview.
pub async fn preview(
    app: &AppState,
    scope: &TenantScope,
    id: EmailTemplateId,
    variables: &Variables,
) -> DomainResult<Content> {
    scope.require(Permission::EmailSend)?;
    let mut tx = app.store().tenant_read(scope).await?;
    let content = load(app, &mut tx, id).await?.ok_or(DomainError::NotFound("email template"))?;
    tx.commit().await?;
    render(&content, variables)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(html: &str) -> Content {
        Content {
            subject: "Hi {{ name }}".into(),
            text: Some("Hello {{ name }}".into()),
            html: Some(html.into()),
        }
    }

    #[test]
    fn html_is_escaped_text_is_not_and_the_sandbox_holds() {
        let vars: Variables =
            serde_json::from_str(r#"{"name": "<script>alert(1)</script>"}"#).unwrap_or_default();
        let out = render(&content("<p>{{ name }}</p>"), &vars).ok();
        let out = out.as_ref();
        assert_eq!(
            out.and_then(|c| c.html.as_deref()),
            Some("<p>&lt;script&gt;alert(1)&lt;&#x2f;script&gt;</p>")
        );
        assert_eq!(out.and_then(|c| c.text.as_deref()), Some("Hello <script>alert(1)</script>"));
        // No loader: a template cannot read another file or template.
        assert!(render(&content("{% include '/etc/passwd' %}"), &vars).is_err());
        // The fuel runs out before a long loop does.
        assert!(render(&content("{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"), &vars).is_err());
        // A syntax error is a 422 naming the part.
        let err = check("n", &content("{% if %}"));
        assert!(
            matches!(err, Err(DomainError::Invalid(ref p)) if p.iter().any(|(f, _)| f == "html"))
        );
        assert!(check("n", &content("<b>{{ name | upper }}</b>")).is_ok());
    }
}
