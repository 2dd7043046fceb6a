//! Downloads: a document's object opened chunk by chunk as it streams out.

use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;

use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::crypto::Secret;
use crate::crypto::stream::{CHUNK, ContentKey, PREFIX_LEN};
use crate::error::{DomainError, DomainResult};
use crate::ids::DocumentId;
use crate::tenancy::TenantScope;

use super::{DocumentView, content_aad, place, read_row, storage, view};

/// A document's content, decrypted as it streams. The first chunk is opened before this
/// returns, so a damaged object fails before any byte is sent; a later damaged or missing
/// chunk ends the stream with an error (the response is cut, never completed with wrong
/// bytes).
pub struct Content {
    pub view: DocumentView,
    pub body: BoxStream<'static, Result<Bytes, DomainError>>,
}

pub async fn content(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    id: DocumentId,
) -> DomainResult<Content> {
    let tenant = scope.tenant_id();
    let (row, keys) = read_row(app, scope, id).await?;
    let unreadable = || DomainError::Internal(format!("document {id} does not decrypt"));
    let raw = keys.decrypt(&place(tenant, id, "key"), &row.key_enc).map_err(|_| unreadable())?;
    let raw: [u8; 32] = raw.as_slice().try_into().map_err(|_| unreadable())?;
    let prefix: [u8; PREFIX_LEN] =
        row.nonce_prefix.as_slice().try_into().map_err(|_| unreadable())?;
    let key = ContentKey::new(&Secret::new(raw), prefix);
    let size = u64::try_from(row.size).map_err(|_| unreadable())?;
    let (stored, source) = app
        .storage()
        .read(&app.storage().path(tenant, id))
        .await
        .map_err(|err| DomainError::Internal(err.to_string()))?;
    // A cut or lengthened object fails before any byte is sent.
    if stored != crate::crypto::stream::sealed_len(size) {
        return Err(unreadable());
    }
    let mut opener = Opener::new(key, content_aad(tenant, id), size, source);
    let first = opener.next_chunk().await?.unwrap_or_default();
    let view = view(&keys, tenant, row)?;
    let event = Event::new(Action::DocumentDownload)
        .by_scope(scope)
        .target("document", id)
        .detail("size", size);
    audit::record_alone(app, scope, ctx, event).await?;
    let rest = futures_util::stream::unfold(opener, |mut opener| async move {
        match opener.next_chunk().await {
            Ok(Some(chunk)) => Some((Ok(chunk), opener)),
            Ok(None) => None,
            Err(err) => {
                opener.failed = true;
                Some((Err(err), opener))
            }
        }
    });
    Ok(Content { view, body: futures_util::stream::once(async { Ok(first) }).chain(rest).boxed() })
}

/// Re-chunks the object's bytes into sealed chunks and opens them in order.
struct Opener {
    key: ContentKey,
    aad: Vec<u8>,
    chunks: u32,
    position: u32,
    last_len: usize,
    source: BoxStream<'static, Result<Bytes, storage::StorageError>>,
    buffer: Vec<u8>,
    failed: bool,
}

impl Opener {
    fn new(
        key: ContentKey,
        aad: Vec<u8>,
        size: u64,
        source: BoxStream<'static, Result<Bytes, storage::StorageError>>,
    ) -> Opener {
        let chunks = u32::try_from(crate::crypto::stream::chunks(size)).unwrap_or(u32::MAX);
        let last_len = usize::try_from(size - u64::from(chunks - 1) * CHUNK as u64).unwrap_or(0);
        Opener {
            key,
            aad,
            chunks,
            position: 0,
            last_len,
            source,
            buffer: Vec::new(),
            failed: false,
        }
    }

    async fn next_chunk(&mut self) -> DomainResult<Option<Bytes>> {
        let damaged =
            || DomainError::Internal("a document's content is damaged or incomplete".into());
        if self.failed {
            return Ok(None);
        }
        if self.position == self.chunks {
            // Nothing may follow the last chunk.
            while let Some(bytes) = self.source.next().await {
                if !bytes.map_err(|err| DomainError::Internal(err.to_string()))?.is_empty() {
                    return Err(damaged());
                }
            }
            return if self.buffer.is_empty() { Ok(None) } else { Err(damaged()) };
        }
        let last = self.position + 1 == self.chunks;
        let want = if last { self.last_len } else { CHUNK } + crate::crypto::aead::TAG_LEN;
        while self.buffer.len() < want {
            match self.source.next().await {
                Some(bytes) => self.buffer.extend_from_slice(
                    &bytes.map_err(|err| DomainError::Internal(err.to_string()))?,
                ),
                None => return Err(damaged()),
            }
        }
        let rest = self.buffer.split_off(want);
        let sealed = std::mem::replace(&mut self.buffer, rest);
        let plain =
            self.key.open(self.position, last, &self.aad, &sealed).map_err(|_| damaged())?;
        self.position += 1;
        Ok(Some(Bytes::from(plain)))
    }
}
