//! SQL of integrations: connections, their directory entries, connects in progress, and
//! Zoom's compliance queue (claimed through `store::queue::ZOOM_COMPLIANCE`).

use crate::clock::Timestamp;
use crate::ids::{IntegrationId, TenantId, UserId};
use crate::store::{StoreError, SystemTx, TenantTx, query};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IntegrationRow {
    pub id: IntegrationId,
    pub user_id: UserId,
    pub provider: String,
    pub scope: String,
    pub status: String,
    pub scopes: String,
    pub key_version: i32,
    pub sealed: Vec<u8>,
    pub expires_at: Option<Timestamp>,
    pub connected_at: Timestamp,
    pub updated_at: Timestamp,
}

macro_rules! integrations_where {
    ($rest:literal) => {
        concat!(
            "SELECT id, user_id, provider, scope, status, scopes, key_version, sealed, expires_at, \
             connected_at, updated_at FROM integrations WHERE tenant_id = $1 ",
            $rest
        )
    };
}

/// The connections `user` sees: their own and the tenant-wide ones.
pub async fn visible_to(
    tx: &mut TenantTx,
    user: UserId,
) -> Result<Vec<IntegrationRow>, StoreError> {
    let tenant = tx.tenant_id();
    query(integrations_where!("AND (user_id = $2 OR scope = 'tenant') ORDER BY provider, id"))
        .binds((tenant, user))
        .fetch_all(tx)
        .await
}

/// Every connection `user` made (any scope), or every connection of the tenant.
pub async fn made_by(
    tx: &mut TenantTx,
    user: Option<UserId>,
) -> Result<Vec<IntegrationRow>, StoreError> {
    let tenant = tx.tenant_id();
    query(integrations_where!("AND ($2 IS NULL OR user_id = $2) ORDER BY id"))
        .binds((tenant, user))
        .fetch_all(tx)
        .await
}

/// `user`'s own connection to `provider`, else the tenant-wide one.
pub async fn usable(
    tx: &mut TenantTx,
    user: UserId,
    provider: &str,
) -> Result<Option<IntegrationRow>, StoreError> {
    let tenant = tx.tenant_id();
    query(integrations_where!(
        "AND provider = $3 AND (user_id = $2 OR scope = 'tenant') \
         ORDER BY CASE WHEN user_id = $2 THEN 0 ELSE 1 END LIMIT 1"
    ))
    .binds((tenant, user, provider))
    .fetch_optional(tx)
    .await
}

pub async fn by_id(
    tx: &mut TenantTx,
    id: IntegrationId,
) -> Result<Option<IntegrationRow>, StoreError> {
    let tenant = tx.tenant_id();
    query(integrations_where!("AND id = $2")).binds((tenant, id)).fetch_optional(tx).await
}

/// Replaces `user`'s connection to the row's provider in the row's scope with `row`; the
/// connection it replaced, if any (its grant is still live at the provider).
pub async fn replace(
    tx: &mut TenantTx,
    row: &IntegrationRow,
    external_id: Option<&str>,
) -> Result<Option<IntegrationRow>, StoreError> {
    let tenant = tx.tenant_id();
    let replaced = query(
        "DELETE FROM integrations WHERE tenant_id = $1 AND user_id = $2 AND provider = $3 \
         AND scope = $4 RETURNING id, user_id, provider, scope, status, scopes, key_version, \
         sealed, expires_at, connected_at, updated_at",
    )
    .binds((tenant, row.user_id, row.provider.as_str(), row.scope.as_str()))
    .fetch_optional(tx)
    .await?;
    query(
        "INSERT INTO integrations (id, tenant_id, user_id, provider, scope, status, scopes, \
         key_version, sealed, expires_at, connected_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .binds((
        row.id,
        tenant,
        row.user_id,
        row.provider.as_str(),
        row.scope.as_str(),
        row.status.as_str(),
        row.scopes.as_str(),
        row.key_version,
        row.sealed.as_slice(),
        row.expires_at,
        row.connected_at,
        row.updated_at,
    ))
    .execute(tx)
    .await?;
    query(
        "INSERT INTO integration_directory (integration_id, tenant_id, provider, external_id, \
         expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .binds((row.id, tenant, row.provider.as_str(), external_id, row.expires_at))
    .execute(tx)
    .await?;
    Ok(replaced)
}

/// New tokens from a refresh, unless the row changed since it was read (`read_at`, its
/// `updated_at` then): another refresh got there first. Whether it was written.
pub async fn update_tokens(
    tx: &mut TenantTx,
    row: &IntegrationRow,
    read_at: Timestamp,
) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    let changed = query(
        "UPDATE integrations SET status = 'connected', key_version = $3, sealed = $4, \
         expires_at = $5, updated_at = $6 WHERE tenant_id = $1 AND id = $2 AND updated_at = $7",
    )
    .binds((
        tenant,
        row.id,
        row.key_version,
        row.sealed.as_slice(),
        row.expires_at,
        row.updated_at,
        read_at,
    ))
    .execute_one(tx)
    .await?;
    if changed {
        set_directory_expiry(tx, row.id, row.expires_at).await?;
    }
    Ok(changed)
}

/// A refresh failed: the connection is in error (and leaves the background refresh), unless
/// the row changed since it was read. Whether it was marked.
pub async fn mark_error(
    tx: &mut TenantTx,
    id: IntegrationId,
    read_at: Timestamp,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    let changed = query(
        "UPDATE integrations SET status = 'error', updated_at = $4 \
         WHERE tenant_id = $1 AND id = $2 AND updated_at = $3",
    )
    .binds((tenant, id, read_at, now))
    .execute_one(tx)
    .await?;
    if changed {
        set_directory_expiry(tx, id, None).await?;
    }
    Ok(changed)
}

