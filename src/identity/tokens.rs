//! Access tokens: JWT, HS256 pinned, 15 minutes, with a `kid` naming the key.
//!
//! The current key signs; previous keys (`BULWARK_JWT_PREVIOUS_SECRETS`) only verify, so a
//! key rotates without downtime: add the new key as current, keep the old one as previous for
//! one token lifetime, then drop it. The `kid` is a hash of the key, so each key has its own
//! and a token names the one it needs; an unknown `kid` is refused before any verification.
//! Only HS256 is accepted: `alg: none`, other HMAC sizes and any asymmetric algorithm (the
//! classic "public key used as HMAC secret" confusion) fail the pinned validation.
//!
//! Refresh tokens and other opaque tokens are 256-bit random values, stored as SHA-256.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::config::SecretsConfig;
use crate::crypto::{self, Secret};
use crate::ids::{SessionId, TenantId, UserId};

pub const AUDIENCE: &str = "bulwark-api";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub sub: UserId,
    /// The tenant; the nil UUID for the platform super-admin.
    pub tid: TenantId,
    /// A tenant role name, or `superadmin`.
    pub role: String,
    pub sid: SessionId,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    pub jti: String,
}

struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

pub struct TokenKeys {
    current: SigningKey,
    previous: Vec<SigningKey>,
    issuer: String,
    validation: Validation,
    pub lifetime_secs: i64,
    /// Tokens whose signature and claims verified, by their exact text, with their claims:
    /// a client sends the same token for up to its whole lifetime, and the same bytes verify
    /// the same way every time. Only the lifetime is checked again on a hit.
    /// Kept no longer than a token can live (its own `exp` is checked on every hit).
    verified: crate::ttl_cache::TtlCache<Box<str>, std::sync::Arc<Claims>>,
}

/// Bounds the verified-token cache (about 600 bytes an entry).
const VERIFIED_MAX: usize = 10_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the token is malformed or uses another algorithm")]
    Malformed,
    #[error("the token names an unknown key")]
    UnknownKey,
    #[error("the token is invalid: {0}")]
    Invalid(String),
}

/// Identifies a key without revealing it.
pub fn key_id(secret: &[u8]) -> String {
    let digest = Sha256::new().chain_update(b"bulwark-jwt-kid:").chain_update(secret).finalize();
    URL_SAFE_NO_PAD.encode(&digest[..12])
}

fn signing_key(secret: &Secret<Vec<u8>>) -> SigningKey {
    SigningKey {
        kid: key_id(secret.expose()),
        encoding: EncodingKey::from_secret(secret.expose()),
        decoding: DecodingKey::from_secret(secret.expose()),
    }
}

impl TokenKeys {
    pub fn new(secrets: &SecretsConfig, issuer: &str, lifetime_secs: i64) -> TokenKeys {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        // Instances' clocks may differ a little; no more than this.
        validation.leeway = 5;
        TokenKeys {
            current: signing_key(&secrets.jwt_secret),
            previous: secrets.jwt_previous_secrets.iter().map(signing_key).collect(),
            issuer: issuer.to_owned(),
            validation,
            lifetime_secs,
            verified: crate::ttl_cache::TtlCache::new(
                std::time::Duration::from_secs(lifetime_secs.max(0).unsigned_abs()),
                VERIFIED_MAX,
            ),
        }
    }

    pub fn issue(
        &self,
        user: UserId,
        tenant: TenantId,
        role: &str,
        session: SessionId,
        now_secs: i64,
    ) -> Result<String, TokenError> {
        let claims = Claims {
            sub: user,
            tid: tenant,
            role: role.to_owned(),
            sid: session,
            iat: now_secs,
            nbf: now_secs,
            exp: now_secs + self.lifetime_secs,
            iss: self.issuer.clone(),
            aud: AUDIENCE.to_owned(),
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.current.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.current.encoding)
            .map_err(|err| TokenError::Invalid(err.to_string()))
    }

    /// `verify`, remembering what verified (see `verified`).
    pub fn verify_cached(&self, token: &str) -> Result<std::sync::Arc<Claims>, TokenError> {
        let hit = self.verified.get(token);
        if let Some(claims) = hit {
            let now = crate::clock::Timestamp::now().secs();
            let leeway = i64::try_from(self.validation.leeway).unwrap_or(0);
            return if claims.exp + leeway > now && claims.nbf - leeway <= now {
                Ok(claims)
            } else {
                Err(TokenError::Invalid("ExpiredSignature".into()))
            };
        }
        let claims = std::sync::Arc::new(self.verify(token)?);
        self.verified.put(token.into(), claims.clone());
        Ok(claims)
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::HS256 {
            return Err(TokenError::Malformed);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|key| key.kid == kid)
            .ok_or(TokenError::UnknownKey)?;
        jsonwebtoken::decode::<Claims>(token, &key.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|err| TokenError::Invalid(format!("{:?}", err.kind())))
    }
}

