//! The shape every CRM resource shares: create, read, update, list and delete, written once
//! here over the [`Resource`] trait. A resource says what is its own — how a body is checked
//! and stored, how a PATCH merges into the stored record, how its list filters, and how a row
//! becomes a view — and `crm::routes` serves all five operations from that.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::list::{PageRequest, Paging, SortColumn};
use super::{Keyed as _, Record, fetch};
use crate::app::AppState;
use crate::audit::{Event, RequestContext};
use crate::error::DomainResult;
use crate::ids::ObjectId as _;
use crate::pagination::Page;
use crate::store::TenantTx;
use crate::tenancy::TenantScope;
use crate::webhooks::EventKind;

/// A CRM resource with the usual five operations.
pub trait Resource: Record + Sized + Send + Sync + 'static {
    /// What the API shows.
    type View: Serialize + utoipa::ToSchema + Send + 'static;
    /// A create body; also the stored record as a body (`body_of`), which a PATCH changes
    /// (`patch`) before it is written again.
    type Create: DeserializeOwned + Serialize + Clone + utoipa::ToSchema + Send + Sync + 'static;
    type Patch: DeserializeOwned + utoipa::ToSchema + Send + 'static;
    type Sort: SortColumn<Row = Self::Row>;
    /// Whether rows hold values sealed with the tenant's keys (`view` gets them).
    const SEALED: bool = false;

    /// Rules of a list's filters beyond their types (a 422 before any query).
    fn check_filter(_filter: &Self::Filter) -> DomainResult<()> {
        Ok(())
    }

    /// Checks a body (every problem at once, references inside the tenant) and stores it.
    /// The row as stored when the statement returned it (`RETURNING`, one statement less
    /// per write on the hot path); `None` when the caller must read it back (a row with
    /// joined columns, or children written after it).
    fn write(
        app: &AppState,
        scope: &TenantScope,
        tx: &mut TenantTx,
        id: Self::Id,
        body: &Self::Create,
        insert: bool,
    ) -> impl Future<Output = DomainResult<Option<Self::Row>>> + Send;

    /// The stored record as a body (encrypted resources open it here).
    fn body_of(
        app: &AppState,
        tx: &mut TenantTx,
        row: Self::Row,
    ) -> impl Future<Output = DomainResult<Self::Create>> + Send;

    /// What a PATCH makes of the stored body.
    fn patch(body: Self::Create, patch: Self::Patch) -> Self::Create;

    /// Rules about who may make a change, beyond the route's permission (`before` is `None`
    /// for a create).
    fn check_change(
        _scope: &TenantScope,
        _before: Option<&Self::Create>,
        _after: &Self::Create,
    ) -> DomainResult<()> {
        Ok(())
    }

    /// One page of the list (contacts search their blind indexes, so they override it).
    fn list(
        _app: &AppState,
        tx: &mut TenantTx,
        filter: &Self::Filter,
        page: &PageRequest<Self::Sort>,
    ) -> impl Future<Output = DomainResult<Vec<Self::Row>>> + Send {
        async move { Ok(super::store::list::<Self, Self::Sort>(tx, filter, page).await?) }
    }

    /// The webhook event a create (`before` is `None`) or an update emits, with its thin
    /// payload (`webhooks::events`); `row` is the record as written.
    fn event(
        _before: Option<&Self::Create>,
        _after: &Self::Create,
        _row: &Self::Row,
    ) -> Option<(EventKind, serde_json::Value)> {
        None
    }

    /// A row as the API shows it; `keys` are the tenant's when `SEALED`.
    fn view(row: Self::Row, keys: Option<&Opened>) -> DomainResult<Self::View>;

    /// Rows as the API shows them, the keys loaded once for the whole batch. Resources whose
    /// views need more than the row (a pipeline's stages) override it.
    fn views(
        app: &AppState,
        tx: &mut TenantTx,
        rows: Vec<Self::Row>,
    ) -> impl Future<Output = DomainResult<Vec<Self::View>>> + Send {
        async move {
            let opened = if Self::SEALED {
                Some(Opened { keys: super::tenant_keys(app, tx).await?, tenant: tx.tenant_id() })
            } else {
                None
            };
            rows.into_iter().map(|row| Self::view(row, opened.as_ref())).collect()
        }
    }
}

/// A tenant's keys, unwrapped, for opening its sealed values.
pub struct Opened {
    pub keys: std::sync::Arc<crate::crypto::KeySet>,
    pub tenant: crate::ids::TenantId,
}

async fn one_view<R: Resource>(
    app: &AppState,
    tx: &mut TenantTx,
    row: R::Row,
) -> DomainResult<R::View> {
    R::views(app, tx, vec![row]).await?.pop().ok_or_else(super::not_found::<R>)
}

