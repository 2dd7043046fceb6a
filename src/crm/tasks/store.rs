//! SQL of tasks.

use super::TaskFilter;
use crate::audit::Action;
use crate::crm::Record;
use crate::crm::store::ListQuery;
use crate::ids::TaskId;
use crate::store::{Binds, Value};

pub struct Tasks;

/// A task row's columns, as `TaskView` reads them: the list's SELECT and the RETURNING of
/// a write, which thereby hands back the row as stored without reading it again.
macro_rules! columns {
    () => {
        "id, title, due_date, assignee_id, done, contact_id, deal_id, created_at, updated_at"
    };
}

impl Record for Tasks {
    const NAME: &'static str = "task";
    const TABLE: &'static str = "tasks";
    const CREATED: Action = Action::TaskCreate;
    const UPDATED: Action = Action::TaskUpdate;
    const DELETED: Action = Action::TaskDelete;
    type Id = TaskId;
    // The stored task is what the API shows.
    type Row = super::TaskView;
    const SELECT: &'static str = concat!("SELECT ", columns!(), " FROM tasks");
    type Filter = TaskFilter;
    const WRITES: &'static [&'static str] =
        &["title", "due_date", "assignee_id", "done", "contact_id", "deal_id"];
    const RETURNING: &'static str = columns!();

    fn filter(query: &mut ListQuery, f: &TaskFilter) {
        query
            .and_if("assignee_id = ?", f.assignee_id)
            .and_if("done = ?", f.done)
            .and_if("contact_id = ?", f.contact_id)
            .and_if("deal_id = ?", f.deal_id)
            .and_if("due_date <= ?", f.due_before.as_deref());
    }
}

keyed!(super::TaskView);

/// A task's values in the order of `Tasks::WRITES`.
impl Binds for &super::TaskInput {
    fn push_into(self, binds: &mut Vec<Value>) {
        let t = self;
        (t.title.trim(), &t.due_date, t.assignee_id, t.done, t.contact_id, t.deal_id)
            .push_into(binds);
    }
}
