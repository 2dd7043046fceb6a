//! Signing in and staying signed in: password login (with the lockout), sessions, refresh
//! with rotation and reuse detection, logout, and the user's own sessions. Creating and
//! changing accounts is `account`.

use serde::Serialize;
use utoipa::ToSchema;

use super::lockout::{self, Admission, Attempt};
use super::password::{HashError, Verified};
use super::store::{self as db, NewSession, UserRow};
use super::tokens::{opaque_token, token_hash};
use super::{Principal, normalize_email};
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::Timestamp;
use crate::crypto::Secret;
use crate::error::{DomainError, DomainResult};
use crate::ids::{SessionId, TenantId, UserId};
use crate::ratelimit::{ClientKey, RateCategory, Verdict};
use crate::store::SystemTx;

/// What a successful authentication returns.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPair {
    /// A JWT for `Authorization: Bearer`, valid `expires_in` seconds.
    pub access_token: String,
    /// Opaque, single use: exchange it at /api/v1/auth/refresh for a new pair.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    pub expires_in: i64,
}

pub enum LoginOutcome {
    Tokens(TokenPair),
    /// The password was right and a second factor is enrolled: no tokens yet.
    MfaRequired {
        mfa_token: String,
        methods: Vec<&'static str>,
    },
}

pub(crate) fn hash_error(err: HashError) -> DomainError {
    match err {
        HashError::Busy => DomainError::Busy { retry_after: 1 },
        HashError::Failed(cause) => DomainError::Internal(cause),
    }
}

/// Password login. The attempt is reserved in the lockout counters before the password is
/// hashed (see `lockout`), and every path costs one hash and the same writes, so neither the
/// answer nor its timing tells an unknown account from a wrong password or a locked one.
pub async fn login(
    app: &AppState,
    ctx: &RequestContext,
    email: &str,
    password: &Secret<String>,
) -> DomainResult<LoginOutcome> {
    let identity = app.identity();
    // A hashing slot first: a flood is refused here, before any database work.
    let hashing = identity.hasher.admit().map_err(hash_error)?;
    let email = normalize_email(email);
    let mut tx = app.store().system_read().await?;
    let user = db::user_by_email(&mut tx, &email).await?;
    tx.commit().await?;

    let account = match &user {
        Some(user) => lockout::account_key(user.id),
        None => lockout::unknown_account_key(app.keys(), &email),
    };
    let ip = lockout::ip_key(&ctx.net);
    let attempt = match identity.lockout.admit(&ip, &account).await? {
        Admission::AddressThrottled(until) => {
            return Err(DomainError::TooManyAttempts {
                retry_after: Timestamp::now().retry_after(until),
            });
        }
        Admission::AccountLocked => None,
        Admission::Granted(attempt) => Some(attempt),
    };
    let verified = match attempt {
        // Locked: the same hashing time, without looking at the real hash.
        None => {
            identity.hasher.waste_one_verification(&hashing, password).await.map(|()| Verified::No)
        }
        Some(_) => {
            let stored = user.as_ref().map(|u| u.password_hash.as_str());
            identity.hasher.verify_admitted(&hashing, password, stored).await
        }
    }
    .map_err(hash_error)?;
    drop(hashing);

    match (user, attempt) {
        (Some(user), Some(attempt)) if user.is_active() && verified != Verified::No => {
            if let Verified::YesRehashed(new_hash) = &verified {
                let mut tx = app.store().system_tx().await?;
                db::set_password_hash(&mut tx, user.id, new_hash, Timestamp::now()).await?;
                tx.commit().await?;
            }
            let methods = super::mfa::methods(app, user.id).await?;
            if !methods.is_empty() {
                // Half a sign-in: this attempt is given back, the earlier failures stay, so
                // the password alone never refills the budget of guesses at the code.
                identity.lockout.refund(&account, attempt).await?;
                let mfa_token = super::mfa::issue_ticket(app, user.id, user.tenant_id).await?;
                return Ok(LoginOutcome::MfaRequired { mfa_token, methods });
            }
            identity.lockout.succeeded(&account).await?;
            let pair = start_session(app, ctx, &user, None).await?;
            Ok(LoginOutcome::Tokens(pair))
        }
        (user, attempt) => {
            record_login_failure(app, ctx, user.as_ref(), attempt, &ip).await?;
            Err(DomainError::InvalidCredentials)
        }
    }
}

