//! `/api/v1/notes`: the five CRM routes (`crm::routes::crud`) over `crm::notes`.

use super::Notes;
use crate::crm::routes::{Crud, crud};
use crate::http::Endpoint;
use crate::tenancy::Permission::{NotesRead, NotesWrite};

pub fn endpoints() -> Vec<Endpoint> {
    crud::<Notes>(Crud { path: "/api/v1/notes", tag: "notes", read: NotesRead, write: NotesWrite })
}
