//! Identity: passwords, login, sessions with rotating refresh tokens, access tokens, API
//! keys, lockout. Its output is a `Principal`, which only `authenticate` produces.
//!
//! Never: store or log a plaintext password or token (only hashes), tell a caller whether an
//! account exists, or accept an access token of a revoked session for longer than the
//! revocation cache's lifetime (under a second).

pub mod account;
mod api_keys;
mod authenticate;
pub mod lockout;
pub mod login;
pub mod mfa;
pub mod password;
pub mod routes;
pub mod session_cache;
pub mod store;
pub mod tokens;

use std::sync::Arc;

pub use api_keys::{API_KEY_PREFIX, ApiKeyCreated, NewApiKey, key_prefix};
#[cfg(feature = "bench-bypass")]
pub use authenticate::authenticate_token_only;
pub use authenticate::{authenticate, bearer};

use crate::config::Config;
use crate::ids::{ApiKeyId, SessionId, TenantId, UserId};
use crate::redis_link::RedisLink;
use crate::store::Store;
use crate::tenancy::{Permission, Role};

/// The identity services an application holds.
pub struct Identity {
    pub tokens: tokens::TokenKeys,
    pub hasher: password::PasswordHasher,
    pub sessions: session_cache::SessionCache,
    pub lockout: lockout::Lockout,
    pub mfa: mfa::Mfa,
    pub settings: Settings,
}

/// The identity settings, from `Config.identity`, in the units the code uses.
#[derive(Debug, Clone)]
pub struct Settings {
    pub signup_open: bool,
    pub session_idle: std::time::Duration,
    pub session_absolute: std::time::Duration,
    pub public_url: String,
}

impl Identity {
    pub fn new(
        config: &Config,
        store: Store,
        redis: Option<RedisLink>,
    ) -> anyhow::Result<Identity> {
        let id = &config.identity;
        let params = password::HashParams {
            memory_kib: id.argon2_memory_kib,
            iterations: id.argon2_iterations,
            parallelism: id.argon2_parallelism,
        };
        let hasher = password::PasswordHasher::new(params, id.hash_workers, id.hash_queue)?;
        let issuer = config.public_url.as_str().trim_end_matches('/').to_owned();
        Ok(Identity {
            tokens: tokens::TokenKeys::new(
                &config.secrets,
                &issuer,
                i64::try_from(id.access_token_ttl.as_secs()).unwrap_or(900),
            ),
            hasher,
            sessions: session_cache::SessionCache::new(
                redis.clone(),
                id.access_token_ttl.as_secs(),
            ),
            lockout: lockout::Lockout::new(
                store,
                redis,
                lockout::Policy {
                    threshold: id.lockout_threshold,
                    window: id.lockout_window,
                    lock: id.lockout_duration,
                    ip_threshold: id.lockout_ip_threshold,
                },
            ),
            mfa: mfa::Mfa::new(id.step_up, &config.public_url),
            settings: Settings {
                signup_open: id.signup_open,
                session_idle: id.session_idle_timeout,
                session_absolute: id.session_absolute_timeout,
                public_url: issuer,
            },
        })
    }
}

/// How a principal proved who it is.
#[derive(Debug, Clone)]
pub enum Credential {
    Session(SessionId),
    ApiKey { id: ApiKeyId, scopes: Arc<[Permission]> },
}

/// An authenticated caller. Private fields: only `authenticate` builds one.
#[derive(Debug, Clone)]
pub struct Principal {
    user_id: UserId,
    tenant_id: Option<TenantId>,
    role: Option<Role>,
    superadmin: bool,
    credential: Credential,
}

impl Principal {
    pub fn user_id(&self) -> UserId {
        self.user_id
    }

    pub fn tenant_id(&self) -> Option<TenantId> {
        self.tenant_id
    }

    pub fn role(&self) -> Option<Role> {
        self.role
    }

    pub fn is_superadmin(&self) -> bool {
        self.superadmin
    }

    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    pub fn session_id(&self) -> Option<SessionId> {
        match self.credential {
            Credential::Session(sid) => Some(sid),
            Credential::ApiKey { .. } => None,
        }
    }

    /// Role permissions, narrowed by the key's scopes for API keys.
    pub fn may(&self, permission: Permission) -> bool {
        let Some(role) = self.role else { return false };
        role.may(permission)
            && match &self.credential {
                Credential::Session(_) => true,
                Credential::ApiKey { scopes, .. } => {
                    permission.allowed_for_api_keys() && scopes.contains(&permission)
                }
            }
    }
}

/// Lower-cases and trims an email address; the identity of an account.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A syntactic check, not a proof of ownership (that is what invitations are for).
pub fn check_email(email: &str) -> Result<(), &'static str> {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Err("must be an email address");
    };
    let valid = !local.is_empty()
        && local.len() <= 64
        && domain.len() <= 253
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>');
    if !valid || email.len() > 254 {
        return Err("must be an email address");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_addresses_are_checked_and_normalised() {
        assert_eq!(normalize_email("  Ada@Example.COM "), "ada@example.com");
        assert!(check_email("ada@example.com").is_ok());
        for bad in ["ada", "@example.com", "ada@", "ada@example", "a da@example.com", "ada@.com"] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
    }
}
