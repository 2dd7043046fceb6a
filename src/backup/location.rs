//! Where an archive lives: a file (or a directory of dated files) or an S3-compatible object,
//! `s3://BUCKET/KEY` (a key ending in `/` gets a dated name), reached with the
//! `BULWARK_S3_*` settings of the document store. The encrypting and decrypting threads of
//! `archive` see a plain `Write` or `Read` either way: for S3 the bytes cross a bounded
//! channel to a task that streams a multipart upload (the object appears only when it is
//! complete) or a download.

use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;

use bytes::Bytes;
use futures_util::StreamExt as _;
use tokio::sync::mpsc;

use super::BackupError;
use crate::config::StorageConfig;
use crate::documents::storage::Storage;

/// Bytes per piece sent to an upload.
const PIECE: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    File(PathBuf),
    S3 { bucket: String, key: String },
}

impl Location {
    /// `s3://BUCKET/KEY` or a path (clap's value parser).
    pub fn parse(value: &str) -> Result<Location, String> {
        let Some(rest) = value.strip_prefix("s3://") else {
            return Ok(Location::File(PathBuf::from(value)));
        };
        match rest.split_once('/') {
            Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => {
                Ok(Location::S3 { bucket: bucket.to_owned(), key: key.to_owned() })
            }
            _ => Err("an S3 location is s3://BUCKET/KEY (or s3://BUCKET/PREFIX/)".into()),
        }
    }

    /// Where a new archive goes: a directory or a key ending in `/` gets a dated name.
    pub fn dated(&self, name: &str) -> Location {
        match self {
            Location::File(dir) if dir.is_dir() => Location::File(dir.join(name)),
            Location::S3 { bucket, key } if key.ends_with('/') => {
                Location::S3 { bucket: bucket.clone(), key: format!("{key}{name}") }
            }
            other => other.clone(),
        }
    }

    fn bucket(config: &StorageConfig, bucket: &str) -> Result<Storage, BackupError> {
        Storage::bucket(config, bucket, "").map_err(|err| BackupError::Objects(err.to_string()))
    }

    /// Opens the destination of a new archive.
    pub fn output(&self, config: &StorageConfig) -> Result<Output, BackupError> {
        match self {
            Location::File(target) => {
                use std::os::unix::fs::OpenOptionsExt as _;
                let mut partial = target.as_os_str().to_owned();
                partial.push(".partial");
                let partial = PathBuf::from(partial);
                // A stale partial file goes; the new one is created, never opened: a link
                // planted under its name is refused, not followed, and the mode applies.
                match std::fs::remove_file(&partial) {
                    Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                        return Err(BackupError::io(&partial, err));
                    }
                    _ => {}
                }
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&partial)
                    .map_err(|err| BackupError::io(&partial, err))?;
                Ok(Output::File { file: BufWriter::new(file), partial, target: target.clone() })
            }
            Location::S3 { bucket, key } => {
                let storage = Location::bucket(config, bucket)?;
                let path = storage.object(key);
                let (tx, mut rx) = mpsc::channel::<Piece>(4);
                let upload = tokio::spawn(async move {
                    let failed =
                        |err: &dyn std::fmt::Display| BackupError::Objects(err.to_string());
                    let mut upload = storage.writer(&path).await.map_err(|e| failed(&e))?;
                    while let Some(piece) = rx.recv().await {
                        match piece {
                            Piece::Data(bytes) => {
                                upload.wait_for_capacity(2).await.map_err(|e| failed(&e))?;
                                upload.put(bytes);
                            }
                            Piece::Commit => {
                                upload.finish().await.map_err(|e| failed(&e))?;
                                return Ok(());
                            }
                        }
                    }
                    // The writer stopped without committing: nothing is left behind.
                    let _ = upload.abort().await;
                    Err(BackupError::WriterGone)
                });
                let runtime = tokio::runtime::Handle::current();
                Ok(Output::S3 { tx, buffer: Vec::with_capacity(PIECE), upload, runtime })
            }
        }
    }

    /// Opens an archive for reading.
    pub async fn input(&self, config: Option<&StorageConfig>) -> Result<Input, BackupError> {
        match self {
            Location::File(path) => {
                std::fs::File::open(path).map(Input::File).map_err(|err| BackupError::io(path, err))
            }
            Location::S3 { bucket, key } => {
                let Some(config) = config else {
                    return Err(BackupError::Objects("no S3 settings".into()));
                };
                let storage = Location::bucket(config, bucket)?;
                let (_, mut source) = storage
                    .read(&storage.object(key))
                    .await
                    .map_err(|err| BackupError::Objects(err.to_string()))?;
                let (tx, rx) = mpsc::channel(4);
                tokio::spawn(async move {
                    while let Some(bytes) = source.next().await {
                        let bytes = bytes.map_err(|err| std::io::Error::other(err.to_string()));
                        if tx.send(bytes).await.is_err() {
                            return;
                        }
                    }
                });
                Ok(Input::S3 { rx, current: Bytes::new() })
            }
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::File(path) => write!(f, "{}", path.display()),
            Location::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
        }
    }
}

