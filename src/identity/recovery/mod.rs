//! Proving an address and getting back in: email verification and password reset, both by
//! a single-use token mailed to the account's address and stored as SHA-256 (`account_tokens`).
//!
//! A reset request answers 202 at once whatever the address: the lookup, the token and the
//! mail happen in a task of their own, so neither the answer nor its timing tells whether
//! the address has an account. A reset spends every reset token of the user, sets the new
//! password, proves the address, ends every session and API key and is audited; it leaves
//! the lockout counters alone (a mailbox is no second factor).

pub mod routes;

use std::time::Duration;

use super::store::{self as db, NewAccountToken};
use super::tokens::{opaque_token, token_hash};
use super::{Principal, check_email, mail, normalize_email, password};
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::Timestamp;
use crate::crypto::Secret;
use crate::error::{DomainError, DomainResult};
use crate::ids::UserId;

const VERIFY: &str = "verify_email";
const RESET: &str = "password_reset";
const VERIFY_LIFETIME: Duration = Duration::from_secs(48 * 3600);
const RESET_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// At most one mail of a kind per account per minute (no mail-bombing through the form).
const RESEND_AFTER: Duration = Duration::from_secs(60);

/// Issues a token of `purpose` for `user` unless one went out within the last minute.
async fn issue(
    app: &AppState,
    user: &db::UserRow,
    purpose: &str,
    lifetime: Duration,
) -> DomainResult<Option<Secret<String>>> {
    let now = Timestamp::now();
    let mut tx = app.store().system_tx().await?;
    let latest = db::latest_account_token(&mut tx, user.id, purpose, now).await?;
    if latest.is_some_and(|at| at.plus(RESEND_AFTER) > now) {
        return Ok(None);
    }
    let token = opaque_token();
    let hash = token_hash(token.expose());
    let new = NewAccountToken {
        hash: &hash,
        purpose,
        user: user.id,
        tenant: user.tenant_id,
        now,
        expires_at: now.plus(lifetime),
    };
    db::insert_account_token(&mut tx, &new).await?;
    tx.commit().await?;
    Ok(Some(token))
}

/// Mails a verification link to a user whose address is unproven (after signup, or asked).
pub async fn send_verification(app: &AppState, user: UserId) -> DomainResult<()> {
    if !mail::configured(app) {
        return Ok(());
    }
    let mut tx = app.store().system_read().await?;
    let row = db::user_by_id(&mut tx, user).await?;
    tx.commit().await?;
    let Some(row) = row.filter(|u| u.is_active() && u.email_verified_at.is_none()) else {
        return Ok(());
    };
    if let Some(token) = issue(app, &row, VERIFY, VERIFY_LIFETIME).await? {
        let lead = "Confirm this is your address by opening the link below (valid 48 hours).";
        mail::account_link(
            app,
            user,
            "Confirm your email address",
            "verify-email",
            token.expose(),
            lead,
        );
    }
    Ok(())
}

/// `POST /auth/verify-email/resend`: another link for the caller, if still unverified.
pub async fn resend_verification(app: &AppState, principal: &Principal) -> DomainResult<()> {
    send_verification(app, principal.user_id()).await
}

/// `POST /auth/verify-email`: spends the token and marks the address proven.
pub async fn verify_email(app: &AppState, ctx: &RequestContext, token: &str) -> DomainResult<()> {
    let now = Timestamp::now();
    let mut tx = app.store().system_tx().await?;
    let Some(user) = db::spend_account_token(&mut tx, &token_hash(token), VERIFY, now).await?
    else {
        return Err(DomainError::invalid("token", "is not a current verification link"));
    };
    let row = db::user_by_id(&mut tx, user).await?.ok_or(DomainError::NotFound("user"))?;
    db::mark_email_verified(&mut tx, user, now).await?;
    let event = Event::new(Action::AuthEmailVerify).by_user(user);
    audit::record_platform(&mut tx, row.tenant_id, ctx, event).await?;
    tx.commit().await?;
    app.identity().sessions.user_changed(user).await;
    Ok(())
}

