//! Contacts: personal data encrypted field by field under the tenant's data key, email and
//! phone searchable through blind indexes, SSN and bank details masked for callers without
//! `contacts:read_sensitive` (and every unmasked read audited).

pub mod routes;
pub mod store;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use self::store::{ContactRow, Sealed};
use super::{Check, Ref, check_refs, decode_custom, decode_tags, encode_tags};
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::{now_ms, rfc3339};
use crate::crypto::KeySet;
use crate::crypto::field::{Place, normalise_email, normalise_phone};
use crate::error::{DomainError, DomainResult};
use crate::store::TenantTx;
use crate::tenancy::{Permission, TenantScope};

pub const TABLE: &str = "contacts";

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Address {
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub city: Option<String>,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BankAccount {
    #[schema(max_length = 100)]
    pub holder: Option<String>,
    pub iban: Option<String>,
    pub account_number: Option<String>,
    pub routing_number: Option<String>,
}

/// A contact's data in the clear, as it exists only inside a request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContactData {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub date_of_birth: Option<String>,
    pub ssn: Option<String>,
    pub address: Option<Address>,
    pub bank_account: Option<BankAccount>,
    pub company_id: Option<Uuid>,
    pub owner_id: Option<Uuid>,
    pub tags: Vec<String>,
    pub custom_fields: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ContactView {
    pub id: Uuid,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// YYYY-MM-DD
    pub date_of_birth: Option<String>,
    /// Masked (last four shown) unless the caller holds `contacts:read_sensitive`.
    pub ssn: Option<String>,
    pub address: Option<Address>,
    /// Numbers masked unless the caller holds `contacts:read_sensitive`.
    pub bank_account: Option<BankAccount>,
    pub company_id: Option<Uuid>,
    pub owner_id: Option<Uuid>,
    pub tags: Vec<String>,
    #[schema(value_type = Object)]
    pub custom_fields: Map<String, Value>,
    /// Set when the contact was erased: only this tombstone remains.
    pub erased_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// Shows the last four characters.
pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    let keep = chars.len().min(4);
    let tail: String = chars[chars.len() - keep..].iter().collect();
    format!("****{tail}")
}

fn place(scope_tenant: crate::ids::TenantId, column: &'static str, row: Uuid) -> Place<'static> {
    Place { tenant: scope_tenant, table: TABLE, column, row }
}

fn seal_text(
    keys: &KeySet,
    tenant: crate::ids::TenantId,
    column: &'static str,
    row: Uuid,
    value: Option<&str>,
) -> Option<Vec<u8>> {
    value.map(|v| keys.encrypt(&place(tenant, column, row), v.as_bytes()))
}

fn seal_json<T: Serialize>(
    keys: &KeySet,
    tenant: crate::ids::TenantId,
    column: &'static str,
    row: Uuid,
    value: Option<&T>,
) -> Option<Vec<u8>> {
    value
        .and_then(|v| serde_json::to_vec(v).ok())
        .map(|bytes| keys.encrypt(&place(tenant, column, row), &bytes))
}

/// Encrypts a contact with the tenant's current data key.
pub fn seal(keys: &KeySet, tenant: crate::ids::TenantId, id: Uuid, data: &ContactData) -> Sealed {
    let version = i32::try_from(keys.current_version()).unwrap_or(i32::MAX);
    Sealed {
        key_version: version,
        first_name: seal_text(keys, tenant, "first_name", id, data.first_name.as_deref()),
        last_name: seal_text(keys, tenant, "last_name", id, data.last_name.as_deref()),
        email: seal_text(keys, tenant, "email", id, data.email.as_deref()),
        phone: seal_text(keys, tenant, "phone", id, data.phone.as_deref()),
        date_of_birth: seal_text(keys, tenant, "date_of_birth", id, data.date_of_birth.as_deref()),
        ssn: seal_text(keys, tenant, "ssn", id, data.ssn.as_deref()),
        address: seal_json(keys, tenant, "address", id, data.address.as_ref()),
        bank_account: seal_json(keys, tenant, "bank_account", id, data.bank_account.as_ref()),
        email_bidx: data
            .email
            .as_deref()
            .map(|e| keys.blind_index(TABLE, "email", &normalise_email(e))),
        phone_bidx: data
            .phone
            .as_deref()
            .map(|p| keys.blind_index(TABLE, "phone", &normalise_phone(p))),
        company_id: data.company_id,
        owner_id: data.owner_id,
        tags: encode_tags(&data.tags),
        custom_fields: serde_json::to_string(&data.custom_fields).unwrap_or_else(|_| "{}".into()),
    }
}

fn corrupt(err: crate::crypto::field::FieldError) -> DomainError {
    // Never wrong data: a value that does not authenticate in its place is an error.
    DomainError::Internal(format!("a stored contact value does not decrypt: {err}"))
}

/// Decrypts a stored contact.
pub fn open(
    keys: &KeySet,
    tenant: crate::ids::TenantId,
    row: &ContactRow,
) -> DomainResult<ContactData> {
    let text = |column: &'static str, stored: &Option<Vec<u8>>| -> DomainResult<Option<String>> {
        stored
            .as_ref()
            .map(|s| {
                keys.decrypt_text(&place(tenant, column, row.id), s)
                    .map(|t| t.to_string())
                    .map_err(corrupt)
            })
            .transpose()
    };
    let json = |column: &'static str, stored: &Option<Vec<u8>>| -> DomainResult<Option<Vec<u8>>> {
        stored
            .as_ref()
            .map(|s| {
                keys.decrypt(&place(tenant, column, row.id), s).map(|b| b.to_vec()).map_err(corrupt)
            })
            .transpose()
    };
    let address = json("address", &row.address_enc)?
        .map(|b| {
            serde_json::from_slice(&b)
                .map_err(|_| DomainError::Internal("address does not parse".into()))
        })
        .transpose()?;
    let bank_account = json("bank_account", &row.bank_account_enc)?
        .map(|b| {
            serde_json::from_slice(&b)
                .map_err(|_| DomainError::Internal("bank account does not parse".into()))
        })
        .transpose()?;
    Ok(ContactData {
        first_name: text("first_name", &row.first_name_enc)?,
        last_name: text("last_name", &row.last_name_enc)?,
        email: text("email", &row.email_enc)?,
        phone: text("phone", &row.phone_enc)?,
        date_of_birth: text("date_of_birth", &row.date_of_birth_enc)?,
        ssn: text("ssn", &row.ssn_enc)?,
        address,
        bank_account,
        company_id: row.company_id,
        owner_id: row.owner_id,
        tags: decode_tags(&row.tags),
        custom_fields: decode_custom(&row.custom_fields),
    })
}

