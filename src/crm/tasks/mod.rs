//! Tasks: something to do, by a date, by someone, about a contact or a deal.

pub mod routes;
pub mod store;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub use self::store::Tasks;
use super::list::TimeSort;
use super::resource::{Opened, Resource};
use super::{Check, Ref, check_refs};
use crate::app::AppState;
use crate::clock::Timestamp;
use crate::error::{DomainError, DomainResult};
use crate::ids::{ContactId, DealId, TaskId, UserId};
use crate::store::TenantTx;
use crate::tenancy::TenantScope;

// One type for the stored task and the shown one: nothing of it is sealed or encoded.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct TaskView {
    pub id: TaskId,
    pub title: String,
    /// YYYY-MM-DD
    #[schema(format = Date)]
    pub due_date: Option<String>,
    pub assignee_id: Option<UserId>,
    pub done: bool,
    pub contact_id: Option<ContactId>,
    pub deal_id: Option<DealId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskInput {
    #[schema(schema_with = crate::schema::line::<200>)]
    title: String,
    /// YYYY-MM-DD
    #[schema(format = Date, pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])$")]
    due_date: Option<String>,
    assignee_id: Option<UserId>,
    #[serde(default)]
    done: bool,
    contact_id: Option<ContactId>,
    deal_id: Option<DealId>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskPatch {
    #[schema(schema_with = crate::schema::line_or_null::<200>)]
    title: Option<String>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<String>, format = Date, pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])$")]
    due_date: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<UserId>)]
    assignee_id: Option<Option<UserId>>,
    done: Option<bool>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<ContactId>)]
    contact_id: Option<Option<ContactId>>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<DealId>)]
    deal_id: Option<Option<DealId>>,
}

/// Lists sort by creation or update time.
pub type TaskSort = TimeSort<TaskView>;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TaskFilter {
    assignee_id: Option<UserId>,
    done: Option<bool>,
    contact_id: Option<ContactId>,
    deal_id: Option<DealId>,
    /// Due on or before this date (YYYY-MM-DD).
    #[param(format = Date, pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])$")]
    due_before: Option<String>,
}

impl Resource for Tasks {
    type View = TaskView;
    type Create = TaskInput;
    type Patch = TaskPatch;
    type Sort = TaskSort;

    fn check_filter(filter: &Self::Filter) -> DomainResult<()> {
        match &filter.due_before {
            Some(date) if super::validate::parse_date(date).is_none() => {
                Err(DomainError::invalid("due_before", "must be a date, YYYY-MM-DD"))
            }
            _ => Ok(()),
        }
    }

    async fn write(
        _: &AppState,
        _: &TenantScope,
        tx: &mut TenantTx,
        id: TaskId,
        t: &TaskInput,
        insert: bool,
    ) -> DomainResult<Option<Self::Row>> {
        let mut check = Check::new();
        check.name("title", &t.title, 200);
        check.date("due_date", t.due_date.as_deref());
        check.finish()?;
        check_refs(
            tx,
            &[
                ("assignee_id", Ref::User, t.assignee_id.map(|id| id.as_uuid())),
                ("contact_id", Ref::Contact, t.contact_id.map(|id| id.as_uuid())),
                ("deal_id", Ref::Deal, t.deal_id.map(|id| id.as_uuid())),
            ],
        )
        .await?;
        Ok(super::store::write::<Tasks>(tx, id, t, insert, Timestamp::now()).await?)
    }

    async fn body_of(_: &AppState, _: &mut TenantTx, row: TaskView) -> DomainResult<TaskInput> {
        Ok(TaskInput {
            title: row.title,
            due_date: row.due_date,
            assignee_id: row.assignee_id,
            done: row.done,
            contact_id: row.contact_id,
            deal_id: row.deal_id,
        })
    }

    fn patch(body: TaskInput, patch: TaskPatch) -> TaskInput {
        TaskInput {
            title: patch.title.unwrap_or(body.title),
            due_date: patch.due_date.unwrap_or(body.due_date),
            assignee_id: patch.assignee_id.unwrap_or(body.assignee_id),
            done: patch.done.unwrap_or(body.done),
            contact_id: patch.contact_id.unwrap_or(body.contact_id),
            deal_id: patch.deal_id.unwrap_or(body.deal_id),
        }
    }

    fn view(row: TaskView, _: Option<&Opened>) -> DomainResult<TaskView> {
        Ok(row)
    }
}
