//! Field-level encryption of personal data, and the blind index that searches it.
//!
//! Stored value, version 1:
//!
//! ```text
//! 0x01 ‖ data-key version (u32, big endian) ‖ nonce (12) ‖ AES-256-GCM ciphertext ‖ tag (16)
//! associated data: "bulwark:field:v1|<tenant>|<table>|<column>|<row id>|<key version>"
//! ```
//!
//! The associated data binds a value to its tenant, table, column and row: a ciphertext
//! copied anywhere else fails to decrypt (an error, never another row's data). The key
//! version names which of the tenant's data keys (see `tenant_keys`) encrypted it, so keys
//! rotate while old values stay readable.
//!
//! Blind index: HMAC-SHA256 under the tenant's separate index key over
//! `<table>.<column>:<normalised value>`; equal values give equal indexes, nothing else
//! about the value is revealed to the database, and another tenant's index differs.

use hmac::{KeyInit as _, Mac as _};
use zeroize::Zeroizing;

use super::Secret;
use super::aead::{self, AeadError};
use crate::ids::TenantId;

pub const VERSION: u8 = 1;
const HEADER: usize = 1 + 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("the stored value has an unknown format")]
    Malformed,
    #[error("the stored value was encrypted with key version {0}, which is gone")]
    UnknownKey(u32),
    #[error("the stored value does not belong here (or was modified)")]
    Unauthentic,
    #[error("the decrypted value is not text")]
    NotText,
}

impl From<AeadError> for FieldError {
    fn from(err: AeadError) -> FieldError {
        match err {
            AeadError::Unauthentic => FieldError::Unauthentic,
            AeadError::Malformed => FieldError::Malformed,
        }
    }
}

/// Where a value lives; bound into its ciphertext.
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    pub tenant: TenantId,
    pub table: &'a str,
    pub column: &'a str,
    pub row: uuid::Uuid,
}

/// `bulwark:field:v1|{tenant}|{table}|{column}|{row}|{version}`, ids hyphenated in lower case.
/// Written piece by piece into one buffer: `format!` with two UUIDs was a third of a field's
/// decryption, and a list page opens hundreds of fields.
fn aad(place: &Place<'_>, version: u32) -> Vec<u8> {
    const PREFIX: &[u8] = b"bulwark:field:v1|";
    const UUID: usize = uuid::fmt::Hyphenated::LENGTH;
    let mut out =
        Vec::with_capacity(PREFIX.len() + 2 * UUID + place.table.len() + place.column.len() + 15);
    let mut id = [0u8; UUID];
    out.extend_from_slice(PREFIX);
    out.extend_from_slice(place.tenant.as_uuid().hyphenated().encode_lower(&mut id).as_bytes());
    out.push(b'|');
    out.extend_from_slice(place.table.as_bytes());
    out.push(b'|');
    out.extend_from_slice(place.column.as_bytes());
    out.push(b'|');
    out.extend_from_slice(place.row.hyphenated().encode_lower(&mut id).as_bytes());
    out.push(b'|');
    let mut digits = [0u8; 10];
    let mut at = digits.len();
    let mut rest = version;
    loop {
        at -= 1;
        // A decimal digit: `rest % 10` is below 10.
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
    out
}

pub fn encrypt(
    key: &Secret<[u8; 32]>,
    version: u32,
    place: &Place<'_>,
    plaintext: &[u8],
) -> Vec<u8> {
    encrypt_with(&aead::Cipher::new(key.expose()), version, place, plaintext)
}

/// `encrypt` with a prepared cipher (a tenant's `KeySet` keeps one per data key).
pub fn encrypt_with(
    cipher: &aead::Cipher,
    version: u32,
    place: &Place<'_>,
    plaintext: &[u8],
) -> Vec<u8> {
    let sealed = cipher.seal(&aad(place, version), plaintext);
    let mut out = Vec::with_capacity(HEADER + sealed.len());
    out.push(VERSION);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&sealed);
    out
}

/// The data-key version a stored value names.
pub fn key_version(stored: &[u8]) -> Result<u32, FieldError> {
    match stored {
        [VERSION, a, b, c, d, ..] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => Err(FieldError::Malformed),
    }
}

/// Decrypts with the key `key_for(version)` returns.
pub fn decrypt(
    key_for: impl Fn(u32) -> Option<Secret<[u8; 32]>>,
    place: &Place<'_>,
    stored: &[u8],
) -> Result<Zeroizing<Vec<u8>>, FieldError> {
    let version = key_version(stored)?;
    let key = key_for(version).ok_or(FieldError::UnknownKey(version))?;
    let cipher = aead::Cipher::new(key.expose());
    decrypt_with(|_| Some(&cipher), place, stored)
}

/// `decrypt` with the prepared cipher `cipher_for(version)` returns.
pub fn decrypt_with<'a>(
    cipher_for: impl Fn(u32) -> Option<&'a aead::Cipher>,
    place: &Place<'_>,
    stored: &[u8],
) -> Result<Zeroizing<Vec<u8>>, FieldError> {
    let version = key_version(stored)?;
    let cipher = cipher_for(version).ok_or(FieldError::UnknownKey(version))?;
    let sealed = stored.get(HEADER..).ok_or(FieldError::Malformed)?;
    Ok(cipher.open(&aad(place, version), sealed)?)
}

