//! Tenant key rotation of the mail side: every value sealed under an older data key is
//! re-sealed under the current one — domain DKIM keys, message payloads, suppressed
//! addresses — in batches, each row only if it did not change meanwhile.

use super::store::Sealed;
use super::{domains, messages, suppressions, templates};
use crate::app::AppState;
use crate::crypto::field::Place;
use crate::error::DomainResult;
use crate::ids::{EmailDomainId, EmailMessageId, EmailTemplateId, SuppressionId};
use crate::tenancy::TenantScope;

/// Re-seals the tenant's mail values under its current data key; how many.
pub async fn reseal(app: &AppState, scope: &TenantScope) -> DomainResult<u64> {
    let tenant = scope.tenant_id();
    let mut moved = 0;
    for table in Sealed::ALL {
        let place = |id| -> Place<'static> {
            match table {
                Sealed::Domains => domains::place(scope, EmailDomainId::from_uuid(id)),
                Sealed::NextDkim => domains::next_place(scope, EmailDomainId::from_uuid(id)),
                Sealed::Templates => templates::place(tenant, EmailTemplateId::from_uuid(id)),
                Sealed::Messages => messages::place(tenant, EmailMessageId::from_uuid(id)),
                Sealed::Suppressions => suppressions::place(tenant, SuppressionId::from_uuid(id)),
            }
        };
        moved += crate::crm::reseal_column(app, scope, &table.column(), place).await?;
    }
    Ok(moved)
}
