//! Turns the `Authorization` header into a `Principal`, or refuses.
//!
//! `Bearer <jwt>` is an access token: signature, algorithm, issuer, audience and lifetime
//! are checked, then its session must still be live. `Bearer bwk_…` is an API key. There is
//! no anonymous fallback: a present but bad credential is refused, never ignored.

use std::sync::Arc;

use super::{Credential, Principal, api_keys};
use crate::app::AppState;
use crate::clock::Timestamp;
use crate::error::DomainError;
use crate::ids::TenantId;
use crate::tenancy::Role;

/// Longest credential we look at; anything longer is refused unparsed.
const MAX_CREDENTIAL: usize = 4096;

/// `authorization` is the raw `Authorization` header, if the request had one.
pub async fn authenticate(
    app: &AppState,
    authorization: Option<&[u8]>,
) -> Result<Principal, DomainError> {
    let token = bearer(authorization)?;
    if token.starts_with(api_keys::API_KEY_PREFIX) {
        // Boxed, like a session cache miss: a session request's future stays small.
        return Box::pin(api_keys::authenticate(app, token)).await;
    }
    let identity = app.identity();
    let claims = identity
        .tokens
        .verify_cached(token)
        .map_err(|_| DomainError::Unauthenticated("invalid access token"))?;
    let now = Timestamp::now();
    let owner = super::session_cache::owner(claims.sub, claims.tid, &claims.role);
    let live = identity
        .sessions
        .is_live(app.store(), claims.sid, &owner, identity.settings.session_idle, now)
        .await?
        .ok_or(DomainError::Unauthenticated("session revoked or expired"))?;
    principal_from_claims(&claims, live.profile.clone(), Some(live))
}

/// The principal an access token's claims name; the caller has checked its session.
fn principal_from_claims(
    claims: &super::tokens::Claims,
    profile: Arc<super::Profile>,
    session: Option<Arc<super::session_cache::LiveSession>>,
) -> Result<Principal, DomainError> {
    let credential = Credential::Session(claims.sid);
    if claims.role == "superadmin" {
        return Ok(Principal {
            user_id: claims.sub,
            tenant_id: None,
            role: None,
            superadmin: true,
            credential,
            profile,
            session,
        });
    }
    let role =
        Role::parse(&claims.role).ok_or(DomainError::Unauthenticated("unknown role claim"))?;
    if claims.tid == TenantId::PLATFORM {
        return Err(DomainError::Unauthenticated("tenant claim missing"));
    }
    Ok(Principal {
        user_id: claims.sub,
        tenant_id: Some(claims.tid),
        role: Some(role),
        superadmin: false,
        credential,
        profile,
        session,
    })
}

/// The credential of `Authorization: Bearer <credential>`, from the header's raw value.
pub fn bearer(authorization: Option<&[u8]>) -> Result<&str, DomainError> {
    let value = authorization.ok_or(DomainError::Unauthenticated("no Authorization header"))?;
    // Printable ASCII only; a fold without an early exit, which the compiler vectorises.
    let printable = value.iter().fold(true, |all, b| all & (b' '..=b'~').contains(b));
    let value = std::str::from_utf8(value)
        .ok()
        .filter(|_| printable)
        .ok_or(DomainError::Unauthenticated("Authorization is not ASCII"))?;
    let (scheme, credential) =
        value.split_once(' ').ok_or(DomainError::Unauthenticated("Authorization is not Bearer"))?;
    let credential = credential.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || credential.is_empty() {
        return Err(DomainError::Unauthenticated("Authorization is not Bearer"));
    }
    if credential.len() > MAX_CREDENTIAL {
        return Err(DomainError::Unauthenticated("credential too long"));
    }
    Ok(credential)
}
