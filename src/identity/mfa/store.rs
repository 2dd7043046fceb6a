//! SQL of second factors, challenges and the tenant MFA policy (platform work: `SystemTx`,
//! always filtered by the user the request authenticated as).

use uuid::Uuid;

use crate::clock::Timestamp;
use crate::ids::{SessionId, TenantId, UserId};
use crate::store::{AsRawTx as _, Backend, StoreError, SystemTx, TenantTx, query};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TotpRow {
    pub secret_sealed: Vec<u8>,
    pub master_key_id: String,
    pub confirmed_at: Option<Timestamp>,
    pub last_used_step: i64,
}

pub async fn totp(tx: &mut SystemTx, user: UserId) -> Result<Option<TotpRow>, StoreError> {
    query(
        "SELECT secret_sealed, master_key_id, confirmed_at, last_used_step FROM mfa_totp WHERE \
             user_id = $1",
    )
    .bind(user)
    .fetch_optional::<TotpRow>(tx)
    .await
}

/// Stores an unconfirmed seed, replacing an earlier unconfirmed one.
pub async fn put_unconfirmed_totp(
    tx: &mut SystemTx,
    user: UserId,
    tenant: Option<TenantId>,
    sealed: &[u8],
    master_key_id: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    query("DELETE FROM mfa_totp WHERE user_id = $1 AND confirmed_at IS NULL")
        .bind(user)
        .execute(tx)
        .await?;
    query(
        "INSERT INTO mfa_totp (user_id, tenant_id, secret_sealed, master_key_id, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
    )
    .binds((user, tenant, sealed, master_key_id, now))
    .execute(tx)
    .await?;
    Ok(())
}

/// Confirms the pending set-up whose seed the code was checked against; false when another
/// request confirmed or replaced it meanwhile.
pub async fn confirm_totp(
    tx: &mut SystemTx,
    user: UserId,
    sealed: &[u8],
    step: i64,
    now: Timestamp,
) -> Result<bool, StoreError> {
    query(
        "UPDATE mfa_totp SET confirmed_at = $3, last_used_step = $2 \
         WHERE user_id = $1 AND confirmed_at IS NULL AND secret_sealed = $4",
    )
    .binds((user, step, now, sealed))
    .execute_one(tx)
    .await
}

/// Records the time step a code was accepted in; false if that step (or a later one) was
/// already used: a replayed code.
pub async fn use_totp_step(tx: &mut SystemTx, user: UserId, step: i64) -> Result<bool, StoreError> {
    query(
        "UPDATE mfa_totp SET last_used_step = $2 WHERE user_id = $1 AND confirmed_at IS NOT \
             NULL AND last_used_step < $2",
    )
    .binds((user, step))
    .execute_one(tx)
    .await
}

pub async fn delete_totp(tx: &mut SystemTx, user: UserId) -> Result<u64, StoreError> {
    query("DELETE FROM mfa_totp WHERE user_id = $1").bind(user).execute(tx).await
}

/// TOTP seeds sealed under another master key than the current one, for rotation.
pub async fn totp_sealed_by_other_masters(
    tx: &mut SystemTx,
    master_key_id: &str,
    limit: i64,
) -> Result<Vec<(Uuid, Vec<u8>)>, StoreError> {
    query(
        "SELECT user_id, secret_sealed FROM mfa_totp WHERE master_key_id <> $1 ORDER BY \
             user_id LIMIT $2",
    )
    .binds((master_key_id, limit))
    .fetch_all::<(Uuid, Vec<u8>)>(tx)
    .await
}

pub async fn reseal_totp(
    tx: &mut SystemTx,
    user: Uuid,
    sealed: &[u8],
    master_key_id: &str,
) -> Result<(), StoreError> {
    query("UPDATE mfa_totp SET secret_sealed = $2, master_key_id = $3 WHERE user_id = $1")
        .binds((user, sealed, master_key_id))
        .execute(tx)
        .await?;
    Ok(())
}

pub async fn replace_backup_codes(
    tx: &mut SystemTx,
    user: UserId,
    tenant: Option<TenantId>,
    hashes: &[Vec<u8>],
    now: Timestamp,
) -> Result<(), StoreError> {
    query("DELETE FROM mfa_backup_codes WHERE user_id = $1").bind(user).execute(tx).await?;
    for hash in hashes {
        query(
            "INSERT INTO mfa_backup_codes (id, user_id, tenant_id, code_hash, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
        )
        .binds((Uuid::now_v7(), user, tenant, hash, now))
        .execute(tx)
        .await?;
    }
    Ok(())
}

