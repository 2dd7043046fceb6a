//! The archive: JSON lines inside one age-encrypted stream.
//!
//! ```text
//! {"header":{"format":"bulwark-backup","version":1,"schema_version":8,…}}
//! {"table":{"name":"tenants","columns":["id","name","status","created_at"]}}
//! [{"b":"AZPz…"},"Acme","active",1733390000000]          one line per row
//! {"end":{"name":"tenants","rows":1,"sha256":"…"}}        SHA-256 of the row lines
//! …                                                        every table, in restore order
//! {"table":{"name":"@objects","columns":[…]}}             local-disk document contents
//! {"manifest":{"tables":[…],"documents":3,"completed_at":…}}
//! ```
//!
//! A cell is `null`, an integer, a string (text) or `{"b": base64}` (bytes: blobs and UUIDs,
//! which both backends can turn back into their own type). The format names no backend type,
//! so an archive of either backend restores into either. age authenticates every 64 KiB
//! chunk and marks the last one, so a flipped byte or a truncated file fails to decrypt; the
//! per-table hashes and the closing manifest check the content on top of that.
//!
//! Encryption and file I/O run on a thread of their own, fed through a bounded channel, so
//! memory stays bounded whatever the size and the runtime's threads never block on disk.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;

use super::BackupError;
use super::location::{Input, Output};
use crate::clock::Timestamp;
use crate::crypto::hex;

pub const FORMAT: &str = "bulwark-backup";
/// 2: the manifest is signed (an Ed25519 key derived from the master key).
pub const VERSION: u32 = 2;
/// Lines are sent to the writer in batches of about this many bytes.
const BATCH_BYTES: usize = 256 * 1024;
/// Batches in flight between the database and the disk: the memory bound.
const BATCHES_IN_FLIGHT: usize = 8;
/// The longest line a reader accepts: far above any row or 64 KiB object piece, far below
/// what would strain memory; with `LINES_IN_FLIGHT` it bounds a restore's queue.
const MAX_LINE: usize = 8 * 1024 * 1024;
const LINES_IN_FLIGHT: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub format: String,
    pub version: u32,
    /// The newest migration applied to the database the archive was taken from.
    pub schema_version: i64,
    pub bulwark: String,
    pub backend: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableStart {
    pub name: String,
    pub columns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSummary {
    pub name: String,
    pub rows: u64,
    /// SHA-256 of the table's row lines (each with its newline), hex.
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub tables: Vec<TableSummary>,
    /// Document contents in the archive (`@objects`; none when documents are in S3).
    pub documents: u64,
    pub completed_at: Timestamp,
    /// The master key id the signing key is derived from, and the Ed25519 signature (base64)
    /// of `signed_message`: every line before the manifest, the document count and the time.
    /// age proves only that someone knew a recipient's public key; this proves the archive
    /// was written by an instance holding the deployment's master key.
    pub key: String,
    pub sig: String,
}

/// The purpose the manifest's signing key is derived for.
pub const SIGNING_PURPOSE: &str = "backup-manifest";

/// What the manifest's signature covers: the SHA-256 of every line before it (header, every
/// table with its rows and summary), then the document count and the completion time.
pub fn signed_message(lines: &[u8], documents: u64, completed_at: Timestamp) -> Vec<u8> {
    let mut message = b"bulwark-backup-manifest\0".to_vec();
    message.extend_from_slice(lines);
    message.extend_from_slice(&documents.to_be_bytes());
    message.extend_from_slice(&completed_at.millis().to_be_bytes());
    message
}

/// Every line but the rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Record {
    Header(Header),
    Table(TableStart),
    End(TableSummary),
    Manifest(Manifest),
}

/// One stored value, in the backend-neutral form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Cell {
    Int(i64),
    Text(String),
    Bytes { b: String },
}

impl Cell {
    pub fn bytes(bytes: &[u8]) -> Cell {
        Cell::Bytes { b: BASE64.encode(bytes) }
    }

    pub fn decode_bytes(b: &str) -> Result<Vec<u8>, BackupError> {
        BASE64.decode(b).map_err(|_| BackupError::Corrupt("a bytes cell is not base64".into()))
    }
}

pub type Cells = Vec<Option<Cell>>;

/// A line read back.
pub enum Line {
    Record(Record),
    Row(Cells),
}

/// The running hash and count of one table's rows.
#[derive(Default)]
pub struct TableHash {
    rows: u64,
    hash: Sha256,
}

