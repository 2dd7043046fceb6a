//! The tenant's MFA policy (nobody, owners and admins, or everyone; the platform super-admin
//! always) and its enforcement: who must enrol before doing anything else.

use crate::app::AppState;
use crate::error::DomainResult;
use crate::identity::{Credential, Principal};
use crate::tenancy::Role;

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
