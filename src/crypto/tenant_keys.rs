//! Each tenant's keys: data keys (versioned; the newest active one encrypts, older ones
//! decrypt until rotation has moved every value off them) and one blind-index key. Stored
//! wrapped by a master key in `tenant_keys`; unwrapped copies are cached per instance.
//!
//! Destroying a tenant's keys (tenant deletion) crypto-shreds every value of that tenant,
//! in the database and in every backup taken before.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::field::{self, FieldError, Place};
use super::keyring::{KeyError, KeyRing};
use super::store;
use super::{Secret, random_bytes};
use crate::clock::Timestamp;
use crate::ids::TenantId;
use crate::store::{AsRawTx, StoreError, SystemTx, TenantTx};

#[derive(Debug, thiserror::Error)]
pub enum TenantKeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Field(#[from] FieldError),
    /// The tenant's keys were destroyed (the tenant was deleted).
    #[error("the tenant's keys were destroyed")]
    Destroyed,
}

/// The unwrapped keys of one tenant.
pub struct KeySet {
    /// Data keys by version, prepared (see `aead::Cipher`).
    data: HashMap<u32, super::aead::Cipher>,
    current: u32,
    index: Arc<Secret<[u8; 32]>>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet").field("current", &self.current).finish_non_exhaustive()
    }
}

impl KeySet {
    pub fn current_version(&self) -> u32 {
        self.current
    }

    pub fn encrypt(&self, place: &Place<'_>, plaintext: &[u8]) -> Vec<u8> {
        // Invariant: `load` only builds sets whose `data` holds `current`.
        let cipher = self.data.get(&self.current).expect("a key set holds its current key");
        field::encrypt_with(cipher, self.current, place, plaintext)
    }

    pub fn decrypt_text(
        &self,
        place: &Place<'_>,
        stored: &[u8],
    ) -> Result<zeroize::Zeroizing<String>, FieldError> {
        field::text(self.decrypt(place, stored)?)
    }

    pub fn decrypt(
        &self,
        place: &Place<'_>,
        stored: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, FieldError> {
        field::decrypt_with(|v| self.data.get(&v), place, stored)
    }

    pub fn blind_index(&self, table: &str, column: &str, normalised: &str) -> Vec<u8> {
        field::blind_index(&self.index, table, column, normalised)
    }

    fn has(&self, version: u32) -> bool {
        self.data.contains_key(&version)
    }
}

/// Unwraps and caches tenant keys.
pub struct TenantKeys {
    ring: Arc<KeyRing>,
    cache: Mutex<HashMap<TenantId, (Arc<KeySet>, std::time::Instant)>>,
}

const CACHE_LIMIT: usize = 10_000;
/// Unwrapped keys not used this long leave memory (they reload on demand).
const IDLE_EVICTION: std::time::Duration = std::time::Duration::from_secs(600);

impl TenantKeys {
    pub fn new(ring: Arc<KeyRing>) -> TenantKeys {
        TenantKeys { ring, cache: Mutex::new(HashMap::new()) }
    }

    pub fn ring(&self) -> &KeyRing {
        &self.ring
    }

    /// Creates the first data key and the index key of a new tenant.
    pub async fn create_for(
        &self,
        tx: &mut SystemTx,
        tenant: TenantId,
        now: Timestamp,
    ) -> Result<(), TenantKeyError> {
        for purpose in [store::Purpose::Data, store::Purpose::Index] {
            let key = Secret::new(random_bytes::<32>());
            let wrapped = self.ring.wrap(tenant, &key)?;
            store::insert(tx, tenant, purpose, 1, &wrapped, self.ring.current_id(), now).await?;
        }
        Ok(())
    }

    /// The tenant's keys, read in its transaction; reloaded when the database names a current
    /// version this instance has not seen (another instance rotated). `hold`: for sealing, the
    /// current key is held until the transaction ends (see `store::current_data_version`).
    pub async fn for_tenant(
        &self,
        tx: &mut TenantTx,
        hold: bool,
    ) -> Result<Arc<KeySet>, TenantKeyError> {
        let tenant = tx.tenant_id();
        let current = store::current_data_version(tx, tenant, hold).await?;
        if current.is_none() && store::has_destroyed_keys(tx, tenant).await? {
            // The tenant was deleted (its keys destroyed), maybe by another instance: its
            // keys leave this instance's memory now, and nothing decrypts.
            self.forget(tenant);
            return Err(TenantKeyError::Destroyed);
        }
        if let (Some(current), Some(set)) = (current, self.cached(tenant))
            && set.current == current
            && set.has(current)
        {
            return Ok(set);
        }
        let set = Arc::new(self.load(tx, tenant).await?);
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(tenant, (set.clone(), std::time::Instant::now()));
        }
        Ok(set)
    }

    fn cached(&self, tenant: TenantId) -> Option<Arc<KeySet>> {
        let mut cache = self.cache.lock().ok()?;
        let (set, used) = cache.get_mut(&tenant)?;
        *used = std::time::Instant::now();
        Some(set.clone())
    }

    pub fn forget(&self, tenant: TenantId) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(&tenant);
        }
    }

    /// Drops keys idle longer than `IDLE_EVICTION` (run periodically).
    pub fn sweep(&self) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.retain(|_, (_, used)| used.elapsed() < IDLE_EVICTION);
        }
    }

    async fn load(
        &self,
        tx: &mut impl AsRawTx,
        tenant: TenantId,
    ) -> Result<KeySet, TenantKeyError> {
        let mut rows = store::live_keys(tx, tenant).await?;
        if rows.is_empty() && store::has_destroyed_keys(tx, tenant).await? {
            // Crypto-shredded: never give a deleted tenant new keys.
            return Err(TenantKeyError::Destroyed);
        }
        if rows.is_empty() {
            // A tenant created before keys existed: give it keys now.
            let now = Timestamp::now();
            for purpose in [store::Purpose::Data, store::Purpose::Index] {
                let key = Secret::new(random_bytes::<32>());
                let wrapped = self.ring.wrap(tenant, &key)?;
                store::insert(tx, tenant, purpose, 1, &wrapped, self.ring.current_id(), now)
                    .await?;
            }
            rows = store::live_keys(tx, tenant).await?;
        }
        let mut data = HashMap::new();
        let mut current = 0;
        let mut index = None;
        for row in rows {
            let Some(wrapped) = row.wrapped else { continue };
            let key = Arc::new(self.ring.unwrap(tenant, &wrapped)?);
            let version = u32::try_from(row.version).unwrap_or(0);
            match row.purpose.as_str() {
                "index" => index = Some(key),
                _ => {
                    if row.state == "active" && version > current {
                        current = version;
                    }
                    data.insert(version, super::aead::Cipher::new(key.expose()));
                }
            }
        }
        let index = index.ok_or(KeyError::Malformed)?;
        if !data.contains_key(&current) {
            return Err(KeyError::Malformed.into());
        }
        Ok(KeySet { data, current, index })
    }
}
