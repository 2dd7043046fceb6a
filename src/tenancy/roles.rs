//! Roles inside a tenant and the permissions they grant.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Roles inside a tenant, from least to most powerful (the derived order is what `may`
/// compares). The platform super-admin is not a
/// tenant role: it has no tenant scope and so can reach no tenant data.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Readonly,
    Agent,
    Manager,
    Admin,
    Owner,
}

impl Role {
    pub const ALL: [Role; 5] =
        [Role::Owner, Role::Admin, Role::Manager, Role::Agent, Role::Readonly];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Agent => "agent",
            Role::Readonly => "readonly",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == text)
    }

    /// Roles are nested (spec §2): a role holds every permission of the roles below it.
    pub fn may(self, permission: Permission) -> bool {
        self >= permission.lowest_role()
    }

    /// What this role holds, in `Permission::ALL` order (the tests read the table through it).
    #[cfg(test)]
    pub fn permissions(self) -> impl Iterator<Item = Permission> {
        Permission::ALL.iter().copied().filter(move |p| self.may(*p))
    }
}

macro_rules! permissions {
    ($($variant:ident = $name:literal),+ $(,)?) => {
        /// A permission, named `area:verb` on the wire (API-key scopes use these names).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Permission { $($variant),+ }

        impl Permission {
            pub const ALL: &'static [Permission] = &[$(Permission::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $(Permission::$variant => $name),+ }
            }
        }
    };
}

permissions! {
    ContactsRead = "contacts:read",
    ContactsWrite = "contacts:write",
    ContactsReadSensitive = "contacts:read_sensitive",
    CompaniesRead = "companies:read",
    CompaniesWrite = "companies:write",
    LeadsRead = "leads:read",
    LeadsWrite = "leads:write",
    DealsRead = "deals:read",
    DealsWrite = "deals:write",
    PipelinesManage = "pipelines:manage",
    NotesRead = "notes:read",
    NotesWrite = "notes:write",
    ActivitiesRead = "activities:read",
    ActivitiesWrite = "activities:write",
    TasksRead = "tasks:read",
    TasksWrite = "tasks:write",
    DocumentsRead = "documents:read",
    DocumentsWrite = "documents:write",
    ExportRun = "export:run",
    DataPurge = "data:purge",
    UsersRead = "users:read",
    UsersManage = "users:manage",
    ApiKeysManage = "api_keys:manage",
    IntegrationsManage = "integrations:manage",
    EmailSend = "email:send",
    EmailManage = "email:manage",
    AuditRead = "audit:read",
    BillingManage = "billing:manage",
    CreditManage = "credit:manage",
    PaymentsRead = "payments:read",
    TenantManage = "tenant:manage",
}

impl Permission {
    /// The fixed table of spec §2, one line per permission: the least role that holds it.
    pub fn lowest_role(self) -> Role {
        use Permission::*;
        match self {
            ContactsRead | CompaniesRead | LeadsRead | DealsRead | NotesRead | ActivitiesRead
            | TasksRead | DocumentsRead | UsersRead => Role::Readonly,
            ContactsWrite | CompaniesWrite | LeadsWrite | DealsWrite | NotesWrite
            | ActivitiesWrite | TasksWrite | DocumentsWrite | EmailSend => Role::Agent,
            PipelinesManage | ExportRun | ApiKeysManage | CreditManage | PaymentsRead => {
                Role::Manager
            }
            ContactsReadSensitive
            | UsersManage
            | IntegrationsManage
            | EmailManage
            | AuditRead
            | DataPurge
            | TenantManage => Role::Admin,
            BillingManage => Role::Owner,
        }
    }

    pub fn parse(text: &str) -> Option<Permission> {
        Permission::ALL.iter().copied().find(|p| p.as_str() == text)
    }

    /// Permissions an API key can never carry, whatever its creator holds: a leaked key must
    /// not be able to mint more keys, add users, change roles or weaken tenant security.
    pub fn allowed_for_api_keys(self) -> bool {
        !matches!(
            self,
            Permission::ApiKeysManage | Permission::UsersManage | Permission::TenantManage
        )
    }
}

impl Serialize for Permission {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Permission {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Permission::parse(&text).ok_or_else(|| serde::de::Error::custom("unknown permission"))
    }
}

impl utoipa::PartialSchema for Permission {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(Permission::ALL.iter().map(|p| p.as_str())))
            .description(Some("A permission, `area:verb`"))
            .into()
    }
}

impl ToSchema for Permission {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_grants_each_role_what_spec_2_says() {
        let held = |role: Role| role.permissions().map(Permission::as_str).collect::<Vec<_>>();
        assert_eq!(held(Role::Readonly).len(), 9);
        assert_eq!(held(Role::Agent).len(), 18);
        assert!(
            held(Role::Agent)
                .iter()
                .all(|p| { p.ends_with(":read") || p.ends_with(":write") || *p == "email:send" })
        );
        assert_eq!(held(Role::Manager).len(), 23);
        assert!(held(Role::Manager).contains(&"export:run"));
        // payments:read is Bulwark's addition (issue 16): whoever manages credit sees payments.
        assert!(held(Role::Manager).contains(&"payments:read"));
        assert!(!held(Role::Agent).contains(&"payments:read"));
        assert!(!held(Role::Manager).contains(&"users:manage"));
        assert!(!held(Role::Manager).contains(&"email:manage"), "sending domains: admins");
        assert_eq!(held(Role::Admin).len(), 30);
        assert!(held(Role::Admin).contains(&"email:manage"));
        assert!(!held(Role::Admin).contains(&"billing:manage"));
        assert_eq!(held(Role::Owner).len(), Permission::ALL.len());
    }

    #[test]
    fn readonly_holds_no_write_permission() {
        for permission in Role::Readonly.permissions() {
            assert!(permission.as_str().ends_with(":read"), "{permission:?}");
        }
        assert!(!Role::Readonly.may(Permission::ContactsReadSensitive));
    }

    #[test]
    fn sensitive_fields_are_for_owners_and_admins_only() {
        let holders: Vec<Role> =
            Role::ALL.into_iter().filter(|r| r.may(Permission::ContactsReadSensitive)).collect();
        assert_eq!(holders, [Role::Owner, Role::Admin]);
    }

    #[test]
    fn names_round_trip() {
        for permission in Permission::ALL {
            assert_eq!(Permission::parse(permission.as_str()), Some(*permission));
        }
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Permission::parse("contacts:*"), None);
    }
}
