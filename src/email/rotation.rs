//! Tenant key rotation of the mail side: every value sealed under an older data key is
//! re-sealed under the current one — domain DKIM keys, message payloads, suppressed
//! addresses — in batches, each row only if it did not change meanwhile.

use super::store::{self, Sealed};
use super::{domains, messages, suppressions, templates};
use crate::app::AppState;
use crate::crypto::field::Place;
use crate::error::{DomainError, DomainResult};
use crate::tenancy::TenantScope;

/// Re-seals the tenant's mail values under its current data key; how many.
pub async fn reseal(app: &AppState, scope: &TenantScope) -> DomainResult<u64> {
    let tenant = scope.tenant_id();
    let mut moved = 0;
    for table in Sealed::ALL {
        moved += crate::crm::reseal_in_batches(app, scope, async |tx, keys, version| {
            let rows = store::sealed_older_than(tx, table, version).await?;
            if rows.is_empty() {
                return Ok(None);
            }
            let mut done = 0;
            for (id, was, sealed) in rows {
                let place: Place<'_> = match table {
                    Sealed::Domains => {
                        domains::place(scope, crate::ids::EmailDomainId::from_uuid(id))
                    }
                    Sealed::NextDkim => {
                        domains::next_place(scope, crate::ids::EmailDomainId::from_uuid(id))
                    }
                    Sealed::Templates => {
                        templates::place(tenant, crate::ids::EmailTemplateId::from_uuid(id))
                    }
                    Sealed::Messages => {
                        messages::place(tenant, crate::ids::EmailMessageId::from_uuid(id))
                    }
                    Sealed::Suppressions => {
                        suppressions::place(tenant, crate::ids::SuppressionId::from_uuid(id))
                    }
                };
                let plain = keys
                    .decrypt(&place, &sealed)
                    .map_err(|err| DomainError::Internal(format!("{table:?} {id}: {err}")))?;
                let resealed = keys.encrypt(&place, &plain);
                if store::reseal(tx, table, id, was, version, &resealed).await? {
                    done += 1;
                }
            }
            Ok(Some(done))
        })
        .await?;
    }
    Ok(moved)
}
