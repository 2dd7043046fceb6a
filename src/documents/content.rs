//! Downloads: a document's object opened chunk by chunk as it streams out.

use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;

use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::crypto::Secret;
use crate::crypto::stream::{self, CHUNK, ContentKey, PREFIX_LEN, SEALED_CHUNK};
use crate::error::{DomainError, DomainResult};
use crate::ids::DocumentId;
use crate::tenancy::TenantScope;

use super::{DocumentView, content_aad, place, read_row, storage, view};

/// One range of a download (`Range: bytes=…`), before the size is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `A-` or `A-B` (inclusive).
    From(u64, Option<u64>),
    /// `-N`: the last N bytes.
    Suffix(u64),
}

impl ByteRange {
    /// The inclusive byte span of a content of `size` bytes (RFC 9110 §14.1.2: an end past
    /// the content is clamped), or `None` when no byte of it is in the content.
    pub fn resolve(self, size: u64) -> Option<(u64, u64)> {
        let last = size.checked_sub(1)?;
        match self {
            ByteRange::From(start, end) if start <= last => {
                let end = end.map_or(last, |e| e.min(last));
                (start <= end).then_some((start, end))
            }
            ByteRange::From(..) => None,
            ByteRange::Suffix(0) => None,
            ByteRange::Suffix(n) => Some((size.saturating_sub(n), last)),
        }
    }
}

/// A document's content, decrypted as it streams: whole, or the requested range (only the
/// chunks that hold it are read and opened). The first chunk is opened before this returns,
/// so a damaged object fails before any byte is sent; a later damaged or missing chunk ends
/// the stream with an error (the response is cut, never completed with wrong bytes).
pub struct Content {
    pub view: DocumentView,
    /// The inclusive span sent, for a range request.
    pub range: Option<(u64, u64)>,
    pub body: BoxStream<'static, Result<Bytes, DomainError>>,
}

pub async fn content(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    id: DocumentId,
    range: Option<ByteRange>,
) -> DomainResult<Content> {
    let tenant = scope.tenant_id();
    let (row, keys) = read_row(app, scope, id).await?;
    let unreadable = || DomainError::Internal(format!("document {id} does not decrypt"));
    let size = u64::try_from(row.size).map_err(|_| unreadable())?;
    let span = match range {
        None => None,
        Some(range) => Some(range.resolve(size).ok_or(DomainError::RangeNotSatisfiable { size })?),
    };
    let raw = Secret::new(
        keys.decrypt(&place(tenant, id, "key"), &row.key_enc).map_err(|_| unreadable())?,
    );
    let raw: [u8; 32] = raw.expose().as_slice().try_into().map_err(|_| unreadable())?;
    let prefix: [u8; PREFIX_LEN] =
        row.nonce_prefix.as_slice().try_into().map_err(|_| unreadable())?;
    let key = ContentKey::new(&Secret::new(raw), prefix);
    // The chunks holding the span, and their bytes in the object.
    let total = u32::try_from(stream::chunks(size)).map_err(|_| unreadable())?;
    let (first, end) = match span {
        None => (0, total),
        Some((a, b)) => (chunk_of(a), chunk_of(b) + 1),
    };
    let sealed = stream::sealed_len(size);
    let bytes =
        u64::from(first) * SEALED_CHUNK as u64..(u64::from(end) * SEALED_CHUNK as u64).min(sealed);
    let (stored, source) = app
        .storage()
        .read_range(&app.storage().path(tenant, id), bytes)
        .await
        .map_err(|err| DomainError::Internal(err.to_string()))?;
    // A cut or lengthened object fails before any byte is sent.
    if stored != sealed {
        return Err(unreadable());
    }
    let mut opener = Opener::new(key, content_aad(tenant, id), size, source, first, end);
    let mut trim = match span {
        None => Trim { skip: 0, remaining: size },
        Some((a, b)) => Trim {
            skip: usize::try_from(a - u64::from(first) * CHUNK as u64).unwrap_or(0),
            remaining: b - a + 1,
        },
    };
    let first = trim.apply(opener.next_chunk().await?.unwrap_or_default());
    let view = view(&keys, tenant, row)?;
    let mut event = Event::new(Action::DocumentDownload)
        .by_scope(scope)
        .target("document", id)
        .detail("size", size);
    if let Some((a, b)) = span {
        event = event.detail("range", format!("{a}-{b}"));
    }
    audit::record_alone(app, scope, ctx, event).await?;
    let rest = futures_util::stream::unfold((opener, trim), |(mut opener, mut trim)| async move {
        match opener.next_chunk().await {
            Ok(Some(chunk)) => Some((Ok(trim.apply(chunk)), (opener, trim))),
            Ok(None) => None,
            Err(err) => {
                opener.failed = true;
                Some((Err(err), (opener, trim)))
            }
        }
    });
    let body = futures_util::stream::once(async { Ok(first) })
        .chain(rest)
        .filter(|chunk| std::future::ready(chunk.as_ref().map_or(true, |c| !c.is_empty())))
        .boxed();
    Ok(Content { view, range: span, body })
}

fn chunk_of(byte: u64) -> u32 {
    u32::try_from(byte / CHUNK as u64).unwrap_or(u32::MAX)
}

/// Cuts opened chunks down to the requested span.
struct Trim {
    skip: usize,
    remaining: u64,
}

impl Trim {
    fn apply(&mut self, mut chunk: Bytes) -> Bytes {
        let skip = self.skip.min(chunk.len());
        chunk = chunk.slice(skip..);
        self.skip = 0;
        let keep = usize::try_from(self.remaining).unwrap_or(usize::MAX).min(chunk.len());
        chunk.truncate(keep);
        self.remaining -= keep as u64;
        chunk
    }
}

/// Re-chunks the object's bytes (chunks `position..end` of `chunks`) into sealed chunks and
/// opens them in order.
struct Opener {
    key: ContentKey,
    aad: Vec<u8>,
    chunks: u32,
    position: u32,
    end: u32,
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
        first: u32,
        end: u32,
    ) -> Opener {
        let chunks = u32::try_from(stream::chunks(size)).unwrap_or(u32::MAX);
        let last_len = usize::try_from(size - u64::from(chunks - 1) * CHUNK as u64).unwrap_or(0);
        Opener {
            key,
            aad,
            chunks,
            position: first,
            end,
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
        if self.position == self.end {
            // Nothing may follow the last chunk read.
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
