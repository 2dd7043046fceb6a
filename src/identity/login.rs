//! The account flows: signup, login, refresh with rotation and reuse detection, logout,
//! password change, the user's own sessions, and the CLI's super-admin and import.

use serde::Serialize;
use utoipa::ToSchema;

use super::lockout::{self, Failure};
use super::password::{self, HashError, Verified};
use super::store::{self as db, NewSession, NewUser, UserRow};
use super::tokens::{opaque_token, token_hash};
use super::{Principal, check_email, normalize_email};
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::now_ms;
use crate::crypto::Secret;
use crate::error::{DomainError, DomainResult};
use crate::ids::{SessionId, TenantId, UserId};
use crate::store::{StoreError, SystemTx};
use crate::tenancy::Role;

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

pub struct SignupInput {
    pub tenant_name: String,
    pub email: String,
    pub password: Secret<String>,
    pub display_name: String,
}

fn hash_error(err: HashError) -> DomainError {
    match err {
        HashError::Busy => DomainError::Busy { retry_after: 1 },
        HashError::Failed(cause) => DomainError::Internal(cause),
    }
}

fn check_name(field: &str, value: &str, problems: &mut Vec<(String, String)>) {
    let length = value.trim().chars().count();
    if length == 0 || length > 100 || value.chars().any(char::is_control) {
        problems.push((field.to_owned(), "must be 1 to 100 printable characters".to_owned()));
    }
}

/// Validates a new account's email, name and password; every problem at once.
pub fn check_new_account(
    email: &str,
    display_name: &str,
    password: &Secret<String>,
    extra_inputs: &[&str],
) -> DomainResult<()> {
    let mut problems = vec![];
    if let Err(message) = check_email(email) {
        problems.push(("email".to_owned(), message.to_owned()));
    }
    check_name("display_name", display_name, &mut problems);
    let mut inputs = vec![email, display_name];
    inputs.extend_from_slice(extra_inputs);
    if let Err(message) = password::check_policy(password.expose(), &inputs) {
        problems.push(("password".to_owned(), message));
    }
    if problems.is_empty() { Ok(()) } else { Err(DomainError::Invalid(problems)) }
}

pub async fn signup(
    app: &AppState,
    ctx: &RequestContext,
    input: SignupInput,
) -> DomainResult<(TenantId, UserId)> {
    if !app.identity().settings.signup_open {
        return Err(DomainError::SignupClosed);
    }
    let email = normalize_email(&input.email);
    let display_name = input.display_name.trim().to_owned();
    let tenant_name = input.tenant_name.trim().to_owned();
    let mut problems = vec![];
    check_name("tenant_name", &tenant_name, &mut problems);
    if let Err(DomainError::Invalid(more)) =
        check_new_account(&email, &display_name, &input.password, &[&tenant_name])
    {
        problems.extend(more);
    }
    if !problems.is_empty() {
        return Err(DomainError::Invalid(problems));
    }
    let hash = app.identity().hasher.hash(&input.password).await.map_err(hash_error)?;
    let (tenant_id, user_id, now) = (TenantId::new(), UserId::new(), now_ms());
    let mut tx = app.store().system_tx().await?;
    db::insert_tenant(&mut tx, tenant_id, &tenant_name, now).await?;
    app.tenant_keys()
        .create_for(&mut tx, tenant_id, now)
        .await
        .map_err(|err| DomainError::Internal(err.to_string()))?;
    insert_account(
        &mut tx,
        &NewUser {
            id: user_id,
            tenant_id: Some(tenant_id),
            email: &email,
            display_name: &display_name,
            password_hash: &hash,
            role: Some(Role::Owner.as_str()),
            is_superadmin: false,
            now,
        },
    )
    .await?;
    audit::record_platform(
        &mut tx,
        Some(tenant_id),
        ctx,
        Event::new(Action::AuthSignup).by_user(user_id).target("tenant", tenant_id),
    )
    .await?;
    tx.commit().await?;
    Ok((tenant_id, user_id))
}