impl TableHash {
    pub fn add(&mut self, line: &[u8]) {
        self.rows += 1;
        self.hash.update(line);
    }

    pub fn finish(self, name: &str) -> TableSummary {
        TableSummary { name: name.to_owned(), rows: self.rows, sha256: hex(&self.hash.finalize()) }
    }
}

/// What the encrypting thread receives: data, then `Done` when the archive is complete. A
/// channel that closes without `Done` (an error, a panic) leaves no archive behind.
enum Chunk {
    Data(Vec<u8>),
    Done,
}

/// The writing end: encodes lines, hashes rows, and hands batches to the encrypting thread.
pub struct Sink {
    tx: mpsc::Sender<Chunk>,
    batch: Vec<u8>,
    table: Option<(String, TableHash)>,
    summaries: Vec<TableSummary>,
    /// Every line so far, for the manifest's signature.
    lines: Sha256,
}

impl Sink {
    pub async fn record(&mut self, record: &Record) -> Result<(), BackupError> {
        let line = encode_line(record)?;
        self.push(&line).await
    }

    pub async fn start_table(
        &mut self,
        name: &str,
        columns: Vec<String>,
    ) -> Result<(), BackupError> {
        self.record(&Record::Table(TableStart { name: name.to_owned(), columns })).await?;
        self.table = Some((name.to_owned(), TableHash::default()));
        Ok(())
    }

    pub async fn row(&mut self, cells: &Cells) -> Result<(), BackupError> {
        let line = encode_line(cells)?;
        match &mut self.table {
            Some((_, hash)) => hash.add(&line),
            None => return Err(BackupError::Corrupt("a row outside any table".into())),
        }
        self.push(&line).await
    }

    pub async fn end_table(&mut self) -> Result<(), BackupError> {
        let Some((name, hash)) = self.table.take() else { return Ok(()) };
        let summary = hash.finish(&name);
        self.record(&Record::End(summary.clone())).await?;
        self.summaries.push(summary);
        Ok(())
    }

    /// Writes the manifest, signed with `signer` (the master key's id and the key derived
    /// from it), and flushes what is left; the writer thread then finishes.
    pub async fn finish(
        mut self,
        documents: u64,
        signer: (String, ring::signature::Ed25519KeyPair),
    ) -> Result<Manifest, BackupError> {
        let completed_at = Timestamp::now();
        let lines = std::mem::take(&mut self.lines).finalize();
        let (key, pair) = signer;
        let sig = pair.sign(&signed_message(&lines, documents, completed_at));
        let manifest = Manifest {
            tables: std::mem::take(&mut self.summaries),
            documents,
            completed_at,
            key,
            sig: BASE64.encode(sig.as_ref()),
        };
        self.record(&Record::Manifest(manifest.clone())).await?;
        let batch = std::mem::take(&mut self.batch);
        self.tx.send(Chunk::Data(batch)).await.map_err(|_| BackupError::WriterGone)?;
        self.tx.send(Chunk::Done).await.map_err(|_| BackupError::WriterGone)?;
        Ok(manifest)
    }

    async fn push(&mut self, line: &[u8]) -> Result<(), BackupError> {
        self.lines.update(line);
        self.batch.extend_from_slice(line);
        if self.batch.len() >= BATCH_BYTES {
            let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH_BYTES));
            self.tx.send(Chunk::Data(batch)).await.map_err(|_| BackupError::WriterGone)?;
        }
        Ok(())
    }
}

fn encode_line(value: &impl Serialize) -> Result<Vec<u8>, BackupError> {
    let mut line = serde_json::to_vec(value)
        .map_err(|err| BackupError::Corrupt(format!("a line cannot be encoded: {err}")))?;
    line.push(b'\n');
    Ok(line)
}

/// The encrypting thread: (plaintext bytes, archive bytes) once it is done.
pub type Writer = std::thread::JoinHandle<Result<(u64, u64), BackupError>>;