pub enum Piece {
    Data(Bytes),
    Commit,
}

/// The encrypting thread's destination.
pub enum Output {
    /// Written as `….partial`, renamed into place once complete and synced.
    File { file: BufWriter<std::fs::File>, partial: PathBuf, target: PathBuf },
    /// Pieces for the upload task; dropped without `commit`, the upload is aborted.
    S3 {
        tx: mpsc::Sender<Piece>,
        buffer: Vec<u8>,
        upload: tokio::task::JoinHandle<Result<(), BackupError>>,
        runtime: tokio::runtime::Handle,
    },
}

impl Output {
    /// What to remove if the archive is abandoned (a local partial file).
    pub fn partial(&self) -> Option<PathBuf> {
        match self {
            Output::File { partial, .. } => Some(partial.clone()),
            Output::S3 { .. } => None,
        }
    }

    /// Makes the complete archive appear under its name (blocking: the encrypting thread).
    pub fn commit(mut self) -> Result<(), BackupError> {
        self.flush().map_err(|err| BackupError::Objects(err.to_string()))?;
        match self {
            Output::File { file, partial, target } => {
                let file =
                    file.into_inner().map_err(|e| BackupError::io(&partial, e.into_error()))?;
                file.sync_all().map_err(|err| BackupError::io(&partial, err))?;
                std::fs::rename(&partial, &target).map_err(|err| BackupError::io(&target, err))
            }
            Output::S3 { tx, upload, runtime, .. } => {
                tx.blocking_send(Piece::Commit).map_err(|_| BackupError::WriterGone)?;
                drop(tx);
                runtime.block_on(upload).map_err(|_| BackupError::WriterGone)?
            }
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Output::File { file, .. } => file.write(buf),
            Output::S3 { buffer, .. } => {
                buffer.extend_from_slice(buf);
                if buffer.len() >= PIECE {
                    self.flush()?;
                }
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Output::File { file, .. } => file.flush(),
            Output::S3 { tx, buffer, .. } => {
                if buffer.is_empty() {
                    return Ok(());
                }
                let piece = Bytes::from(std::mem::replace(buffer, Vec::with_capacity(PIECE)));
                tx.blocking_send(Piece::Data(piece))
                    .map_err(|_| std::io::Error::other("the upload stopped"))
            }
        }
    }
}

/// The decrypting thread's source.
pub enum Input {
    File(std::fs::File),
    S3 { rx: mpsc::Receiver<std::io::Result<Bytes>>, current: Bytes },
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Input::File(file) => file.read(buf),
            Input::S3 { rx, current } => {
                while current.is_empty() {
                    match rx.blocking_recv() {
                        Some(bytes) => *current = bytes?,
                        None => return Ok(0),
                    }
                }
                let n = buf.len().min(current.len());
                buf[..n].copy_from_slice(&current.split_to(n));
                Ok(n)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Location;

    #[test]
    fn locations_parse_and_date() {
        assert_eq!(
            Location::parse("s3://backups/daily/").expect("s3"),
            Location::S3 { bucket: "backups".into(), key: "daily/".into() }
        );
        assert!(Location::parse("s3://backups").is_err());
        assert!(Location::parse("s3:///key").is_err());
        assert_eq!(
            Location::parse("s3://b/daily/").expect("s3").dated("x.age").to_string(),
            "s3://b/daily/x.age"
        );
        assert_eq!(
            Location::parse("s3://b/one.age").expect("s3").dated("x.age").to_string(),
            "s3://b/one.age"
        );
        assert_eq!(
            Location::parse("/tmp/a.age").expect("file"),
            Location::File("/tmp/a.age".into())
        );
    }
}
