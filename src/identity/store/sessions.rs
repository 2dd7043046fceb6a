//! SQL of sessions and their refresh tokens.

use crate::clock::Timestamp;
use crate::ids::{SessionId, TenantId, UserId};
use crate::store::{AsRawTx, StoreError, SystemTx, query};

macro_rules! session_columns {
    () => {
        "id, tenant_id, user_id, created_at, last_used_at, expires_at, ip, \
    user_agent, revoked_at, step_up_at"
    };
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub id: SessionId,
    pub tenant_id: Option<TenantId>,
    pub user_id: UserId,
    pub created_at: Timestamp,
    pub last_used_at: Timestamp,
    pub expires_at: Timestamp,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub revoked_at: Option<Timestamp>,
    pub step_up_at: Option<Timestamp>,
}

pub struct NewSession<'a> {
    pub id: SessionId,
    pub tenant_id: Option<TenantId>,
    pub user_id: UserId,
    pub now: Timestamp,
    pub expires_at: Timestamp,
    pub ip: Option<String>,
    pub user_agent: Option<&'a str>,
    /// A login that completed a second factor counts as a step-up at its own time.
    pub step_up_at: Option<Timestamp>,
}

pub async fn insert_session(tx: &mut SystemTx, s: &NewSession<'_>) -> Result<(), StoreError> {
    query(
        "INSERT INTO sessions (id, tenant_id, user_id, created_at, last_used_at, expires_at, ip, \
         user_agent, step_up_at) VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8)",
    )
    .binds((s.id, s.tenant_id, s.user_id, s.now, s.expires_at, &s.ip, s.user_agent, s.step_up_at))
    .execute(tx)
    .await?;
    Ok(())
}

pub async fn session(tx: &mut SystemTx, id: SessionId) -> Result<Option<SessionRow>, StoreError> {
    query(concat!("SELECT ", session_columns!(), " FROM sessions WHERE id = $1"))
        .bind(id)
        .fetch_optional(tx)
        .await
}

/// Live sessions of a user, newest first.
/// The user's sessions that still work: not revoked, not past their absolute end, and used
/// (refreshed) since `idle_since`.
pub async fn sessions_of_user(
    tx: &mut SystemTx,
    user: UserId,
    now: Timestamp,
    idle_since: Timestamp,
) -> Result<Vec<SessionRow>, StoreError> {
    query(concat!(
        "SELECT ",
        session_columns!(),
        " FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 \
         AND last_used_at > $3 ORDER BY created_at DESC LIMIT 200"
    ))
    .binds((user, now, idle_since))
    .fetch_all(tx)
    .await
}

/// Whether a session may still be used (not revoked, not expired, its user active), and whose
/// it is: a token's claims must name the same user, tenant and role.
/// Also everything else a request asks of its session (see `identity::session_cache`), so
/// authentication and authorisation cost this one statement.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionState {
    pub revoked_at: Option<Timestamp>,
    pub expires_at: Timestamp,
    pub last_used_at: Timestamp,
    pub step_up_at: Option<Timestamp>,
    pub password_proof_at: Option<Timestamp>,
    pub status: String,
    pub user_id: UserId,
    pub tenant_id: Option<TenantId>,
    pub role: Option<String>,
    pub email: String,
    pub display_name: String,
    pub email_verified_at: Option<Timestamp>,
    pub is_superadmin: bool,
    /// `None` for the platform super-admin, who belongs to no tenant.
    pub tenant_status: Option<String>,
    pub mfa_policy: Option<String>,
    /// A confirmed TOTP or a passkey.
    pub has_factor: bool,
    /// SHA-256 of the console cookie's secret; `None` for an API session.
    pub cookie_hash: Option<Vec<u8>>,
}

