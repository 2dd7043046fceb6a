//! Master keys: the current one wraps (encrypts) tenant data keys and derives purpose keys;
//! older ones only unwrap, so a master key rotates without downtime (`bulwark keys
//! rotate-master` re-wraps every data key under the current one, after which the old key
//! can leave the configuration).
//!
//! Wrapped data key: `0x01 ‖ len(master id) ‖ master id ‖ nonce ‖ ciphertext ‖ tag`, with
//! `bulwark:dek:v1:<tenant>:<master id>` as associated data, so a wrapped key copied to
//! another tenant does not unwrap.

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::Secret;
use super::aead::{self, AeadError};
use crate::config::MasterKey;
use crate::ids::TenantId;

const WRAP_VERSION: u8 = 1;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("no master key is configured")]
    NoMasterKey,
    #[error("the master key `{0}` is not configured")]
    UnknownMasterKey(String),
    #[error("a wrapped key is malformed")]
    Malformed,
    #[error(transparent)]
    Aead(#[from] AeadError),
}

struct Master {
    id: String,
    key: Secret<[u8; 32]>,
}

pub struct KeyRing {
    /// The first is current.
    masters: Vec<Master>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.masters.iter().map(|m| m.id.as_str()).collect();
        f.debug_struct("KeyRing").field("master_ids", &ids).finish()
    }
}

impl KeyRing {
    pub fn new(masters: &[MasterKey]) -> Result<KeyRing, KeyError> {
        if masters.is_empty() {
            return Err(KeyError::NoMasterKey);
        }
        Ok(KeyRing {
            masters: masters
                .iter()
                .map(|m| Master { id: m.id.clone(), key: Secret::new(*m.key.expose()) })
                .collect(),
        })
    }

    pub fn current_id(&self) -> &str {
        // `new` refuses an empty list.
        self.masters.first().map_or("", |m| m.id.as_str())
    }

    fn master(&self, id: &str) -> Result<&Master, KeyError> {
        self.masters
            .iter()
            .find(|m| m.id == id)
            .ok_or_else(|| KeyError::UnknownMasterKey(id.to_owned()))
    }

    fn current(&self) -> Result<&Master, KeyError> {
        self.masters.first().ok_or(KeyError::NoMasterKey)
    }

    fn wrap_aad(tenant: TenantId, master_id: &str) -> Vec<u8> {
        format!("bulwark:dek:v1:{tenant}:{master_id}").into_bytes()
    }

    /// Encrypts a tenant key under the current master key.
    pub fn wrap(&self, tenant: TenantId, key: &Secret<[u8; 32]>) -> Result<Vec<u8>, KeyError> {
        let master = self.current()?;
        let aad = Self::wrap_aad(tenant, &master.id);
        framed(&master.id, &aead::seal(master.key.expose(), &aad, key.expose()))
    }

    /// The master key id a wrapped key names.
    pub fn wrapped_by(wrapped: &[u8]) -> Result<&str, KeyError> {
        Ok(unframed(wrapped)?.0)
    }

    pub fn unwrap(&self, tenant: TenantId, wrapped: &[u8]) -> Result<Secret<[u8; 32]>, KeyError> {
        let (id, sealed) = unframed(wrapped)?;
        let master = self.master(id)?;
        let plain = aead::open(master.key.expose(), &Self::wrap_aad(tenant, id), sealed)?;
        let key: [u8; 32] = plain.as_slice().try_into().map_err(|_| KeyError::Malformed)?;
        Ok(Secret::new(key))
    }

    /// A key for one purpose (e.g. stored idempotent responses), derived with HKDF-SHA256
    /// from the current master key; returns its master key id too.
    pub fn derive_current(&self, purpose: &str) -> Result<(String, Secret<[u8; 32]>), KeyError> {
        let master = self.current()?;
        Ok((master.id.clone(), derive(&master.key, purpose)))
    }

    pub fn derive_with(
        &self,
        master_id: &str,
        purpose: &str,
    ) -> Result<Secret<[u8; 32]>, KeyError> {
        Ok(derive(&self.master(master_id)?.key, purpose))
    }

    /// An Ed25519 signing key derived for `purpose` from the current master key (`None`) or
    /// a named one, with that master key's id: signed records kept outside the database
    /// (audit checkpoints, the shred ledger) name the key they were signed under.
    pub fn signing_pair(
        &self,
        purpose: &str,
        master_id: Option<&str>,
    ) -> Result<(String, ring::signature::Ed25519KeyPair), KeyError> {
        let (id, seed) = match master_id {
            None => self.derive_current(purpose)?,
            Some(id) => (id.to_owned(), self.derive_with(id, purpose)?),
        };
        // Any 32 bytes are an Ed25519 seed; `from_seed_unchecked` fails on a wrong length only.
        let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(seed.expose())
            .map_err(|_| KeyError::Malformed)?;
        Ok((id, pair))
    }

    /// HMAC-SHA256 of `data` under a purpose key of the current master: a keyed, stable
    /// pseudonym (lockout counters of unknown email addresses).
    pub fn derive_mac(&self, purpose: &str, data: &[u8]) -> [u8; 32] {
        use hmac::{KeyInit as _, Mac as _};
        // Invariant: `new` refuses an empty ring, so a current master always exists.
        let master = self.current().expect("a key ring holds at least one master key");
        let key = derive(&master.key, purpose);
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key.expose())
            .expect("HMAC-SHA256 accepts a key of any length");
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// Seals platform data that belongs to no tenant key (TOTP seeds) under a purpose key of
    /// the current master: the same layout as a wrapped key.
    pub fn seal(&self, purpose: &str, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
        let master = self.current()?;
        let key = derive(&master.key, purpose);
        framed(&master.id, &aead::seal(key.expose(), aad, plaintext))
    }

