//! `/api/v1/deals`: the five CRM routes (`crm::routes::crud`) over `crm::deals`.

use super::Deals;
use crate::crm::routes::{Crud, crud};
use crate::http::Endpoint;
use crate::tenancy::Permission::{DealsRead, DealsWrite};

pub fn endpoints() -> Vec<Endpoint> {
    crud::<Deals>(Crud { path: "/api/v1/deals", tag: "deals", read: DealsRead, write: DealsWrite })
}
