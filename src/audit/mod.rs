//! The tamper-evident audit log.
//!
//! Every security and business-sensitive action appends an event in the same transaction as
//! the change it describes, so a change without its event (or the reverse) cannot commit.
//! Events form one hash chain per tenant (platform events, with no tenant, chain under the
//! nil UUID): each stores SHA-256 over the previous event's hash and a canonical encoding of
//! its own fields. `verify` walks the chains; any edit, deletion or reordering breaks them.
//! On PostgreSQL the application role may only INSERT and SELECT audit rows.
//!
//! This module never records secrets: details hold ids, counts and reasons, not values.

mod chain;
pub mod checkpoint;
pub mod routes;
mod store;

use std::net::IpAddr;

use serde_json::{Map, Value};

pub use chain::{Broken, VerifyReport, verify};
pub use store::{AuditQuery, AuditRow};

use crate::ids::{AuditEventId, TenantId, UserId};
use crate::store::{StoreError, SystemTx, TenantTx};
use crate::tenancy::{Actor, TenantScope};

macro_rules! actions {
    ($($variant:ident = $name:literal),+ $(,)?) => {
        /// The closed list of audit actions (docs/CONTROLS.md lists them too).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Action { $($variant),+ }

        impl Action {
            pub const ALL: &'static [Action] = &[$(Action::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $(Action::$variant => $name),+ }
            }
        }
    };
}

