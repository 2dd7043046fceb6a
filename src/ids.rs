//! Identifier types. Every object id is a random UUID (v4 for secrets-adjacent objects such
//! as sessions, v7 where creation order helps pagination); ids are newtypes so a `UserId`
//! cannot be passed where a `TenantId` is expected, and they are parsed at the edge.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $new:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type)]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            pub fn new() -> Self {
                Self(Uuid::$new())
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::try_parse(s).map(Self)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .format(Some(utoipa::openapi::schema::SchemaFormat::KnownFormat(
                        utoipa::openapi::schema::KnownFormat::Uuid,
                    )))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

id_type!(/// A tenant (organisation).
    TenantId, now_v7);
id_type!(/// A user account.
    UserId, now_v7);
id_type!(/// A login session (one refresh-token family). Random: it appears in tokens.
    SessionId, new_v4);
id_type!(/// An API key.
    ApiKeyId, now_v7);
id_type!(/// An invitation.
    InvitationId, now_v7);
id_type!(/// An audit event.
    AuditEventId, now_v7);

impl TenantId {
    /// The chain id of platform audit events, which belong to no tenant.
    pub const PLATFORM: TenantId = TenantId(Uuid::nil());
}
