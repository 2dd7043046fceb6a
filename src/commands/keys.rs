//! `bulwark keys rotate-master|rotate-tenant`: the operator's side of key rotation.

use bulwark::AppState;
use bulwark::error::DomainError;
use bulwark::ids::TenantId;
use bulwark::maintenance::rotation;

/// Re-wraps every tenant key under the current master key.
pub async fn rotate_master(state: &AppState) -> Result<String, DomainError> {
    let n = rotation::rotate_master(state).await?;
    Ok(format!("{n} tenant key(s) re-wrapped under master key `{}`", state.keys().current_id()))
}

/// Re-encrypts one tenant's data under a new data key (online, resumable).
pub async fn rotate_tenant(state: &AppState, tenant: TenantId) -> Result<String, DomainError> {
    let r = rotation::rotate_tenant(state, tenant).await?;
    Ok(format!(
        "tenant {tenant}: data key version {} ({}); re-encrypted {} contact(s), {} note(s), \
         {} activit(ies), {} document key(s)",
        r.version,
        if r.resumed { "resumed" } else { "new" },
        r.contacts,
        r.notes,
        r.activities,
        r.documents
    ))
}
