//! SQL of maintenance: retention purges, tenant deletion.

use crate::clock::Timestamp;
use crate::ids::TenantId;
use crate::store::{AsRawTx as _, Backend, StoreError, SystemTx, TenantTx, query};

pub async fn purge_activities(tx: &mut TenantTx, before: Timestamp) -> Result<u64, StoreError> {
    let tenant = tx.tenant_id();
    query("DELETE FROM activities WHERE tenant_id = $1 AND occurred_at < $2")
        .binds((tenant, before))
        .execute(tx)
        .await
}

pub async fn purge_notes(tx: &mut TenantTx, before: Timestamp) -> Result<u64, StoreError> {
    let tenant = tx.tenant_id();
    query("DELETE FROM notes WHERE tenant_id = $1 AND created_at < $2")
        .binds((tenant, before))
        .execute(tx)
        .await
}

pub async fn purge_documents(tx: &mut TenantTx, before: Timestamp) -> Result<u64, StoreError> {
    let tenant = tx.tenant_id();
    query("DELETE FROM documents WHERE tenant_id = $1 AND created_at < $2")
        .binds((tenant, before))
        .execute(tx)
        .await
}

/// Deletes the prefix of a chain older than `before` and anchors the chain at its end.
pub async fn purge_audit_chain(
    tx: &mut SystemTx,
    tenant: TenantId,
    before: Timestamp,
) -> Result<u64, StoreError> {
    // Dialects differ: on PostgreSQL the application role may not delete audit rows, so an
    // owner-defined function does it (and refuses anything younger than a year).
    if tx.backend() == Backend::Postgres {
        let removed: i64 =
            query("SELECT bulwark_purge_audit($1, $2)").binds((tenant, before)).scalar(tx).await?;
        return Ok(u64::try_from(removed).unwrap_or(0));
    }
    let first_kept: Option<i64> =
        query("SELECT min(seq) FROM audit_events WHERE chain_id = $1 AND occurred_at >= $2")
            .binds((tenant, before))
            .scalar(tx)
            .await?;
    let last: Option<i64> = match first_kept {
        Some(seq) => Some(seq - 1),
        None => {
            query("SELECT max(seq) FROM audit_events WHERE chain_id = $1")
                .bind(tenant)
                .scalar(tx)
                .await?
        }
    };
    let Some(last) = last.filter(|seq| *seq > 0) else { return Ok(0) };
    let hash: Option<Vec<u8>> =
        query("SELECT hash FROM audit_events WHERE chain_id = $1 AND seq = $2")
            .binds((tenant, last))
            .scalar_optional(tx)
            .await?;
    let Some(hash) = hash else { return Ok(0) };
    let removed = query("DELETE FROM audit_events WHERE chain_id = $1 AND seq <= $2")
        .binds((tenant, last))
        .execute(tx)
        .await?;
    query(
        "INSERT INTO audit_anchors (chain_id, seq, hash) VALUES ($1, $2, $3) \
         ON CONFLICT (chain_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
    )
    .binds((tenant, last, &hash))
    .execute(tx)
    .await?;
    Ok(removed)
}

pub async fn active_tenants(tx: &mut SystemTx) -> Result<Vec<TenantId>, StoreError> {
    query("SELECT id FROM tenants WHERE status = 'active' ORDER BY id").scalars(tx).await
}

/// Sessions (with their refresh tokens) that ended before `before`, and stale login
/// counters.
pub async fn purge_ended_sessions(tx: &mut SystemTx, before: Timestamp) -> Result<u64, StoreError> {
    let mut removed = 0;
    for sql in [
        "DELETE FROM refresh_tokens WHERE session_id IN (SELECT id FROM sessions WHERE \
         (revoked_at IS NOT NULL AND revoked_at < $1) OR expires_at < $1)",
        "DELETE FROM sessions WHERE (revoked_at IS NOT NULL AND revoked_at < $1) \
         OR expires_at < $1",
        "DELETE FROM login_throttle WHERE locked_until < $1 AND window_started_at < $1",
    ] {
        removed += query(sql).bind(before).execute(tx).await?;
    }
    Ok(removed)
}

/// Every business record of the transaction's tenant.
pub async fn delete_business_records(tx: &mut TenantTx) -> Result<u64, StoreError> {
    let tenant = tx.tenant_id();
    let mut deleted = 0;
    for sql in [
        "DELETE FROM documents WHERE tenant_id = $1",
        "DELETE FROM notes WHERE tenant_id = $1",
        "DELETE FROM integration_notes WHERE tenant_id = $1",
        "DELETE FROM activities WHERE tenant_id = $1",
        "DELETE FROM tasks WHERE tenant_id = $1",
        "DELETE FROM deals WHERE tenant_id = $1",
        "DELETE FROM leads WHERE tenant_id = $1",
        "DELETE FROM pipeline_stages WHERE tenant_id = $1",
        "DELETE FROM pipelines WHERE tenant_id = $1",
        "DELETE FROM contacts WHERE tenant_id = $1",
        "DELETE FROM payments WHERE tenant_id = $1",
        "DELETE FROM companies WHERE tenant_id = $1",
        "DELETE FROM email_events WHERE tenant_id = $1",
        "DELETE FROM email_messages WHERE tenant_id = $1",
        "DELETE FROM email_domains WHERE tenant_id = $1",
        "DELETE FROM email_suppressions WHERE tenant_id = $1",
        "DELETE FROM email_templates WHERE tenant_id = $1",
        "DELETE FROM webhook_deliveries WHERE tenant_id = $1",
        "DELETE FROM oauth_states WHERE tenant_id = $1",
        "DELETE FROM integrations WHERE tenant_id = $1",
        "DELETE FROM webhook_subscriptions WHERE tenant_id = $1",
        "DELETE FROM email_usage WHERE tenant_id = $1",
    ] {
        deleted += query(sql).bind(tenant).execute(tx).await?;
    }
    Ok(deleted)
}

