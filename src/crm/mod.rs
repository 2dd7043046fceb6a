//! The CRM: contacts (personal data encrypted field by field), companies, leads, deals with
//! per-tenant pipelines, notes, activities and tasks; exports and privacy requests.
//!
//! Every resource has one layout: `mod.rs` (types, rules and the domain functions the
//! routes call), `routes.rs` (thin handlers and their OpenAPI), `store.rs` (SQL). What they
//! share is here: the [`Record`] trait and the get/delete/audit plumbing built on it,
//! reference checks, tags and PATCH semantics.
//!
//! Every operation runs in a `TenantTx` of the caller's `TenantScope`; references between
//! records are checked in that transaction (a clear 422) and enforced again by composite
//! `(tenant_id, id)` foreign keys, so no record can point into another tenant. Sorting and
//! filtering use unencrypted columns only; encrypted ones are searched by blind index.

/// `Keyed` for a row with `id`, `created_at` and `updated_at` columns (every CRM row):
/// `keyed!(LeadRow);` beside the row's type.
macro_rules! keyed {
    ($row:ty) => {
        impl $crate::crm::Keyed for $row {
            fn key(&self) -> $crate::crm::RowKey {
                let (id, created_at, updated_at) =
                    (self.id.as_uuid(), self.created_at, self.updated_at);
                $crate::crm::RowKey { id, created_at, updated_at }
            }
        }
    };
}

pub mod activities;
pub mod companies;
pub mod contacts;
pub mod deals;
pub mod exports;
pub mod leads;
pub mod list;
pub mod notes;
pub mod pipelines;
pub mod privacy;
pub mod resource;
pub mod routes;
pub mod store;
pub mod tasks;
mod validate;

use serde::{Deserialize, Deserializer};
use uuid::Uuid;

pub use store::Ref;

pub use validate::Check;

use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::error::{DomainError, DomainResult};
use crate::ids::ObjectId;
use crate::store::{Bind, Row, TenantTx};
use crate::tenancy::TenantScope;

/// A kind of CRM record: what the shared plumbing needs to fetch, delete and audit one.
/// Each resource implements it in its `store.rs` (the constants are SQL).
pub trait Record {
    /// Singular noun: the 404's "No such lead." and the audit target type.
    const NAME: &'static str;
    /// The table: `store::delete` removes a record from it.
    const TABLE: &'static str;
    /// Run before the delete: unlink the records that point at this one (`$1` the tenant,
    /// `$2` the id).
    const UNLINK: &'static [&'static str] = &[];
    /// A count (same binds) that must be zero for a delete, and the conflict's message.
    const IN_USE: Option<(&'static str, &'static str)> = None;
    const CREATED: Action;
    const UPDATED: Action;
    const DELETED: Action;
    /// The webhook event a delete emits (payload: the id).
    const DELETED_EVENT: Option<crate::webhooks::EventKind> = None;
    /// `SELECT … FROM …` of one record or a list (`store::get`, `of_contact`, `older_than`
    /// and lists narrow it); `ALIAS` prefixes the table's own columns when it joins.
    const SELECT: &'static str;
    const ALIAS: &'static str = "";
    /// The columns a create or a rewrite sets (`store::write`), in the order their values
    /// bind, after the id and the tenant; the write's time binds after them.
    const WRITES: &'static [&'static str] = &[];
    /// What a stored record must meet for a rewrite to touch it (a contact: not erased).
    const REWRITE_IF: &'static str = "";
    /// The row's columns, returned by a write so that it is not read again; empty where the
    /// row joins another table (a deal's stage) and is read back.
    const RETURNING: &'static str = "";
    type Id: Bind + ObjectId;
    type Row: Row + Keyed;
    /// A list's filters.
    type Filter: serde::de::DeserializeOwned + utoipa::IntoParams + Send + Sync + 'static;
    /// Adds the filters' conditions to a list query (SQL fragments: store code).
    fn filter(query: &mut store::ListQuery, filter: &Self::Filter);
}

/// What a list needs of a row besides its sort value: its id (the keyset tie-breaker) and
/// its creation and update times.
pub trait Keyed {
    fn key(&self) -> RowKey;
}

#[derive(Debug, Clone, Copy)]
pub struct RowKey {
    pub id: Uuid,
    pub created_at: crate::clock::Timestamp,
    pub updated_at: crate::clock::Timestamp,
}

pub fn not_found<R: Record>() -> DomainError {
    DomainError::NotFound(R::NAME)
}

/// One record in the caller's transaction, or 404.
pub async fn fetch<R: Record>(tx: &mut TenantTx, id: R::Id) -> DomainResult<R::Row> {
    store::get::<R>(tx, id).await?.ok_or_else(not_found::<R>)
}

