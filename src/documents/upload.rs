//! Uploads: the form's stream sniffed, capped, scanned and sealed chunk by chunk into the
//! object store, then the row and its audit event.

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use sha2::{Digest as _, Sha256};

use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::Timestamp;
use crate::crypto::stream::{CHUNK, ContentKey};
use crate::error::{DomainError, DomainResult};
use crate::ids::{DocumentId, TenantId};
use crate::tenancy::TenantScope;

use super::scan::{Scan, Verdict};
use super::sniff::{self, Sniffed};
use super::store::{self, DocumentRow};
use super::{DocumentView, Link, content_aad, place, storage, view};

/// An upload's form fields (the file comes as a stream beside them).
pub struct NewDocument {
    pub link: Link,
    pub title: Option<String>,
    /// As the client named it; made safe before it is kept.
    pub filename: String,
}

/// What streaming an upload produced, before anything is recorded.
struct Written {
    size: u64,
    sha256: Vec<u8>,
    scan: &'static str,
}

/// Stores a document: type sniffed, size capped while reading, scanned when a scanner is
/// configured, content encrypted chunk by chunk into the object store, then its row and its
/// audit event in one transaction. Nothing is kept of a refused upload.
pub async fn upload<S>(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    new: NewDocument,
    body: S,
) -> DomainResult<DocumentView>
where
    S: Stream<Item = DomainResult<Bytes>> + Unpin + Send,
{
    let tenant = scope.tenant_id();
    if let Some(title) = &new.title
        && (title.chars().count() > 200 || title.chars().any(char::is_control))
    {
        return Err(DomainError::invalid(
            "title",
            "must be at most 200 characters, without control characters",
        ));
    }
    let mut tx = app.store().tenant_read(scope).await?;
    let linked = store::link_exists(&mut tx, new.link).await?;
    tx.commit().await?;
    if !linked {
        return Err(DomainError::invalid(
            new.link.field(),
            "does not name a record of this organisation",
        ));
    }
    let id = DocumentId::new();
    let (key, raw_key) = ContentKey::generate();
    let path = app.storage().path(tenant, id);
    let (kind, written) = match write_content(app, tenant, id, &key, &path, body).await {
        Ok(written) => written,
        Err(DomainError::Infected(signature)) => {
            let event = Event::new(Action::DocumentUpload)
                .by_scope(scope)
                .failure()
                .detail("reason", "infected")
                .detail("signature", signature.clone());
            audit::record_alone(app, scope, ctx, event).await?;
            return Err(DomainError::Infected(signature));
        }
        Err(err) => return Err(err),
    };
    let recorded = async {
        let mut tx = app.store().tenant_tx(scope).await?;
        // Checked again where the row is written: a contact erased while the file streamed
        // must not get a document back.
        if !store::link_still_exists(&mut tx, new.link).await? {
            return Err(DomainError::invalid(
                new.link.field(),
                "does not name a record of this organisation",
            ));
        }
        let keys = crate::crm::sealing_keys(app, &mut tx).await?;
        let filename = sniff::safe_filename(&new.filename);
        let row = DocumentRow {
            id,
            contact_id: match new.link {
                Link::Contact(c) => Some(c),
                _ => None,
            },
            company_id: match new.link {
                Link::Company(c) => Some(c),
                _ => None,
            },
            deal_id: match new.link {
                Link::Deal(d) => Some(d),
                _ => None,
            },
            key_version: i32::try_from(keys.current_version()).unwrap_or(i32::MAX),
            key_enc: keys.encrypt(&place(tenant, id, "key"), raw_key.expose()),
            nonce_prefix: key.prefix.to_vec(),
            title_enc: new
                .title
                .as_deref()
                .map(|t| keys.encrypt(&place(tenant, id, "title"), t.as_bytes())),
            filename_enc: keys.encrypt(&place(tenant, id, "filename"), filename.as_bytes()),
            content_type: kind.mime().to_owned(),
            size: i64::try_from(written.size).unwrap_or(i64::MAX),
            sha256: written.sha256,
            scan: written.scan.to_owned(),
            created_by: scope.actor().user_id(),
            created_at: Timestamp::now(),
        };
        store::insert(&mut tx, &row).await?;
        audit::record(
            &mut tx,
            ctx,
            Event::new(Action::DocumentUpload)
                .by_scope(scope)
                .target("document", id)
                .detail("size", written.size)
                .detail("content_type", kind.mime()),
        )
        .await?;
        tx.commit().await?;
        view(&keys, tenant, row)
    }
    .await;
    if recorded.is_err() {
        // The row never existed: the object must not outlive the failure.
        let _ = app.storage().delete(&path).await;
    }
    recorded
}