/// A fresh opaque token (refresh tokens, invitations, MFA tickets): 256 random bits.
pub fn opaque_token() -> Secret<String> {
    let bytes = zeroize::Zeroizing::new(crypto::random_bytes::<32>());
    Secret::new(URL_SAFE_NO_PAD.encode(bytes.as_slice()))
}

/// How opaque tokens are stored: high-entropy values need no slow hash, only a one-way one.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SecretsConfig;

    fn secrets(current: &str, previous: &[&str]) -> SecretsConfig {
        SecretsConfig {
            jwt_secret: Secret::new(current.as_bytes().to_vec()),
            jwt_previous_secrets: previous
                .iter()
                .map(|p| Secret::new(p.as_bytes().to_vec()))
                .collect(),
            master_keys: vec![],
        }
    }

    const A: &str = "key-a-0123456789abcdef0123456789abcdef";
    const B: &str = "key-b-0123456789abcdef0123456789abcdef";

    fn now() -> i64 {
        crate::clock::Timestamp::now().secs()
    }

    fn issue(keys: &TokenKeys) -> String {
        keys.issue(UserId::new(), TenantId::new(), "agent", SessionId::new(), now()).expect("issue")
    }

    #[test]
    fn a_token_verifies_with_its_key_and_carries_its_claims() {
        let keys = TokenKeys::new(&secrets(A, &[]), "https://crm.example", 900);
        let token = issue(&keys);
        let claims = keys.verify(&token).expect("valid");
        assert_eq!(claims.role, "agent");
        assert_eq!(claims.aud, AUDIENCE);
        assert_eq!(claims.exp - claims.iat, 900);
        let header = jsonwebtoken::decode_header(&token).expect("header");
        assert_eq!(header.kid.as_deref(), Some(key_id(A.as_bytes()).as_str()));
    }

    #[test]
    fn the_cache_remembers_only_what_verified_and_still_checks_the_lifetime() {
        let keys = TokenKeys::new(&secrets(A, &[]), "iss", 900);
        let token = issue(&keys);
        assert_eq!(*keys.verify_cached(&token).expect("valid"), keys.verify(&token).expect("ok"));
        assert!(keys.verify_cached(&token).is_ok(), "a hit");
        // One byte changed is another token: verified in full, and refused.
        let mut forged = token.clone().into_bytes();
        let last = forged.len() - 1;
        forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).expect("ascii");
        assert!(keys.verify_cached(&forged).is_err());
        assert!(keys.verify_cached(&forged).is_err(), "never remembered");
        // A remembered token past its lifetime is refused.
        let short = TokenKeys::new(&secrets(A, &[]), "iss", -10);
        let expired = short.issue(UserId::new(), TenantId::new(), "agent", SessionId::new(), now());
        let expired = expired.expect("issue");
        assert!(short.verify_cached(&expired).is_err());
        let claims = keys.verify(&token).expect("valid");
        let stale = Claims { exp: now() - 60, ..claims };
        keys.verified.put(token.clone().into(), std::sync::Arc::new(stale));
        assert!(keys.verify_cached(&token).is_err(), "the lifetime is checked on every hit");
    }

    #[test]
    fn rotation_keeps_old_tokens_valid_until_the_old_key_is_dropped() {
        let old = TokenKeys::new(&secrets(A, &[]), "iss", 900);
        let token = issue(&old);
        let rotated = TokenKeys::new(&secrets(B, &[A]), "iss", 900);
        assert!(rotated.verify(&token).is_ok());
        let dropped = TokenKeys::new(&secrets(B, &[]), "iss", 900);
        assert_eq!(dropped.verify(&token), Err(TokenError::UnknownKey));
    }

    #[test]
    fn wrong_issuer_audience_expiry_and_future_tokens_are_refused() {
        let keys = TokenKeys::new(&secrets(A, &[]), "iss", 900);
        let other_issuer = TokenKeys::new(&secrets(A, &[]), "other", 900);
        assert!(keys.verify(&issue(&other_issuer)).is_err());

        let expired = keys
            .issue(UserId::new(), TenantId::new(), "agent", SessionId::new(), now() - 2000)
            .expect("issue");
        assert!(keys.verify(&expired).is_err());
        let future = keys
            .issue(UserId::new(), TenantId::new(), "agent", SessionId::new(), now() + 600)
            .expect("issue");
        assert!(keys.verify(&future).is_err(), "nbf in the future");

        let mut claims = keys.verify(&issue(&keys)).expect("valid");
        claims.aud = "someone-else".into();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key_id(A.as_bytes()));
        let forged =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(A.as_bytes()))
                .expect("encode");
        assert!(keys.verify(&forged).is_err());
    }

    #[test]
    fn opaque_tokens_are_long_random_and_stored_hashed() {
        let a = opaque_token();
        let b = opaque_token();
        assert_eq!(a.expose().len(), 43);
        assert_ne!(a.expose(), b.expose());
        assert_eq!(token_hash(a.expose()).len(), 32);
    }
}