/// Inserts a user, turning a taken email into a 409.
pub async fn insert_account(
    tx: &mut impl crate::store::AsRawTx,
    user: &NewUser<'_>,
) -> DomainResult<()> {
    db::insert_user(tx, user).await.map_err(|err| match err {
        StoreError::Conflict(_) => {
            DomainError::Conflict("an account with this email already exists")
        }
        other => other.into(),
    })
}

fn seconds_until(until_ms: i64, now: i64) -> u64 {
    u64::try_from((until_ms - now + 999) / 1000).unwrap_or(1).max(1)
}

pub async fn login(
    app: &AppState,
    ctx: &RequestContext,
    email: &str,
    password: &Secret<String>,
) -> DomainResult<LoginOutcome> {
    let identity = app.identity();
    let admission = identity.hasher.admit().map_err(hash_error)?;
    let now = now_ms();
    let ip_key = lockout::ip_key(ctx.ip.as_deref().unwrap_or("unknown"));
    if let Some(until) = identity.lockout.locked_until(&ip_key, now).await? {
        return Err(DomainError::TooManyAttempts { retry_after: seconds_until(until, now) });
    }
    let email = normalize_email(email);
    let mut tx = app.store().system_read().await?;
    let user = db::user_by_email(&mut tx, &email).await?;
    tx.commit().await?;

    let account_key = user.as_ref().map(|u| lockout::account_key(UserId(u.id)));
    let locked = match &account_key {
        Some(key) => identity.lockout.locked_until(key, now).await?.is_some(),
        None => false,
    };
    // Every path costs one verification: unknown accounts against the dummy hash, locked
    // ones without looking at the real hash at all.
    let verified = if locked {
        identity.hasher.waste_one_verification(&admission, password).await.map(|()| Verified::No)
    } else {
        let stored = user.as_ref().map(|u| u.password_hash.as_str());
        identity.hasher.verify_admitted(&admission, password, stored).await
    }
    .map_err(hash_error)?;
    drop(admission);

    match user {
        Some(user) if user.is_active() && !locked && verified != Verified::No => {
            if let Verified::YesRehashed(new_hash) = &verified {
                let mut tx = app.store().system_tx().await?;
                db::set_password_hash(&mut tx, UserId(user.id), new_hash, now).await?;
                tx.commit().await?;
            }
            let user_id = UserId(user.id);
            let methods = super::mfa::methods(app, user_id).await?;
            if !methods.is_empty() {
                // The failure count stays until the second factor succeeds: a password alone
                // must not reset the budget of guesses at the code.
                let mfa_token =
                    super::mfa::issue_ticket(app, user_id, user.tenant_id.map(TenantId)).await?;
                return Ok(LoginOutcome::MfaRequired { mfa_token, methods });
            }
            if let Some(key) = &account_key {
                identity.lockout.clear(key).await?;
            }
            let pair = start_session(app, ctx, &user, None).await?;
            Ok(LoginOutcome::Tokens(pair))
        }
        user => {
            record_login_failure(app, ctx, user.as_ref(), locked, &ip_key, now).await?;
            Err(DomainError::InvalidCredentials)
        }
    }
}

