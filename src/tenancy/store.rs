//! SQL of tenant membership: the users of a tenant, invitations, and the platform's list of
//! tenants.

#![allow(clippy::disallowed_methods, reason = "the store is where SQL lives")]

use uuid::Uuid;

use crate::ids::{InvitationId, TenantId, UserId};
use crate::on_tx;
use crate::store::{StoreError, SystemTx, TenantTx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberRow {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: Option<String>,
    pub status: String,
    pub created_at: i64,
}

pub async fn list_members(
    tx: &mut TenantTx,
    after: Option<UserId>,
    limit: i64,
) -> Result<Vec<MemberRow>, StoreError> {
    let tenant = tx.tenant_id();
    Ok(on_tx!(tx, |c| sqlx::query_as::<_, MemberRow>(
        "SELECT id, email, display_name, role, status, created_at FROM users \
         WHERE tenant_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
    )
    .bind(tenant)
    .bind(after)
    .bind(limit)
    .fetch_all(c)
    .await)?)
}

pub async fn member(tx: &mut TenantTx, id: UserId) -> Result<Option<MemberRow>, StoreError> {
    let tenant = tx.tenant_id();
    Ok(on_tx!(tx, |c| sqlx::query_as::<_, MemberRow>(
        "SELECT id, email, display_name, role, status, created_at FROM users \
         WHERE id = $1 AND tenant_id = $2"
    )
    .bind(id)
    .bind(tenant)
    .fetch_optional(c)
    .await)?)
}

pub async fn set_role(
    tx: &mut TenantTx,
    id: UserId,
    role: &str,
    now: i64,
) -> Result<(), StoreError> {
    let tenant = tx.tenant_id();
    on_tx!(tx, |c| sqlx::query(
        "UPDATE users SET role = $3, updated_at = $4 WHERE id = $1 AND tenant_id = $2"
    )
    .bind(id)
    .bind(tenant)
    .bind(role)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn deactivate(tx: &mut TenantTx, id: UserId, now: i64) -> Result<(), StoreError> {
    let tenant = tx.tenant_id();
    on_tx!(tx, |c| sqlx::query(
        "UPDATE users SET status = 'deactivated', updated_at = $3 WHERE id = $1 AND tenant_id = $2"
    )
    .bind(id)
    .bind(tenant)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn count_active_owners(tx: &mut TenantTx) -> Result<i64, StoreError> {
    let tenant = tx.tenant_id();
    Ok(on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT count(*) FROM users WHERE tenant_id = $1 AND role = 'owner' AND status = 'active'"
    )
    .bind(tenant)
    .fetch_one(c)
    .await)?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvitationRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub email: String,
    pub role: String,
    pub invited_by: Uuid,
    pub created_at: i64,
    pub expires_at: i64,
    pub accepted_at: Option<i64>,
}

pub struct NewInvitation<'a> {
    pub id: InvitationId,
    pub email: &'a str,
    pub role: &'a str,
    pub token_hash: &'a [u8],
    pub invited_by: UserId,
    pub now: i64,
    pub expires_at: i64,
}

pub async fn insert_invitation(
    tx: &mut TenantTx,
    inv: &NewInvitation<'_>,
) -> Result<(), StoreError> {
    let tenant = tx.tenant_id();
    on_tx!(tx, |c| {
        sqlx::query(
        "INSERT INTO invitations (id, tenant_id, email, role, token_hash, invited_by, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    )
    .bind(inv.id)
    .bind(tenant)
    .bind(inv.email)
    .bind(inv.role)
    .bind(inv.token_hash)
    .bind(inv.invited_by)
    .bind(inv.now)
    .bind(inv.expires_at)
    .execute(c)
    .await
    .map(|r| r.rows_affected())
    })?;
    Ok(())
}

pub async fn list_invitations(
    tx: &mut TenantTx,
    after: Option<InvitationId>,
    limit: i64,
) -> Result<Vec<InvitationRow>, StoreError> {
    let tenant = tx.tenant_id();
    Ok(on_tx!(tx, |c| sqlx::query_as::<_, InvitationRow>(
        "SELECT id, tenant_id, email, role, invited_by, created_at, expires_at, accepted_at \
         FROM invitations WHERE tenant_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
    )
    .bind(tenant)
    .bind(after)
    .bind(limit)
    .fetch_all(c)
    .await)?)
}

/// Ends a pending invitation now; false when the tenant has no such pending invitation.
pub async fn revoke_invitation(
    tx: &mut TenantTx,
    id: InvitationId,
    now: i64,
) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    let done = on_tx!(tx, |c| sqlx::query(
        "UPDATE invitations SET expires_at = $3 WHERE id = $1 AND tenant_id = $2 \
         AND accepted_at IS NULL AND expires_at > $3"
    )
    .bind(id)
    .bind(tenant)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

pub async fn invitation_by_token(
    tx: &mut SystemTx,
    token_hash: &[u8],
) -> Result<Option<InvitationRow>, StoreError> {
    Ok(on_tx!(tx, |c| sqlx::query_as::<_, InvitationRow>(
        "SELECT id, tenant_id, email, role, invited_by, created_at, expires_at, accepted_at \
         FROM invitations WHERE token_hash = $1"
    )
    .bind(token_hash)
    .fetch_optional(c)
    .await)?)
}

/// Spends an invitation; false if it was used or expired meanwhile.
pub async fn accept_invitation(
    tx: &mut SystemTx,
    id: InvitationId,
    user: UserId,
    now: i64,
) -> Result<bool, StoreError> {
    let done = on_tx!(tx, |c| sqlx::query(
        "UPDATE invitations SET accepted_at = $3, accepted_user_id = $2 \
         WHERE id = $1 AND accepted_at IS NULL AND expires_at > $3"
    )
    .bind(id)
    .bind(user)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TenantRow {
    pub id: Uuid,
    pub name: String,
    pub status: String,
    pub created_at: i64,
    pub users: i64,
}

pub async fn list_tenants(
    tx: &mut SystemTx,
    after: Option<TenantId>,
    limit: i64,
) -> Result<Vec<TenantRow>, StoreError> {
    Ok(on_tx!(tx, |c| sqlx::query_as::<_, TenantRow>(
        "SELECT t.id, t.name, t.status, t.created_at, \
         (SELECT count(*) FROM users u WHERE u.tenant_id = t.id) AS users \
         FROM tenants t WHERE ($1 IS NULL OR t.id > $1) ORDER BY t.id LIMIT $2"
    )
    .bind(after)
    .bind(limit)
    .fetch_all(c)
    .await)?)
}