/// A wrong credential whose attempt was already reserved: counted against the address,
/// audited, and a lock it caused is audited and counted too.
async fn record_login_failure(
    app: &AppState,
    ctx: &RequestContext,
    user: Option<&UserRow>,
    attempt: Option<Attempt>,
    ip: &str,
) -> DomainResult<()> {
    metrics::counter!("auth_login_failures_total").increment(1);
    app.identity().lockout.failed(ip).await?;
    let reason = match (user, attempt) {
        (None, _) => "unknown_account",
        (Some(_), None) => "locked",
        (Some(u), Some(_)) if !u.is_active() => "deactivated",
        (Some(_), Some(_)) => "bad_password",
    };
    let tenant = user.and_then(|u| u.tenant_id);
    let mut tx = app.store().system_tx().await?;
    let mut event = Event::new(Action::AuthLoginFailed).failure().detail("reason", reason);
    if let Some(user) = user {
        event = event.target("user", user.id);
    }
    audit::record_platform(&mut tx, tenant, ctx, event).await?;
    if let (Some(user), Some(Attempt { locked_until: Some(until) })) = (user, attempt) {
        record_lockout(app, &mut tx, ctx, tenant, user.id, until, "password").await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Checks the signed-in user's own password (a password change, the password step-up):
/// one reserved lockout attempt, exactly like a login. A wrong one is audited and answered
/// as a 422 on `field`; a lock it causes is audited. A right one gives back its attempt but
/// keeps earlier failures: it proves the password, not the second factor.
pub(crate) async fn check_password_of(
    app: &AppState,
    ctx: &RequestContext,
    principal: &Principal,
    password: &Secret<String>,
    field: &'static str,
) -> DomainResult<UserRow> {
    let identity = app.identity();
    let hashing = identity.hasher.admit().map_err(hash_error)?;
    let mut tx = app.store().system_read().await?;
    let user =
        db::user_by_id(&mut tx, principal.user_id()).await?.ok_or(DomainError::NotFound("user"))?;
    tx.commit().await?;
    let account = lockout::account_key(user.id);
    let ip = lockout::ip_key(&ctx.net);
    let attempt = match identity.lockout.admit(&ip, &account).await? {
        Admission::AddressThrottled(until) => {
            return Err(DomainError::TooManyAttempts {
                retry_after: Timestamp::now().retry_after(until),
            });
        }
        Admission::AccountLocked => return Err(DomainError::invalid(field, "is incorrect")),
        Admission::Granted(attempt) => attempt,
    };
    let verified = identity
        .hasher
        .verify_admitted(&hashing, password, Some(&user.password_hash))
        .await
        .map_err(hash_error)?;
    drop(hashing);
    if verified != Verified::No {
        identity.lockout.refund(&account, attempt).await?;
        return Ok(user);
    }
    identity.lockout.failed(&ip).await?;
    let mut tx = app.store().system_tx().await?;
    audit::record_platform(
        &mut tx,
        user.tenant_id,
        ctx,
        Event::new(Action::AuthPasswordCheckFailed)
            .failure()
            .by_user(user.id)
            .detail("context", field),
    )
    .await?;
    if let Some(until) = attempt.locked_until {
        record_lockout(app, &mut tx, ctx, user.tenant_id, user.id, until, field).await?;
    }
    tx.commit().await?;
    Err(DomainError::invalid(field, "is incorrect"))
}

/// The audit event and metric of an account lock, in the caller's transaction.
pub(crate) async fn record_lockout(
    app: &AppState,
    tx: &mut SystemTx,
    ctx: &RequestContext,
    tenant: Option<TenantId>,
    user: UserId,
    until: Timestamp,
    after: &'static str,
) -> DomainResult<()> {
    metrics::counter!("auth_lockouts_total").increment(1);
    // Queued once this transaction is done (the task waits for it on SQLite's one writer).
    super::mail::security_notice(app, user, super::mail::SecurityNotice::Locked);
    audit::record_platform(
        tx,
        tenant,
        ctx,
        Event::new(Action::AuthLockout)
            .by_system("lockout")
            .target("user", user)
            .detail("locked_until", until.rfc3339())
            .detail("after", after),
    )
    .await?;
    Ok(())
}

/// Creates a session and its first refresh token, audits the login and returns the pair.
pub async fn start_session(
    app: &AppState,
    ctx: &RequestContext,
    user: &UserRow,
    step_up_at: Option<Timestamp>,
) -> DomainResult<TokenPair> {
    let identity = app.identity();
    let now = Timestamp::now();
    let session = SessionId::new();
    let tenant = user.tenant_id;
    let refresh = opaque_token();
    let mut tx = app.store().system_tx().await?;
    db::insert_session(
        &mut tx,
        &NewSession {
            id: session,
            tenant_id: tenant,
            user_id: user.id,
            now,
            expires_at: now.plus(identity.settings.session_absolute),
            ip: ctx.ip.map(|ip| ip.to_string()),
            user_agent: ctx.user_agent.as_deref(),
            step_up_at,
        },
    )
    .await?;
    db::insert_refresh_token(&mut tx, &token_hash(refresh.expose()), session, tenant, now).await?;
    audit::record_platform(
        &mut tx,
        tenant,
        ctx,
        Event::new(Action::AuthLogin).by_user(user.id).target("session", session),
    )
    .await?;
    tx.commit().await?;
    token_pair(app, user, session, refresh, now)
}

fn role_claim(user: &UserRow) -> String {
    if user.is_superadmin { "superadmin".to_owned() } else { user.role.clone().unwrap_or_default() }
}

fn token_pair(
    app: &AppState,
    user: &UserRow,
    session: SessionId,
    refresh: Secret<String>,
    now: Timestamp,
) -> DomainResult<TokenPair> {
    let keys = &app.identity().tokens;
    let access_token = keys
        .issue(
            user.id,
            user.tenant_id.unwrap_or(TenantId::PLATFORM),
            &role_claim(user),
            session,
            now.secs(),
        )
        .map_err(|err| DomainError::Internal(err.to_string()))?;
    Ok(TokenPair {
        access_token,
        refresh_token: refresh.expose().clone(),
        token_type: "Bearer",
        expires_in: keys.lifetime_secs,
    })
}

/// Exchanges a refresh token for a new pair. A token that was already used means it was
/// copied: the whole session (every token of the family) is revoked and the reuse audited.
pub async fn refresh(
    app: &AppState,
    ctx: &RequestContext,
    presented: &Secret<String>,
) -> DomainResult<TokenPair> {
    let identity = app.identity();
    let now = Timestamp::now();
    let hash = token_hash(presented.expose());
    let mut tx = app.store().system_tx().await?;
    let token = db::refresh_token(&mut tx, &hash).await?;
    // The refresh rule counts per session, so neither failed logins nor another session
    // behind the same address can spend this session's budget; tokens that name no
    // session share their address's.
    let client = ClientKey {
        session: token.as_ref().map(|t| t.session_id.to_string()),
        ..ClientKey::anonymous(ctx.net)
    };
    match app.limiter().check(RateCategory::Refresh, None, &client).await {
        Verdict::Refused { retry_after_secs, .. } => {
            return Err(DomainError::TooManyAttempts { retry_after: retry_after_secs });
        }
        Verdict::Unavailable { .. } => {
            return Err(DomainError::Unavailable("the rate limiter is unreachable"));
        }
        Verdict::Unlimited | Verdict::Allowed(_) => {}
    }
    let Some(token) = token else {
        return Err(DomainError::Unauthenticated("unknown refresh token"));
    };
    let sid = token.session_id;
    let session =
        db::session(&mut tx, sid).await?.ok_or(DomainError::Unauthenticated("no session"))?;
    let user = db::user_by_id(&mut tx, session.user_id)
        .await?
        .ok_or(DomainError::Unauthenticated("no user"))?;
    let tenant = session.tenant_id;

    let first_use =
        token.spent_at.is_none() && db::spend_refresh_token(&mut tx, &hash, now).await?;
    if !first_use {
        let revoked = db::revoke_session(&mut tx, user.id, sid, "refresh_reuse", now).await?;
        audit::record_platform(
            &mut tx,
            tenant,
            ctx,
            Event::new(Action::AuthRefreshReuse)
                .failure()
                .target("session", sid)
                .detail("session_revoked", revoked),
        )
        .await?;
        tx.commit().await?;
        identity.sessions.revoked(&[sid]).await;
        metrics::counter!("auth_refresh_reuse_total").increment(1);
        return Err(DomainError::Unauthenticated("refresh token reused"));
    }
    let live = session.revoked_at.is_none()
        && session.expires_at > now
        && session.last_used_at.plus(identity.settings.session_idle) > now
        && user.is_active();
    if !live {
        // The spend above is rolled back with the transaction: nothing changes.
        return Err(DomainError::Unauthenticated("session ended"));
    }
    let next = opaque_token();
    db::insert_refresh_token(&mut tx, &token_hash(next.expose()), sid, tenant, now).await?;
    db::touch_session(&mut tx, sid, now).await?;
    tx.commit().await?;
    token_pair(app, &user, sid, next, now)
}

pub async fn logout(
    app: &AppState,
    ctx: &RequestContext,
    principal: &Principal,
) -> DomainResult<()> {
    let sid = principal
        .session_id()
        .ok_or(DomainError::Forbidden("an API key has no session to log out of"))?;
    revoke_own_session(app, ctx, principal, sid, Action::AuthLogout).await
}

pub async fn revoke_own_session(
    app: &AppState,
    ctx: &RequestContext,
    principal: &Principal,
    sid: SessionId,
    action: Action,
) -> DomainResult<()> {
    let mut tx = app.store().system_tx().await?;
    let reason = if action == Action::AuthLogout { "logout" } else { "user_revoked" };
    if !db::revoke_session(&mut tx, principal.user_id(), sid, reason, Timestamp::now()).await? {
        return Err(DomainError::NotFound("session"));
    }
    audit::record_platform(
        &mut tx,
        principal.tenant_id(),
        ctx,
        Event::new(action).by_user(principal.user_id()).target("session", sid),
    )
    .await?;
    tx.commit().await?;
    app.identity().sessions.revoked(&[sid]).await;
    Ok(())
}

pub async fn sessions(app: &AppState, principal: &Principal) -> DomainResult<Vec<db::SessionRow>> {
    let mut tx = app.store().system_read().await?;
    let now = Timestamp::now();
    let idle_since = now.minus(app.identity().settings.session_idle);
    let rows = db::sessions_of_user(&mut tx, principal.user_id(), now, idle_since).await?;
    tx.commit().await?;
    Ok(rows)
}
