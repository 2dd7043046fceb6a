//! Content retention (`BULWARK_RETENTION_EMAIL_CONTENT`): the bodies of finished messages
//! older than the window are purged — the sealed payload is rewritten without text, HTML and
//! custom headers — while the metadata (addresses, subject, status, events) stays for the
//! tenant's records. Messages still queued or deferred keep everything they need.

use zeroize::Zeroizing;

use super::messages::{self, place};
use super::store;
use crate::app::AppState;
use crate::clock::Timestamp;
use crate::error::{DomainError, DomainResult};
use crate::tenancy::TenantScope;

/// Purges the bodies of the tenant's finished messages created before `before`; how many.
pub async fn purge_content(
    app: &AppState,
    scope: &TenantScope,
    before: Timestamp,
) -> DomainResult<u64> {
    let tenant = scope.tenant_id();
    let mut purged = 0;
    loop {
        let mut tx = app.store().tenant_tx(scope).await?;
        let rows = store::bodies_to_purge(&mut tx, before, 200).await?;
        if rows.is_empty() {
            tx.commit().await?;
            return Ok(purged);
        }
        let keys = crate::crm::sealing_keys(app, &mut tx).await?;
        let version = i32::try_from(keys.current_version()).unwrap_or(i32::MAX);
        let now = Timestamp::now();
        for row in rows {
            let mut payload = match messages::open(&keys, tenant, &row) {
                Ok(payload) => payload,
                // A value that does not open cannot be trimmed; it is marked done (left as
                // it is) so one bad row never stops the purge of the rest.
                Err(err) => {
                    tracing::error!(error = %err, message = %row.id, "an email body cannot be purged");
                    let was = row.key_version;
                    store::purge_body(&mut tx, row.id, was, was, &row.payload, now).await?;
                    continue;
                }
            };
            payload.text = None;
            payload.html = None;
            payload.headers.clear();
            let plain = Zeroizing::new(
                serde_json::to_vec(&payload)
                    .map_err(|err| DomainError::Internal(err.to_string()))?,
            );
            let sealed = keys.encrypt(&place(tenant, row.id), &plain);
            if store::purge_body(&mut tx, row.id, row.key_version, version, &sealed, now).await? {
                purged += 1;
            }
        }
        tx.commit().await?;
    }
}

/// Forgets the tenant's quota counters once no window reads them (two days on).
pub async fn purge_counters(tx: &mut crate::store::TenantTx, now: Timestamp) -> DomainResult<u64> {
    let before = now.minus(std::time::Duration::from_secs(2 * 86_400));
    Ok(store::purge_usage(tx, before).await?)
}
