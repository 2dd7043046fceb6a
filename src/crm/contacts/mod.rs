//! Contacts: personal data encrypted field by field under the tenant's data key, email and
//! phone searchable through blind indexes. SSN and bank details are masked in every list and
//! plain read; the unmasked values come only from one contact's `?reveal=true` (permission
//! `contacts:read_sensitive`, a recent step-up for sessions, an audit event naming the
//! fields), and writing them needs the same permission as reading them.

pub mod routes;
mod sealed;
pub mod store;

use sealed::{email_index, phone_index};
pub use sealed::{mask, open, seal};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use self::store::ContactQuery;
pub use self::store::{ContactRow, Contacts};
use super::list::{PageRequest, TimeSort};
use super::resource::{Opened, Resource};
use super::{Check, Ref, check_refs};
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::Timestamp;
use crate::crypto::KeySet;
use crate::error::{DomainError, DomainResult};
use crate::ids::{CompanyId, ContactId, UserId};
use crate::store::{StoreError, TenantTx};
use crate::tenancy::{Actor, Permission, TenantScope};
use crate::webhooks::EventKind;

pub const TABLE: &str = "contacts";

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Address {
    #[schema(schema_with = crate::schema::line_or_null::<200>)]
    pub line1: Option<String>,
    #[schema(schema_with = crate::schema::line_or_null::<200>)]
    pub line2: Option<String>,
    #[schema(schema_with = crate::schema::line_or_null::<200>)]
    pub city: Option<String>,
    #[schema(schema_with = crate::schema::line_or_null::<200>)]
    pub region: Option<String>,
    #[schema(pattern = "^[A-Za-z0-9 -]{1,16}$")]
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2.
    #[schema(pattern = "^[A-Z]{2}$")]
    pub country: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BankAccount {
    #[schema(schema_with = crate::schema::line_or_null::<100>)]
    pub holder: Option<String>,
    #[schema(pattern = "^[A-Za-z0-9 -]{1,34}$")]
    pub iban: Option<String>,
    #[schema(pattern = "^[A-Za-z0-9 -]{1,34}$")]
    pub account_number: Option<String>,
    #[schema(pattern = "^[A-Za-z0-9 -]{1,16}$")]
    pub routing_number: Option<String>,
}

/// Bank details as a contact view shows them: masked (`****3000`) unless revealed, so the
/// input patterns do not apply. For the OpenAPI document only.
#[derive(ToSchema)]
#[allow(dead_code, reason = "a schema only")]
pub struct BankAccountView {
    holder: Option<String>,
    iban: Option<String>,
    account_number: Option<String>,
    routing_number: Option<String>,
}

/// A contact's data in the clear, as it exists only inside a request. Also the create body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ContactCreate)]
pub struct ContactData {
    /// At least one of first_name, last_name and email.
    #[schema(schema_with = crate::schema::line_or_null::<100>)]
    pub first_name: Option<String>,
    #[schema(schema_with = crate::schema::line_or_null::<100>)]
    pub last_name: Option<String>,
    #[schema(format = Email, max_length = 254)]
    pub email: Option<String>,
    #[schema(pattern = r"^\+?[0-9][0-9 ().-]{3,30}$", max_length = 32)]
    pub phone: Option<String>,
    /// YYYY-MM-DD, not in the future.
    #[schema(format = Date, pattern = r"^(19[0-9]{2}|200[0-9])-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])$")]
    pub date_of_birth: Option<String>,
    /// Writing it needs `contacts:read_sensitive`.
    #[schema(pattern = "^[A-Za-z0-9 -]{1,32}$")]
    pub ssn: Option<String>,
    pub address: Option<Address>,
    /// Writing it needs `contacts:read_sensitive`.
    pub bank_account: Option<BankAccount>,
    pub company_id: Option<CompanyId>,
    pub owner_id: Option<UserId>,
    #[serde(default)]
    #[schema(value_type = Vec<super::Tag>, max_items = 20)]
    pub tags: Vec<String>,
    #[serde(default)]
    #[schema(schema_with = crate::schema::custom_fields)]
    pub custom_fields: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ContactView {
    pub id: ContactId,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// YYYY-MM-DD
    #[schema(format = Date)]
    pub date_of_birth: Option<String>,
    /// Masked (last four shown) unless revealed.
    pub ssn: Option<String>,
    pub address: Option<Address>,
    /// Numbers masked (last four shown) unless revealed.
    #[schema(value_type = Option<BankAccountView>)]
    pub bank_account: Option<BankAccount>,
    pub company_id: Option<CompanyId>,
    pub owner_id: Option<UserId>,
    pub tags: Vec<String>,
    #[schema(schema_with = crate::schema::custom_fields)]
    pub custom_fields: Map<String, Value>,
    /// Set when the contact was erased: only this tombstone remains.
    pub erased_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Whether the view shows SSN and bank details whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sensitive {
    Masked,
    Revealed,
}

pub fn view(row: &ContactRow, data: ContactData, sensitive: Sensitive) -> ContactView {
    let (ssn, bank_account) = match sensitive {
        Sensitive::Revealed => (data.ssn, data.bank_account),
        Sensitive::Masked => (
            data.ssn.as_deref().map(mask),
            data.bank_account.map(|b| BankAccount {
                holder: b.holder,
                iban: b.iban.as_deref().map(mask),
                account_number: b.account_number.as_deref().map(mask),
                routing_number: b.routing_number.as_deref().map(mask),
            }),
        ),
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
        erased_at: row.erased_at,
        created_at: row.created_at,
        updated_at: row.updated_at,
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

/// The fields of a PATCH: absent = unchanged, null = cleared.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactPatch {
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(schema_with = crate::schema::line_or_null::<100>)]
    pub first_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(schema_with = crate::schema::line_or_null::<100>)]
    pub last_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<String>, format = Email, max_length = 254)]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<String>, pattern = r"^\+?[0-9][0-9 ().-]{3,30}$")]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<String>, format = Date)]
    pub date_of_birth: Option<Option<String>>,
    /// Needs `contacts:read_sensitive`.
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<String>, pattern = "^[A-Za-z0-9 -]{1,32}$")]
    pub ssn: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<Address>)]
    pub address: Option<Option<Address>>,
    /// Needs `contacts:read_sensitive`.
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<BankAccount>)]
    pub bank_account: Option<Option<BankAccount>>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<CompanyId>)]
    pub company_id: Option<Option<CompanyId>>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<UserId>)]
    pub owner_id: Option<Option<UserId>>,
    #[schema(value_type = Option<Vec<super::Tag>>, max_items = 20)]
    pub tags: Option<Vec<String>>,
    #[schema(schema_with = crate::schema::custom_fields_or_null)]
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

