//! How a contact is stored: each personal field sealed under the tenant's data key, bound to
//! its tenant, table, column and row; email and phone also as blind indexes.

use serde::Serialize;

use super::store::{ContactRow, Sealed};
use super::{ContactData, TABLE};
use crate::crm::{decode_custom, decode_tags, encode_custom, encode_tags};
use crate::crypto::KeySet;
use crate::crypto::field::{Place, normalise_email, normalise_phone};
use crate::error::{DomainError, DomainResult};
use crate::ids::{ContactId, TenantId};

/// Shows the last four characters.
pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    // The last four of a long value; never more than a third of a short one, so a mask
    // never shows a value whole.
    let keep = if chars.len() >= 8 { 4 } else { chars.len() / 3 };
    let tail: String = chars[chars.len() - keep..].iter().collect();
    format!("****{tail}")
}

fn place(tenant: TenantId, column: &'static str, row: ContactId) -> Place<'static> {
    Place { tenant, table: TABLE, column, row: row.as_uuid() }
}

fn seal_text(
    keys: &KeySet,
    tenant: TenantId,
    column: &'static str,
    row: ContactId,
    value: Option<&str>,
) -> Option<Vec<u8>> {
    value.map(|v| keys.encrypt(&place(tenant, column, row), v.as_bytes()))
}

fn seal_json<T: Serialize>(
    keys: &KeySet,
    tenant: TenantId,
    column: &'static str,
    row: ContactId,
    value: Option<&T>,
) -> Option<Vec<u8>> {
    value
        .and_then(|v| serde_json::to_vec(v).ok())
        .map(|bytes| keys.encrypt(&place(tenant, column, row), &bytes))
}

/// Encrypts a contact with the tenant's current data key.
pub fn seal(keys: &KeySet, tenant: TenantId, id: ContactId, data: &ContactData) -> Sealed {
    Sealed {
        key_version: i32::try_from(keys.current_version()).unwrap_or(i32::MAX),
        first_name: seal_text(keys, tenant, "first_name", id, data.first_name.as_deref()),
        last_name: seal_text(keys, tenant, "last_name", id, data.last_name.as_deref()),
        email: seal_text(keys, tenant, "email", id, data.email.as_deref()),
        phone: seal_text(keys, tenant, "phone", id, data.phone.as_deref()),
        date_of_birth: seal_text(keys, tenant, "date_of_birth", id, data.date_of_birth.as_deref()),
        ssn: seal_text(keys, tenant, "ssn", id, data.ssn.as_deref()),
        address: seal_json(keys, tenant, "address", id, data.address.as_ref()),
        bank_account: seal_json(keys, tenant, "bank_account", id, data.bank_account.as_ref()),
        email_bidx: data.email.as_deref().map(|e| email_index(keys, e)),
        phone_bidx: data.phone.as_deref().map(|p| phone_index(keys, p)),
        company_id: data.company_id,
        owner_id: data.owner_id,
        tags: encode_tags(&data.tags),
        custom_fields: encode_custom(&data.custom_fields),
    }
}

pub(super) fn email_index(keys: &KeySet, email: &str) -> Vec<u8> {
    keys.blind_index(TABLE, "email", &normalise_email(email))
}

pub(super) fn phone_index(keys: &KeySet, phone: &str) -> Vec<u8> {
    keys.blind_index(TABLE, "phone", &normalise_phone(phone))
}

fn corrupt(err: crate::crypto::field::FieldError) -> DomainError {
    // Never wrong data: a value that does not authenticate in its place is an error.
    DomainError::Internal(format!("a stored contact value does not decrypt: {err}"))
}

/// Decrypts a stored contact.
pub fn open(keys: &KeySet, tenant: TenantId, row: &ContactRow) -> DomainResult<ContactData> {
    let text = |column: &'static str, stored: &Option<Vec<u8>>| -> DomainResult<Option<String>> {
        stored
            .as_ref()
            .map(|s| {
                // Moved out rather than copied: the view owns the one plaintext buffer.
                keys.decrypt_text(&place(tenant, column, row.id), s)
                    .map(|mut t| std::mem::take(&mut *t))
                    .map_err(corrupt)
            })
            .transpose()
    };
    fn json<T: serde::de::DeserializeOwned>(
        keys: &KeySet,
        place: &Place<'_>,
        stored: &Option<Vec<u8>>,
    ) -> DomainResult<Option<T>> {
        let Some(stored) = stored else { return Ok(None) };
        let bytes = keys.decrypt(place, stored).map_err(corrupt)?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|_| DomainError::Internal(format!("{} does not parse", place.column)))
    }
    Ok(ContactData {
        first_name: text("first_name", &row.first_name_enc)?,
        last_name: text("last_name", &row.last_name_enc)?,
        email: text("email", &row.email_enc)?,
        phone: text("phone", &row.phone_enc)?,
        date_of_birth: text("date_of_birth", &row.date_of_birth_enc)?,
        ssn: text("ssn", &row.ssn_enc)?,
        address: json(keys, &place(tenant, "address", row.id), &row.address_enc)?,
        bank_account: json(keys, &place(tenant, "bank_account", row.id), &row.bank_account_enc)?,
        company_id: row.company_id,
        owner_id: row.owner_id,
        tags: decode_tags(&row.tags),
        custom_fields: decode_custom(&row.custom_fields),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_the_last_four() {
        assert_eq!(mask("123-45-6789"), "****6789");
        assert_eq!(mask("DE89370400440532013000"), "****3000");
        assert_eq!(mask("12"), "****", "a short value is never shown whole");
        assert_eq!(mask("123456"), "****56");
        assert_eq!(mask("-"), "****");
    }
}
