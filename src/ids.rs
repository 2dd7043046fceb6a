//! Identifier types. Every object id is a random UUID (v4 for secrets-adjacent objects such
//! as sessions, v7 where creation order helps pagination); ids are newtypes so a `UserId`
//! cannot be passed where a `TenantId` is expected, and they are parsed at the edge.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What every id type can do, for code generic over records.
pub trait ObjectId: Copy + fmt::Display + Send + Sync + 'static {
    /// A fresh id.
    fn generate() -> Self;
    fn uuid(&self) -> Uuid;
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $new:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type)]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(Uuid);

        impl $name {
            pub fn new() -> Self {
                Self(Uuid::$new())
            }

            /// An id read from a trusted place (a row, a verified token); input is parsed
            /// with `FromStr` instead.
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl crate::store::sql::Bind for $name {
            fn into_value(self) -> crate::store::sql::Value {
                crate::store::sql::Value::Uuid(Some(self.0))
            }
        }

        impl crate::store::sql::Bind for Option<$name> {
            fn into_value(self) -> crate::store::sql::Value {
                crate::store::sql::Value::Uuid(self.map(|id| id.0))
            }
        }

        impl ObjectId for $name {
            fn generate() -> Self {
                Self::new()
            }
            fn uuid(&self) -> Uuid {
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
id_type!(/// A CRM contact (a person; personal data encrypted).
    ContactId, now_v7);
id_type!(/// A CRM company.
    CompanyId, now_v7);
id_type!(/// A CRM lead.
    LeadId, now_v7);
id_type!(/// A CRM deal.
    DealId, now_v7);
id_type!(/// A sales pipeline.
    PipelineId, now_v7);
id_type!(/// A stage of a pipeline.
    StageId, now_v7);
id_type!(/// A note on a CRM record.
    NoteId, now_v7);
id_type!(/// An activity (call, email, meeting, SMS) on a CRM record.
    ActivityId, now_v7);
id_type!(/// A task.
    TaskId, now_v7);
id_type!(/// A document (contents encrypted in the object store).
    DocumentId, now_v7);
id_type!(/// A blocked client network (containment).
    BlockId, now_v7);
id_type!(/// A tenant's sending domain.
    EmailDomainId, now_v7);
id_type!(/// A message a tenant sends.
    EmailMessageId, now_v7);
id_type!(/// An address on a tenant's suppression list.
    SuppressionId, now_v7);
id_type!(/// A tenant's email template.
    EmailTemplateId, now_v7);
id_type!(/// A tenant's outbound webhook subscription.
    WebhookId, now_v7);
id_type!(/// One event on its way to one subscription (its `webhook-id`, stable across retries).
    WebhookDeliveryId, now_v7);
id_type!(/// A payment recorded from a provider's event.
    PaymentId, now_v7);
id_type!(/// A connected integration (one provider account of a user or a tenant).
    IntegrationId, now_v7);
id_type!(/// A break-glass grant: a super-admin's time-boxed access to one tenant.
    GrantId, now_v7);

impl TenantId {
    /// The chain id of platform audit events, which belong to no tenant.
    pub const PLATFORM: TenantId = TenantId(Uuid::nil());
}
