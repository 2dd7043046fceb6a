//! The suppression list: addresses of a tenant that get no mail — hard bounces, complaints,
//! unsubscribes and the tenant's own entries. Looked up by a keyed blind index of the
//! normalised address; the address itself is sealed under the tenant's key.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::address;
use super::store::{self, SuppressionRow};
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::Timestamp;
use crate::crypto::KeySet;
use crate::crypto::field::{Place, normalise_email};
use crate::error::{DomainError, DomainResult};
use crate::ids::{SuppressionId, TenantId};
use crate::pagination::{Page, check_limit, decode_cursor};
use crate::store::TenantTx;
use crate::tenancy::{Permission, TenantScope};

const TABLE: &str = "email_suppressions";

/// Why an address is suppressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    HardBounce,
    Complaint,
    Unsubscribe,
    Manual,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::HardBounce => "hard_bounce",
            Reason::Complaint => "complaint",
            Reason::Unsubscribe => "unsubscribe",
            Reason::Manual => "manual",
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SuppressionView {
    pub id: SuppressionId,
    pub email: String,
    /// `hard_bounce`, `complaint`, `unsubscribe` or `manual`.
    pub reason: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
}

pub(super) fn place(tenant: TenantId, id: SuppressionId) -> Place<'static> {
    Place { tenant, table: TABLE, column: "email", row: id.as_uuid() }
}

/// The blind index of an address.
pub(super) fn index(keys: &KeySet, email: &str) -> Vec<u8> {
    keys.blind_index(TABLE, "email", &normalise_email(email))
}

/// Adds `email` to the transaction's tenant's list; `None` when it is there already (the
/// entry there stays as it is). For the workers (bounces) and the API alike.
pub(super) async fn add(
    tx: &mut TenantTx,
    keys: &KeySet,
    email: &str,
    reason: Reason,
    expires_at: Option<Timestamp>,
) -> DomainResult<Option<SuppressionRow>> {
    let id = SuppressionId::new();
    let row = SuppressionRow {
        id,
        email_index: index(keys, email),
        key_version: i32::try_from(keys.current_version()).unwrap_or(i32::MAX),
        email_enc: keys.encrypt(&place(tx.tenant_id(), id), normalise_email(email).as_bytes()),
        reason: reason.as_str().to_owned(),
        created_at: Timestamp::now(),
        expires_at,
    };
    Ok(store::insert_suppression(tx, &row).await?.then_some(row))
}

/// Whether `email` is suppressed for the transaction's tenant now.
pub(super) async fn is_suppressed(
    tx: &mut TenantTx,
    keys: &KeySet,
    email: &str,
) -> DomainResult<bool> {
    Ok(store::suppressed(tx, &index(keys, email), Timestamp::now()).await?)
}

fn view(keys: &KeySet, tenant: TenantId, row: SuppressionRow) -> DomainResult<SuppressionView> {
    let email = keys
        .decrypt_text(&place(tenant, row.id), &row.email_enc)
        .map_err(|err| DomainError::Internal(format!("suppression {}: {err}", row.id)))?;
    Ok(SuppressionView {
        id: row.id,
        email: email.to_string(),
        reason: row.reason,
        created_at: row.created_at,
        expires_at: row.expires_at,
    })
}

/// A suppression the tenant adds itself.
pub struct NewSuppression {
    pub email: String,
    pub expires_at: Option<Timestamp>,
}

/// Adds an address to the tenant's list (`manual`); audited. 409 when it is there already.
pub async fn create(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    new: NewSuppression,
) -> DomainResult<SuppressionView> {
    scope.require(Permission::EmailManage)?;
    let mut problems = vec![];
    if let Err(why) = address::parse(&new.email) {
        problems.push(("email".to_owned(), why));
    }
    if new.expires_at.is_some_and(|t| t <= Timestamp::now()) {
        problems.push(("expires_at".to_owned(), "must be in the future".to_owned()));
    }
    if !problems.is_empty() {
        return Err(DomainError::Invalid(problems));
    }
    let email = address::parse(&new.email)
        .map(|m| m.email.to_string())
        .map_err(|why| DomainError::Invalid(vec![("email".into(), why)]))?;
    let mut tx = app.store().tenant_tx(scope).await?;
    let keys = crate::crm::sealing_keys(app, &mut tx).await?;
    let Some(row) = add(&mut tx, &keys, &email, Reason::Manual, new.expires_at).await? else {
        return Err(DomainError::Conflict("this address is already suppressed"));
    };
    let event = Event::new(Action::EmailSuppressionCreate)
        .by_scope(scope)
        .target("email_suppression", row.id);
    audit::record(&mut tx, ctx, event).await?;
    tx.commit().await?;
    view(&keys, scope.tenant_id(), row)
}

/// The tenant's list, newest first; `email` narrows it to one address.
pub async fn list(
    app: &AppState,
    scope: &TenantScope,
    email: Option<&str>,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> DomainResult<Page<SuppressionView>> {
    scope.require(Permission::EmailManage)?;
    let limit = check_limit(limit)?;
    let before = decode_cursor::<uuid::Uuid>(cursor)?.map(SuppressionId::from_uuid);
    // A filter that is no address would find nothing: say so instead.
    let email = email
        .map(|e| address::parse(e).map(|m| m.email.to_string()))
        .transpose()
        .map_err(|why| DomainError::Invalid(vec![("email".into(), why)]))?;
    let email = email.as_deref();
    let mut tx = app.store().tenant_read(scope).await?;
    let keys = crate::crm::tenant_keys(app, &mut tx).await?;
    let index = email.map(|e| index(&keys, e));
    let rows = store::suppressions(&mut tx, index.as_deref(), before, limit + 1).await?;
    tx.commit().await?;
    let tenant = scope.tenant_id();
    Page::try_from_rows(rows, limit, |r| r.id.to_string(), |r| view(&keys, tenant, r))
}

/// Takes an address off the list; audited.
pub async fn delete(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    id: SuppressionId,
) -> DomainResult<()> {
    scope.require(Permission::EmailManage)?;
    let mut tx = app.store().tenant_tx(scope).await?;
    if !store::delete_suppression(&mut tx, id).await? {
        return Err(DomainError::NotFound("suppression"));
    }
    let event =
        Event::new(Action::EmailSuppressionDelete).by_scope(scope).target("email_suppression", id);
    audit::record(&mut tx, ctx, event).await?;
    tx.commit().await?;
    Ok(())
}
