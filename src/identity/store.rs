//! SQL of identity: users (as accounts), sessions, refresh tokens, API keys and the
//! login-failure counters.
//!
//! Lookups by email, token hash or key prefix happen before any tenant is known, so they take
//! a `SystemTx`; changes inside a tenant take its `TenantTx` and filter by its tenant too.

use crate::clock::Timestamp;
use crate::ids::{ApiKeyId, SessionId, TenantId, UserId};
use crate::store::{AsRawTx, Backend, StoreError, SystemTx, TenantTx, query};

macro_rules! user_columns {
    () => {
        "id, tenant_id, email, display_name, password_hash, role, \
    is_superadmin, status, created_at"
    };
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: UserId,
    pub tenant_id: Option<TenantId>,
    pub email: String,
    pub display_name: String,
    pub password_hash: String,
    pub role: Option<String>,
    pub is_superadmin: bool,
    pub status: String,
    pub created_at: Timestamp,
}

impl UserRow {
    pub fn is_active(&self) -> bool {
        self.status == "active"
    }
}

pub struct NewUser<'a> {
    pub id: UserId,
    pub tenant_id: Option<TenantId>,
    pub email: &'a str,
    pub display_name: &'a str,
    pub password_hash: &'a str,
    pub role: Option<&'a str>,
    pub is_superadmin: bool,
    pub now: Timestamp,
}

pub async fn insert_tenant(
    tx: &mut SystemTx,
    id: TenantId,
    name: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    query("INSERT INTO tenants (id, name, status, created_at) VALUES ($1, $2, 'active', $3)")
        .binds((id, name, now))
        .execute(tx)
        .await?;
    Ok(())
}

/// `StoreError::Conflict` when the email is taken.
pub async fn insert_user(tx: &mut impl AsRawTx, user: &NewUser<'_>) -> Result<(), StoreError> {
    query(
        "INSERT INTO users (id, tenant_id, email, display_name, password_hash, role, is_superadmin, \
         status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $8)",
    )
    .binds((user.id, user.tenant_id, user.email, user.display_name, user.password_hash, user.role, user.is_superadmin, user.now))
    .execute(tx)
    .await?;
    Ok(())
}

pub async fn user_by_email(tx: &mut SystemTx, email: &str) -> Result<Option<UserRow>, StoreError> {
    query(concat!("SELECT ", user_columns!(), " FROM users WHERE email = $1"))
        .bind(email)
        .fetch_optional(tx)
        .await
}

pub async fn user_by_id(tx: &mut impl AsRawTx, id: UserId) -> Result<Option<UserRow>, StoreError> {
    query(concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(tx)
        .await
}

pub async fn set_password_hash(
    tx: &mut impl AsRawTx,
    user: UserId,
    hash: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
        .binds((user, hash, now))
        .execute(tx)
        .await?;
    Ok(())
}

// --- sessions and refresh tokens ------------------------------------------------------

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
pub async fn sessions_of_user(
    tx: &mut SystemTx,
    user: UserId,
    now: Timestamp,
) -> Result<Vec<SessionRow>, StoreError> {
    query(concat!(
        "SELECT ",
        session_columns!(),
        " FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 \
         ORDER BY created_at DESC LIMIT 200"
    ))
    .binds((user, now))
    .fetch_all(tx)
    .await
}

/// Whether a session may still be used (not revoked, not expired, its user active), and whose
/// it is: a token's claims must name the same user, tenant and role.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionState {
    pub revoked_at: Option<Timestamp>,
    pub expires_at: Timestamp,
    pub last_used_at: Timestamp,
    pub status: String,
    pub user_id: UserId,
    pub tenant_id: Option<TenantId>,
    pub role: Option<String>,
}

pub async fn session_state(
    tx: &mut SystemTx,
    id: SessionId,
) -> Result<Option<SessionState>, StoreError> {
    query(
        "SELECT s.revoked_at, s.expires_at, s.last_used_at, u.status, s.user_id, u.tenant_id, \
         u.role FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1",
    )
    .bind(id)
    .fetch_optional(tx)
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

/// When the session last proved a second factor; `None` forgets it (a factor was removed).
pub async fn set_step_up(
    tx: &mut SystemTx,
    id: SessionId,
    at: Option<Timestamp>,
) -> Result<(), StoreError> {
    query("UPDATE sessions SET step_up_at = $2 WHERE id = $1").binds((id, at)).execute(tx).await?;
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

// --- API keys ----------------------------------------------------------------------------

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub id: ApiKeyId,
    pub created_by: UserId,
    pub name: String,
    pub prefix: String,
    pub scopes: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

pub struct NewApiKeyRow<'a> {
    pub id: ApiKeyId,
    pub created_by: UserId,
    pub name: &'a str,
    pub prefix: &'a str,
    pub secret_hash: &'a [u8],
    pub scopes: &'a str,
    pub expires_at: Option<Timestamp>,
    pub now: Timestamp,
}

pub async fn insert_api_key(tx: &mut TenantTx, key: &NewApiKeyRow<'_>) -> Result<(), StoreError> {
    let tenant = tx.tenant_id();
    query(
        "INSERT INTO api_keys (id, tenant_id, created_by, name, prefix, secret_hash, scopes, \
         created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .binds((
        key.id,
        tenant,
        key.created_by,
        key.name,
        key.prefix,
        key.secret_hash,
        key.scopes,
        key.now,
        key.expires_at,
    ))
    .execute(tx)
    .await?;
    Ok(())
}