/// One record, read on its own.
pub async fn get<R: Record>(
    app: &AppState,
    scope: &TenantScope,
    id: R::Id,
) -> DomainResult<R::Row> {
    let mut tx = app.store().tenant_read(scope).await?;
    let row = fetch::<R>(&mut tx, id).await?;
    tx.commit().await?;
    Ok(row)
}

/// Finishes a create or update: audits it, reads the record back and commits.
pub async fn finish_write<R: Record>(
    mut tx: TenantTx,
    scope: &TenantScope,
    ctx: &RequestContext,
    event: Event,
    id: R::Id,
) -> DomainResult<R::Row> {
    audit::record(&mut tx, ctx, event.by_scope(scope).target(R::NAME, id)).await?;
    let row = fetch::<R>(&mut tx, id).await?;
    tx.commit().await?;
    Ok(row)
}

/// Deletes a record (unlinking what points at it) and audits it.
pub async fn delete<R: Record>(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    id: R::Id,
) -> DomainResult<()> {
    let mut tx = app.store().tenant_tx(scope).await?;
    fetch::<R>(&mut tx, id).await?;
    if let Some((_, message)) = R::IN_USE
        && store::in_use::<R>(&mut tx, id).await?
    {
        return Err(DomainError::Conflict(message));
    }
    if !store::delete::<R>(&mut tx, id).await? {
        return Err(not_found::<R>());
    }
    audit::record(&mut tx, ctx, Event::new(R::DELETED).by_scope(scope).target(R::NAME, id)).await?;
    if let Some(kind) = R::DELETED_EVENT {
        let data = serde_json::json!({ "id": id.uuid() });
        crate::webhooks::events::emit(&mut tx, kind, data).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The data and index keys of the transaction's tenant, unwrapped once and cached.
pub async fn tenant_keys(
    app: &AppState,
    tx: &mut TenantTx,
) -> DomainResult<std::sync::Arc<crate::crypto::KeySet>> {
    // Read once per transaction. For opening values only: a PostgreSQL read transaction
    // (READ COMMITTED, no lock) can meet a row a concurrent rotation re-sealed under a key
    // newer than the memo's, which fails to decrypt (a 500, never wrong data); sealing never
    // uses the memo (`sealing_keys` reloads after its lock).
    match tx.remembered::<crate::crypto::KeySet>() {
        Some(keys) => Ok(keys),
        None => load_keys(app, tx, false).await,
    }
}

/// Runs `read` in one read transaction of the scope's tenant and returns what it read with
/// the tenant's keys, to open the sealed values in it.
pub async fn read_sealed<T>(
    app: &AppState,
    scope: &crate::tenancy::TenantScope,
    read: impl AsyncFnOnce(&mut TenantTx) -> Result<T, crate::store::StoreError>,
) -> DomainResult<(T, std::sync::Arc<crate::crypto::KeySet>)> {
    let mut tx = app.store().tenant_read(scope).await?;
    let found = read(&mut tx).await?;
    let keys = tenant_keys(app, &mut tx).await?;
    tx.commit().await?;
    Ok((found, keys))
}

/// One page of a list whose rows hold sealed values: `read` fetches up to `limit + 1` rows
/// in one read transaction of the scope's tenant (as [`read_sealed`]), `key` is a row's
/// cursor, and `view` opens a row with the tenant's keys.
pub async fn sealed_page<R, V>(
    app: &AppState,
    scope: &crate::tenancy::TenantScope,
    limit: i64,
    read: impl AsyncFnOnce(&mut TenantTx) -> Result<Vec<R>, crate::store::StoreError>,
    key: impl Fn(&R) -> String,
    view: impl Fn(&crate::crypto::KeySet, crate::ids::TenantId, R) -> DomainResult<V>,
) -> DomainResult<crate::pagination::Page<V>> {
    let (rows, keys) = read_sealed(app, scope, read).await?;
    let tenant = scope.tenant_id();
    crate::pagination::Page::try_from_rows(rows, limit, key, |row| view(&keys, tenant, row))
}

/// Re-seals values under the tenant's current data key, a batch per write transaction, until
/// none is left under an older one. `batch` gets the transaction, the sealing keys and the
/// current version; it re-seals up to a batch of rows sealed under an older key and says how
/// many it moved, or `None` when it found none. The total moved.
pub async fn reseal_in_batches(
    app: &AppState,
    scope: &crate::tenancy::TenantScope,
    mut batch: impl AsyncFnMut(&mut TenantTx, &crate::crypto::KeySet, i32) -> DomainResult<Option<u64>>,
) -> DomainResult<u64> {
    let mut moved = 0;
    loop {
        let mut tx = app.store().tenant_tx(scope).await?;
        let keys = sealing_keys(app, &mut tx).await?;
        let version = i32::try_from(keys.current_version()).unwrap_or(i32::MAX);
        let done = batch(&mut tx, &keys, version).await?;
        tx.commit().await?;
        match done {
            Some(n) => moved += n,
            None => return Ok(moved),
        }
    }
}

/// Re-seals one sealed column under the current data key, in batches; `place` names where a
/// row's value lives (its AEAD associated data). How many moved.
pub async fn reseal_column(
    app: &AppState,
    scope: &crate::tenancy::TenantScope,
    column: &crate::store::sealed::SealedColumn,
    place: impl Fn(Uuid) -> crate::crypto::field::Place<'static>,
) -> DomainResult<u64> {
    reseal_in_batches(app, scope, async |tx, keys, version| {
        let rows = column.older_than(tx, version).await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut moved = 0;
        for (id, was, sealed) in rows {
            let at = place(id);
            let plain = keys
                .decrypt(&at, &sealed)
                .map_err(|err| DomainError::Internal(format!("{} {id}: {err}", column.name)))?;
            if column.reseal(tx, id, was, version, &keys.encrypt(&at, &plain)).await? {
                moved += 1;
            }
        }
        Ok(Some(moved))
    })
    .await
}

/// Reads the tenant's keys (holding the current one: `hold`) and remembers them for the rest
/// of the transaction.
async fn load_keys(
    app: &AppState,
    tx: &mut TenantTx,
    hold: bool,
) -> DomainResult<std::sync::Arc<crate::crypto::KeySet>> {
    let keys = app
        .tenant_keys()
        .for_tenant(tx, hold)
        .await
        .map_err(|err| DomainError::Internal(err.to_string()))?;
    tx.remember(keys.clone());
    Ok(keys)
}

/// The tenant's keys for sealing new values in a write transaction: the current key's row is
/// held (see `crypto::store::current_data_version`), so a rotation waits for this write.
pub async fn sealing_keys(
    app: &AppState,
    tx: &mut TenantTx,
) -> DomainResult<std::sync::Arc<crate::crypto::KeySet>> {
    // Read with the lock, never from the memo: keys remembered before it could name a key a
    // rotation has since replaced.
    load_keys(app, tx, true).await
}

/// PATCH semantics for a nullable field: absent = unchanged, `null` = cleared, a value = set.
pub fn patch<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Checks that each referenced id names a record of this tenant; 422 naming the field
/// otherwise (another tenant's id is as unknown as a made-up one).
pub async fn check_refs(tx: &mut TenantTx, refs: &[(&str, Ref, Option<Uuid>)]) -> DomainResult<()> {
    let mut problems = vec![];
    for (field, kind, id) in refs {
        let Some(id) = id else { continue };
        if !store::exists(tx, *kind, *id).await? {
            problems.push(((*field).to_owned(), "names no such record".to_owned()));
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(DomainError::Invalid(problems)) }
}

/// The OpenAPI schema of one tag: what `Check::tags` accepts.
pub struct Tag;

impl utoipa::PartialSchema for Tag {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(50))
            .pattern(Some(crate::schema::TAG))
            .description(Some("1 to 50 ASCII letters, digits, spaces, `-`, `.`, `:` or `/`."))
            .into()
    }
}

impl utoipa::ToSchema for Tag {}

/// Tags are stored as `,a,b,` so one `LIKE` finds a tag on both backends.
pub fn encode_tags(tags: &[String]) -> String {
    if tags.is_empty() { String::new() } else { format!(",{},", tags.join(",")) }
}

pub fn decode_tags(stored: &str) -> Vec<String> {
    stored.split(',').filter(|t| !t.is_empty()).map(str::to_owned).collect()
}

/// The `LIKE` pattern matching one tag (tags never hold `,`, `%`, `_` or `\`).
pub fn tag_pattern(tag: &str) -> String {
    format!("%,{tag},%")
}

/// Custom fields as stored (a JSON object written by `encode_custom`). A value that is not
/// one was not written by Bulwark; it reads as empty rather than failing the whole list.
pub fn decode_custom(stored: &str) -> serde_json::Map<String, serde_json::Value> {
    serde_json::from_str(stored).unwrap_or_default()
}

pub fn encode_custom(fields: &serde_json::Map<String, serde_json::Value>) -> String {
    // Invariant: a JSON map (string keys, JSON values) always serializes.
    serde_json::to_string(fields).expect("a JSON object serializes")
}
