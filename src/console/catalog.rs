//! How each CRM resource appears in the console: its pages' path and title, the permissions
//! its pages need (the API's), its form fields by the API's names and its list columns.

use super::records::{Field, Kind, Listed, field};
use crate::crm::companies::Companies;
use crate::crm::contacts::Contacts;
use crate::crm::deals::Deals;
use crate::crm::leads::Leads;
use crate::crm::tasks::Tasks;
use crate::tenancy::Permission;

const LEAD_STATUSES: &[&str] = &["new", "contacted", "qualified", "unqualified", "converted"];

impl Listed for Contacts {
    const PATH: &'static str = "/contacts";
    const TITLE: &'static str = "Contacts";
    const NEW: &'static str = "New contact";
    const READ: Permission = Permission::ContactsRead;
    const WRITE: Permission = Permission::ContactsWrite;
    const FIELDS: &'static [Field] = &[
        field("first_name", "First name", Kind::Text),
        field("last_name", "Last name", Kind::Text),
        field("email", "Email", Kind::Email),
        field("phone", "Phone", Kind::Text),
        field("date_of_birth", "Date of birth", Kind::Date),
        field("company_id", "Company id", Kind::Reference),
    ];
    /// SSN is written at creation only: the edit form would show it masked and write the
    /// mask back.
    const NEW_FIELDS: &'static [Field] = &[
        field("first_name", "First name", Kind::Text),
        field("last_name", "Last name", Kind::Text),
        field("email", "Email", Kind::Email),
        field("phone", "Phone", Kind::Text),
        field("date_of_birth", "Date of birth", Kind::Date),
        field("ssn", "SSN", Kind::Text),
        field("company_id", "Company id", Kind::Reference),
    ];
    const COLUMNS: &'static [(&'static str, &'static str)] = &[
        ("first_name", "First name"),
        ("last_name", "Last name"),
        ("email", "Email"),
        ("phone", "Phone"),
    ];
    const SEARCH: Option<Field> = Some(field("email", "Email", Kind::Email));
    const LINK: Option<&'static str> = Some("contact_id");
}

impl Listed for Companies {
    const PATH: &'static str = "/companies";
    const TITLE: &'static str = "Companies";
    const NEW: &'static str = "New company";
    const READ: Permission = Permission::CompaniesRead;
    const WRITE: Permission = Permission::CompaniesWrite;
    const FIELDS: &'static [Field] = &[
        field("name", "Name", Kind::Text),
        field("domain", "Domain", Kind::Text),
        field("industry", "Industry", Kind::Text),
    ];
    const COLUMNS: &'static [(&'static str, &'static str)] =
        &[("name", "Name"), ("domain", "Domain"), ("industry", "Industry")];
    const SEARCH: Option<Field> = Some(field("name", "Name", Kind::Text));
    const LINK: Option<&'static str> = Some("company_id");
}

impl Listed for Leads {
    const PATH: &'static str = "/leads";
    const TITLE: &'static str = "Leads";
    const NEW: &'static str = "New lead";
    const READ: Permission = Permission::LeadsRead;
    const WRITE: Permission = Permission::LeadsWrite;
    const FIELDS: &'static [Field] = &[
        field("title", "Title", Kind::Text),
        field("status", "Status", Kind::Choice(LEAD_STATUSES)),
        field("source", "Source", Kind::Text),
        field("contact_id", "Contact id", Kind::Reference),
        field("company_id", "Company id", Kind::Reference),
    ];
    const COLUMNS: &'static [(&'static str, &'static str)] =
        &[("title", "Title"), ("status", "Status"), ("source", "Source")];
    const LINK: Option<&'static str> = Some("lead_id");
}

impl Listed for Tasks {
    const PATH: &'static str = "/tasks";
    const TITLE: &'static str = "Tasks";
    const NEW: &'static str = "New task";
    const READ: Permission = Permission::TasksRead;
    const WRITE: Permission = Permission::TasksWrite;
    const FIELDS: &'static [Field] = &[
        field("title", "Title", Kind::Text),
        field("due_date", "Due", Kind::Date),
        field("done", "Done", Kind::Flag),
        field("contact_id", "Contact id", Kind::Reference),
        field("deal_id", "Deal id", Kind::Reference),
    ];
    const COLUMNS: &'static [(&'static str, &'static str)] =
        &[("title", "Title"), ("due_date", "Due"), ("done", "Done")];
}

impl Listed for Deals {
    const PATH: &'static str = "/deals";
    const TITLE: &'static str = "Deals";
    const NEW: &'static str = "New deal";
    const READ: Permission = Permission::DealsRead;
    const WRITE: Permission = Permission::DealsWrite;
    const FIELDS: &'static [Field] = &[
        field("title", "Title", Kind::Text),
        field("pipeline_id", "Pipeline id", Kind::Reference),
        field("amount_minor", "Amount (cents)", Kind::Number),
        field("currency", "Currency", Kind::Text),
        field("expected_close_date", "Expected close", Kind::Date),
        field("contact_id", "Contact id", Kind::Reference),
        field("company_id", "Company id", Kind::Reference),
    ];
    const COLUMNS: &'static [(&'static str, &'static str)] = &[
        ("title", "Title"),
        ("amount_minor", "Amount (cents)"),
        ("currency", "Currency"),
        ("status", "Status"),
    ];
    const LINK: Option<&'static str> = Some("deal_id");
}
