//! Leads: a prospective deal with a status and a source, linked to a contact and a company
//! (the person's data stays in the contact, encrypted).

pub mod routes;
pub mod store;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub use self::store::Leads;
use self::store::{LeadColumns, LeadRow};
use super::list::TimeSort;
use super::resource::{Opened, Resource};
use super::{Check, Ref, check_refs};
use crate::app::AppState;
use crate::clock::Timestamp;
use crate::error::DomainResult;
use crate::ids::{CompanyId, ContactId, LeadId, UserId};
use crate::store::TenantTx;
use crate::tenancy::TenantScope;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LeadStatus {
    New,
    Contacted,
    Qualified,
    Unqualified,
    Converted,
}

impl LeadStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LeadStatus::New => "new",
            LeadStatus::Contacted => "contacted",
            LeadStatus::Qualified => "qualified",
            LeadStatus::Unqualified => "unqualified",
            LeadStatus::Converted => "converted",
        }
    }

    /// As stored; the database holds only the names `as_str` writes.
    fn from_stored(text: &str) -> LeadStatus {
        match text {
            "contacted" => LeadStatus::Contacted,
            "qualified" => LeadStatus::Qualified,
            "unqualified" => LeadStatus::Unqualified,
            "converted" => LeadStatus::Converted,
            _ => LeadStatus::New,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LeadView {
    id: LeadId,
    title: String,
    status: LeadStatus,
    source: Option<String>,
    contact_id: Option<ContactId>,
    company_id: Option<CompanyId>,
    owner_id: Option<UserId>,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl From<LeadRow> for LeadView {
    fn from(r: LeadRow) -> Self {
        LeadView {
            id: r.id,
            title: r.title,
            status: LeadStatus::from_stored(&r.status),
            source: r.source,
            contact_id: r.contact_id,
            company_id: r.company_id,
            owner_id: r.owner_id,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadCreate {
    #[schema(schema_with = crate::schema::line::<200>)]
    title: String,
    status: Option<LeadStatus>,
    /// Where the lead came from (`website`, `referral`, …).
    #[schema(schema_with = crate::schema::line_or_null::<100>)]
    source: Option<String>,
    contact_id: Option<ContactId>,
    company_id: Option<CompanyId>,
    owner_id: Option<UserId>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadPatch {
    #[schema(schema_with = crate::schema::line_or_null::<200>)]
    title: Option<String>,
    status: Option<LeadStatus>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(schema_with = crate::schema::line_or_null::<100>)]
    source: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<ContactId>)]
    contact_id: Option<Option<ContactId>>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<CompanyId>)]
    company_id: Option<Option<CompanyId>>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<UserId>)]
    owner_id: Option<Option<UserId>>,
}

/// Lists sort by creation or update time.
pub type LeadSort = TimeSort<LeadRow>;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LeadFilter {
    status: Option<LeadStatus>,
    source: Option<String>,
    owner_id: Option<UserId>,
    contact_id: Option<ContactId>,
    company_id: Option<CompanyId>,
}

impl Resource for Leads {
    type View = LeadView;
    type Create = LeadCreate;
    type Patch = LeadPatch;
    type Sort = LeadSort;

    async fn write(
        _: &AppState,
        _: &TenantScope,
        tx: &mut TenantTx,
        id: LeadId,
        l: &LeadCreate,
        insert: bool,
    ) -> DomainResult<Option<Self::Row>> {
        let mut check = Check::new();
        check.name("title", &l.title, 200);
        check.opt_name("source", l.source.as_deref(), 100);
        check.finish()?;
        check_refs(
            tx,
            &[
                ("contact_id", Ref::Contact, l.contact_id.map(|id| id.as_uuid())),
                ("company_id", Ref::Company, l.company_id.map(|id| id.as_uuid())),
                ("owner_id", Ref::User, l.owner_id.map(|id| id.as_uuid())),
            ],
        )
        .await?;
        let columns = LeadColumns {
            title: l.title.trim(),
            status: l.status.unwrap_or(LeadStatus::New).as_str(),
            source: l.source.as_deref(),
            contact_id: l.contact_id,
            company_id: l.company_id,
            owner_id: l.owner_id,
        };
        Ok(super::store::write::<Leads>(tx, id, &columns, insert, Timestamp::now()).await?)
    }

    async fn body_of(_: &AppState, _: &mut TenantTx, row: LeadRow) -> DomainResult<LeadCreate> {
        Ok(LeadCreate {
            title: row.title,
            status: Some(LeadStatus::from_stored(&row.status)),
            source: row.source,
            contact_id: row.contact_id,
            company_id: row.company_id,
            owner_id: row.owner_id,
        })
    }

    fn patch(body: LeadCreate, patch: LeadPatch) -> LeadCreate {
        LeadCreate {
            title: patch.title.unwrap_or(body.title),
            status: patch.status.or(body.status),
            source: patch.source.unwrap_or(body.source),
            contact_id: patch.contact_id.unwrap_or(body.contact_id),
            company_id: patch.company_id.unwrap_or(body.company_id),
            owner_id: patch.owner_id.unwrap_or(body.owner_id),
        }
    }

    fn view(row: LeadRow, _: Option<&Opened>) -> DomainResult<LeadView> {
        Ok(row.into())
    }
}
