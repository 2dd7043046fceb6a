//! Settings of what Bulwark keeps outside its database: backups, the object store of
//! documents, and the rules documents are accepted under.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Parser, Profile, parse_range, parse_retention, parse_switch};
use crate::crypto::Secret;

/// Backups (see `backup`) and the shred ledger they honour.
#[derive(Debug, Clone)]
pub struct BackupConfig {
    pub recipients: Vec<age::x25519::Recipient>,
    pub schedule: Option<crate::backup::Schedule>,
    /// A directory (dated archives, the newest `keep` kept), a file, or `s3://BUCKET/KEY`
    /// (a key ending in `/`: dated archives under that prefix).
    pub to: crate::backup::Location,
    pub keep: usize,
    pub shred_ledger: PathBuf,
}

pub(super) fn backup(p: &mut Parser<'_>, data_dir: &Path) -> BackupConfig {
    let backup = BackupConfig {
        recipients: p
            .optional("BULWARK_BACKUP_RECIPIENTS", |v| {
                v.split(',')
                    .map(|r| r.trim().parse().map_err(|_| "not an age public key (age1…)".into()))
                    .collect()
            })
            .unwrap_or_default(),
        schedule: p.optional("BULWARK_BACKUP_SCHEDULE", crate::backup::Schedule::parse),
        to: p
            .optional("BULWARK_BACKUP_TO", crate::backup::Location::parse)
            .unwrap_or_else(|| crate::backup::Location::File(data_dir.join("backups"))),
        keep: p.parse("BULWARK_BACKUP_KEEP", |v| parse_range(v, 1, 10_000).map(|n| n as usize)),
        shred_ledger: p
            .optional("BULWARK_SHRED_LEDGER", |v| Ok(PathBuf::from(v)))
            .unwrap_or_else(|| data_dir.join("shred-ledger.jsonl")),
    };
    if backup.schedule.is_some() && backup.recipients.is_empty() {
        p.problem("BULWARK_BACKUP_SCHEDULE needs BULWARK_BACKUP_RECIPIENTS (backups are always encrypted)");
    }
    backup
}

/// Where document contents go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageUrl {
    File(PathBuf),
    S3 { bucket: String, prefix: String },
}

#[derive(Debug)]
pub struct StorageConfig {
    pub url: StorageUrl,
    pub s3_endpoint: Option<String>,
    pub s3_region: String,
    pub s3_access_key_id: Option<String>,
    pub s3_secret_access_key: Option<Secret<String>>,
    pub s3_force_path_style: bool,
    /// Plain `http://` endpoints (development only).
    pub allow_http: bool,
    /// Extra trusted roots for the endpoint (`BULWARK_S3_CA_FILE`), PEM.
    pub s3_ca_pem: Option<Vec<u8>>,
}

pub(super) fn storage(p: &mut Parser<'_>, env: Profile, data_dir: &Path) -> StorageConfig {
    let url = p
        .optional("BULWARK_STORAGE_URL", parse_storage_url)
        .unwrap_or_else(|| StorageUrl::File(data_dir.join("documents")));
    let s3_endpoint = p.optional("BULWARK_S3_ENDPOINT", |v| {
        url::Url::parse(v)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .map(|_| v.trim_end_matches('/').to_owned())
            .ok_or_else(|| "must be an http(s):// URL".to_owned())
    });
    if !env.is_development() && s3_endpoint.as_deref().is_some_and(|e| !e.starts_with("https://")) {
        p.problem("BULWARK_S3_ENDPOINT must be https:// outside development");
    }
    let config = StorageConfig {
        s3_region: p.parse("BULWARK_S3_REGION", |v| Ok(v.to_owned())),
        s3_access_key_id: p.optional("BULWARK_S3_ACCESS_KEY_ID", |v| Ok(v.to_owned())),
        s3_secret_access_key: p.secret_text("BULWARK_S3_SECRET_ACCESS_KEY"),
        s3_force_path_style: p.parse("BULWARK_S3_FORCE_PATH_STYLE", parse_switch),
        allow_http: env.is_development(),
        s3_ca_pem: p.optional("BULWARK_S3_CA_FILE", read_pem_certificates),
        s3_endpoint,
        url,
    };
    if matches!(config.url, StorageUrl::S3 { .. })
        && config.s3_access_key_id.is_some() != config.s3_secret_access_key.is_some()
    {
        p.problem("BULWARK_S3_ACCESS_KEY_ID and BULWARK_S3_SECRET_ACCESS_KEY must be set together");
    }
    config
}