/// Lists sort by creation or update time.
pub type ContactSort = TimeSort<ContactRow>;

/// The filters of a contact list (and of the CSV export, which takes them in its body).
#[derive(Debug, Default, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ContactFilter {
    /// Exact match (case-insensitive), through the blind index.
    #[param(format = Email)]
    #[schema(format = Email)]
    pub email: Option<String>,
    /// Exact match on the digits, through the blind index.
    pub phone: Option<String>,
    pub owner_id: Option<UserId>,
    pub company_id: Option<CompanyId>,
    #[param(value_type = Option<super::Tag>)]
    #[schema(value_type = Option<super::Tag>)]
    pub tag: Option<String>,
    /// Contacts created at or after this time.
    pub created_after: Option<Timestamp>,
    /// Contacts created before this time.
    pub created_before: Option<Timestamp>,
}

/// One page of contacts under `filter`, with the blind indexes of its email and phone.
pub async fn query_page(
    keys: &KeySet,
    tx: &mut TenantTx,
    filter: &ContactFilter,
    page: &PageRequest<ContactSort>,
) -> Result<Vec<ContactRow>, StoreError> {
    let query = ContactQuery {
        filter,
        email_bidx: filter.email.as_deref().map(|e| email_index(keys, e)),
        phone_bidx: filter.phone.as_deref().map(|p| phone_index(keys, p)),
    };
    store::list(tx, &query, page).await
}

/// Sensitive fields are written only by callers who may read them unmasked: someone who
/// cannot see an SSN must not be able to replace it either.
fn check_sensitive_write(
    scope: &TenantScope,
    before: &ContactData,
    after: &ContactData,
) -> DomainResult<()> {
    let changed = before.ssn != after.ssn || before.bank_account != after.bank_account;
    if changed && !scope.may(Permission::ContactsReadSensitive) {
        return Err(DomainError::Forbidden(
            "writing SSN or bank details needs the contacts:read_sensitive permission",
        ));
    }
    Ok(())
}

impl Resource for Contacts {
    type View = ContactView;
    type Create = ContactData;
    type Patch = ContactPatch;
    type Sort = ContactSort;
    const SEALED: bool = true;

