//! `/api/v1/companies`: the five CRM routes (`crm::routes::crud`) over `crm::companies`.

use super::Companies;
use crate::crm::routes::{Crud, crud};
use crate::http::Endpoint;
use crate::tenancy::Permission::{CompaniesRead, CompaniesWrite};

pub fn endpoints() -> Vec<Endpoint> {
    let (read, write) = (CompaniesRead, CompaniesWrite);
    crud::<Companies>(Crud { path: "/api/v1/companies", tag: "companies", read, write })
}