pub async fn session_state(
    conn: &mut impl AsRawTx,
    id: SessionId,
) -> Result<Option<SessionState>, StoreError> {
    query(
        "SELECT s.revoked_at, s.expires_at, s.last_used_at, s.step_up_at, s.password_proof_at, \
         u.status, s.user_id, u.tenant_id, u.role, u.email, u.display_name, u.email_verified_at, \
         u.is_superadmin, t.status AS tenant_status, t.mfa_policy, \
         (EXISTS (SELECT 1 FROM mfa_totp m WHERE m.user_id = s.user_id \
                  AND m.confirmed_at IS NOT NULL) \
          OR EXISTS (SELECT 1 FROM webauthn_credentials w WHERE w.user_id = s.user_id)) \
         AS has_factor, s.cookie_hash \
         FROM sessions s JOIN users u ON u.id = s.user_id \
         LEFT JOIN tenants t ON t.id = u.tenant_id WHERE s.id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
}

pub async fn touch_session(
    tx: &mut SystemTx,
    id: SessionId,
    now: Timestamp,
) -> Result<(), StoreError> {
    query("UPDATE sessions SET last_used_at = $2 WHERE id = $1")
        .binds((id, now))
        .execute(tx)
        .await?;
    Ok(())
}

/// Makes the session a console session with a new cookie (at sign-in and at each step-up):
/// the hash of the cookie's secret replaces the last one, and the session's refresh tokens
/// go, so the cookie is its only credential.
pub async fn set_cookie_hash(
    tx: &mut SystemTx,
    id: SessionId,
    hash: &[u8],
) -> Result<bool, StoreError> {
    query("DELETE FROM refresh_tokens WHERE session_id = $1").bind(id).execute(tx).await?;
    query("UPDATE sessions SET cookie_hash = $2 WHERE id = $1 AND revoked_at IS NULL")
        .binds((id, hash))
        .execute_one(tx)
        .await
}

/// When the session last proved a second factor; `None` forgets it (a factor was removed).
pub async fn set_step_up(
    tx: &mut SystemTx,
    id: SessionId,
    at: Option<Timestamp>,
) -> Result<(), StoreError> {
    query("UPDATE sessions SET step_up_at = $2 WHERE id = $1").binds((id, at)).execute(tx).await?;
    Ok(())
}

/// When the session last proved the password (see `mfa::prove_password`).
pub async fn set_password_proof(
    tx: &mut SystemTx,
    id: SessionId,
    at: Timestamp,
) -> Result<(), StoreError> {
    query("UPDATE sessions SET password_proof_at = $2 WHERE id = $1")
        .binds((id, at))
        .execute(tx)
        .await?;
    Ok(())
}

/// Revokes one session of `user`; false when there is no such live session.
pub async fn revoke_session(
    tx: &mut SystemTx,
    user: UserId,
    id: SessionId,
    reason: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    query(
        "UPDATE sessions SET revoked_at = $3, revoked_reason = $4 \
         WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
    )
    .binds((id, user, now, reason))
    .execute_one(tx)
    .await
}

/// Revokes every live session of a user but `keep`; returns the revoked ids (for the cache).
pub async fn revoke_user_sessions(
    tx: &mut impl AsRawTx,
    user: UserId,
    keep: Option<SessionId>,
    reason: &str,
    now: Timestamp,
) -> Result<Vec<SessionId>, StoreError> {
    query(
        "UPDATE sessions SET revoked_at = $3, revoked_reason = $4 \
         WHERE user_id = $1 AND revoked_at IS NULL AND ($2 IS NULL OR id <> $2) RETURNING id",
    )
    .binds((user, keep, now, reason))
    .scalars(tx)
    .await
}

/// Containment: revokes every live session in a tenant, of a user, or both (neither: every
/// session) but `keep`; returns each revoked session with its tenant.
pub async fn revoke_sessions_where(
    tx: &mut SystemTx,
    tenant: Option<TenantId>,
    user: Option<UserId>,
    keep: Option<SessionId>,
    now: Timestamp,
) -> Result<Vec<(SessionId, Option<TenantId>)>, StoreError> {
    query(
        "UPDATE sessions SET revoked_at = $4, revoked_reason = 'containment' \
         WHERE revoked_at IS NULL AND ($1 IS NULL OR tenant_id = $1) \
         AND ($2 IS NULL OR user_id = $2) AND ($3 IS NULL OR id <> $3) RETURNING id, tenant_id",
    )
    .binds((tenant, user, keep, now))
    .fetch_all(tx)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefreshRow {
    pub session_id: SessionId,
    pub spent_at: Option<Timestamp>,
}

pub async fn insert_refresh_token(
    tx: &mut SystemTx,
    hash: &[u8],
    session: SessionId,
    tenant: Option<TenantId>,
    now: Timestamp,
) -> Result<(), StoreError> {
    query(
        "INSERT INTO refresh_tokens (token_hash, session_id, tenant_id, issued_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .binds((hash, session, tenant, now))
    .execute(tx)
    .await?;
    Ok(())
}

pub async fn refresh_token(
    tx: &mut SystemTx,
    hash: &[u8],
) -> Result<Option<RefreshRow>, StoreError> {
    query("SELECT session_id, spent_at FROM refresh_tokens WHERE token_hash = $1")
        .bind(hash)
        .fetch_optional(tx)
        .await
}

/// Marks a token spent; false if it already was (a concurrent use: treated as reuse).
pub async fn spend_refresh_token(
    tx: &mut SystemTx,
    hash: &[u8],
    now: Timestamp,
) -> Result<bool, StoreError> {
    query("UPDATE refresh_tokens SET spent_at = $2 WHERE token_hash = $1 AND spent_at IS NULL")
        .binds((hash, now))
        .execute_one(tx)
        .await
}