pub async fn delete_backup_codes(tx: &mut SystemTx, user: UserId) -> Result<(), StoreError> {
    query("DELETE FROM mfa_backup_codes WHERE user_id = $1").bind(user).execute(tx).await?;
    Ok(())
}

pub async fn unused_backup_codes(
    tx: &mut SystemTx,
    user: UserId,
) -> Result<Vec<(Uuid, Vec<u8>)>, StoreError> {
    query("SELECT id, code_hash FROM mfa_backup_codes WHERE user_id = $1 AND used_at IS NULL")
        .bind(user)
        .fetch_all::<(Uuid, Vec<u8>)>(tx)
        .await
}

/// Spends a backup code; false if it was spent meanwhile.
pub async fn spend_backup_code(
    tx: &mut SystemTx,
    id: Uuid,
    now: Timestamp,
) -> Result<bool, StoreError> {
    query("UPDATE mfa_backup_codes SET used_at = $2 WHERE id = $1 AND used_at IS NULL")
        .binds((id, now))
        .execute_one(tx)
        .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CredentialRow {
    pub id: Uuid,
    pub credential_id: Vec<u8>,
    pub passkey: String,
    pub name: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

pub async fn credentials(
    tx: &mut SystemTx,
    user: UserId,
) -> Result<Vec<CredentialRow>, StoreError> {
    query(
        "SELECT id, credential_id, passkey, name, created_at, last_used_at FROM webauthn_credentials \
         WHERE user_id = $1 ORDER BY created_at"
    )
    .bind(user)
    .fetch_all::<CredentialRow>(tx).await
}

/// The user's passkeys, locked until the transaction ends (PostgreSQL `FOR UPDATE`; SQLite
/// write transactions are exclusive already), so two assertions cannot both check the
/// signature counter against the same old value.
pub async fn credentials_for_update(
    tx: &mut SystemTx,
    user: UserId,
) -> Result<Vec<CredentialRow>, StoreError> {
    let sql = match tx.backend() {
        Backend::Postgres => {
            "SELECT id, credential_id, passkey, name, created_at, last_used_at \
             FROM webauthn_credentials WHERE user_id = $1 ORDER BY created_at FOR UPDATE"
        }
        Backend::Sqlite => {
            "SELECT id, credential_id, passkey, name, created_at, last_used_at \
             FROM webauthn_credentials WHERE user_id = $1 ORDER BY created_at"
        }
    };
    query(sql).bind(user).fetch_all::<CredentialRow>(tx).await
}

pub async fn insert_credential(
    tx: &mut SystemTx,
    user: UserId,
    tenant: Option<TenantId>,
    credential_id: &[u8],
    passkey: &str,
    name: &str,
    now: Timestamp,
) -> Result<Uuid, StoreError> {
    let id = Uuid::now_v7();
    query(
        "INSERT INTO webauthn_credentials (id, user_id, tenant_id, credential_id, passkey, name, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)"
    )
    .binds((id, user, tenant, credential_id, passkey, name, now))
    .execute(tx).await?;
    Ok(id)
}

pub async fn update_credential(
    tx: &mut SystemTx,
    user: UserId,
    credential_id: &[u8],
    passkey: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    query(
        "UPDATE webauthn_credentials SET passkey = $3, last_used_at = $4 WHERE user_id = $1 \
             AND credential_id = $2",
    )
    .binds((user, credential_id, passkey, now))
    .execute(tx)
    .await?;
    Ok(())
}

pub async fn delete_credential(
    tx: &mut SystemTx,
    user: UserId,
    id: Uuid,
) -> Result<bool, StoreError> {
    query("DELETE FROM webauthn_credentials WHERE id = $1 AND user_id = $2")
        .binds((id, user))
        .execute_one(tx)
        .await
}

/// Whether the user has a confirmed second factor.
pub async fn has_second_factor(tx: &mut SystemTx, user: UserId) -> Result<bool, StoreError> {
    let count: i64 = query(
        "SELECT (SELECT count(*) FROM mfa_totp WHERE user_id = $1 AND confirmed_at IS NOT NULL) \
              + (SELECT count(*) FROM webauthn_credentials WHERE user_id = $1)",
    )
    .bind(user)
    .scalar(tx)
    .await?;
    Ok(count > 0)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChallengeRow {
    pub id: Uuid,
    pub purpose: String,
    pub user_id: Option<UserId>,
    pub session_id: Option<SessionId>,
    pub state: Option<String>,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
}

pub struct NewChallenge<'a> {
    pub purpose: &'a str,
    pub user: Option<UserId>,
    pub tenant: Option<TenantId>,
    pub token_hash: Option<&'a [u8]>,
    pub session: Option<SessionId>,
    pub state: Option<&'a str>,
    pub expires_at: Timestamp,
}

pub async fn insert_challenge(
    tx: &mut SystemTx,
    new: &NewChallenge<'_>,
) -> Result<Uuid, StoreError> {
    let id = Uuid::new_v4();
    query(
        "INSERT INTO auth_challenges (id, purpose, user_id, tenant_id, token_hash, session_id, state, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    )
    .binds((id, new.purpose, new.user, new.tenant, new.token_hash, new.session, new.state, new.expires_at))
    .execute(tx).await?;
    Ok(id)
}

pub async fn challenge_by_id(
    tx: &mut SystemTx,
    id: Uuid,
) -> Result<Option<ChallengeRow>, StoreError> {
    query(
        "SELECT id, purpose, user_id, session_id, state, expires_at, used_at FROM \
             auth_challenges WHERE id = $1",
    )
    .bind(id)
    .fetch_optional::<ChallengeRow>(tx)
    .await
}

pub async fn challenge_by_token(
    tx: &mut SystemTx,
    hash: &[u8],
) -> Result<Option<ChallengeRow>, StoreError> {
    query(
        "SELECT id, purpose, user_id, session_id, state, expires_at, used_at FROM \
             auth_challenges WHERE token_hash = $1",
    )
    .bind(hash)
    .fetch_optional::<ChallengeRow>(tx)
    .await
}

/// Spends a challenge; false if spent or expired meanwhile.
pub async fn spend_challenge(
    tx: &mut SystemTx,
    id: Uuid,
    now: Timestamp,
) -> Result<bool, StoreError> {
    query(
        "UPDATE auth_challenges SET used_at = $2 WHERE id = $1 AND used_at IS NULL AND \
             expires_at > $2",
    )
    .binds((id, now))
    .execute_one(tx)
    .await
}

pub async fn purge_challenges(tx: &mut SystemTx, now: Timestamp) -> Result<u64, StoreError> {
    query("DELETE FROM auth_challenges WHERE expires_at < $1")
        .bind(now.minus(std::time::Duration::from_secs(3600)))
        .execute(tx)
        .await
}

/// The tenant's policy and whether the user is a super-admin, for enrolment enforcement.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PolicyRow {
    pub is_superadmin: bool,
    pub role: Option<String>,
    pub mfa_policy: Option<String>,
}

pub async fn policy_for(tx: &mut SystemTx, user: UserId) -> Result<Option<PolicyRow>, StoreError> {
    query(
        "SELECT u.is_superadmin, u.role, t.mfa_policy FROM users u LEFT JOIN tenants t ON t.id \
             = u.tenant_id WHERE u.id = $1",
    )
    .bind(user)
    .fetch_optional::<PolicyRow>(tx)
    .await
}

pub async fn tenant_policy(tx: &mut TenantTx) -> Result<String, StoreError> {
    let tenant = tx.tenant_id();
    query("SELECT mfa_policy FROM tenants WHERE id = $1").bind(tenant).scalar(tx).await
}

pub async fn set_tenant_policy(tx: &mut TenantTx, policy: &str) -> Result<(), StoreError> {
    let tenant = tx.tenant_id();
    query("UPDATE tenants SET mfa_policy = $2 WHERE id = $1")
        .binds((tenant, policy))
        .execute(tx)
        .await?;
    Ok(())
}

pub async fn step_up_at(
    tx: &mut SystemTx,
    session: SessionId,
) -> Result<Option<Timestamp>, StoreError> {
    Ok(query("SELECT step_up_at FROM sessions WHERE id = $1")
        .bind(session)
        .scalar_optional::<Option<Timestamp>>(tx)
        .await?
        .flatten())
}

pub async fn password_proof_at(
    tx: &mut SystemTx,
    session: SessionId,
) -> Result<Option<Timestamp>, StoreError> {
    Ok(query("SELECT password_proof_at FROM sessions WHERE id = $1")
        .bind(session)
        .scalar_optional::<Option<Timestamp>>(tx)
        .await?
        .flatten())
}

/// Every second factor of a user (an administrator's reset); how many went.
pub async fn delete_all_factors(tx: &mut SystemTx, user: UserId) -> Result<u64, StoreError> {
    let mut removed = 0;
    for sql in [
        "DELETE FROM mfa_totp WHERE user_id = $1",
        "DELETE FROM mfa_backup_codes WHERE user_id = $1",
        "DELETE FROM webauthn_credentials WHERE user_id = $1",
    ] {
        removed += query(sql).bind(user).execute(tx).await?;
    }
    Ok(removed)
}