pub async fn create<R: Resource>(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    body: R::Create,
) -> DomainResult<R::View> {
    R::check_change(scope, None, &body)?;
    let mut tx = app.store().tenant_tx(scope).await?;
    let id = R::Id::generate();
    let event = Event::new(R::CREATED).target(R::NAME, id).by_scope(scope);
    // Sent ahead: on SQLite the append goes along with the write's statement.
    let audit = crate::audit::ahead(&mut tx, ctx, event);
    let written = R::write(app, scope, &mut tx, id, &body, true).await?;
    let row = as_written::<R>(&mut tx, id, written).await?;
    let emits = |row: &R::Row| R::event(None, &body, row);
    audit_and_view::<R>(app, tx, ctx, audit, row, emits).await
}

pub async fn update<R: Resource>(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    id: R::Id,
    patch: R::Patch,
) -> DomainResult<R::View> {
    let mut tx = app.store().tenant_tx(scope).await?;
    let row = fetch::<R>(&mut tx, id).await?;
    let before = R::body_of(app, &mut tx, row).await?;
    let after = R::patch(before.clone(), patch);
    R::check_change(scope, Some(&before), &after)?;
    // Names of the fields that changed, never their values.
    let event = Event::new(R::UPDATED)
        .target(R::NAME, id)
        .detail("fields", changed_fields(&before, &after))
        .by_scope(scope);
    let audit = crate::audit::ahead(&mut tx, ctx, event);
    let written = R::write(app, scope, &mut tx, id, &after, false).await?;
    let row = as_written::<R>(&mut tx, id, written).await?;
    let emits = |row: &R::Row| R::event(Some(&before), &after, row);
    audit_and_view::<R>(app, tx, ctx, audit, row, emits).await
}

/// The record as `write` left it: what its statement returned, or read back.
async fn as_written<R: Resource>(
    tx: &mut TenantTx,
    id: R::Id,
    written: Option<R::Row>,
) -> DomainResult<R::Row> {
    match written {
        Some(row) => Ok(row),
        None => fetch::<R>(tx, id).await,
    }
}

async fn audit_and_view<R: Resource>(
    app: &AppState,
    mut tx: TenantTx,
    ctx: &RequestContext,
    audit: crate::audit::Ahead,
    row: R::Row,
    emits: impl FnOnce(&R::Row) -> Option<(EventKind, serde_json::Value)>,
) -> DomainResult<R::View> {
    audit.finish(&mut tx, ctx).await?;
    if let Some((kind, data)) = emits(&row) {
        crate::webhooks::events::emit(&mut tx, kind, data).await?;
    }
    let view = one_view::<R>(app, &mut tx, row).await?;
    tx.commit().await?;
    Ok(view)
}

pub async fn get<R: Resource>(
    app: &AppState,
    scope: &TenantScope,
    id: R::Id,
) -> DomainResult<R::View> {
    let mut tx = app.store().tenant_read(scope).await?;
    let row = fetch::<R>(&mut tx, id).await?;
    let view = one_view::<R>(app, &mut tx, row).await?;
    tx.commit().await?;
    Ok(view)
}

pub async fn list<R: Resource>(
    app: &AppState,
    scope: &TenantScope,
    filter: R::Filter,
    paging: Paging<R::Sort>,
) -> DomainResult<Page<R::View>> {
    R::check_filter(&filter)?;
    let page = paging.request()?;
    let mut tx = app.store().tenant_read(scope).await?;
    let rows = R::list(app, &mut tx, &filter, &page).await?;
    let (rows, next_cursor) = page.cut(rows, |row| row.key().id);
    let items = R::views(app, &mut tx, rows).await?;
    tx.commit().await?;
    Ok(Page { items, next_cursor })
}

/// How many records of kind `R` the tenant has.
pub async fn count<R: Resource>(app: &AppState, scope: &TenantScope) -> DomainResult<i64> {
    let mut tx = app.store().tenant_read(scope).await?;
    let count = super::store::count::<R>(&mut tx).await?;
    tx.commit().await?;
    Ok(count)
}

/// The top-level fields whose values differ between two bodies.
pub fn changed_fields(before: &impl Serialize, after: &impl Serialize) -> Vec<String> {
    let (Ok(serde_json::Value::Object(before)), Ok(serde_json::Value::Object(after))) =
        (serde_json::to_value(before), serde_json::to_value(after))
    else {
        return vec![];
    };
    let mut fields: Vec<String> = after
        .iter()
        .filter(|(key, value)| before.get(*key) != Some(*value))
        .map(|(key, _)| key.clone())
        .chain(before.keys().filter(|key| !after.contains_key(*key)).cloned())
        .collect();
    fields.sort();
    fields.dedup();
    fields
}

#[cfg(test)]
mod tests {
    use super::changed_fields;

    #[test]
    fn only_changed_field_names_are_listed() {
        let before = serde_json::json!({"name": "Ada", "ssn": "123", "tags": ["a"]});
        let after = serde_json::json!({"name": "Ada", "ssn": "456", "tags": ["a", "b"]});
        assert_eq!(changed_fields(&before, &after), ["ssn", "tags"]);
        assert!(changed_fields(&before, &before).is_empty());
    }
}
