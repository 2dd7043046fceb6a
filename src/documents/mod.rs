//! Documents: files attached to a contact, company or deal, kept encrypted in the object
//! store (`storage`) with their metadata in the database (`store`).
//!
//! Each document has its own random data key, sealed under the tenant's key beside its
//! metadata; its content is a STREAM of AES-256-GCM chunks (`crypto::stream`) bound to the
//! tenant and document ids, written and read chunk by chunk (memory stays bounded whatever
//! the size). The type is sniffed from the first bytes against the allowlist; titles and
//! file names are personal data, sealed like contact fields. Deleting a row (the route,
//! its record's deletion or erasure, tenant deletion, retention) makes the content
//! unreadable at once and queues the object for the deletion worker (`purge_deleted`).

mod content;
pub mod routes;
pub mod scan;
pub mod sniff;
pub mod storage;
mod store;
mod upload;

pub use content::{ByteRange, Content, content};
pub use upload::{NewDocument, upload};

use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::Timestamp;
use crate::crypto::KeySet;
use crate::crypto::field::Place;
use crate::error::{DomainError, DomainResult};
use crate::ids::{CompanyId, ContactId, DealId, DocumentId, TenantId, UserId};
use crate::pagination::{Page, check_limit, decode_cursor, encode_cursor};
use crate::tenancy::TenantScope;
use store::DocumentRow;

/// The record a document belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Contact(ContactId),
    Company(CompanyId),
    Deal(DealId),
}

impl Link {
    fn of(row: &DocumentRow) -> Option<Link> {
        match (row.contact_id, row.company_id, row.deal_id) {
            (Some(id), _, _) => Some(Link::Contact(id)),
            (_, Some(id), _) => Some(Link::Company(id)),
            (_, _, Some(id)) => Some(Link::Deal(id)),
            _ => None,
        }
    }

    /// The record as an audit target.
    fn target(self) -> (&'static str, uuid::Uuid) {
        match self {
            Link::Contact(id) => ("contact", id.as_uuid()),
            Link::Company(id) => ("company", id.as_uuid()),
            Link::Deal(id) => ("deal", id.as_uuid()),
        }
    }

