//! AES-256-GCM with a fresh random 96-bit nonce per message: `nonce ‖ ciphertext ‖ tag`.
//! The only symmetric encryption in Bulwark; everything that encrypts goes through here.

use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::Zeroizing;

use super::random_bytes;

pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AeadError {
    /// Wrong key, wrong associated data, or modified bytes: the tag does not verify.
    #[error("the ciphertext does not authenticate")]
    Unauthentic,
    #[error("the ciphertext is malformed")]
    Malformed,
}

/// A key with its AES key schedule and GHASH key computed once: preparing them cost more
/// than sealing or opening a field. Zeroized on drop (aes-gcm's `zeroize` feature).
pub struct Cipher(Aes256Gcm);

impl Cipher {
    pub fn new(key: &[u8; 32]) -> Cipher {
        Cipher(Aes256Gcm::new(key.into()))
    }

    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let nonce_bytes = random_bytes::<NONCE_LEN>();
        let nonce = Nonce::from(nonce_bytes);
        // Invariant: AES-GCM encryption fails only for messages beyond its 64 GiB limit;
        // every caller seals a field, a key or a token, bounded by the request body limit.
        let ciphertext = self
            .0
            .encrypt(&nonce, Payload { msg: plaintext, aad })
            .expect("AES-GCM seals any message under 64 GiB");
        let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&ciphertext);
        out
    }

    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, AeadError> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(AeadError::Malformed);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| AeadError::Malformed)?;
        self.0
            .decrypt(&Nonce::from(nonce), Payload { msg: ciphertext, aad })
            .map(Zeroizing::new)
            .map_err(|_| AeadError::Unauthentic)
    }
}

pub fn seal(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    Cipher::new(key).seal(aad, plaintext)
}

pub fn open(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, AeadError> {
    Cipher::new(key).open(aad, sealed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    #[test]
    fn round_trips_with_the_same_key_and_aad_only() {
        let sealed = seal(&KEY, b"aad", b"secret value");
        assert_eq!(open(&KEY, b"aad", &sealed).expect("opens").as_slice(), b"secret value");
        assert_eq!(open(&KEY, b"other aad", &sealed), Err(AeadError::Unauthentic));
        assert_eq!(open(&[8; 32], b"aad", &sealed), Err(AeadError::Unauthentic));
        let mut flipped = sealed.clone();
        flipped[NONCE_LEN + 1] ^= 1;
        assert_eq!(open(&KEY, b"aad", &flipped), Err(AeadError::Unauthentic));
        assert_eq!(open(&KEY, b"aad", &sealed[..10]), Err(AeadError::Malformed));
    }

    #[test]
    fn every_message_gets_a_fresh_nonce() {
        let a = seal(&KEY, b"", b"same");
        let b = seal(&KEY, b"", b"same");
        assert_ne!(a[..NONCE_LEN], b[..NONCE_LEN]);
        assert_ne!(a, b);
    }
}
