//! DKIM keys of sending domains: generated here (RSA-2048, the size every receiver accepts),
//! published as `v=DKIM1; k=rsa; p=…`, and used by lettre's signer (`delivery`).

use base64::Engine as _;
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::pkcs8::{EncodePublicKey as _, LineEnding};
use zeroize::Zeroizing;

use crate::error::{DomainError, DomainResult};

/// A new key: the private half as PKCS#1 PEM (what lettre's signer reads), the public half
/// as the base64 SubjectPublicKeyInfo DKIM records carry.
pub struct NewKey {
    pub private_pem: Zeroizing<String>,
    pub public_base64: String,
}

const BITS: usize = 2048;

/// Generates a key off the runtime threads (tens of milliseconds of CPU).
pub async fn generate() -> DomainResult<NewKey> {
    tokio::task::spawn_blocking(|| {
        let mut rng = rand_core_06::OsRng;
        let private = rsa::RsaPrivateKey::new(&mut rng, BITS).map_err(internal)?;
        let private_pem = private.to_pkcs1_pem(LineEnding::LF).map_err(internal)?;
        let public = private.to_public_key().to_public_key_der().map_err(internal)?;
        Ok(NewKey {
            private_pem: Zeroizing::new(private_pem.to_string()),
            public_base64: base64::engine::general_purpose::STANDARD.encode(public.as_bytes()),
        })
    })
    .await
    .map_err(internal)?
}

fn internal(err: impl std::fmt::Display) -> DomainError {
    DomainError::Internal(format!("DKIM key: {err}"))
}

/// A fresh selector: `bw` and eight random hex digits (a rotation publishes a new one).
pub fn new_selector() -> String {
    let bytes: [u8; 4] = crate::crypto::random_bytes();
    format!("bw{}", crate::crypto::hex(&bytes))
}

/// The TXT record of a public key.
pub fn record(public_base64: &str) -> String {
    format!("v=DKIM1; k=rsa; p={public_base64}")
}

/// Whether a published TXT value carries this key (tags in any order, spaces ignored).
pub fn record_matches(published: &str, public_base64: &str) -> bool {
    let compact: String = published.chars().filter(|c| !c.is_whitespace()).collect();
    let mut tags = compact.split(';').filter_map(|tag| tag.split_once('='));
    tags.clone().any(|(k, v)| k == "v" && v == "DKIM1")
        && tags.any(|(k, v)| k == "p" && v == public_base64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_published_record_matches_only_its_own_key() {
        let record = record("MIIBIjAN");
        assert!(record_matches(&record, "MIIBIjAN"));
        assert!(record_matches("p=MIIB IjAN ; k=rsa; v=DKIM1", "MIIBIjAN"), "order and spaces");
        assert!(!record_matches(&record, "MIIBIjAO"));
        assert!(!record_matches("k=rsa; p=MIIBIjAN", "MIIBIjAN"), "not a DKIM1 record");
        assert!(new_selector().starts_with("bw") && new_selector().len() == 10);
    }
}
