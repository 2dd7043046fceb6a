//! Activities: the communication log of calls, emails, meetings and SMS with a contact or
//! about a deal. Their details may hold anything about a person, so they are encrypted like
//! contact fields; the subject and kind stay searchable.

pub mod routes;
pub mod store;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use self::store::ActivityColumns;
pub use self::store::{Activities, ActivityRow};
use super::list::{SortColumn, SortValue, sort_schema};
use super::resource::{Opened, Resource};
use super::{Check, Ref, check_refs, sealing_keys, tenant_keys};
use crate::app::AppState;
use crate::clock::Timestamp;
use crate::crypto::KeySet;
use crate::crypto::field::Place;
use crate::error::{DomainError, DomainResult};
use crate::ids::{ActivityId, ContactId, DealId, TenantId, UserId};
use crate::store::TenantTx;
use crate::tenancy::TenantScope;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActivityKind {
    Call,
    Email,
    Meeting,
    Sms,
}

impl ActivityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActivityKind::Call => "call",
            ActivityKind::Email => "email",
            ActivityKind::Meeting => "meeting",
            ActivityKind::Sms => "sms",
        }
    }

    /// As stored; the database holds only the names `as_str` writes.
    fn from_stored(text: &str) -> ActivityKind {
        match text {
            "email" => ActivityKind::Email,
            "meeting" => ActivityKind::Meeting,
            "sms" => ActivityKind::Sms,
            _ => ActivityKind::Call,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityView {
    pub id: ActivityId,
    pub kind: ActivityKind,
    pub subject: String,
    pub details: Option<String>,
    pub occurred_at: Timestamp,
    pub contact_id: Option<ContactId>,
    pub deal_id: Option<DealId>,
    pub owner_id: Option<UserId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

fn place(tenant: TenantId, id: ActivityId) -> Place<'static> {
    Place { tenant, table: "activities", column: "details", row: id.as_uuid() }
}

pub fn seal_details(keys: &KeySet, tenant: TenantId, id: ActivityId, details: &str) -> Vec<u8> {
    keys.encrypt(&place(tenant, id), details.as_bytes())
}

pub fn view(keys: &KeySet, tenant: TenantId, row: ActivityRow) -> DomainResult<ActivityView> {
    let details = row
        .details_enc
        .as_ref()
        .map(|d| keys.decrypt_text(&place(tenant, row.id), d).map(|t| t.to_string()))
        .transpose()
        .map_err(|err| {
            DomainError::Internal(format!("stored activity details do not decrypt: {err}"))
        })?;
    Ok(ActivityView {
        id: row.id,
        kind: ActivityKind::from_stored(&row.kind),
        subject: row.subject,
        details,
        occurred_at: row.occurred_at,
        contact_id: row.contact_id,
        deal_id: row.deal_id,
        owner_id: row.owner_id,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivityInput {
    kind: ActivityKind,
    #[schema(schema_with = crate::schema::line::<200>)]
    subject: String,
    #[schema(schema_with = crate::schema::text_or_null::<10000>)]
    details: Option<String>,
    occurred_at: Timestamp,
    contact_id: Option<ContactId>,
    deal_id: Option<DealId>,
    /// Default: the caller.
    owner_id: Option<UserId>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivityPatch {
    kind: Option<ActivityKind>,
    #[schema(schema_with = crate::schema::line_or_null::<200>)]
    subject: Option<String>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(schema_with = crate::schema::text_or_null::<10000>)]
    details: Option<Option<String>>,
    occurred_at: Option<Timestamp>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<ContactId>)]
    contact_id: Option<Option<ContactId>>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<DealId>)]
    deal_id: Option<Option<DealId>>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<UserId>)]
    owner_id: Option<Option<UserId>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivitySort {
    CreatedAt,
    UpdatedAt,
    OccurredAt,
}

sort_schema!(ActivitySort);

