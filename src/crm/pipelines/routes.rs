//! `/api/v1/pipelines`: the five CRM routes (`crm::routes::crud`) over `crm::pipelines`.

use super::Pipelines;
use crate::crm::routes::{Crud, crud};
use crate::http::Endpoint;
use crate::tenancy::Permission::{DealsRead, PipelinesManage};

pub fn endpoints() -> Vec<Endpoint> {
    let (read, write) = (DealsRead, PipelinesManage);
    crud::<Pipelines>(Crud { path: "/api/v1/pipelines", tag: "pipelines", read, write })
}