pub fn view(row: &ContactRow, data: ContactData, unmasked: bool) -> ContactView {
    let (ssn, bank_account) = if unmasked {
        (data.ssn, data.bank_account)
    } else {
        (
            data.ssn.as_deref().map(mask),
            data.bank_account.map(|b| BankAccount {
                holder: b.holder,
                iban: b.iban.as_deref().map(mask),
                account_number: b.account_number.as_deref().map(mask),
                routing_number: b.routing_number.as_deref().map(mask),
            }),
        )
    };
    ContactView {
        id: row.id,
        first_name: data.first_name,
        last_name: data.last_name,
        email: data.email,
        phone: data.phone,
        date_of_birth: data.date_of_birth,
        ssn,
        address: data.address,
        bank_account,
        company_id: data.company_id,
        owner_id: data.owner_id,
        tags: data.tags,
        custom_fields: data.custom_fields,
        erased_at: row.erased_at.map(rfc3339),
        created_at: rfc3339(row.created_at),
        updated_at: rfc3339(row.updated_at),
    }
}

/// Validates the data of a contact about to be stored.
pub fn check(data: &ContactData) -> DomainResult<()> {
    let mut check = Check::new();
    check.opt_name("first_name", data.first_name.as_deref(), 100);
    check.opt_name("last_name", data.last_name.as_deref(), 100);
    check.email("email", data.email.as_deref());
    check.phone("phone", data.phone.as_deref());
    check.past_date("date_of_birth", data.date_of_birth.as_deref());
    check.identifier("ssn", data.ssn.as_deref(), 32);
    if let Some(a) = &data.address {
        for (field, value) in [
            ("address.line1", &a.line1),
            ("address.line2", &a.line2),
            ("address.city", &a.city),
            ("address.region", &a.region),
        ] {
            check.opt_name(field, value.as_deref(), 200);
        }
        check.identifier("address.postal_code", a.postal_code.as_deref(), 16);
        check.country("address.country", a.country.as_deref());
    }
    if let Some(b) = &data.bank_account {
        check.opt_name("bank_account.holder", b.holder.as_deref(), 100);
        check.identifier("bank_account.iban", b.iban.as_deref(), 34);
        check.identifier("bank_account.account_number", b.account_number.as_deref(), 34);
        check.identifier("bank_account.routing_number", b.routing_number.as_deref(), 16);
    }
    check.tags("tags", Some(&data.tags));
    check.custom_fields("custom_fields", Some(&data.custom_fields));
    if data.first_name.is_none() && data.last_name.is_none() && data.email.is_none() {
        check.fail("first_name", "a contact needs a first name, a last name or an email");
    }
    check.finish()
}

pub async fn create(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    data: ContactData,
) -> DomainResult<ContactView> {
    check(&data)?;
    let mut tx = app.store().tenant_tx(scope).await?;
    check_refs(
        &mut tx,
        &[("company_id", Ref::Company, data.company_id), ("owner_id", Ref::User, data.owner_id)],
    )
    .await?;
    let keys = keys(app, &mut tx).await?;
    let (id, now) = (Uuid::now_v7(), now_ms());
    store::insert(&mut tx, id, &seal(&keys, scope.tenant_id(), id, &data), now).await?;
    audit::record(
        &mut tx,
        ctx,
        Event::new(Action::ContactCreate).by_scope(scope).target("contact", id),
    )
    .await?;
    let row = store::get(&mut tx, id).await?.ok_or(DomainError::NotFound("contact"))?;
    tx.commit().await?;
    Ok(view(&row, data, scope.may(Permission::ContactsReadSensitive)))
}

