//! The tenant's MFA policy (nobody, owners and admins, or everyone; the platform super-admin
//! always) and its enforcement: who must enrol before doing anything else.

use std::time::Instant;

use super::{ENROLMENT_CACHE, store};
use crate::app::AppState;
use crate::error::DomainResult;
use crate::identity::{Credential, Principal};
use crate::tenancy::Role;

/// Whether the principal must enrol a second factor before anything else: the tenant's
/// policy asks for it (admins, or everyone) or the principal is the platform super-admin,
/// and it has none yet. API keys are not interactive and are not subject to it.
pub async fn enrolment_required(app: &AppState, principal: &Principal) -> DomainResult<bool> {
    if !matches!(principal.credential(), Credential::Session(_)) {
        return Ok(false);
    }
    let user = principal.user_id();
    let mfa = &app.identity().mfa;
    if let Some((required, at)) = mfa.enrolment.lock().ok().and_then(|c| c.get(&user).copied())
        && at.elapsed() < ENROLMENT_CACHE
    {
        return Ok(required);
    }
    let mut tx = app.store().system_read().await?;
    let policy = store::policy_for(&mut tx, user).await?;
    let required = match policy {
        None => false,
        Some(p) => {
            let by_policy = match p.mfa_policy.as_deref() {
                Some("all") => true,
                Some("admins") => {
                    p.role.as_deref().and_then(Role::parse).is_some_and(|r| r >= Role::Admin)
                }
                _ => false,
            };
            (p.is_superadmin || by_policy) && !store::has_second_factor(&mut tx, user).await?
        }
    };
    tx.commit().await?;
    if let Ok(mut cache) = mfa.enrolment.lock() {
        if cache.len() > 100_000 {
            cache.clear();
        }
        cache.insert(user, (required, Instant::now()));
    }
    Ok(required)
}