impl SortColumn for ActivitySort {
    type Row = ActivityRow;
    const ALL: &'static [ActivitySort] =
        &[ActivitySort::CreatedAt, ActivitySort::UpdatedAt, ActivitySort::OccurredAt];
    fn name(self) -> &'static str {
        match self {
            ActivitySort::CreatedAt => "created_at",
            ActivitySort::UpdatedAt => "updated_at",
            ActivitySort::OccurredAt => "occurred_at",
        }
    }
    fn sql(self) -> &'static str {
        self.name()
    }
    fn is_text(self) -> bool {
        false
    }
    fn value(self, row: &ActivityRow) -> SortValue {
        SortValue::Int(match self {
            ActivitySort::CreatedAt => row.created_at.millis(),
            ActivitySort::UpdatedAt => row.updated_at.millis(),
            ActivitySort::OccurredAt => row.occurred_at.millis(),
        })
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ActivityFilter {
    kind: Option<ActivityKind>,
    contact_id: Option<ContactId>,
    deal_id: Option<DealId>,
    owner_id: Option<UserId>,
    /// Activities at or after this time.
    occurred_after: Option<Timestamp>,
    /// Activities before this time.
    occurred_before: Option<Timestamp>,
}

impl Resource for Activities {
    type View = ActivityView;
    type Create = ActivityInput;
    type Patch = ActivityPatch;
    type Sort = ActivitySort;
    const SEALED: bool = true;

    async fn write(
        app: &AppState,
        scope: &TenantScope,
        tx: &mut TenantTx,
        id: ActivityId,
        a: &ActivityInput,
        insert: bool,
    ) -> DomainResult<Option<Self::Row>> {
        let mut check = Check::new();
        check.name("subject", &a.subject, 200);
        if let Some(details) = &a.details {
            check.text("details", details, 10_000);
        }
        check.finish()?;
        // A new activity belongs to its author unless it names an owner.
        let owner_id = if insert { a.owner_id.or(scope.actor().user_id()) } else { a.owner_id };
        check_refs(
            tx,
            &[
                ("contact_id", Ref::Contact, a.contact_id.map(|id| id.as_uuid())),
                ("deal_id", Ref::Deal, a.deal_id.map(|id| id.as_uuid())),
                ("owner_id", Ref::User, owner_id.map(|id| id.as_uuid())),
            ],
        )
        .await?;
        let keys = sealing_keys(app, tx).await?;
        let tenant = tx.tenant_id();
        let columns = ActivityColumns {
            key_version: i32::try_from(keys.current_version()).unwrap_or(i32::MAX),
            kind: a.kind.as_str(),
            subject: a.subject.trim(),
            details: a.details.as_deref().map(|d| seal_details(&keys, tenant, id, d)),
            occurred_at: a.occurred_at,
            contact_id: a.contact_id,
            deal_id: a.deal_id,
            owner_id,
        };
        Ok(super::store::write::<Activities>(tx, id, &columns, insert, Timestamp::now()).await?)
    }

    async fn body_of(
        app: &AppState,
        tx: &mut TenantTx,
        row: ActivityRow,
    ) -> DomainResult<ActivityInput> {
        let keys = tenant_keys(app, tx).await?;
        let current = view(&keys, tx.tenant_id(), row)?;
        Ok(ActivityInput {
            kind: current.kind,
            subject: current.subject,
            details: current.details,
            occurred_at: current.occurred_at,
            contact_id: current.contact_id,
            deal_id: current.deal_id,
            owner_id: current.owner_id,
        })
    }

    fn patch(body: ActivityInput, patch: ActivityPatch) -> ActivityInput {
        ActivityInput {
            kind: patch.kind.unwrap_or(body.kind),
            subject: patch.subject.unwrap_or(body.subject),
            details: patch.details.unwrap_or(body.details),
            occurred_at: patch.occurred_at.unwrap_or(body.occurred_at),
            contact_id: patch.contact_id.unwrap_or(body.contact_id),
            deal_id: patch.deal_id.unwrap_or(body.deal_id),
            owner_id: patch.owner_id.unwrap_or(body.owner_id),
        }
    }

    fn view(row: ActivityRow, keys: Option<&Opened>) -> DomainResult<ActivityView> {
        let opened = keys.ok_or(DomainError::Internal("activities are sealed".into()))?;
        view(&opened.keys, opened.tenant, row)
    }
}

/// Adds a line to an activity's details through the ordinary update (sealed, audited): a
/// meeting or calendar event created for it through an integration.
pub async fn append_details(
    app: &AppState,
    scope: &TenantScope,
    ctx: &crate::audit::RequestContext,
    id: ActivityId,
    line: &str,
) -> DomainResult<()> {
    let current = super::resource::get::<Activities>(app, scope, id).await?;
    let details = match current.details.as_deref().filter(|d| !d.is_empty()) {
        Some(details) => format!("{details}\n{line}"),
        None => line.to_owned(),
    };
    set_details(app, scope, ctx, id, Some(details.chars().take(10_000).collect())).await
}

/// Takes out of an activity's details the lines whose SHA-256 is in `hashes` (what an
/// integration wrote there and must forget), through the ordinary update. An activity that
/// is gone needs nothing.
pub async fn remove_details_lines(
    app: &AppState,
    scope: &TenantScope,
    ctx: &crate::audit::RequestContext,
    id: ActivityId,
    hashes: &[Vec<u8>],
) -> DomainResult<()> {
    use sha2::Digest as _;
    let current = match super::resource::get::<Activities>(app, scope, id).await {
        Ok(current) => current,
        Err(DomainError::NotFound(_)) => return Ok(()),
        Err(err) => return Err(err),
    };
    let Some(details) = current.details else { return Ok(()) };
    let kept: Vec<&str> = details
        .lines()
        .filter(|line| {
            !hashes.iter().any(|h| h.as_slice() == sha2::Sha256::digest(line.as_bytes()).as_slice())
        })
        .collect();
    if kept.len() == details.lines().count() {
        return Ok(());
    }
    set_details(app, scope, ctx, id, Some(kept.join("\n")).filter(|d| !d.is_empty())).await
}

/// Rewrites an activity's details alone, through the ordinary (audited) update.
async fn set_details(
    app: &AppState,
    scope: &TenantScope,
    ctx: &crate::audit::RequestContext,
    id: ActivityId,
    details: Option<String>,
) -> DomainResult<()> {
    let patch = ActivityPatch { details: Some(details), ..ActivityPatch::default() };
    super::resource::update::<Activities>(app, scope, ctx, id, patch).await?;
    Ok(())
}