pub async fn list_api_keys(
    tx: &mut TenantTx,
    after: Option<ApiKeyId>,
    limit: i64,
) -> Result<Vec<ApiKeyRow>, StoreError> {
    let tenant = tx.tenant_id();
    query(
        "SELECT id, created_by, name, prefix, scopes, created_at, expires_at, last_used_at, \
         revoked_at FROM api_keys WHERE tenant_id = $1 AND ($2 IS NULL OR id > $2) \
         ORDER BY id LIMIT $3",
    )
    .binds((tenant, after, limit))
    .fetch_all(tx)
    .await
}

/// False when the tenant has no such live key.
pub async fn revoke_api_key(
    tx: &mut TenantTx,
    id: ApiKeyId,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    query(
        "UPDATE api_keys SET revoked_at = $3 \
         WHERE id = $1 AND tenant_id = $2 AND revoked_at IS NULL",
    )
    .binds((id, tenant, now))
    .execute_one(tx)
    .await
}

pub async fn revoke_user_api_keys(
    tx: &mut TenantTx,
    user: UserId,
    now: Timestamp,
) -> Result<u64, StoreError> {
    let tenant = tx.tenant_id();
    query(
        "UPDATE api_keys SET revoked_at = $3 \
         WHERE created_by = $1 AND tenant_id = $2 AND revoked_at IS NULL",
    )
    .binds((user, tenant, now))
    .execute(tx)
    .await
}

/// Every live key a user created, from platform work (a password change).
pub async fn revoke_user_api_keys_system(
    tx: &mut SystemTx,
    user: UserId,
    now: Timestamp,
) -> Result<u64, StoreError> {
    query("UPDATE api_keys SET revoked_at = $2 WHERE created_by = $1 AND revoked_at IS NULL")
        .binds((user, now))
        .execute(tx)
        .await
}

/// What authenticating with a key needs: the key and its owner's current standing.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKeyAuthRow {
    pub id: ApiKeyId,
    pub tenant_id: TenantId,
    pub created_by: UserId,
    pub secret_hash: Vec<u8>,
    pub scopes: String,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub owner_role: Option<String>,
    pub owner_status: String,
}

pub async fn api_key_by_prefix(
    tx: &mut SystemTx,
    prefix: &str,
) -> Result<Option<ApiKeyAuthRow>, StoreError> {
    query(
        "SELECT k.id, k.tenant_id, k.created_by, k.secret_hash, k.scopes, k.expires_at, \
         k.revoked_at, k.last_used_at, u.role AS owner_role, u.status AS owner_status \
         FROM api_keys k JOIN users u ON u.id = k.created_by WHERE k.prefix = $1",
    )
    .bind(prefix)
    .fetch_optional(tx)
    .await
}

pub async fn touch_api_key(
    tx: &mut SystemTx,
    id: ApiKeyId,
    now: Timestamp,
) -> Result<(), StoreError> {
    query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
        .binds((id, now))
        .execute(tx)
        .await?;
    Ok(())
}

// --- login-failure counters --------------------------------------------------------------

#[derive(Debug, Clone, sqlx::FromRow, PartialEq, Eq)]
pub struct ThrottleRow {
    pub key: String,
    pub failures: i32,
    pub window_started_at: Timestamp,
    pub locked_until: Timestamp,
    pub lock_count: i32,
}

macro_rules! throttle_columns {
    () => {
        "key, failures, window_started_at, locked_until, lock_count"
    };
}

pub async fn throttle(tx: &mut SystemTx, key: &str) -> Result<Option<ThrottleRow>, StoreError> {
    query(concat!("SELECT ", throttle_columns!(), " FROM login_throttle WHERE key = $1"))
        .bind(key)
        .fetch_optional(tx)
        .await
}

/// The counter row, created if absent and locked for this transaction (PostgreSQL), so two
/// failures at once both count.
pub async fn throttle_for_update(
    tx: &mut SystemTx,
    key: &str,
    now: Timestamp,
) -> Result<ThrottleRow, StoreError> {
    query(
        "INSERT INTO login_throttle (key, failures, window_started_at, locked_until, lock_count) \
         VALUES ($1, 0, $2, 0, 0) ON CONFLICT (key) DO NOTHING",
    )
    .binds((key, now))
    .execute(tx)
    .await?;
    // Dialects differ: PostgreSQL locks the row; SQLite's single writer already holds the
    // database.
    let sql = match tx.backend() {
        Backend::Postgres => concat!(
            "SELECT ",
            throttle_columns!(),
            " FROM login_throttle WHERE key = $1 FOR UPDATE"
        ),
        Backend::Sqlite => {
            concat!("SELECT ", throttle_columns!(), " FROM login_throttle WHERE key = $1")
        }
    };
    query(sql).bind(key).fetch_one(tx).await
}

pub async fn save_throttle(tx: &mut SystemTx, row: &ThrottleRow) -> Result<(), StoreError> {
    query(
        "UPDATE login_throttle SET failures = $2, window_started_at = $3, locked_until = $4, \
         lock_count = $5 WHERE key = $1",
    )
    .binds((&row.key, row.failures, row.window_started_at, row.locked_until, row.lock_count))
    .execute(tx)
    .await?;
    Ok(())
}

pub async fn clear_throttle(tx: &mut SystemTx, key: &str) -> Result<(), StoreError> {
    query("DELETE FROM login_throttle WHERE key = $1").bind(key).execute(tx).await?;
    Ok(())
}
