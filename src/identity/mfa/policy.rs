//! The tenant's MFA policy (nobody, owners and admins, or everyone; the platform super-admin
//! always) and its enforcement: who must enrol before doing anything else.

use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::error::{DomainError, DomainResult};
use crate::identity::{Credential, Principal};
use crate::tenancy::{Role, TenantScope};

/// The policies a tenant may choose: nobody, owners and admins, or everyone.
pub const POLICIES: &[&str] = &["none", "admins", "all"];

/// The tenant's policy (`none`, `admins` or `all`).
pub async fn tenant_policy(app: &AppState, scope: &TenantScope) -> DomainResult<String> {
    let mut tx = app.store().tenant_read(scope).await?;
    let policy = super::store::tenant_policy(&mut tx).await?;
    tx.commit().await?;
    Ok(policy)
}

/// Changes the tenant's policy, audited; every session of the tenant reads it again at once.
pub async fn set_tenant_policy(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    policy: &str,
) -> DomainResult<()> {
    let policy = POLICIES
        .iter()
        .find(|p| **p == policy)
        .ok_or_else(|| DomainError::invalid("mfa_required", "must be none, admins or all"))?;
    let mut tx = app.store().tenant_tx(scope).await?;
    let before = super::store::tenant_policy(&mut tx).await?;
    super::store::set_tenant_policy(&mut tx, policy).await?;
    audit::record(
        &mut tx,
        ctx,
        Event::new(Action::TenantMfaPolicyChange)
            .by_scope(scope)
            .detail("from", before)
            .detail("to", *policy),
    )
    .await?;
    tx.commit().await?;
    app.identity().sessions.tenant_changed(scope.tenant_id()).await;
    Ok(())
}

/// Whether the principal must enrol a second factor before anything else: the tenant's
/// policy asks for it (admins, or everyone) or the principal is the platform super-admin,
/// and it has none yet. API keys are not interactive and are not subject to it. Read from the
/// session's cached state: no database work.
pub async fn enrolment_required(_app: &AppState, principal: &Principal) -> DomainResult<bool> {
    Ok(match principal.credential() {
        Credential::Session(_) => principal.session().is_some_and(|s| s.enrolment_required),
        Credential::ApiKey { .. } => false,
    })
}

/// The rule itself, applied when a session's state is read (`store::session_state`).
pub fn requires_enrolment(
    tenant_policy: Option<&str>,
    role: Option<&str>,
    superadmin: bool,
    has_factor: bool,
) -> bool {
    let by_policy = match tenant_policy {
        Some("all") => true,
        Some("admins") => role.and_then(Role::parse).is_some_and(|r| r >= Role::Admin),
        _ => false,
    };
    (superadmin || by_policy) && !has_factor
}