/// The file's bytes, when they hold one or more PEM certificates that parse as trust anchors
/// (the client's own PEM reader only decodes the base64: a damaged file would pass it).
pub(super) fn read_pem_certificates(path: &str) -> Result<Vec<u8>, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    let pem = std::fs::read(path).map_err(|e| format!("{path} cannot be read ({})", e.kind()))?;
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(&pem) {
        let certificate = certificate.map_err(|_| format!("{path} is not valid PEM"))?;
        roots.add(certificate).map_err(|_| format!("{path} holds a damaged certificate"))?;
    }
    if roots.is_empty() {
        return Err(format!("{path} holds no PEM certificate"));
    }
    Ok(pem)
}

fn parse_storage_url(value: &str) -> Result<StorageUrl, String> {
    if let Some(path) = value.strip_prefix("file://") {
        if path.is_empty() {
            return Err("file:// needs a path".into());
        }
        return Ok(StorageUrl::File(PathBuf::from(path)));
    }
    if let Some(rest) = value.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid {
            return Err("s3://BUCKET[/PREFIX] needs a valid bucket name".into());
        }
        return Ok(StorageUrl::S3 {
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
        });
    }
    Err("use file://PATH or s3://BUCKET[/PREFIX]".into())
}

/// A kind of document the allowlist can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentType {
    Pdf,
    Png,
    Jpeg,
    Gif,
    Webp,
    Text,
    Csv,
    Docx,
    Xlsx,
    Pptx,
    Odt,
    Ods,
}

impl DocumentType {
    pub const ALL: &'static [(&'static str, DocumentType, &'static str)] = &[
        ("pdf", DocumentType::Pdf, "application/pdf"),
        ("png", DocumentType::Png, "image/png"),
        ("jpeg", DocumentType::Jpeg, "image/jpeg"),
        ("gif", DocumentType::Gif, "image/gif"),
        ("webp", DocumentType::Webp, "image/webp"),
        ("text", DocumentType::Text, "text/plain"),
        ("csv", DocumentType::Csv, "text/csv"),
        (
            "docx",
            DocumentType::Docx,
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        (
            "xlsx",
            DocumentType::Xlsx,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        (
            "pptx",
            DocumentType::Pptx,
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        ),
        ("odt", DocumentType::Odt, "application/vnd.oasis.opendocument.text"),
        ("ods", DocumentType::Ods, "application/vnd.oasis.opendocument.spreadsheet"),
    ];

    pub fn mime(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, t, _)| *t == self)
            .map_or("application/octet-stream", |(_, _, m)| m)
    }
}

#[derive(Debug, Clone)]
pub struct DocumentConfig {
    pub max_bytes: u64,
    pub types: Vec<DocumentType>,
    pub retention: Option<Duration>,
    /// clamd's TCP address (`host:port`); unset: uploads are stored `unscanned`.
    pub clamd: Option<String>,
}

pub(super) fn documents(p: &mut Parser<'_>) -> DocumentConfig {
    DocumentConfig {
        max_bytes: p.parse("BULWARK_DOCUMENT_MAX_BYTES", |v| {
            v.parse::<u64>()
                .ok()
                .filter(|n| (1..=(1 << 40)).contains(n))
                .ok_or_else(|| "bytes, from 1 to 1 TiB".into())
        }),
        types: p.parse("BULWARK_DOCUMENT_TYPES", |v| {
            v.split(',')
                .map(|name| {
                    let name = name.trim().to_ascii_lowercase();
                    DocumentType::ALL
                        .iter()
                        .find(|(n, _, _)| *n == name)
                        .map(|(_, t, _)| *t)
                        .ok_or_else(|| format!("`{name}` is not a type (pdf, png, jpeg, gif, webp, text, csv, docx, xlsx, pptx, odt, ods)"))
                })
                .collect()
        }),
        retention: p.parse("BULWARK_RETENTION_DOCUMENTS", parse_retention),
        clamd: p.optional("BULWARK_CLAMD_ADDRESS", |v| {
            v.rsplit_once(':')
                .filter(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
                .map(|_| v.to_owned())
                .ok_or_else(|| "use host:port".into())
        }),
    }
}
