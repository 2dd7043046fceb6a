//! `/api/v1/activities`: the five CRM routes (`crm::routes::crud`) over `crm::activities`.

use super::Activities;
use crate::crm::routes::{Crud, crud};
use crate::http::Endpoint;
use crate::tenancy::Permission::{ActivitiesRead, ActivitiesWrite};

pub fn endpoints() -> Vec<Endpoint> {
    let (read, write) = (ActivitiesRead, ActivitiesWrite);
    crud::<Activities>(Crud { path: "/api/v1/activities", tag: "activities", read, write })
}
