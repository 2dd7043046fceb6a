//! `/api/v1/tasks`: the five CRM routes (`crm::routes::crud`) over `crm::tasks`.

use super::Tasks;
use crate::crm::routes::{Crud, crud};
use crate::http::Endpoint;
use crate::tenancy::Permission::{TasksRead, TasksWrite};

pub fn endpoints() -> Vec<Endpoint> {
    crud::<Tasks>(Crud { path: "/api/v1/tasks", tag: "tasks", read: TasksRead, write: TasksWrite })
}