    pub fn field(self) -> &'static str {
        match self {
            Link::Contact(_) => "contact_id",
            Link::Company(_) => "company_id",
            Link::Deal(_) => "deal_id",
        }
    }

    /// Exactly one of the three ids.
    pub fn exactly_one(
        contact: Option<ContactId>,
        company: Option<CompanyId>,
        deal: Option<DealId>,
    ) -> DomainResult<Link> {
        match (contact, company, deal) {
            (Some(id), None, None) => Ok(Link::Contact(id)),
            (None, Some(id), None) => Ok(Link::Company(id)),
            (None, None, Some(id)) => Ok(Link::Deal(id)),
            _ => Err(DomainError::invalid(
                "contact_id",
                "exactly one of contact_id, company_id and deal_id is required",
            )),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LinkedTo {
    /// `contact`, `company` or `deal`.
    pub kind: &'static str,
    pub id: uuid::Uuid,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentView {
    pub id: DocumentId,
    pub title: Option<String>,
    pub filename: String,
    /// Decided from the content.
    pub content_type: String,
    pub size: i64,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    pub linked_to: LinkedTo,
    /// `clean` (scanned) or `unscanned` (no scanner configured).
    pub scan: String,
    pub created_by: Option<UserId>,
    pub created_at: Timestamp,
}

fn place(tenant: TenantId, id: DocumentId, column: &'static str) -> Place<'static> {
    Place { tenant, table: "documents", column, row: id.as_uuid() }
}

/// What a content's chunks are bound to: moving an object under another id or tenant fails.
fn content_aad(tenant: TenantId, id: DocumentId) -> Vec<u8> {
    format!("bulwark:document:v1|{tenant}|{id}").into_bytes()
}

fn view(keys: &KeySet, tenant: TenantId, row: DocumentRow) -> DomainResult<DocumentView> {
    let open = |column, sealed: &[u8]| {
        keys.decrypt_text(&place(tenant, row.id, column), sealed)
            .map(|text| text.to_string())
            .map_err(|err| DomainError::Internal(format!("document {}: {err}", row.id)))
    };
    let title = row.title_enc.as_deref().map(|t| open("title", t)).transpose()?;
    let filename = open("filename", &row.filename_enc)?;
    let linked_to = match Link::of(&row) {
        Some(Link::Contact(id)) => LinkedTo { kind: "contact", id: id.as_uuid() },
        Some(Link::Company(id)) => LinkedTo { kind: "company", id: id.as_uuid() },
        Some(Link::Deal(id)) => LinkedTo { kind: "deal", id: id.as_uuid() },
        None => return Err(DomainError::Internal(format!("document {} has no link", row.id))),
    };
    Ok(DocumentView {
        id: row.id,
        title,
        filename,
        content_type: row.content_type,
        size: row.size,
        sha256: crate::crypto::hex(&row.sha256),
        linked_to,
        scan: row.scan,
        created_by: row.created_by,
        created_at: row.created_at,
    })
}

async fn read_row(
    app: &AppState,
    scope: &TenantScope,
    id: DocumentId,
) -> DomainResult<(DocumentRow, std::sync::Arc<KeySet>)> {
    let mut tx = app.store().tenant_read(scope).await?;
    let row = store::get(&mut tx, id).await?.ok_or(DomainError::NotFound("document"))?;
    let keys = crate::crm::tenant_keys(app, &mut tx).await?;
    tx.commit().await?;
    Ok((row, keys))
}

/// One document's metadata (a read of Restricted data: audited).
pub async fn get(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    id: DocumentId,
) -> DomainResult<DocumentView> {
    let (row, keys) = read_row(app, scope, id).await?;
    let view = view(&keys, scope.tenant_id(), row)?;
    let event = Event::new(Action::DocumentRead).by_scope(scope).target("document", id);
    audit::record_alone(app, scope, ctx, event).await?;
    Ok(view)
}

/// A record's documents, newest first. A page that shows any is audited (`document.list`,
/// naming the record and the documents shown): titles and names are personal data.
pub async fn list(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    link: Link,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> DomainResult<Page<DocumentView>> {
    let limit = check_limit(limit)?;
    let after = decode_cursor::<String>(cursor)?
        .map(|c| {
            let (at, id) = c.split_once(':').ok_or(())?;
            Ok::<_, ()>((
                Timestamp::from_millis(at.parse().map_err(|_| ())?),
                id.parse().map_err(|_| ())?,
            ))
        })
        .transpose()
        .map_err(|()| DomainError::invalid("cursor", "is not a cursor this list issued"))?;
    let mut tx = app.store().tenant_read(scope).await?;
    let rows = store::list(&mut tx, link, after, limit).await?;
    let keys = crate::crm::tenant_keys(app, &mut tx).await?;
    tx.commit().await?;
    let tenant = scope.tenant_id();
    let views: Vec<DocumentView> =
        rows.into_iter().map(|r| view(&keys, tenant, r)).collect::<DomainResult<_>>()?;
    if !views.is_empty() {
        let (kind, record) = link.target();
        let shown: Vec<serde_json::Value> = views.iter().map(|v| v.id.to_string().into()).collect();
        let event = Event::new(Action::DocumentList)
            .by_scope(scope)
            .target(kind, record)
            .detail("documents", serde_json::Value::Array(shown));
        audit::record_alone(app, scope, ctx, event).await?;
    }
    Ok(Page::from_rows(
        views,
        limit,
        |v| encode_cursor(&format!("{}:{}", v.created_at.millis(), v.id)),
        |v| v,
    ))
}

/// Deletes a document: unreadable at once (its sealed key goes with the row), its object
/// removed by the deletion worker.
pub async fn delete(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    id: DocumentId,
) -> DomainResult<()> {
    let mut tx = app.store().tenant_tx(scope).await?;
    if !store::delete(&mut tx, id).await? {
        return Err(DomainError::NotFound("document"));
    }
    audit::record(
        &mut tx,
        ctx,
        Event::new(Action::DocumentDelete).by_scope(scope).target("document", id),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The deletion worker's pass: removes the objects of deleted rows. Returns how many.
pub async fn purge_deleted(app: &AppState) -> DomainResult<usize> {
    let mut tx = app.store().system_read().await?;
    let queued = store::queued_deletions(&mut tx, 200).await?;
    tx.commit().await?;
    let mut done = 0;
    for (document, tenant) in queued {
        let path = app.storage().path(tenant, document);
        if let Err(err) = app.storage().delete(&path).await {
            tracing::warn!(error = %err, "a deleted document's object could not be removed yet");
            continue;
        }
        let mut tx = app.store().system_tx().await?;
        store::forget_deletion(&mut tx, document).await?;
        tx.commit().await?;
        done += 1;
    }
    Ok(done)
}

/// Key rotation: re-seals the documents' keys, titles and names under the tenant's current
/// data key; the contents stay as they are (their own keys do not change).
pub async fn reseal_keys(app: &AppState, scope: &TenantScope) -> DomainResult<u64> {
    let tenant = scope.tenant_id();
    let mut moved = 0;
    loop {
        let mut tx = app.store().tenant_tx(scope).await?;
        let keys = crate::crm::sealing_keys(app, &mut tx).await?;
        let version = i32::try_from(keys.current_version()).unwrap_or(i32::MAX);
        let rows = store::keys_older_than(&mut tx, version).await?;
        if rows.is_empty() {
            tx.commit().await?;
            return Ok(moved);
        }
        for (id, was, key, title, filename) in rows {
            let reseal = |column, sealed: &[u8]| -> DomainResult<Vec<u8>> {
                let plain = keys
                    .decrypt(&place(tenant, id, column), sealed)
                    .map_err(|err| DomainError::Internal(format!("document {id}: {err}")))?;
                Ok(keys.encrypt(&place(tenant, id, column), &plain))
            };
            let key = reseal("key", &key)?;
            let title = title.as_deref().map(|t| reseal("title", t)).transpose()?;
            let filename = reseal("filename", &filename)?;
            if store::reseal(&mut tx, id, was, version, (&key, title.as_deref(), &filename)).await?
            {
                moved += 1;
            }
        }
        tx.commit().await?;
    }
}
