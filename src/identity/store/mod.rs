//! SQL of identity: users (as accounts), sessions and refresh tokens (`sessions`), API keys
//! (`api_keys`) and the login-failure counters (`throttle`).
//!
//! Lookups by email, token hash or key prefix happen before any tenant is known, so they take
//! a `SystemTx`; changes inside a tenant take its `TenantTx` and filter by its tenant too.

mod account_tokens;
mod api_keys;
mod sessions;
mod throttle;

pub use account_tokens::*;
pub use api_keys::*;
pub use sessions::*;
pub use throttle::*;

use crate::clock::Timestamp;
use crate::ids::{TenantId, UserId};
use crate::store::{AsRawTx, StoreError, SystemTx, query};

macro_rules! user_columns {
    () => {
        "id, tenant_id, email, display_name, password_hash, role, is_superadmin, status, \
         created_at, email_verified_at"
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
    pub email_verified_at: Option<Timestamp>,
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