async fn set_directory_expiry(
    tx: &mut TenantTx,
    id: IntegrationId,
    expires_at: Option<Timestamp>,
) -> Result<(), StoreError> {
    let tenant = tx.tenant_id();
    query(
        "UPDATE integration_directory SET expires_at = $3 \
         WHERE tenant_id = $1 AND integration_id = $2",
    )
    .binds((tenant, id, expires_at))
    .execute_one(tx)
    .await?;
    Ok(())
}

pub async fn delete(tx: &mut TenantTx, id: IntegrationId) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    query("DELETE FROM integrations WHERE tenant_id = $1 AND id = $2")
        .binds((tenant, id))
        .execute_one(tx)
        .await
}

/// Connections due for a refresh before `before`: (tenant, id).
pub async fn expiring(
    tx: &mut SystemTx,
    before: Timestamp,
    limit: i64,
) -> Result<Vec<(TenantId, IntegrationId)>, StoreError> {
    query(
        "SELECT tenant_id, integration_id FROM integration_directory \
         WHERE expires_at IS NOT NULL AND expires_at < $1 ORDER BY expires_at LIMIT $2",
    )
    .binds((before, limit))
    .fetch_all(tx)
    .await
}

/// The connections of a provider's user, in any tenant: (tenant, id).
pub async fn by_external(
    tx: &mut SystemTx,
    provider: &str,
    external_id: &str,
) -> Result<Vec<(TenantId, IntegrationId)>, StoreError> {
    query(
        "SELECT tenant_id, integration_id FROM integration_directory \
         WHERE provider = $1 AND external_id = $2",
    )
    .binds((provider, external_id))
    .fetch_all(tx)
    .await
}

/// A connect in progress.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StateRow {
    pub user_id: UserId,
    pub session_id: String,
    pub provider: String,
    pub scope: String,
    pub verifier: Vec<u8>,
    pub expires_at: Timestamp,
}

pub async fn insert_state(
    tx: &mut TenantTx,
    nonce_hash: &[u8],
    state: &StateRow,
) -> Result<(), StoreError> {
    let tenant = tx.tenant_id();
    query(
        "INSERT INTO oauth_states (nonce_hash, tenant_id, user_id, session_id, provider, scope, \
         verifier, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .binds((
        nonce_hash,
        tenant,
        state.user_id,
        state.session_id.as_str(),
        state.provider.as_str(),
        state.scope.as_str(),
        state.verifier.as_slice(),
        state.expires_at,
    ))
    .execute(tx)
    .await?;
    Ok(())
}

/// Takes a connect in progress (single use): it is gone whatever the caller makes of it.
pub async fn take_state(
    tx: &mut TenantTx,
    nonce_hash: &[u8],
) -> Result<Option<StateRow>, StoreError> {
    let tenant = tx.tenant_id();
    query(
        "DELETE FROM oauth_states WHERE tenant_id = $1 AND nonce_hash = $2 \
         RETURNING user_id, session_id, provider, scope, verifier, expires_at",
    )
    .binds((tenant, nonce_hash))
    .fetch_optional(tx)
    .await
}

/// Connects abandoned past their 10 minutes.
pub async fn purge_states(tx: &mut TenantTx, now: Timestamp) -> Result<u64, StoreError> {
    let tenant = tx.tenant_id();
    query("DELETE FROM oauth_states WHERE tenant_id = $1 AND expires_at < $2")
        .binds((tenant, now))
        .execute(tx)
        .await
}

/// Queues a Zoom compliance confirmation.
pub async fn queue_compliance(
    tx: &mut SystemTx,
    id: uuid::Uuid,
    tenant: TenantId,
    body: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    query(
        "INSERT INTO zoom_compliance (id, tenant_id, body, due_at, attempts) \
         VALUES ($1, $2, $3, $4, 0)",
    )
    .binds((id, tenant, body, now))
    .execute(tx)
    .await?;
    Ok(())
}

pub async fn compliance_body(
    tx: &mut SystemTx,
    id: uuid::Uuid,
) -> Result<Option<String>, StoreError> {
    query("SELECT body FROM zoom_compliance WHERE id = $1").bind(id).scalar_optional(tx).await
}

/// Records a line a connection wrote into an activity (its SHA-256).
pub async fn insert_note(
    tx: &mut TenantTx,
    integration: IntegrationId,
    activity: crate::ids::ActivityId,
    line_hash: &[u8],
) -> Result<(), StoreError> {
    let tenant = tx.tenant_id();
    query(
        "INSERT INTO integration_notes (tenant_id, integration_id, activity_id, line_hash) \
         VALUES ($1, $2, $3, $4)",
    )
    .binds((tenant, integration, activity, line_hash))
    .execute(tx)
    .await?;
    Ok(())
}

/// Takes the lines a connection wrote: (activity, line hash), now forgotten here.
pub async fn take_notes(
    tx: &mut TenantTx,
    integration: IntegrationId,
) -> Result<Vec<(crate::ids::ActivityId, Vec<u8>)>, StoreError> {
    let tenant = tx.tenant_id();
    query(
        "DELETE FROM integration_notes WHERE tenant_id = $1 AND integration_id = $2 \
         RETURNING activity_id, line_hash",
    )
    .binds((tenant, integration))
    .fetch_all(tx)
    .await
}
