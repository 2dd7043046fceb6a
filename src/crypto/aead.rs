//! AES-256-GCM with a fresh random 96-bit nonce per message: `nonce ‖ ciphertext ‖ tag`.
//! The only symmetric encryption in Bulwark; everything that encrypts goes through here.

use aes_gcm_ni::aead::{Aead as _, KeyInit as _, Payload};
use aes_gcm_ni::{Aes256Gcm, Key, Nonce};
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
/// than sealing or opening a field. Zeroized on drop (the `zeroize` features of aes, ghash
/// and polyval; see Cargo.toml for why this is aes-gcm 0.10).
pub struct Cipher(Aes256Gcm);

impl Cipher {
    pub fn new(key: &[u8; 32]) -> Cipher {
        let key: &Key<Aes256Gcm> = key.into();
        Cipher(Aes256Gcm::new(key))
    }

    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let nonce_bytes = random_bytes::<NONCE_LEN>();
        let nonce = &Nonce::from(nonce_bytes);
        // Invariant: AES-GCM encryption fails only for messages beyond its 64 GiB limit;
        // every caller seals a field, a key or a token, bounded by the request body limit.
        let ciphertext = self
            .0
            .encrypt(nonce, Payload { msg: plaintext, aad })
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

    /// The GCM specification's test case 16 (AES-256, with associated data): stored values
    /// stay readable whichever implementation of the standard opens them.
    #[test]
    fn opens_the_gcm_specification_vector() {
        fn hex(s: &str) -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
                .collect()
        }
        let key: [u8; 32] = hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
            .try_into()
            .expect("32 bytes");
        let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let sealed = hex(concat!(
            "cafebabefacedbaddecaf888",
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa",
            "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
            "76fc6ece0f4e1768cddf8853bb2d551b",
        ));
        let plain = hex(concat!(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72",
            "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
        ));
        assert_eq!(open(&key, &aad, &sealed).expect("opens").as_slice(), plain.as_slice());
    }

    #[test]
    fn every_message_gets_a_fresh_nonce() {
        let a = seal(&KEY, b"", b"same");
        let b = seal(&KEY, b"", b"same");
        assert_ne!(a[..NONCE_LEN], b[..NONCE_LEN]);
        assert_ne!(a, b);
    }
}
