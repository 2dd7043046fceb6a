//! The object store of document contents: a local directory or an S3-compatible bucket, both
//! through the `object_store` crate (its S3 client signs requests; nothing hand-written).
//! Objects are named `PREFIX/TENANT/DOCUMENT`: ids only, never a name or a title, and they
//! hold ciphertext only.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt as _, TryStreamExt as _};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt as _, WriteMultipart};

use crate::config::{StorageConfig, StorageUrl};
use crate::ids::{DocumentId, TenantId};

/// Parts of a multipart upload (S3's minimum, except the last).
const PART: usize = 5 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
#[error("the object store: {0}")]
pub struct StorageError(String);

impl From<object_store::Error> for StorageError {
    fn from(err: object_store::Error) -> Self {
        // The store's message names the object path (ids only) and the cause; never a key.
        StorageError(err.to_string())
    }
}

#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    pub kind: &'static str,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage").field("kind", &self.kind).finish_non_exhaustive()
    }
}

impl Storage {
    pub fn open(config: &StorageConfig) -> Result<Storage, StorageError> {
        match &config.url {
            StorageUrl::File(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StorageError(format!("{} cannot be created ({})", dir.display(), e.kind()))
                })?;
                let store = object_store::local::LocalFileSystem::new_with_prefix(dir)?;
                Ok(Storage { store: Arc::new(store), prefix: ObjectPath::default(), kind: "file" })
            }
            StorageUrl::S3 { bucket, prefix } => Storage::bucket(config, bucket, prefix),
        }
    }

    /// An S3-compatible bucket with the settings of `config` (also where `backup` writes an
    /// `s3://` archive).
    pub fn bucket(
        config: &StorageConfig,
        bucket: &str,
        prefix: &str,
    ) -> Result<Storage, StorageError> {
        // One TLS provider for every client in the process: ring.
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
        let mut builder = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(&config.s3_region)
            .with_virtual_hosted_style_request(!config.s3_force_path_style)
            .with_allow_http(config.allow_http);
        if let Some(endpoint) = &config.s3_endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(pem) = &config.s3_ca_pem {
            // The client options replace the builder's: allow_http goes in again.
            let mut options = object_store::ClientOptions::new().with_allow_http(config.allow_http);
            for root in object_store::Certificate::from_pem_bundle(pem)? {
                options = options.with_root_certificate(root);
            }
            builder = builder.with_client_options(options);
        }
        if let (Some(id), Some(secret)) = (&config.s3_access_key_id, &config.s3_secret_access_key) {
            builder = builder.with_access_key_id(id).with_secret_access_key(secret.expose());
        }
        Ok(Storage {
            store: Arc::new(builder.build()?),
            prefix: ObjectPath::from(prefix),
            kind: "s3",
        })
    }

    /// The object `key` under this store's prefix.
    pub fn object(&self, key: &str) -> ObjectPath {
        ObjectPath::from_iter(self.prefix.parts().chain(ObjectPath::from(key).parts()))
    }

    pub fn path(&self, tenant: TenantId, document: DocumentId) -> ObjectPath {
        self.prefix.clone().join(tenant.to_string()).join(document.to_string())
    }

    /// A streaming writer: the object appears only when `finish` succeeds.
    pub async fn writer(&self, path: &ObjectPath) -> Result<WriteMultipart, StorageError> {
        let upload = self.store.put_multipart(path).await?;
        Ok(WriteMultipart::new_with_chunk_size(upload, PART))
    }

    /// The object's size and a stream of its bytes.
    pub async fn read(
        &self,
        path: &ObjectPath,
    ) -> Result<(u64, BoxStream<'static, Result<Bytes, StorageError>>), StorageError> {
        let got = self.store.get(path).await?;
        let size = got.meta.size;
        Ok((size, got.into_stream().map_err(StorageError::from).boxed()))
    }

    /// The whole object's size and a stream of the bytes `range` of it.
    pub async fn read_range(
        &self,
        path: &ObjectPath,
        range: std::ops::Range<u64>,
    ) -> Result<(u64, BoxStream<'static, Result<Bytes, StorageError>>), StorageError> {
        let options = object_store::GetOptions {
            range: Some(object_store::GetRange::Bounded(range)),
            ..Default::default()
        };
        let got = self.store.get_opts(path, options).await?;
        let size = got.meta.size;
        Ok((size, got.into_stream().map_err(StorageError::from).boxed()))
    }

    /// Like [`Storage::read`], but `None` when there is no such object.
    pub async fn read_existing(
        &self,
        path: &ObjectPath,
    ) -> Result<Option<(u64, BoxStream<'static, Result<Bytes, StorageError>>)>, StorageError> {
        match self.store.get(path).await {
            Ok(got) => {
                let size = got.meta.size;
                Ok(Some((size, got.into_stream().map_err(StorageError::from).boxed())))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// Deletes an object; one already gone is fine.
    pub async fn delete(&self, path: &ObjectPath) -> Result<(), StorageError> {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    /// Whether an object exists (tests and the deletion worker's checks).
    pub async fn exists(&self, path: &ObjectPath) -> Result<bool, StorageError> {
        match self.store.head(path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }
}