    pub fn open(
        &self,
        purpose: &str,
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let (id, body) = unframed(sealed)?;
        let key = derive(&self.master(id)?.key, purpose);
        Ok(aead::open(key.expose(), aad, body)?)
    }
}

/// A sealed value framed with the id of the master key it was sealed under (a wrapped key,
/// a platform secret): version byte, id length, id, then the AEAD output.
fn framed(master_id: &str, sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
    let id = master_id.as_bytes();
    let id_len = u8::try_from(id.len()).map_err(|_| KeyError::Malformed)?;
    let mut out = Vec::with_capacity(2 + id.len() + sealed.len());
    out.push(WRAP_VERSION);
    out.push(id_len);
    out.extend_from_slice(id);
    out.extend_from_slice(sealed);
    Ok(out)
}

/// The master key id a framed value names, and what was sealed.
fn unframed(framed: &[u8]) -> Result<(&str, &[u8]), KeyError> {
    let [WRAP_VERSION, len, rest @ ..] = framed else { return Err(KeyError::Malformed) };
    let len = usize::from(*len);
    let id = rest.get(..len).ok_or(KeyError::Malformed)?;
    let id = std::str::from_utf8(id).map_err(|_| KeyError::Malformed)?;
    Ok((id, rest.get(len..).ok_or(KeyError::Malformed)?))
}

fn derive(master: &Secret<[u8; 32]>, purpose: &str) -> Secret<[u8; 32]> {
    let hkdf = Hkdf::<Sha256>::new(Some(b"bulwark-purpose-key-v1"), master.expose());
    let mut out = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's output limit; expand cannot fail.
    let _ = hkdf.expand(purpose.as_bytes(), out.as_mut_slice());
    Secret::new(*out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master(id: &str, byte: u8) -> MasterKey {
        MasterKey { id: id.into(), key: Secret::new([byte; 32]) }
    }

    #[test]
    fn a_wrapped_key_unwraps_for_its_tenant_only() {
        let ring = KeyRing::new(&[master("m1", 1)]).expect("ring");
        let tenant = TenantId::new();
        let key = Secret::new([9u8; 32]);
        let wrapped = ring.wrap(tenant, &key).expect("wrap");
        assert_eq!(KeyRing::wrapped_by(&wrapped), Ok("m1"));
        assert_eq!(ring.unwrap(tenant, &wrapped).expect("unwrap").expose(), key.expose());
        assert!(ring.unwrap(TenantId::new(), &wrapped).is_err(), "another tenant's AAD");
        assert!(ring.unwrap(tenant, &wrapped[..5]).is_err());
        // Debug shows the ids and nothing else: not the bytes, in any notation.
        assert_eq!(format!("{ring:?}"), r#"KeyRing { master_ids: ["m1"] }"#);
    }

    #[test]
    fn old_masters_unwrap_and_dropped_ones_cannot() {
        let old = KeyRing::new(&[master("m1", 1)]).expect("ring");
        let tenant = TenantId::new();
        let wrapped = old.wrap(tenant, &Secret::new([3; 32])).expect("wrap");
        let rotated = KeyRing::new(&[master("m2", 2), master("m1", 1)]).expect("ring");
        assert!(rotated.unwrap(tenant, &wrapped).is_ok());
        let rewrapped =
            rotated.wrap(tenant, &rotated.unwrap(tenant, &wrapped).expect("unwrap")).expect("wrap");
        assert_eq!(KeyRing::wrapped_by(&rewrapped), Ok("m2"));
        let dropped = KeyRing::new(&[master("m2", 2)]).expect("ring");
        assert_eq!(
            dropped.unwrap(tenant, &wrapped).err(),
            Some(KeyError::UnknownMasterKey("m1".into()))
        );
        assert!(dropped.unwrap(tenant, &rewrapped).is_ok());
    }

    #[test]
    fn sealed_platform_data_opens_with_its_purpose_and_aad_only() {
        let ring = KeyRing::new(&[master("m1", 1)]).expect("ring");
        let sealed = ring.seal("totp", b"user-1", b"seed").expect("seal");
        assert_eq!(ring.open("totp", b"user-1", &sealed).expect("open").as_slice(), b"seed");
        assert!(ring.open("totp", b"user-2", &sealed).is_err());
        assert!(ring.open("other", b"user-1", &sealed).is_err());
        let rotated = KeyRing::new(&[master("m2", 2), master("m1", 1)]).expect("ring");
        assert!(rotated.open("totp", b"user-1", &sealed).is_ok(), "older masters still open");
    }

    #[test]
    fn derived_keys_differ_by_purpose_and_master() {
        let ring = KeyRing::new(&[master("m1", 1)]).expect("ring");
        let (id, a) = ring.derive_current("idempotency").expect("derive");
        assert_eq!(id, "m1");
        let b = ring.derive_with("m1", "other").expect("derive");
        assert_ne!(a.expose(), b.expose());
        assert_eq!(ring.derive_with("m1", "idempotency").expect("derive").expose(), a.expose());
    }
}
