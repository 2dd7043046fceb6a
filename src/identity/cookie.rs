//! The browser console's session cookie, over the same sessions as the API.
//!
//! A console sign-in runs the API's own sign-in (password, lockout, MFA ticket, passkey) and
//! then *adopts* the session it created: the session gets a cookie secret (its SHA-256 in
//! `sessions.cookie_hash`) and loses its refresh token, so the cookie is its only
//! credential and the tokens the sign-in produced are dropped unseen. The session keeps the
//! API's lifetimes: absolute from its start, idle from `last_used_at`, which console
//! requests move forward (at most once a minute).
//!
//! The cookie's value is `<session id>.<secret>`. Checking it costs what checking an access
//! token costs: the session's state comes from `session_cache` (no statement when warm), and
//! the secret's hash is compared with the cached one in constant time. A new secret is issued
//! at sign-in and at every step-up (no fixation); the old one stops working on this instance
//! at once and on the others within the cache's 500 ms, like a revocation.
//!
//! The CSRF token is a MAC of the cookie's secret under a master-derived key: one per
//! cookie, never stored, and a new one whenever the cookie changes.

use std::sync::Arc;

use subtle::ConstantTimeEq as _;

use super::session_cache::LiveSession;
use super::store as db;
use super::tokens::{opaque_token, token_hash};
use super::{Credential, Principal};
use crate::app::AppState;
use crate::clock::Timestamp;
use crate::crypto::Secret;
use crate::error::{DomainError, DomainResult};
use crate::ids::{SessionId, TenantId};
use crate::tenancy::Role;

/// Console requests move `last_used_at` forward at most this often (one write a minute per
/// session, not one per request; more often under an idle timeout shorter than two
/// minutes); the idle timeout is counted from it.
const TOUCH_EVERY_SECS: i64 = 60;
const CSRF_PURPOSE: &str = "console-csrf";

/// A cookie just issued: its value (for `Set-Cookie`) and its CSRF token.
pub struct IssuedCookie {
    pub value: Secret<String>,
    pub csrf: String,
}

/// A request's console session: who it is, and the CSRF token its forms must carry.
pub struct CookieSession {
    pub principal: Principal,
    pub csrf: String,
}

/// Makes the session of a sign-in's fresh access token a console session and returns its
/// cookie. The token's refresh token is deleted with it.
pub async fn adopt(app: &AppState, access_token: &str) -> DomainResult<IssuedCookie> {
    let claims = app
        .identity()
        .tokens
        .verify(access_token)
        .map_err(|err| DomainError::Internal(format!("a fresh access token: {err:?}")))?;
    issue(app, claims.sid).await
}

/// A new cookie for `sid` (sign-in, step-up): the previous one stops working.
pub async fn issue(app: &AppState, sid: SessionId) -> DomainResult<IssuedCookie> {
    let secret = opaque_token();
    let mut tx = app.store().system_tx().await?;
    if !db::set_cookie_hash(&mut tx, sid, &token_hash(secret.expose())).await? {
        return Err(DomainError::Unauthenticated("session ended"));
    }
    tx.commit().await?;
    app.identity().sessions.changed(sid).await;
    let csrf = csrf_token(app, secret.expose());
    Ok(IssuedCookie { value: Secret::new(format!("{}.{}", sid, secret.expose())), csrf })
}

/// The principal of a cookie's value, or 401.
pub async fn authenticate(app: &AppState, value: &str) -> DomainResult<CookieSession> {
    let refused = || DomainError::Unauthenticated("no console session");
    let (sid, secret) = value.split_once('.').ok_or_else(refused)?;
    let sid: SessionId = sid.parse().map_err(|_| refused())?;
    if secret.is_empty() || secret.len() > 64 {
        return Err(refused());
    }
    let identity = app.identity();
    let now = Timestamp::now();
    let live = identity
        .sessions
        .live(app.store(), sid, identity.settings.session_idle, now)
        .await?
        .ok_or(DomainError::Unauthenticated("session revoked or expired"))?;
    let matches = live
        .cookie_hash
        .as_deref()
        .is_some_and(|stored| bool::from(stored.ct_eq(&token_hash(secret))));
    if !matches {
        return Err(refused());
    }
    // At most once a minute, and at least twice per idle period (so a short idle timeout
    // does not end a session in use).
    let idle_secs = i64::try_from(identity.settings.session_idle.as_secs()).unwrap_or(i64::MAX);
    let every = (idle_secs / 2).clamp(1, TOUCH_EVERY_SECS);
    if now.secs() - live.last_used_at.secs() >= every {
        let mut tx = app.store().system_tx().await?;
        db::touch_session(&mut tx, sid, now).await?;
        tx.commit().await?;
        identity.sessions.changed(sid).await;
    }
    let principal = principal_of(sid, live)?;
    Ok(CookieSession { principal, csrf: csrf_token(app, secret) })
}

/// Whether `presented` is the CSRF token of the cookie `value` (constant time).
pub fn csrf_matches(session: &CookieSession, presented: &str) -> bool {
    !presented.is_empty() && bool::from(session.csrf.as_bytes().ct_eq(presented.as_bytes()))
}

fn csrf_token(app: &AppState, secret: &str) -> String {
    crate::crypto::hex(&app.keys().derive_mac(CSRF_PURPOSE, secret.as_bytes()))
}

fn principal_of(sid: SessionId, live: Arc<LiveSession>) -> DomainResult<Principal> {
    let profile = live.profile.clone();
    let (user_id, tenant) = (live.user_id, live.tenant_id);
    let credential = Credential::Session(sid);
    if live.role == "superadmin" {
        return Ok(Principal {
            user_id,
            tenant_id: None,
            role: None,
            superadmin: true,
            credential,
            profile,
            session: Some(live),
        });
    }
    let role = Role::parse(&live.role).ok_or(DomainError::Unauthenticated("unknown role"))?;
    if tenant == TenantId::PLATFORM {
        return Err(DomainError::Unauthenticated("no tenant"));
    }
    Ok(Principal {
        user_id,
        tenant_id: Some(tenant),
        role: Some(role),
        superadmin: false,
        credential,
        profile,
        session: Some(live),
    })
}