pub async fn keys(app: &AppState, tx: &mut TenantTx) -> DomainResult<std::sync::Arc<KeySet>> {
    app.tenant_keys().for_tenant(tx).await.map_err(|err| DomainError::Internal(err.to_string()))
}

fn has_sensitive(data: &ContactData) -> bool {
    data.ssn.is_some() || data.bank_account.is_some()
}

/// One contact; an unmasked read of sensitive fields is audited.
pub async fn get(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    id: Uuid,
) -> DomainResult<ContactView> {
    let unmasked = scope.may(Permission::ContactsReadSensitive);
    let mut tx = if unmasked {
        app.store().tenant_tx(scope).await?
    } else {
        app.store().tenant_read(scope).await?
    };
    let row = store::get(&mut tx, id).await?.ok_or(DomainError::NotFound("contact"))?;
    let keys = keys(app, &mut tx).await?;
    let data = open(&keys, scope.tenant_id(), &row)?;
    if unmasked && has_sensitive(&data) {
        audit::record(
            &mut tx,
            ctx,
            Event::new(Action::ContactSensitiveRead).by_scope(scope).target("contact", id),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(view(&row, data, unmasked))
}

/// The fields of a PATCH: absent = unchanged, null = cleared.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactPatch {
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<String>)]
    #[schema(max_length = 100)]
    pub first_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<String>)]
    #[schema(max_length = 100)]
    pub last_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<String>)]
    pub date_of_birth: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<String>)]
    pub ssn: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<Address>)]
    pub address: Option<Option<Address>>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<BankAccount>)]
    pub bank_account: Option<Option<BankAccount>>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<Uuid>)]
    pub company_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<Uuid>)]
    pub owner_id: Option<Option<Uuid>>,
    pub tags: Option<Vec<String>>,
    #[schema(value_type = Option<Object>)]
    pub custom_fields: Option<Map<String, Value>>,
}

impl ContactPatch {
    fn apply(self, data: &mut ContactData) {
        fn set<T>(target: &mut Option<T>, change: Option<Option<T>>) {
            if let Some(value) = change {
                *target = value;
            }
        }
        set(&mut data.first_name, self.first_name);
        set(&mut data.last_name, self.last_name);
        set(&mut data.email, self.email);
        set(&mut data.phone, self.phone);
        set(&mut data.date_of_birth, self.date_of_birth);
        set(&mut data.ssn, self.ssn);
        set(&mut data.address, self.address);
        set(&mut data.bank_account, self.bank_account);
        set(&mut data.company_id, self.company_id);
        set(&mut data.owner_id, self.owner_id);
        if let Some(tags) = self.tags {
            data.tags = tags;
        }
        if let Some(custom) = self.custom_fields {
            data.custom_fields = custom;
        }
    }
}

pub async fn update(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    id: Uuid,
    patch: ContactPatch,
) -> DomainResult<ContactView> {
    let mut tx = app.store().tenant_tx(scope).await?;
    let row = store::get(&mut tx, id)
        .await?
        .filter(|r| r.erased_at.is_none())
        .ok_or(DomainError::NotFound("contact"))?;
    let keys = keys(app, &mut tx).await?;
    let mut data = open(&keys, scope.tenant_id(), &row)?;
    patch.apply(&mut data);
    check(&data)?;
    check_refs(
        &mut tx,
        &[("company_id", Ref::Company, data.company_id), ("owner_id", Ref::User, data.owner_id)],
    )
    .await?;
    // Every field is re-sealed under the current key: an edit also finishes a rotation.
    store::update(&mut tx, id, &seal(&keys, scope.tenant_id(), id, &data), now_ms()).await?;
    audit::record(
        &mut tx,
        ctx,
        Event::new(Action::ContactUpdate).by_scope(scope).target("contact", id),
    )
    .await?;
    let row = store::get(&mut tx, id).await?.ok_or(DomainError::NotFound("contact"))?;
    tx.commit().await?;
    Ok(view(&row, data, scope.may(Permission::ContactsReadSensitive)))
}

pub async fn delete(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    id: Uuid,
) -> DomainResult<()> {
    let mut tx = app.store().tenant_tx(scope).await?;
    store::get(&mut tx, id).await?.ok_or(DomainError::NotFound("contact"))?;
    store::unlink(&mut tx, id).await?;
    store::delete(&mut tx, id).await?;
    audit::record(
        &mut tx,
        ctx,
        Event::new(Action::ContactDelete).by_scope(scope).target("contact", id),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_the_last_four() {
        assert_eq!(mask("123-45-6789"), "****6789");
        assert_eq!(mask("DE89370400440532013000"), "****3000");
        assert_eq!(mask("12"), "****12");
    }
}