/// A decrypted value as text (every text field is UTF-8 when sealed).
pub fn text(mut bytes: Zeroizing<Vec<u8>>) -> Result<Zeroizing<String>, FieldError> {
    // Moved, not copied: the plaintext has one buffer, wiped by whichever wrapper holds it.
    match String::from_utf8(std::mem::take(&mut *bytes)) {
        Ok(text) => Ok(Zeroizing::new(text)),
        Err(err) => {
            Zeroizing::new(err.into_bytes());
            Err(FieldError::NotText)
        }
    }
}

/// The blind index of a normalised value.
pub fn blind_index(
    index_key: &Secret<[u8; 32]>,
    table: &str,
    column: &str,
    normalised: &str,
) -> Vec<u8> {
    // HMAC accepts keys of any length; 32 bytes cannot fail.
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(index_key.expose()) else {
        return vec![];
    };
    mac.update(table.as_bytes());
    mac.update(b".");
    mac.update(column.as_bytes());
    mac.update(b":");
    mac.update(normalised.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Emails compare case-insensitively, ignoring surrounding space.
pub fn normalise_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Phone numbers compare by their digits (and a leading `+`): `+1 (555) 010-0199` and
/// `+15550100199` are the same number.
pub fn normalise_phone(phone: &str) -> String {
    let trimmed = phone.trim();
    let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
    if trimmed.starts_with('+') { format!("+{digits}") } else { digits }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(tenant: TenantId, column: &'static str, row: uuid::Uuid) -> Place<'static> {
        Place { tenant, table: "contacts", column, row }
    }

    fn keys(version: u32) -> Option<Secret<[u8; 32]>> {
        (version <= 2).then(|| Secret::new([version as u8; 32]))
    }

    #[test]
    fn the_associated_data_is_byte_for_byte_what_stored_values_were_sealed_with() {
        let (tenant, row) = (TenantId::new(), uuid::Uuid::now_v7());
        for version in [0, 1, 7, 10, 4_294_967_295] {
            let place = place(tenant, "ssn", row);
            let before = format!("bulwark:field:v1|{tenant}|contacts|ssn|{row}|{version}");
            assert_eq!(aad(&place, version), before.into_bytes());
        }
    }

    #[test]
    fn a_value_decrypts_only_in_its_own_place() {
        let tenant = TenantId::new();
        let row = uuid::Uuid::new_v4();
        let key = keys(1).expect("key");
        let stored = encrypt(&key, 1, &place(tenant, "email", row), b"ada@example.com");
        assert_eq!(key_version(&stored), Ok(1));
        let opened = decrypt(keys, &place(tenant, "email", row), &stored).expect("decrypts");
        let text = text(opened).expect("text");
        assert_eq!(text.as_str(), "ada@example.com");
        // Another column, another row, another tenant: an error, never data.
        for wrong in [
            place(tenant, "phone", row),
            place(tenant, "email", uuid::Uuid::new_v4()),
            place(TenantId::new(), "email", row),
        ] {
            assert_eq!(decrypt(keys, &wrong, &stored).err(), Some(FieldError::Unauthentic));
        }
    }

    #[test]
    fn the_format_is_versioned_and_names_its_key() {
        let tenant = TenantId::new();
        let row = uuid::Uuid::new_v4();
        let stored = encrypt(&keys(2).expect("key"), 2, &place(tenant, "ssn", row), b"123-45-6789");
        assert_eq!(stored[0], VERSION);
        assert_eq!(key_version(&stored), Ok(2));
        let gone = |_: u32| None;
        assert_eq!(
            decrypt(gone, &place(tenant, "ssn", row), &stored).err(),
            Some(FieldError::UnknownKey(2))
        );
        assert_eq!(
            decrypt(keys, &place(tenant, "ssn", row), &[9, 9]).err(),
            Some(FieldError::Malformed)
        );
        let mut tampered = stored.clone();
        tampered[4] = 1; // claims version 1 (the AAD names the version too)
        assert!(decrypt(keys, &place(tenant, "ssn", row), &tampered).is_err());
    }

    #[test]
    fn blind_indexes_match_equal_normalised_values_per_tenant() {
        let a = Secret::new([1u8; 32]);
        let b = Secret::new([2u8; 32]);
        let x = blind_index(&a, "contacts", "email", &normalise_email(" Ada@Example.com"));
        assert_eq!(x, blind_index(&a, "contacts", "email", "ada@example.com"));
        assert_ne!(x, blind_index(&b, "contacts", "email", "ada@example.com"));
        assert_ne!(x, blind_index(&a, "contacts", "phone", "ada@example.com"));
        assert_eq!(normalise_phone("+1 (555) 010-0199"), "+15550100199");
        assert_eq!(normalise_phone("555.010.0199"), "5550100199");
    }
}