/// `POST /auth/password-reset`: 202 whatever the address; the work happens elsewhere.
pub fn request_reset(app: &AppState, ctx: &RequestContext, email: &str) -> DomainResult<()> {
    let email = normalize_email(email);
    // The address's form only: the same answer for every well-formed address.
    check_email(&email).map_err(|message| DomainError::invalid("email", message))?;
    let (app, ctx) = (app.clone(), ctx.clone());
    mail::in_background("a password reset", async move { mail_reset(&app, &ctx, &email).await });
    Ok(())
}

async fn mail_reset(app: &AppState, ctx: &RequestContext, email: &str) -> DomainResult<()> {
    if !mail::configured(app) {
        return Ok(());
    }
    let mut tx = app.store().system_read().await?;
    let user = db::user_by_email(&mut tx, email).await?;
    tx.commit().await?;
    let Some(user) = user.filter(|u| u.is_active() && u.tenant_id.is_some()) else {
        return Ok(());
    };
    let Some(token) = issue(app, &user, RESET, RESET_LIFETIME).await? else { return Ok(()) };
    let mut tx = app.store().system_tx().await?;
    let event = Event::new(Action::AuthPasswordResetRequest).by_user(user.id);
    audit::record_platform(&mut tx, user.tenant_id, ctx, event).await?;
    tx.commit().await?;
    let lead = "Someone asked to reset the password of your account. Open the link below to \
                choose a new one (valid 30 minutes, once).";
    mail::account_link(app, user.id, "Reset your password", "reset-password", token.expose(), lead);
    Ok(())
}

/// `POST /auth/password-reset/confirm`: a new password for the token's user; every session
/// ends.
pub async fn confirm_reset(
    app: &AppState,
    ctx: &RequestContext,
    token: &str,
    new_password: &Secret<String>,
) -> DomainResult<()> {
    let invalid = || DomainError::invalid("token", "is not a current reset link");
    let hash = token_hash(token);
    // Check the password against its account before spending the token, so a weak choice
    // can be corrected with the same link.
    let mut tx = app.store().system_read().await?;
    let user = db::account_token_user(&mut tx, &hash, RESET, Timestamp::now()).await?;
    let user = match user {
        Some(id) => db::user_by_id(&mut tx, id).await?,
        None => None,
    };
    tx.commit().await?;
    let user = user.filter(db::UserRow::is_active).ok_or_else(invalid)?;
    if let Err(message) =
        password::check_policy(new_password.expose(), &[&user.email, &user.display_name])
    {
        return Err(DomainError::invalid("new_password", message));
    }
    let identity = app.identity();
    let new_hash = identity.hasher.hash(new_password).await.map_err(super::login::hash_error)?;
    let now = Timestamp::now();
    let mut tx = app.store().system_tx().await?;
    if db::spend_account_token(&mut tx, &hash, RESET, now).await? != Some(user.id) {
        return Err(invalid());
    }
    db::spend_user_tokens(&mut tx, user.id, RESET, now).await?;
    db::set_password_hash(&mut tx, user.id, &new_hash, now).await?;
    // The link reached the mailbox: the address is proven.
    db::mark_email_verified(&mut tx, user.id, now).await?;
    let revoked = db::revoke_user_sessions(&mut tx, user.id, None, "password_reset", now).await?;
    // Whoever held the account before the reset may have made keys: they end with it.
    let keys_revoked = db::revoke_user_api_keys_system(&mut tx, user.id, now).await?;
    let event = Event::new(Action::AuthPasswordReset)
        .by_user(user.id)
        .detail("sessions_revoked", revoked.len())
        .detail("api_keys_revoked", keys_revoked);
    audit::record_platform(&mut tx, user.tenant_id, ctx, event).await?;
    tx.commit().await?;
    identity.sessions.revoked(&revoked).await;
    identity.sessions.user_changed(user.id).await;
    if keys_revoked > 0 {
        identity.api_keys.changed().await;
    }
    // The lockout stays as it is: a reset proves the mailbox, not the second factor, and
    // must not refill the budget of guesses at it (a lock ends by itself).
    mail::security_notice(app, user.id, mail::SecurityNotice::PasswordReset);
    Ok(())
}