/// Appends the body's next bytes to `pending`, counting them against the cap (413 as soon as
/// it is passed, the rest unread); `false` once the body has ended.
async fn pull<S>(
    body: &mut S,
    pending: &mut Vec<u8>,
    size: &mut u64,
    limit: u64,
) -> DomainResult<bool>
where
    S: Stream<Item = DomainResult<Bytes>> + Unpin + Send,
{
    let Some(bytes) = body.next().await else { return Ok(false) };
    let bytes = bytes?;
    *size += bytes.len() as u64;
    if *size > limit {
        return Err(DomainError::TooLarge { limit });
    }
    pending.extend_from_slice(&bytes);
    Ok(true)
}

/// Reads the upload, sniffing its first chunk, sealing and writing chunk by chunk.
async fn write_content<S>(
    app: &AppState,
    tenant: TenantId,
    id: DocumentId,
    key: &ContentKey,
    path: &object_store::path::Path,
    mut body: S,
) -> DomainResult<(crate::config::DocumentType, Written)>
where
    S: Stream<Item = DomainResult<Bytes>> + Unpin + Send,
{
    let config = &app.config().documents;
    let limit = config.max_bytes;
    let mut pending: Vec<u8> = Vec::with_capacity(2 * CHUNK);
    let mut size: u64 = 0;
    let mut ended = false;
    // The head: one chunk (or the whole of a smaller file) decides the type.
    while pending.len() <= CHUNK && !ended {
        ended = !pull(&mut body, &mut pending, &mut size, limit).await?;
    }
    let kind = match sniff::sniff(&pending[..pending.len().min(CHUNK)], &config.types) {
        Sniffed::Allowed(kind) => kind,
        Sniffed::Refused(found) => return Err(DomainError::UnsupportedType(found)),
    };
    let storage_failed = |err: storage::StorageError| DomainError::Internal(err.to_string());
    let mut writer = app.storage().writer(path).await.map_err(storage_failed)?;
    let mut scanner = match &config.clamd {
        Some(address) => Some(Scan::start(address).await.map_err(|err| {
            tracing::error!(error = %err, "virus scanner unavailable");
            DomainError::Unavailable("the virus scanner")
        })?),
        None => None,
    };
    let aad = content_aad(tenant, id);
    let mut hash = Sha256::new();
    let mut position: u32 = 0;
    let streamed: DomainResult<()> = async {
        loop {
            while pending.len() > CHUNK {
                let rest = pending.split_off(CHUNK);
                let chunk = std::mem::replace(&mut pending, rest);
                seal_chunk(
                    key,
                    &aad,
                    position,
                    false,
                    &chunk,
                    &mut writer,
                    &mut hash,
                    &mut scanner,
                )
                .await?;
                position = position.checked_add(1).ok_or(DomainError::TooLarge { limit })?;
                writer.wait_for_capacity(2).await.map_err(|e| storage_failed(e.into()))?;
            }
            if ended {
                break;
            }
            ended = !pull(&mut body, &mut pending, &mut size, limit).await?;
        }
        let last = std::mem::take(&mut pending);
        seal_chunk(key, &aad, position, true, &last, &mut writer, &mut hash, &mut scanner).await
    }
    .await;
    if let Err(err) = streamed {
        let _ = writer.abort().await;
        return Err(err);
    }
    let scan = match scanner {
        None => "unscanned",
        Some(scanner) => match scanner.verdict().await {
            Ok(Verdict::Clean) => "clean",
            Ok(Verdict::Infected(signature)) => {
                let _ = writer.abort().await;
                return Err(DomainError::Infected(signature));
            }
            Err(err) => {
                tracing::error!(error = %err, "virus scan failed");
                let _ = writer.abort().await;
                return Err(DomainError::Unavailable("the virus scanner"));
            }
        },
    };
    writer.finish().await.map_err(|e| storage_failed(e.into()))?;
    Ok((kind, Written { size, sha256: hash.finalize().to_vec(), scan }))
}

#[allow(clippy::too_many_arguments, reason = "one step of the upload loop, with its state")]
async fn seal_chunk(
    key: &ContentKey,
    aad: &[u8],
    position: u32,
    last: bool,
    chunk: &[u8],
    writer: &mut object_store::WriteMultipart,
    hash: &mut Sha256,
    scanner: &mut Option<Scan>,
) -> DomainResult<()> {
    hash.update(chunk);
    if let Some(scanner) = scanner {
        scanner.feed(chunk).await.map_err(|err| {
            tracing::error!(error = %err, "virus scan failed");
            DomainError::Unavailable("the virus scanner")
        })?;
    }
    let sealed = key
        .seal(position, last, aad, chunk)
        .map_err(|_| DomainError::Internal("sealing a document chunk failed".into()))?;
    writer.write(&sealed);
    Ok(())
}