/// Starts the encrypting writer on `output` (a file appears under its name only when
/// complete, readable by its owner only; an S3 object only when its upload completes).
/// Returns the sink to write to and the thread to join once the sink is finished; the
/// thread returns the plaintext bytes it encrypted and the archive's size.
pub fn writer(
    output: Output,
    recipients: &[age::x25519::Recipient],
) -> Result<(Sink, Writer), BackupError> {
    let encryptor =
        age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|_| BackupError::Recipients)?;
    let (tx, mut rx) = mpsc::channel::<Chunk>(BATCHES_IN_FLIGHT);
    let partial = output.partial();
    let failed = |err: std::io::Error| BackupError::Objects(format!("writing the archive: {err}"));
    let thread = std::thread::Builder::new()
        .name("backup-writer".into())
        .spawn(move || {
            let written = (|| {
                let counted = Counted { inner: output, bytes: 0 };
                let mut out = encryptor.wrap_output(counted).map_err(failed)?;
                let mut bytes = 0u64;
                loop {
                    match rx.blocking_recv() {
                        Some(Chunk::Data(batch)) => {
                            bytes += batch.len() as u64;
                            out.write_all(&batch).map_err(failed)?;
                        }
                        Some(Chunk::Done) => break,
                        None => return Err(BackupError::WriterGone),
                    }
                }
                let counted = out.finish().map_err(failed)?;
                counted.inner.commit()?;
                Ok((bytes, counted.bytes))
            })();
            if written.is_err()
                && let Some(partial) = partial
            {
                let _ = std::fs::remove_file(&partial);
            }
            written
        })
        .map_err(|err| BackupError::Objects(format!("the writer thread: {err}")))?;
    let sink = Sink {
        tx,
        batch: Vec::with_capacity(BATCH_BYTES),
        table: None,
        summaries: vec![],
        lines: Sha256::new(),
    };
    Ok((sink, thread))
}

/// Counts the encrypted bytes on their way out.
struct Counted {
    inner: Output,
    bytes: u64,
}

impl std::io::Write for Counted {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Reads identities from an age identity file (`AGE-SECRET-KEY-1…` lines, `#` comments).
pub fn identities(file: &Path) -> Result<Vec<Box<dyn age::Identity + Send + Sync>>, BackupError> {
    let parsed = age::IdentityFile::from_file(file.to_string_lossy().into_owned())
        .map_err(|err| BackupError::io(file, err))?;
    let identities = parsed.into_identities().map_err(|_| BackupError::Identity)?;
    if identities.is_empty() {
        return Err(BackupError::Identity);
    }
    Ok(identities)
}

/// Starts the decrypting reader: lines come out of the returned channel, raw (row lines are
/// hashed as written). An error ends the stream with `Err`.
pub fn reader(
    input: Input,
    shown: String,
    identities: Vec<Box<dyn age::Identity + Send + Sync>>,
) -> Result<mpsc::Receiver<Result<Vec<u8>, BackupError>>, BackupError> {
    let (tx, rx) = mpsc::channel(LINES_IN_FLIGHT);
    std::thread::Builder::new()
        .name("backup-reader".into())
        .spawn(move || {
            let lines = (|| {
                let decryptor = age::Decryptor::new_buffered(BufReader::new(input))
                    .map_err(|_| BackupError::Corrupt("not an age file".into()))?;
                let stream = decryptor
                    .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
                    .map_err(|_| BackupError::Identity)?;
                Ok(BufReader::new(stream))
            })();
            let mut lines = match lines {
                Ok(lines) => lines,
                Err(err) => {
                    let _ = tx.blocking_send(Err(err));
                    return;
                }
            };
            loop {
                let mut line = Vec::new();
                match (&mut lines).take(MAX_LINE as u64 + 1).read_until(b'\n', &mut line) {
                    Ok(0) => return,
                    Ok(n) if n > MAX_LINE => {
                        let _ = tx.blocking_send(Err(BackupError::Corrupt(format!(
                            "{shown} holds a line longer than any Bulwark writes"
                        ))));
                        return;
                    }
                    Ok(_) => {
                        if tx.blocking_send(Ok(line)).is_err() {
                            return;
                        }
                    }
                    // age refuses a chunk whose tag does not match or a stream cut short.
                    Err(_) => {
                        let _ = tx.blocking_send(Err(BackupError::Corrupt(format!(
                            "{shown} does not decrypt: altered or truncated"
                        ))));
                        return;
                    }
                }
            }
        })
        .map_err(|err| BackupError::Objects(format!("the reader thread: {err}")))?;
    Ok(rx)
}

/// Parses one line read back.
pub fn parse_line(line: &[u8]) -> Result<Line, BackupError> {
    let corrupt = |what: &str| BackupError::Corrupt(format!("{what} cannot be read"));
    match line.first() {
        Some(b'[') => serde_json::from_slice(line).map(Line::Row).map_err(|_| corrupt("a row")),
        Some(b'{') => {
            serde_json::from_slice(line).map(Line::Record).map_err(|_| corrupt("a record"))
        }
        _ => Err(corrupt("a line")),
    }
}
