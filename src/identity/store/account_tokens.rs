//! SQL of mailed account tokens (email verification, password reset), kept as SHA-256.

use crate::clock::Timestamp;
use crate::ids::{TenantId, UserId};
use crate::store::{StoreError, SystemTx, query};

pub struct NewAccountToken<'a> {
    pub hash: &'a [u8],
    pub purpose: &'a str,
    pub user: UserId,
    pub tenant: Option<TenantId>,
    pub now: Timestamp,
    pub expires_at: Timestamp,
}

pub async fn insert_account_token(
    tx: &mut SystemTx,
    token: &NewAccountToken<'_>,
) -> Result<(), StoreError> {
    query(
        "INSERT INTO account_tokens (token_hash, purpose, user_id, tenant_id, created_at, \
         expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .binds((token.hash, token.purpose, token.user, token.tenant, token.now, token.expires_at))
    .execute(tx)
    .await?;
    Ok(())
}

/// Spends a current token of `purpose`: its user, once; `None` for an unknown, spent or
/// expired token.
pub async fn spend_account_token(
    tx: &mut SystemTx,
    hash: &[u8],
    purpose: &str,
    now: Timestamp,
) -> Result<Option<UserId>, StoreError> {
    query(
        "UPDATE account_tokens SET used_at = $3 WHERE token_hash = $1 AND purpose = $2 \
         AND used_at IS NULL AND expires_at > $3 RETURNING user_id",
    )
    .binds((hash, purpose, now))
    .scalar_optional(tx)
    .await
}

/// Ends every other current token of the user for `purpose` (a reset spends them all).
pub async fn spend_user_tokens(
    tx: &mut SystemTx,
    user: UserId,
    purpose: &str,
    now: Timestamp,
) -> Result<u64, StoreError> {
    query(
        "UPDATE account_tokens SET used_at = $3 WHERE user_id = $1 AND purpose = $2 \
         AND used_at IS NULL",
    )
    .binds((user, purpose, now))
    .execute(tx)
    .await
}

/// When the user was last sent a token of `purpose` (spent or not), if one is still unexpired.
pub async fn latest_account_token(
    tx: &mut SystemTx,
    user: UserId,
    purpose: &str,
    now: Timestamp,
) -> Result<Option<Timestamp>, StoreError> {
    query(
        "SELECT max(created_at) FROM account_tokens WHERE user_id = $1 AND purpose = $2 \
         AND expires_at > $3",
    )
    .binds((user, purpose, now))
    .scalar(tx)
    .await
}

pub async fn mark_email_verified(
    tx: &mut SystemTx,
    user: UserId,
    now: Timestamp,
) -> Result<bool, StoreError> {
    query("UPDATE users SET email_verified_at = $2 WHERE id = $1 AND email_verified_at IS NULL")
        .binds((user, now))
        .execute_one(tx)
        .await
}

/// The user of a current token of `purpose`, without spending it.
pub async fn account_token_user(
    tx: &mut SystemTx,
    hash: &[u8],
    purpose: &str,
    now: Timestamp,
) -> Result<Option<UserId>, StoreError> {
    query(
        "SELECT user_id FROM account_tokens WHERE token_hash = $1 AND purpose = $2 \
         AND used_at IS NULL AND expires_at > $3",
    )
    .binds((hash, purpose, now))
    .scalar_optional(tx)
    .await
}