    fn check_filter(filter: &Self::Filter) -> DomainResult<()> {
        super::validate::check_tag_filter(filter.tag.as_deref())?;
        let mut check = Check::new();
        check.email("email", filter.email.as_deref());
        check.finish()
    }

    /// Created or updated, with the names of the fields that changed (never their values).
    fn event(
        before: Option<&ContactData>,
        after: &ContactData,
        row: &Self::Row,
    ) -> Option<(EventKind, serde_json::Value)> {
        Some(match before {
            None => (EventKind::ContactCreated, serde_json::json!({ "id": row.id })),
            Some(before) => {
                let fields = super::resource::changed_fields(before, after);
                (EventKind::ContactUpdated, serde_json::json!({ "id": row.id, "fields": fields }))
            }
        })
    }

    async fn write(
        app: &AppState,
        _: &TenantScope,
        tx: &mut TenantTx,
        id: ContactId,
        data: &ContactData,
        insert: bool,
    ) -> DomainResult<Option<ContactRow>> {
        check(data)?;
        check_refs(
            tx,
            &[
                ("company_id", Ref::Company, data.company_id.map(|id| id.as_uuid())),
                ("owner_id", Ref::User, data.owner_id.map(|id| id.as_uuid())),
            ],
        )
        .await?;
        let keys = super::sealing_keys(app, tx).await?;
        let sealed = seal(&keys, tx.tenant_id(), id, data);
        let now = Timestamp::now();
        if insert {
            return Ok(super::store::write::<Contacts>(tx, id, &sealed, true, now).await?);
        }
        // Every field is re-sealed under the current key: an edit also finishes a rotation.
        match super::store::write::<Contacts>(tx, id, &sealed, false, now).await? {
            Some(row) => Ok(Some(row)),
            None => Err(super::not_found::<Contacts>()),
        }
    }

    async fn body_of(
        app: &AppState,
        tx: &mut TenantTx,
        row: ContactRow,
    ) -> DomainResult<ContactData> {
        if row.erased_at.is_some() {
            return Err(super::not_found::<Contacts>());
        }
        let keys = super::tenant_keys(app, tx).await?;
        open(&keys, tx.tenant_id(), &row)
    }

    fn patch(mut body: ContactData, patch: ContactPatch) -> ContactData {
        patch.apply(&mut body);
        body
    }

    fn check_change(
        scope: &TenantScope,
        before: Option<&ContactData>,
        after: &ContactData,
    ) -> DomainResult<()> {
        check_sensitive_write(scope, before.unwrap_or(&ContactData::default()), after)
    }

    async fn list(
        app: &AppState,
        tx: &mut TenantTx,
        filter: &ContactFilter,
        page: &PageRequest<ContactSort>,
    ) -> DomainResult<Vec<ContactRow>> {
        let keys = super::tenant_keys(app, tx).await?;
        Ok(query_page(&keys, tx, filter, page).await?)
    }

    fn view(row: ContactRow, keys: Option<&Opened>) -> DomainResult<ContactView> {
        let opened = keys.ok_or(DomainError::Internal("contacts are sealed".into()))?;
        Ok(view(&row, open(&opened.keys, opened.tenant, &row)?, Sensitive::Masked))
    }
}

/// One contact, masked; with `reveal`, its SSN and bank details unmasked — for callers holding
/// `contacts:read_sensitive` and, with a session, a recent step-up — and an audit event
/// naming the fields revealed.
pub async fn get(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    id: ContactId,
    reveal: bool,
) -> DomainResult<ContactView> {
    if !reveal {
        return super::resource::get::<Contacts>(app, scope, id).await;
    }
    scope.require(Permission::ContactsReadSensitive)?;
    if let Actor::User { session_id, .. } = scope.actor() {
        crate::identity::mfa::require_step_up_of(app, *session_id).await?;
    }
    // A read: it runs beside writers; only the audit event takes a write turn.
    let mut tx = app.store().tenant_read(scope).await?;
    let row = super::fetch::<Contacts>(&mut tx, id).await?;
    let keys = super::tenant_keys(app, &mut tx).await?;
    tx.commit().await?;
    let data = open(&keys, scope.tenant_id(), &row)?;
    let mut fields = vec![];
    if data.ssn.is_some() {
        fields.push("ssn");
    }
    if data.bank_account.is_some() {
        fields.push("bank_account");
    }
    audit::record_alone(
        app,
        scope,
        ctx,
        Event::new(Action::ContactSensitiveRead)
            .by_scope(scope)
            .target("contact", id)
            .detail("fields", fields),
    )
    .await?;
    Ok(view(&row, data, Sensitive::Revealed))
}
