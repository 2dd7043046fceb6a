//! API keys: `bwk_<prefix>_<secret>`, shown once, stored as SHA-256 (a 256-bit random secret
//! needs no slow hash), found by their prefix and compared in constant time.
//!
//! A key's permissions are its scopes intersected with its creator's current role, so
//! demoting or deactivating the creator narrows or kills the key at once. A key can never
//! hold `api_keys:manage`, `users:manage` or `tenant:manage`.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use super::store::{self as db, ApiKeyRow, NewApiKeyRow};
use super::{Credential, Principal};
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::Timestamp;
use crate::crypto::{self, Secret};
use crate::error::{DomainError, DomainResult};
use crate::ids::ApiKeyId;
use crate::tenancy::{Actor, Permission, Role, TenantScope};

pub const API_KEY_PREFIX: &str = "bwk_";
/// Skip rewriting `last_used_at` when it is this fresh, so a busy key is not a write per
/// request.
const TOUCH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

pub struct NewApiKey {
    pub name: String,
    pub scopes: Vec<Permission>,
    pub expires_at: Option<Timestamp>,
}

pub struct ApiKeyCreated {
    pub row: ApiKeyRow,
    pub key: Secret<String>,
}

fn hash(key: &str) -> Vec<u8> {
    super::tokens::token_hash(key)
}

pub fn encode_scopes(scopes: &[Permission]) -> String {
    scopes.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(" ")
}

pub fn decode_scopes(text: &str) -> Vec<Permission> {
    text.split_whitespace().filter_map(Permission::parse).collect()
}

pub async fn create(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    new: NewApiKey,
) -> DomainResult<ApiKeyCreated> {
    let Actor::User { user_id, .. } = scope.actor() else {
        return Err(DomainError::Forbidden("API keys are created by users, not by other keys"));
    };
    let mut problems = vec![];
    let name = new.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        problems.push(("name".to_owned(), "must be 1 to 100 characters".to_owned()));
    }
    if new.scopes.is_empty() {
        problems.push(("scopes".to_owned(), "must name at least one permission".to_owned()));
    }
    let now = Timestamp::now();
    if new.expires_at.is_some_and(|at| at <= now) {
        problems.push(("expires_at".to_owned(), "must be in the future".to_owned()));
    }
    if !problems.is_empty() {
        return Err(DomainError::Invalid(problems));
    }
    for permission in &new.scopes {
        if !permission.allowed_for_api_keys() {
            return Err(DomainError::Forbidden(
                "API keys can never manage keys, users, roles or tenant security",
            ));
        }
        if !scope.role().may(*permission) {
            return Err(DomainError::Forbidden(
                "a key's scopes cannot exceed your own permissions",
            ));
        }
    }
    let mut scopes = new.scopes;
    scopes.sort();
    scopes.dedup();

    let prefix = hex_prefix();
    let secret = Zeroizing::new(crypto::random_bytes::<32>());
    let key = Secret::new(format!(
        "{API_KEY_PREFIX}{prefix}_{}",
        URL_SAFE_NO_PAD.encode(secret.as_slice())
    ));
    let id = ApiKeyId::new();
    let scope_text = encode_scopes(&scopes);
    let mut tx = app.store().tenant_tx(scope).await?;
    db::insert_api_key(
        &mut tx,
        &NewApiKeyRow {
            id,
            created_by: *user_id,
            name: &name,
            prefix: &prefix,
            secret_hash: &hash(key.expose()),
            scopes: &scope_text,
            expires_at: new.expires_at,
            now,
        },
    )
    .await?;
    audit::record(
        &mut tx,
        ctx,
        Event::new(Action::ApiKeyCreate)
            .by_scope(scope)
            .target("api_key", id)
            .detail("scopes", scope_text.clone())
            .detail("prefix", prefix.clone()),
    )
    .await?;
    tx.commit().await?;
    Ok(ApiKeyCreated {
        row: ApiKeyRow {
            id,
            created_by: *user_id,
            name,
            prefix,
            scopes: scope_text,
            created_at: now,
            expires_at: new.expires_at,
            last_used_at: None,
            revoked_at: None,
        },
        key,
    })
}

fn hex_prefix() -> String {
    crypto::random_bytes::<6>().iter().map(|b| format!("{b:02x}")).collect()
}

pub async fn list(
    app: &AppState,
    scope: &TenantScope,
    after: Option<ApiKeyId>,
    limit: i64,
) -> DomainResult<Vec<ApiKeyRow>> {
    let mut tx = app.store().tenant_read(scope).await?;
    let rows = db::list_api_keys(&mut tx, after, limit).await?;
    tx.commit().await?;
    Ok(rows)
}

