//! The CRM: contacts (personal data encrypted field by field), companies, leads, deals with
//! per-tenant pipelines, notes, activities and tasks; exports, privacy requests and
//! retention.
//!
//! Every operation runs in a `TenantTx` of the caller's `TenantScope`; references between
//! records are checked in that transaction (a clear 422) and enforced again by composite
//! `(tenant_id, id)` foreign keys, so no record can point into another tenant. Sorting and
//! filtering use unencrypted columns only; encrypted ones are searched by blind index.

pub mod activities;
pub mod companies;
pub mod contacts;
pub mod deals;
pub mod exports;
pub mod leads;
pub mod list;
pub mod notes;
pub mod privacy;
pub mod retention;
pub mod rotation;
pub mod tasks;
mod validate;

use serde::{Deserialize, Deserializer};
use uuid::Uuid;

pub use validate::Check;

use crate::error::DomainError;
use crate::http::Endpoint;
use crate::on_tx;
use crate::store::TenantTx;

pub fn endpoints() -> Vec<Endpoint> {
    let mut all = vec![];
    all.extend(contacts::routes::endpoints());
    all.extend(companies::endpoints());
    all.extend(leads::endpoints());
    all.extend(deals::endpoints());
    all.extend(notes::endpoints());
    all.extend(activities::endpoints());
    all.extend(tasks::endpoints());
    all.extend(exports::endpoints());
    all.extend(privacy::endpoints());
    all
}

/// PATCH semantics for a nullable field: absent = unchanged, `null` = cleared, a value = set.
pub fn patch<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Records another may point at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ref {
    User,
    Company,
    Contact,
    Deal,
    Lead,
    Pipeline,
}

impl Ref {
    fn sql(self) -> &'static str {
        match self {
            // Deactivated users may still own records; they must belong to the tenant.
            Ref::User => "SELECT count(*) FROM users WHERE tenant_id = $1 AND id = $2",
            Ref::Company => "SELECT count(*) FROM companies WHERE tenant_id = $1 AND id = $2",
            Ref::Contact => {
                "SELECT count(*) FROM contacts WHERE tenant_id = $1 AND id = $2 AND erased_at IS NULL"
            }
            Ref::Deal => "SELECT count(*) FROM deals WHERE tenant_id = $1 AND id = $2",
            Ref::Lead => "SELECT count(*) FROM leads WHERE tenant_id = $1 AND id = $2",
            Ref::Pipeline => "SELECT count(*) FROM pipelines WHERE tenant_id = $1 AND id = $2",
        }
    }
}

/// Checks that each referenced id names a record of this tenant; 422 naming the field
/// otherwise (another tenant's id is as unknown as a made-up one).
#[allow(clippy::disallowed_methods, reason = "a tiny shared store helper")]
pub async fn check_refs(
    tx: &mut TenantTx,
    refs: &[(&str, Ref, Option<Uuid>)],
) -> Result<(), DomainError> {
    let tenant = tx.tenant_id();
    let mut problems = vec![];
    for (field, kind, id) in refs {
        let Some(id) = id else { continue };
        let found: i64 =
            on_tx!(tx, |c| sqlx::query_scalar(kind.sql()).bind(tenant).bind(id).fetch_one(c).await)
                .map_err(crate::store::StoreError::from)?;
        if found == 0 {
            problems.push(((*field).to_owned(), "names no such record".to_owned()));
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(DomainError::Invalid(problems)) }
}

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

pub fn decode_custom(stored: &str) -> serde_json::Map<String, serde_json::Value> {
    serde_json::from_str(stored).unwrap_or_default()
}
