//! Key material handling. Owns the `Secret` wrapper; the field-level envelope encryption and
//! the blind index live here too. Never implements a primitive itself: AES-GCM, HMAC and
//! SHA-2 come from RustCrypto.

pub mod aead;
pub mod field;
pub mod keyring;
pub mod provider_signatures;
mod secret;
pub mod standard_webhooks;
pub mod store;
pub mod stream;
pub mod tenant_keys;

pub use keyring::{KeyError, KeyRing};
pub use secret::Secret;
pub use tenant_keys::{KeySet, TenantKeyError, TenantKeys};

use rand::Rng as _;

/// Lower-case hex, for hashes shown to people and kept in text files.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// Bytes from the thread-local CSPRNG (ChaCha, seeded from the operating system), for keys,
/// nonces and tokens.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}