pub async fn revoke(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    id: ApiKeyId,
) -> DomainResult<()> {
    let mut tx = app.store().tenant_tx(scope).await?;
    if !db::revoke_api_key(&mut tx, id, Timestamp::now()).await? {
        return Err(DomainError::NotFound("API key"));
    }
    audit::record(
        &mut tx,
        ctx,
        Event::new(Action::ApiKeyRevoke).by_scope(scope).target("api_key", id),
    )
    .await?;
    tx.commit().await?;
    app.identity().api_keys.changed().await;
    Ok(())
}

/// The lookup prefix of a presented key (`bwk_<12 hex>_<secret>`), or `None` when the text
/// cannot be a key. Only this shape ever reaches the database.
pub fn key_prefix(token: &str) -> Option<&str> {
    let (prefix, _) = token.strip_prefix(API_KEY_PREFIX)?.split_once('_')?;
    (prefix.len() == 12 && prefix.bytes().all(|b| b.is_ascii_hexdigit())).then_some(prefix)
}

pub(super) async fn authenticate(app: &AppState, token: &str) -> DomainResult<Principal> {
    let refused = DomainError::Unauthenticated("invalid API key");
    let Some(prefix) = key_prefix(token) else { return Err(refused) };
    let cache = &app.identity().api_keys;
    let row = match cache.get(prefix) {
        Some(row) => row,
        None => {
            let mut conn = app.store().system_conn().await?;
            let Some(row) = db::api_key_by_prefix(&mut conn, prefix).await? else {
                return Err(refused);
            };
            drop(conn);
            cache.put(prefix, row)
        }
    };
    let matches: bool = row.secret_hash.ct_eq(&hash(token)).into();
    let now = Timestamp::now();
    if !matches
        || row.revoked_at.is_some()
        || row.expires_at.is_some_and(|at| at <= now)
        || row.owner_status != "active"
        || row.tenant_status != "active"
    {
        return Err(refused);
    }
    let role = row.owner_role.as_deref().and_then(Role::parse).ok_or(refused)?;
    let id = row.id;
    if row.last_used_at.is_none_or(|at| at.plus(TOUCH_INTERVAL) < now) {
        let mut tx = app.store().system_tx().await?;
        db::touch_api_key(&mut tx, id, now).await?;
        tx.commit().await?;
        cache.put(prefix, db::ApiKeyAuthRow { last_used_at: Some(now), ..(*row).clone() });
    }
    let scopes: Arc<[Permission]> = decode_scopes(&row.scopes).into();
    let profile = Arc::new(super::Profile {
        email: row.owner_email.clone(),
        display_name: row.owner_display_name.clone(),
        email_verified: row.owner_email_verified_at.is_some(),
    });
    Ok(Principal {
        user_id: row.created_by,
        tenant_id: Some(row.tenant_id),
        role: Some(role),
        superadmin: false,
        credential: Credential::ApiKey { id, scopes },
        profile,
        session: None,
    })
}

/// Keys found by their prefix, kept for at most `session_cache::TTL`, so a busy key costs no
/// database work. Whatever narrows or kills a key (revocation, its creator's role change or
/// deactivation, its tenant's deletion) clears the cache here and, through Redis, on every
/// instance; without Redis an entry is never older than the TTL.
pub struct KeyCache {
    entries: crate::ttl_cache::TtlCache<String, Arc<db::ApiKeyAuthRow>>,
    redis: Option<crate::redis_link::RedisLink>,
}

impl KeyCache {
    pub fn new(redis: Option<crate::redis_link::RedisLink>) -> KeyCache {
        let entries = crate::ttl_cache::TtlCache::new(super::session_cache::TTL, 100_000);
        KeyCache { entries, redis }
    }

    fn get(&self, prefix: &str) -> Option<Arc<db::ApiKeyAuthRow>> {
        self.entries.get(prefix)
    }

    fn put(&self, prefix: &str, row: db::ApiKeyAuthRow) -> Arc<db::ApiKeyAuthRow> {
        let row = Arc::new(row);
        self.entries.put(prefix.to_owned(), row.clone());
        row
    }

    /// Forgets every key here (another instance's event, or `changed`).
    pub fn clear(&self) {
        self.entries.clear();
    }

    /// After keys were revoked or their creators changed: look keys up again everywhere.
    pub async fn changed(&self) {
        self.clear();
        if let Some(redis) = &self.redis {
            redis.publish(&crate::redis_link::ClusterEvent::ApiKeysChanged).await;
        }
    }
}
