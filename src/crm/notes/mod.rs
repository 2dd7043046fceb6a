//! Notes on a contact, company, deal or lead. Their text may hold anything about a person,
//! so it is encrypted like contact fields.

pub mod routes;
pub mod store;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use self::store::NoteLinks;
pub use self::store::{NoteRow, Notes};
use super::list::TimeSort;
use super::resource::{Opened, Resource};
use super::{Check, Ref, check_refs, sealing_keys, tenant_keys};
use crate::app::AppState;
use crate::clock::Timestamp;
use crate::crypto::KeySet;
use crate::crypto::field::Place;
use crate::error::{DomainError, DomainResult};
use crate::ids::{CompanyId, ContactId, DealId, LeadId, NoteId, TenantId, UserId};
use crate::store::TenantTx;
use crate::tenancy::TenantScope;

#[derive(Debug, Serialize, ToSchema)]
pub struct NoteView {
    pub id: NoteId,
    pub body: String,
    pub contact_id: Option<ContactId>,
    pub company_id: Option<CompanyId>,
    pub deal_id: Option<DealId>,
    pub lead_id: Option<LeadId>,
    pub author_id: Option<UserId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

fn place(tenant: TenantId, id: NoteId) -> Place<'static> {
    Place { tenant, table: "notes", column: "body", row: id.as_uuid() }
}

pub fn seal_body(keys: &KeySet, tenant: TenantId, id: NoteId, body: &str) -> Vec<u8> {
    keys.encrypt(&place(tenant, id), body.as_bytes())
}

pub fn view(keys: &KeySet, tenant: TenantId, row: NoteRow) -> DomainResult<NoteView> {
    let body = keys
        .decrypt_text(&place(tenant, row.id), &row.body_enc)
        .map_err(|err| DomainError::Internal(format!("a stored note does not decrypt: {err}")))?;
    Ok(NoteView {
        id: row.id,
        body: body.to_string(),
        contact_id: row.contact_id,
        company_id: row.company_id,
        deal_id: row.deal_id,
        lead_id: row.lead_id,
        author_id: row.author_id,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// A new note. It belongs to exactly one of `contact_id`, `company_id`, `deal_id` and
/// `lead_id` (one of them is required and the others must be absent).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 2, max_properties = 2)]
pub struct NoteCreate {
    #[schema(schema_with = crate::schema::text::<20000>)]
    body: String,
    /// The contact it is about (exactly one of the four links).
    contact_id: Option<ContactId>,
    /// The company it is about (exactly one of the four links).
    company_id: Option<CompanyId>,
    /// The deal it is about (exactly one of the four links).
    deal_id: Option<DealId>,
    /// The lead it is about (exactly one of the four links).
    lead_id: Option<LeadId>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotePatch {
    #[schema(schema_with = crate::schema::text::<20000>)]
    body: String,
}

/// Lists sort by creation or update time.
pub type NoteSort = TimeSort<NoteRow>;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NoteFilter {
    contact_id: Option<ContactId>,
    company_id: Option<CompanyId>,
    deal_id: Option<DealId>,
    lead_id: Option<LeadId>,
    author_id: Option<UserId>,
}

impl Resource for Notes {
    type View = NoteView;
    type Create = NoteCreate;
    type Patch = NotePatch;
    type Sort = NoteSort;
    const SEALED: bool = true;

    async fn write(
        app: &AppState,
        scope: &TenantScope,
        tx: &mut TenantTx,
        id: NoteId,
        n: &NoteCreate,
        insert: bool,
    ) -> DomainResult<Option<Self::Row>> {
        let mut check = Check::new();
        check.text("body", &n.body, 20_000);
        let links = [
            n.contact_id.is_some(),
            n.company_id.is_some(),
            n.deal_id.is_some(),
            n.lead_id.is_some(),
        ];
        if links.iter().filter(|linked| **linked).count() != 1 {
            check.fail(
                "contact_id",
                "a note belongs to exactly one of contact_id, company_id, deal_id, lead_id",
            );
        }
        check.finish()?;
        if insert {
            check_refs(
                tx,
                &[
                    ("contact_id", Ref::Contact, n.contact_id.map(|id| id.as_uuid())),
                    ("company_id", Ref::Company, n.company_id.map(|id| id.as_uuid())),
                    ("deal_id", Ref::Deal, n.deal_id.map(|id| id.as_uuid())),
                    ("lead_id", Ref::Lead, n.lead_id.map(|id| id.as_uuid())),
                ],
            )
            .await?;
        }
        let keys = sealing_keys(app, tx).await?;
        let sealed = seal_body(&keys, tx.tenant_id(), id, &n.body);
        let version = i32::try_from(keys.current_version()).unwrap_or(i32::MAX);
        let now = Timestamp::now();
        if insert {
            let links = NoteLinks {
                contact_id: n.contact_id,
                company_id: n.company_id,
                deal_id: n.deal_id,
                lead_id: n.lead_id,
                author_id: scope.actor().user_id(),
            };
            let values = store::values(version, &sealed, &links);
            Ok(super::store::write::<Notes>(tx, id, values, true, now).await?)
        } else {
            Ok(store::rewrite(tx, id, version, &sealed, now).await?)
        }
    }

    async fn body_of(app: &AppState, tx: &mut TenantTx, row: NoteRow) -> DomainResult<NoteCreate> {
        let keys = tenant_keys(app, tx).await?;
        let note = view(&keys, tx.tenant_id(), row)?;
        Ok(NoteCreate {
            body: note.body,
            contact_id: note.contact_id,
            company_id: note.company_id,
            deal_id: note.deal_id,
            lead_id: note.lead_id,
        })
    }

    fn patch(body: NoteCreate, patch: NotePatch) -> NoteCreate {
        NoteCreate { body: patch.body, ..body }
    }

    fn view(row: NoteRow, keys: Option<&Opened>) -> DomainResult<NoteView> {
        let opened = keys.ok_or(DomainError::Internal("notes are sealed".into()))?;
        view(&opened.keys, opened.tenant, row)
    }
}
