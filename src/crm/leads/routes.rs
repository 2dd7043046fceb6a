//! `/api/v1/leads`: the five CRM routes (`crm::routes::crud`) over `crm::leads`.

use super::Leads;
use crate::crm::routes::{Crud, crud};
use crate::http::Endpoint;
use crate::tenancy::Permission::{LeadsRead, LeadsWrite};

pub fn endpoints() -> Vec<Endpoint> {
    crud::<Leads>(Crud { path: "/api/v1/leads", tag: "leads", read: LeadsRead, write: LeadsWrite })
}