async fn record_login_failure(
    app: &AppState,
    ctx: &RequestContext,
    user: Option<&UserRow>,
    locked: bool,
    ip_key: &str,
    now: i64,
) -> DomainResult<()> {
    let lockout = &app.identity().lockout;
    metrics::counter!("auth_login_failures_total").increment(1);
    lockout.record_failure(ip_key, lockout.policy().ip_threshold, now).await?;
    let reason = match user {
        None => "unknown_account",
        Some(_) if locked => "locked",
        Some(u) if !u.is_active() => "deactivated",
        Some(_) => "bad_password",
    };
    let mut lock = None;
    if let Some(user) = user
        && !locked
        && user.is_active()
    {
        let key = lockout::account_key(UserId(user.id));
        if let Failure::LockedUntil(until) =
            lockout.record_failure(&key, lockout.policy().threshold, now).await?
        {
            metrics::counter!("auth_lockouts_total").increment(1);
            lock = Some(until);
        }
    }
    let tenant = user.and_then(|u| u.tenant_id).map(TenantId);
    let mut tx = app.store().system_tx().await?;
    let mut event = Event::new(Action::AuthLoginFailed).failure().detail("reason", reason);
    if let Some(user) = user {
        event = event.target("user", user.id);
    }
    audit::record_platform(&mut tx, tenant, ctx, event).await?;
    if let (Some(user), Some(until)) = (user, lock) {
        audit::record_platform(
            &mut tx,
            tenant,
            ctx,
            Event::new(Action::AuthLockout)
                .by_system("lockout")
                .target("user", user.id)
                .detail("locked_until", crate::clock::rfc3339(until)),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Creates a session and its first refresh token, audits the login and returns the pair.
pub async fn start_session(
    app: &AppState,
    ctx: &RequestContext,
    user: &UserRow,
    step_up_at: Option<i64>,
) -> DomainResult<TokenPair> {
    let identity = app.identity();
    let now = now_ms();
    let session = SessionId::new();
    let tenant = user.tenant_id.map(TenantId);
    let refresh = opaque_token();
    let mut tx = app.store().system_tx().await?;
    db::insert_session(
        &mut tx,
        &NewSession {
            id: session,
            tenant_id: tenant,
            user_id: UserId(user.id),
            now,
            expires_at: now.saturating_add(identity.settings.session_absolute_ms),
            ip: ctx.ip.as_deref(),
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
        Event::new(Action::AuthLogin).by_user(UserId(user.id)).target("session", session),
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
    now: i64,
) -> DomainResult<TokenPair> {
    let keys = &app.identity().tokens;
    let access_token = keys
        .issue(
            UserId(user.id),
            user.tenant_id.map_or(TenantId::PLATFORM, TenantId),
            &role_claim(user),
            session,
            now / 1000,
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
    let now = now_ms();
    let hash = token_hash(presented.expose());
    let mut tx = app.store().system_tx().await?;
    let Some(token) = db::refresh_token(&mut tx, &hash).await? else {
        return Err(DomainError::Unauthenticated("unknown refresh token"));
    };
    let sid = SessionId(token.session_id);
    let session =
        db::session(&mut tx, sid).await?.ok_or(DomainError::Unauthenticated("no session"))?;
    let user = db::user_by_id(&mut tx, UserId(session.user_id))
        .await?
        .ok_or(DomainError::Unauthenticated("no user"))?;
    let tenant = session.tenant_id.map(TenantId);

    let first_use =
        token.spent_at.is_none() && db::spend_refresh_token(&mut tx, &hash, now).await?;
    if !first_use {
        let revoked =
            db::revoke_session(&mut tx, UserId(user.id), sid, "refresh_reuse", now).await?;
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
        && session.last_used_at.saturating_add(identity.settings.session_idle_ms) > now
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
    if !db::revoke_session(&mut tx, principal.user_id(), sid, reason, now_ms()).await? {
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
    let rows = db::sessions_of_user(&mut tx, principal.user_id(), now_ms()).await?;
    tx.commit().await?;
    Ok(rows)
}

/// Changes the caller's password; every other session of the user is revoked.
pub async fn change_password(
    app: &AppState,
    ctx: &RequestContext,
    principal: &Principal,
    current: &Secret<String>,
    new: &Secret<String>,
) -> DomainResult<()> {
    let sid = principal
        .session_id()
        .ok_or(DomainError::Forbidden("an API key cannot change a password"))?;
    let identity = app.identity();
    let mut tx = app.store().system_read().await?;
    let user =
        db::user_by_id(&mut tx, principal.user_id()).await?.ok_or(DomainError::NotFound("user"))?;
    tx.commit().await?;
    let now = now_ms();
    let key = lockout::account_key(UserId(user.id));
    if identity.lockout.locked_until(&key, now).await?.is_some() {
        return Err(DomainError::invalid("current_password", "is incorrect"));
    }
    let verified =
        identity.hasher.verify(current, Some(&user.password_hash)).await.map_err(hash_error)?;
    if verified == Verified::No {
        // A stolen access token must not become an unlimited password oracle.
        identity.lockout.record_failure(&key, identity.lockout.policy().threshold, now).await?;
        let mut tx = app.store().system_tx().await?;
        audit::record_platform(
            &mut tx,
            user.tenant_id.map(TenantId),
            ctx,
            Event::new(Action::AuthPasswordChange)
                .failure()
                .by_user(UserId(user.id))
                .detail("reason", "bad_password"),
        )
        .await?;
        tx.commit().await?;
        return Err(DomainError::invalid("current_password", "is incorrect"));
    }
    if let Err(message) = password::check_policy(new.expose(), &[&user.email, &user.display_name]) {
        return Err(DomainError::invalid("new_password", message));
    }
    let hash = identity.hasher.hash(new).await.map_err(hash_error)?;
    let mut tx = app.store().system_tx().await?;
    db::set_password_hash(&mut tx, UserId(user.id), &hash, now).await?;
    let revoked =
        db::revoke_user_sessions(&mut tx, UserId(user.id), Some(sid), "password_change", now)
            .await?;
    audit::record_platform(
        &mut tx,
        user.tenant_id.map(TenantId),
        ctx,
        Event::new(Action::AuthPasswordChange)
            .by_user(UserId(user.id))
            .detail("sessions_revoked", revoked.len()),
    )
    .await?;
    tx.commit().await?;
    identity.sessions.revoked(&revoked).await;
    Ok(())
}

/// `bulwark create-superadmin`: a platform account outside every tenant.
pub async fn create_superadmin(
    app: &AppState,
    email: &str,
    display_name: &str,
    password: &Secret<String>,
) -> DomainResult<UserId> {
    let email = normalize_email(email);
    check_new_account(&email, display_name, password, &[])?;
    let hash = app.identity().hasher.hash(password).await.map_err(hash_error)?;
    let id = UserId::new();
    let mut tx = app.store().system_tx().await?;
    insert_account(
        &mut tx,
        &NewUser {
            id,
            tenant_id: None,
            email: &email,
            display_name,
            password_hash: &hash,
            role: None,
            is_superadmin: true,
            now: now_ms(),
        },
    )
    .await?;
    audit::record_platform(
        &mut tx,
        None,
        &RequestContext::system(),
        Event::new(Action::PlatformSuperadminCreate).by_system("cli").target("user", id),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// One account of `bulwark import-users`: an existing hash (bcrypt or Argon2) from another
/// system, re-hashed with Argon2id on the user's next successful login.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportedUser {
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub password_hash: String,
}

pub async fn import_users(
    app: &AppState,
    tenant: TenantId,
    users: Vec<ImportedUser>,
) -> DomainResult<usize> {
    let now = now_ms();
    let mut tx: SystemTx = app.store().system_tx().await?;
    for (line, user) in users.iter().enumerate() {
        let email = normalize_email(&user.email);
        let known_format = ["$2a$", "$2b$", "$2y$", "$argon2id$"]
            .iter()
            .any(|p| user.password_hash.starts_with(p));
        if check_email(&email).is_err() || !known_format {
            return Err(DomainError::invalid(
                &format!("line {}", line + 1),
                "needs a valid email and a bcrypt or argon2id hash",
            ));
        }
        insert_account(
            &mut tx,
            &NewUser {
                id: UserId::new(),
                tenant_id: Some(tenant),
                email: &email,
                display_name: user.display_name.trim(),
                password_hash: &user.password_hash,
                role: Some(user.role.as_str()),
                is_superadmin: false,
                now,
            },
        )
        .await?;
    }
    audit::record_platform(
        &mut tx,
        Some(tenant),
        &RequestContext::system(),
        Event::new(Action::UserImport).by_system("cli").detail("count", users.len()),
    )
    .await?;
    tx.commit().await?;
    Ok(users.len())
}