/// The tenant's users lose their second factors, sessions, keys and invitations and are
/// deactivated; the tenant is marked deleted.
pub async fn close_accounts(
    tx: &mut SystemTx,
    tenant: TenantId,
    now: Timestamp,
) -> Result<(), StoreError> {
    for sql in [
        "DELETE FROM mfa_backup_codes WHERE tenant_id = $1",
        "DELETE FROM mfa_totp WHERE tenant_id = $1",
        "DELETE FROM webauthn_credentials WHERE tenant_id = $1",
        "DELETE FROM auth_challenges WHERE tenant_id = $1",
        "DELETE FROM account_tokens WHERE tenant_id = $1",
    ] {
        query(sql).bind(tenant).execute(tx).await?;
    }
    for sql in [
        "UPDATE sessions SET revoked_at = $2, revoked_reason = 'tenant_deleted' \
         WHERE tenant_id = $1 AND revoked_at IS NULL",
        "UPDATE api_keys SET revoked_at = $2 WHERE tenant_id = $1 AND revoked_at IS NULL",
        "UPDATE invitations SET expires_at = $2 WHERE tenant_id = $1 AND accepted_at IS NULL \
         AND expires_at > $2",
        "UPDATE users SET status = 'deactivated', updated_at = $2 WHERE tenant_id = $1",
        "UPDATE tenants SET status = 'deleted' WHERE id = $1",
    ] {
        query(sql).bind(tenant).bind(now).execute(tx).await?;
    }
    Ok(())
}

/// A tenant's status, if the tenant exists.
pub async fn tenant_status(
    tx: &mut SystemTx,
    tenant: TenantId,
) -> Result<Option<String>, StoreError> {
    query("SELECT status FROM tenants WHERE id = $1").bind(tenant).scalar_optional(tx).await
}

/// The sessions a tenant deletion revoked, for the revocation cache.
pub async fn sessions_of_tenant(
    tx: &mut SystemTx,
    tenant: TenantId,
) -> Result<Vec<crate::ids::SessionId>, StoreError> {
    query("SELECT id FROM sessions WHERE tenant_id = $1 AND revoked_reason = 'tenant_deleted'")
        .bind(tenant)
        .scalars(tx)
        .await
}

/// Rows of the transaction's tenant still sealed under a data key older than `version`.
pub async fn rows_under_older_keys(tx: &mut TenantTx, version: i32) -> Result<i64, StoreError> {
    let tenant = tx.tenant_id();
    query(
        "SELECT (SELECT count(*) FROM contacts WHERE tenant_id = $1 AND key_version < $2) \
         + (SELECT count(*) FROM notes WHERE tenant_id = $1 AND key_version < $2) \
         + (SELECT count(*) FROM activities WHERE tenant_id = $1 AND key_version < $2) \
         + (SELECT count(*) FROM documents WHERE tenant_id = $1 AND key_version < $2) \
         + (SELECT count(*) FROM email_domains WHERE tenant_id = $1 AND key_version < $2) \
         + (SELECT count(*) FROM email_messages WHERE tenant_id = $1 AND key_version < $2) \
         + (SELECT count(*) FROM email_suppressions WHERE tenant_id = $1 AND key_version < $2) \
         + (SELECT count(*) FROM email_domains WHERE tenant_id = $1 AND next_key_version < $2) \
         + (SELECT count(*) FROM email_templates WHERE tenant_id = $1 AND key_version < $2) \
         + (SELECT count(*) FROM webhook_subscriptions WHERE tenant_id = $1 AND key_version < $2) \
         + (SELECT count(*) FROM integrations WHERE tenant_id = $1 AND key_version < $2)",
    )
    .binds((tenant, version))
    .scalar(tx)
    .await
}

/// Forgets signed webhook deliveries received before `before`.
pub async fn purge_webhook_receipts(
    tx: &mut SystemTx,
    before: Timestamp,
) -> Result<u64, StoreError> {
    query("DELETE FROM webhook_receipts WHERE received_at < $1").bind(before).execute(tx).await
}

/// Removes account tokens (email verification, password reset) that have expired.
pub async fn purge_account_tokens(tx: &mut SystemTx, now: Timestamp) -> Result<u64, StoreError> {
    query("DELETE FROM account_tokens WHERE expires_at < $1").bind(now).execute(tx).await
}