actions! {
    AuthSignup = "auth.signup",
    AuthLogin = "auth.login",
    AuthLoginFailed = "auth.login_failed",
    AuthLockout = "auth.lockout",
    AuthRefreshReuse = "auth.refresh_reuse",
    AuthLogout = "auth.logout",
    SessionRevoke = "session.revoke",
    AuthPasswordChange = "auth.password_change",
    AuthPasswordCheckFailed = "auth.password_check_failed",
    InvitationCreate = "invitation.create",
    InvitationAccept = "invitation.accept",
    UserRoleChange = "user.role_change",
    UserDeactivate = "user.deactivate",
    UserImport = "user.import",
    ApiKeyCreate = "api_key.create",
    ApiKeyRevoke = "api_key.revoke",
    PlatformSuperadminCreate = "platform.superadmin_create",
    PlatformTenantsList = "platform.tenants_list",
    PlatformIpBlock = "platform.ip_block",
    PlatformIpUnblock = "platform.ip_unblock",
    PlatformIpBlockList = "platform.ip_block_list",
    PlatformSessionsRevoke = "platform.sessions_revoke",
    PlatformApiKeysRevoke = "platform.api_keys_revoke",
    PlatformFeaturesChange = "platform.features_change",
    PlatformAccessGrant = "platform.access_grant",
    PlatformAccessEnd = "platform.access_end",
    EmailDomainCreate = "email.domain_create",
    EmailDomainVerify = "email.domain_verify",
    EmailDomainDelete = "email.domain_delete",
    EmailSend = "email.send",
    EmailSuppressionCreate = "email.suppression_create",
    EmailSuppressionDelete = "email.suppression_delete",
    EmailTemplateCreate = "email.template_create",
    EmailTemplateUpdate = "email.template_update",
    EmailTemplateDelete = "email.template_delete",
    EmailDomainRotateDkim = "email.domain_rotate_dkim",
    EmailQuotaWarning = "email.quota_warning",
    EmailUnsubscribe = "email.unsubscribe",
    EmailBounceReceived = "email.bounce_received",
    PlatformEmailLimits = "platform.email_limits",
    WebhookCreate = "webhook.create",
    WebhookUpdate = "webhook.update",
    WebhookDelete = "webhook.delete",
    WebhookDisable = "webhook.disable",
    IntegrationConnect = "integration.connect",
    IntegrationDisconnect = "integration.disconnect",
    IntegrationStateRefused = "integration.state_refused",
    IntegrationRefreshFailed = "integration.refresh_failed",
    IntegrationRevokeFailed = "integration.revoke_failed",
    IntegrationDeauthorized = "integration.deauthorized",
    IntegrationMeetingCreate = "integration.meeting_create",
    IntegrationEventCreate = "integration.event_create",
    PaymentRecord = "payment.record",
    CompanyCreditLimitChange = "company.credit_limit_change",
    AuthEmailVerify = "auth.email_verify",
    AuthPasswordResetRequest = "auth.password_reset_request",
    AuthPasswordReset = "auth.password_reset",
    ContactCreate = "contact.create",
    ContactUpdate = "contact.update",
    ContactDelete = "contact.delete",
    ContactSensitiveRead = "contact.sensitive_read",
    ContactExport = "contact.export",
    ContactErase = "contact.erase",
    CompanyCreate = "company.create",
    CompanyUpdate = "company.update",
    CompanyDelete = "company.delete",
    LeadCreate = "lead.create",
    LeadUpdate = "lead.update",
    LeadDelete = "lead.delete",
    DealCreate = "deal.create",
    DealUpdate = "deal.update",
    DealDelete = "deal.delete",
    PipelineCreate = "pipeline.create",
    PipelineUpdate = "pipeline.update",
    PipelineDelete = "pipeline.delete",
    NoteCreate = "note.create",
    NoteUpdate = "note.update",
    NoteDelete = "note.delete",
    ActivityCreate = "activity.create",
    ActivityUpdate = "activity.update",
    ActivityDelete = "activity.delete",
    TaskCreate = "task.create",
    TaskUpdate = "task.update",
    TaskDelete = "task.delete",
    ExportContacts = "export.contacts",
    DataPurge = "data.purge",
    KeysRotateMaster = "keys.rotate_master",
    KeysRotateTenant = "keys.rotate_tenant",
    TenantDelete = "tenant.delete",
    MfaEnrolled = "mfa.enrolled",
    MfaRemoved = "mfa.removed",
    MfaBackupCodesRegenerated = "mfa.backup_codes_regenerated",
    MfaBackupCodeUsed = "mfa.backup_code_used",
    MfaFailed = "auth.mfa_failed",
    PasskeyAdded = "passkey.added",
    PasskeyRemoved = "passkey.removed",
    StepUp = "auth.step_up",
    PasswordProof = "auth.password_proof",
    MfaReset = "mfa.reset",
    InvitationRevoke = "invitation.revoke",
    TenantMfaPolicyChange = "tenant.mfa_policy_change",
    BackupCreate = "backup.create",
    DocumentUpload = "document.upload",
    DocumentRead = "document.read",
    DocumentList = "document.list",
    DocumentDownload = "document.download",
    DocumentDelete = "document.delete",
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

/// Where a request came from, for audit events and for keying throttles. Handlers receive
/// it as an extractor (`http::extract`); workers and CLI commands use `system()`.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The client address as the trusted-proxy rules compute it.
    pub ip: Option<IpAddr>,
    /// The client network that keys throttles (an IPv6 client's /64).
    pub net: crate::ratelimit::ClientNet,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

impl RequestContext {
    /// For CLI commands and workers.
    pub fn system() -> RequestContext {
        RequestContext {
            ip: None,
            net: crate::ratelimit::ClientNet::UNKNOWN,
            user_agent: None,
            request_id: None,
        }
    }
}

/// One event, built with the methods below and handed to `record`.
#[derive(Debug, Clone)]
pub struct Event {
    pub action: Action,
    pub outcome: Outcome,
    pub actor_type: &'static str,
    pub actor_id: Option<String>,
    pub target_type: Option<&'static str>,
    pub target_id: Option<String>,
    pub details: Map<String, Value>,
}

impl Event {
    pub fn new(action: Action) -> Event {
        Event {
            action,
            outcome: Outcome::Success,
            actor_type: "anonymous",
            actor_id: None,
            target_type: None,
            target_id: None,
            details: Map::new(),
        }
    }

    pub fn failure(mut self) -> Event {
        self.outcome = Outcome::Failure;
        self
    }

    pub fn by_user(mut self, user: UserId) -> Event {
        self.actor_type = "user";
        self.actor_id = Some(user.to_string());
        self
    }

    pub fn by(mut self, actor: &Actor) -> Event {
        match actor {
            Actor::User { user_id, .. } => {
                self.actor_type = "user";
                self.actor_id = Some(user_id.to_string());
            }
            Actor::ApiKey { key_id, .. } => {
                self.actor_type = "api_key";
                self.actor_id = Some(key_id.to_string());
            }
            Actor::System { reason } => {
                self.actor_type = "system";
                self.actor_id = Some((*reason).to_owned());
            }
        }
        self
    }

    pub fn by_scope(self, scope: &TenantScope) -> Event {
        self.by(scope.actor())
    }

    pub fn by_system(self, reason: &'static str) -> Event {
        self.by(&Actor::System { reason })
    }

    pub fn target(mut self, kind: &'static str, id: impl ToString) -> Event {
        self.target_type = Some(kind);
        self.target_id = Some(id.to_string());
        self
    }

    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> Event {
        self.details.insert(key.to_owned(), value.into());
        self
    }
}

/// The tenant's events matching `filter`, newest first.
pub async fn search(
    app: &crate::app::AppState,
    scope: &TenantScope,
    filter: &AuditQuery,
) -> Result<Vec<AuditRow>, StoreError> {
    let mut tx = app.store().tenant_read(scope).await?;
    let rows = store::list(&mut tx, filter).await?;
    tx.commit().await?;
    Ok(rows)
}

/// Appends an event to the chain of the transaction's tenant.
pub async fn record(
    tx: &mut TenantTx,
    ctx: &RequestContext,
    event: Event,
) -> Result<AuditEventId, StoreError> {
    let tenant = tx.tenant_id();
    store::append(tx, Some(tenant), ctx, &event).await
}

/// An event to append to the transaction's tenant's chain, sent ahead: on SQLite's writer,
/// when it knows where the chain's head is, the append goes along with the transaction's
/// next statement (`RawTx::ride_along`; one hand-off to SQLite's thread instead of two, the
/// cost of a write there); elsewhere `finish` appends it as `record` would. Where in the
/// transaction the event lands does not matter: it commits or rolls back with the rest.
/// Either way the event is appended only by `finish`, which must run before the commit (a
/// queued append left unsent fails the commit; see `writer::Member::commit`).
#[must_use = "the event is appended only by `Ahead::finish`"]
pub struct Ahead {
    event: Event,
    /// The row that rides along, if one does.
    riding: Option<store::AuditRow>,
}

pub fn ahead(tx: &mut TenantTx, ctx: &RequestContext, event: Event) -> Ahead {
    let tenant = tx.tenant_id();
    let riding = store::ride_along(tx, tenant, ctx, &event);
    Ahead { event, riding }
}

impl Ahead {
    pub async fn finish(
        self,
        tx: &mut TenantTx,
        ctx: &RequestContext,
    ) -> Result<AuditEventId, StoreError> {
        let tenant = tx.tenant_id();
        store::finish(tx, tenant, ctx, &self.event, self.riding).await
    }
}

/// Appends one event in a write transaction of its own: for reads that are audited, so the
/// read itself runs beside writers (on SQLite, without the write lock) and only the event
/// takes a write turn.
pub async fn record_alone(
    app: &crate::app::AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    event: Event,
) -> Result<AuditEventId, StoreError> {
    let mut tx = app.store().tenant_tx(scope).await?;
    let id = record(&mut tx, ctx, event).await?;
    tx.commit().await?;
    Ok(id)
}

/// Appends an event from platform work: to `tenant`'s chain, or the platform chain.
pub async fn record_platform(
    tx: &mut SystemTx,
    tenant: Option<TenantId>,
    ctx: &RequestContext,
    event: Event,
) -> Result<AuditEventId, StoreError> {
    store::append(tx, tenant, ctx, &event).await
}
