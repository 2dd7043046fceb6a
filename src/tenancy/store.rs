//! SQL of tenant membership: the users of a tenant, invitations, and the platform's list of
//! tenants.

use crate::clock::Timestamp;
use crate::ids::{InvitationId, TenantId, UserId};
use crate::store::{AsRawTx as _, Backend, StoreError, SystemTx, TenantTx, query};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberRow {
    pub id: UserId,
    pub email: String,
    pub display_name: String,
    pub role: Option<String>,
    pub status: String,
    pub created_at: Timestamp,
}

pub async fn list_members(
    tx: &mut TenantTx,
    after: Option<UserId>,
    limit: i64,
) -> Result<Vec<MemberRow>, StoreError> {
    let tenant = tx.tenant_id();
    query(
        "SELECT id, email, display_name, role, status, created_at FROM users \
         WHERE tenant_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3",
    )
    .binds((tenant, after, limit))
    .fetch_all::<MemberRow>(tx)
    .await
}

pub async fn member(tx: &mut TenantTx, id: UserId) -> Result<Option<MemberRow>, StoreError> {
    let tenant = tx.tenant_id();
    query(
        "SELECT id, email, display_name, role, status, created_at FROM users \
         WHERE id = $1 AND tenant_id = $2",
    )
    .binds((id, tenant))
    .fetch_optional::<MemberRow>(tx)
    .await
}

pub async fn set_role(
    tx: &mut TenantTx,
    id: UserId,
    role: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    let tenant = tx.tenant_id();
    query("UPDATE users SET role = $3, updated_at = $4 WHERE id = $1 AND tenant_id = $2")
        .binds((id, tenant, role, now))
        .execute(tx)
        .await?;
    Ok(())
}

pub async fn deactivate(tx: &mut TenantTx, id: UserId, now: Timestamp) -> Result<(), StoreError> {
    let tenant = tx.tenant_id();
    query(
        "UPDATE users SET status = 'deactivated', updated_at = $3 WHERE id = $1 AND tenant_id \
             = $2",
    )
    .binds((id, tenant, now))
    .execute(tx)
    .await?;
    Ok(())
}

/// The tenant's active owners, counted under lock (PostgreSQL `FOR UPDATE`; SQLite's single
/// writer): two demotions racing cannot both see a second owner and leave none.
pub async fn lock_active_owners(tx: &mut TenantTx) -> Result<usize, StoreError> {
    let tenant = tx.tenant_id();
    // Dialects differ: FOR UPDATE exists on PostgreSQL only.
    let sql = match tx.backend() {
        Backend::Postgres => {
            "SELECT id FROM users WHERE tenant_id = $1 AND role = 'owner' AND status = 'active' \
             FOR UPDATE"
        }
        Backend::Sqlite => {
            "SELECT id FROM users WHERE tenant_id = $1 AND role = 'owner' AND status = 'active'"
        }
    };
    let owners: Vec<UserId> = query(sql).bind(tenant).scalars(tx).await?;
    Ok(owners.len())
}

/// The addresses of the tenant's active owners.
pub async fn owner_emails(tx: &mut TenantTx) -> Result<Vec<String>, StoreError> {
    let tenant = tx.tenant_id();
    query(
        "SELECT email FROM users WHERE tenant_id = $1 AND role = 'owner' AND status = 'active' \
         ORDER BY email",
    )
    .bind(tenant)
    .scalars(tx)
    .await
}

/// A member's pending invitations: (id, role).
pub async fn pending_invitations_by(
    tx: &mut TenantTx,
    inviter: UserId,
    now: Timestamp,
) -> Result<Vec<(InvitationId, String)>, StoreError> {
    let tenant = tx.tenant_id();
    query(
        "SELECT id, role FROM invitations WHERE tenant_id = $1 AND invited_by = $2 \
         AND accepted_at IS NULL AND expires_at > $3",
    )
    .binds((tenant, inviter, now))
    .fetch_all(tx)
    .await
}

pub async fn tenant_is_active(tx: &mut SystemTx, tenant: TenantId) -> Result<bool, StoreError> {
    let status: Option<String> =
        query("SELECT status FROM tenants WHERE id = $1").bind(tenant).scalar_optional(tx).await?;
    Ok(status.as_deref() == Some("active"))
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvitationRow {
    pub id: InvitationId,
    pub tenant_id: TenantId,
    pub email: String,
    pub role: String,
    pub invited_by: UserId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub accepted_at: Option<Timestamp>,
}

pub struct NewInvitation<'a> {
    pub id: InvitationId,
    pub email: &'a str,
    pub role: &'a str,
    pub token_hash: &'a [u8],
    pub invited_by: UserId,
    pub now: Timestamp,
    pub expires_at: Timestamp,
}

pub async fn insert_invitation(
    tx: &mut TenantTx,
    inv: &NewInvitation<'_>,
) -> Result<(), StoreError> {
    let tenant = tx.tenant_id();
    query(
        "INSERT INTO invitations (id, tenant_id, email, role, token_hash, invited_by, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    )
    .binds((inv.id, tenant, inv.email, inv.role, inv.token_hash, inv.invited_by, inv.now, inv.expires_at))
    .execute(tx).await?;
    Ok(())
}

pub async fn list_invitations(
    tx: &mut TenantTx,
    after: Option<InvitationId>,
    limit: i64,
) -> Result<Vec<InvitationRow>, StoreError> {
    let tenant = tx.tenant_id();
    query(
        "SELECT id, tenant_id, email, role, invited_by, created_at, expires_at, accepted_at \
         FROM invitations WHERE tenant_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3",
    )
    .binds((tenant, after, limit))
    .fetch_all::<InvitationRow>(tx)
    .await
}

/// Ends a pending invitation now; false when the tenant has no such pending invitation.
pub async fn revoke_invitation(
    tx: &mut TenantTx,
    id: InvitationId,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    query(
        "UPDATE invitations SET expires_at = $3 WHERE id = $1 AND tenant_id = $2 \
         AND accepted_at IS NULL AND expires_at > $3",
    )
    .binds((id, tenant, now))
    .execute_one(tx)
    .await
}

pub async fn invitation_by_token(
    tx: &mut SystemTx,
    token_hash: &[u8],
) -> Result<Option<InvitationRow>, StoreError> {
    query(
        "SELECT id, tenant_id, email, role, invited_by, created_at, expires_at, accepted_at \
         FROM invitations WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional::<InvitationRow>(tx)
    .await
}

/// Spends an invitation; false if it was used or expired meanwhile.
pub async fn accept_invitation(
    tx: &mut SystemTx,
    id: InvitationId,
    user: UserId,
    now: Timestamp,
) -> Result<bool, StoreError> {
    query(
        "UPDATE invitations SET accepted_at = $3, accepted_user_id = $2 \
         WHERE id = $1 AND accepted_at IS NULL AND expires_at > $3",
    )
    .binds((id, user, now))
    .execute_one(tx)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TenantRow {
    pub id: TenantId,
    pub name: String,
    pub status: String,
    pub created_at: Timestamp,
    pub users: i64,
}

pub async fn list_tenants(
    tx: &mut SystemTx,
    after: Option<TenantId>,
    limit: i64,
) -> Result<Vec<TenantRow>, StoreError> {
    query(
        "SELECT t.id, t.name, t.status, t.created_at, \
         (SELECT count(*) FROM users u WHERE u.tenant_id = t.id) AS users \
         FROM tenants t WHERE ($1 IS NULL OR t.id > $1) ORDER BY t.id LIMIT $2",
    )
    .binds((after, limit))
    .fetch_all::<TenantRow>(tx)
    .await
}
