//! Document contents in a backup: the objects of a local-disk store, as stored (ciphertext
//! under each document's own key), as the pseudo-table `@objects` after the tables. Each row
//! is one 64 KiB piece of one object: tenant, document, position, bytes; an object's pieces are
//! consecutive. Hashes and counts cover them like any table's rows.
//!
//! Decision: objects in an S3-compatible store are not copied into archives (the bucket's
//! versioning and replication back them up, and copying a bucket through one process is the
//! wrong tool); an archive without `@objects` restores rows whose objects stay where they
//! are. An archive with `@objects` restores the objects into whichever store the target
//! instance uses, so a restore also moves documents from disk into S3.

use std::collections::HashSet;

use futures_util::StreamExt as _;
use object_store::WriteMultipart;
use uuid::Uuid;

use super::BackupError;
use super::archive::{Cell, Cells, Sink};
use crate::documents::storage::Storage;
use crate::ids::{DocumentId, TenantId};

/// The pseudo-table's name: not a possible SQL table name, so never confused with one.
pub const TABLE: &str = "@objects";
pub const COLUMNS: [&str; 4] = ["tenant_id", "document_id", "position", "bytes"];
/// Bytes per archived piece (a line of about 88 KB once encoded): small enough that the
/// reader's queue of lines stays a few megabytes.
const PIECE: usize = 64 * 1024;

fn path(storage: &Storage, tenant: Uuid, document: Uuid) -> object_store::path::Path {
    storage.path(TenantId::from_uuid(tenant), DocumentId::from_uuid(document))
}

fn failed(err: impl std::fmt::Display) -> BackupError {
    BackupError::Objects(err.to_string())
}

/// Writes one document's object into the archive; `false` when it is gone (deleted after
/// the snapshot was taken: the restore then drops its row too).
pub async fn dump(
    storage: &Storage,
    tenant: Uuid,
    document: Uuid,
    sink: &mut Sink,
) -> Result<bool, BackupError> {
    let Some((_, mut source)) =
        storage.read_existing(&path(storage, tenant, document)).await.map_err(failed)?
    else {
        return Ok(false);
    };
    let mut piece = Vec::with_capacity(PIECE);
    let mut position = 0;
    let mut emit = async |piece: &mut Vec<u8>, position: &mut i64| {
        let cells = vec![
            Some(Cell::bytes(tenant.as_bytes())),
            Some(Cell::bytes(document.as_bytes())),
            Some(Cell::Int(*position)),
            Some(Cell::bytes(piece)),
        ];
        piece.clear();
        *position += 1;
        sink.row(&cells).await
    };
    while let Some(bytes) = source.next().await {
        let mut bytes = &bytes.map_err(failed)?[..];
        while !bytes.is_empty() {
            let take = (PIECE - piece.len()).min(bytes.len());
            piece.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if piece.len() == PIECE {
                emit(&mut piece, &mut position).await?;
            }
        }
    }
    // The last piece, or the only one of an empty object (its presence is the record).
    if !piece.is_empty() || position == 0 {
        emit(&mut piece, &mut position).await?;
    }
    Ok(true)
}

/// Restores `@objects` rows into the target's store, one object at a time, with memory
/// bounded by the store's upload buffer.
pub struct Restorer<'a> {
    storage: &'a Storage,
    shredded: &'a [Uuid],
    current: Option<Writing>,
    restored: HashSet<(Uuid, Uuid)>,
}

struct Writing {
    tenant: Uuid,
    document: Uuid,
    next: i64,
    upload: WriteMultipart,
}

impl<'a> Restorer<'a> {
    pub fn new(storage: &'a Storage, shredded: &'a [Uuid]) -> Restorer<'a> {
        Restorer { storage, shredded, current: None, restored: HashSet::new() }
    }

    pub async fn row(&mut self, cells: &Cells) -> Result<(), BackupError> {
        let corrupt = |what: &str| BackupError::Corrupt(format!("@objects: {what}"));
        let id = |i: usize| match cells.get(i) {
            Some(Some(Cell::Bytes { b })) => {
                Uuid::from_slice(&Cell::decode_bytes(b)?).map_err(|_| corrupt("a malformed id"))
            }
            _ => Err(corrupt("a missing id")),
        };
        let (tenant, document) = (id(0)?, id(1)?);
        let Some(Some(Cell::Int(position))) = cells.get(2) else {
            return Err(corrupt("a missing position"));
        };
        let Some(Some(Cell::Bytes { b })) = cells.get(3) else {
            return Err(corrupt("missing bytes"));
        };
        if self.shredded.contains(&tenant) {
            // The tenant is deleted again after the restore: its objects would only wait
            // for the deletion worker.
            return Ok(());
        }
        let same =
            self.current.as_ref().is_some_and(|w| (w.tenant, w.document) == (tenant, document));
        if !same {
            self.finish_current().await?;
            if *position != 0 || self.restored.contains(&(tenant, document)) {
                return Err(corrupt("an object's pieces are out of order"));
            }
            let upload =
                self.storage.writer(&path(self.storage, tenant, document)).await.map_err(failed)?;
            self.current = Some(Writing { tenant, document, next: 0, upload });
        }
        let Some(writing) = self.current.as_mut() else {
            return Err(corrupt("no object open"));
        };
        if *position != writing.next {
            return Err(corrupt("an object's pieces are out of order"));
        }
        writing.next += 1;
        writing.upload.wait_for_capacity(2).await.map_err(failed)?;
        writing.upload.write(&Cell::decode_bytes(b)?);
        Ok(())
    }

    async fn finish_current(&mut self) -> Result<(), BackupError> {
        if let Some(writing) = self.current.take() {
            writing.upload.finish().await.map_err(failed)?;
            self.restored.insert((writing.tenant, writing.document));
        }
        Ok(())
    }

    /// Completes the last object; returns every object restored.
    pub async fn finish(mut self) -> Result<HashSet<(Uuid, Uuid)>, BackupError> {
        self.finish_current().await?;
        Ok(self.restored)
    }
}
