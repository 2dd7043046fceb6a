//! Second factors: TOTP (`totp`), 10 single-use backup codes (`backup_codes`) and WebAuthn
//! passkeys (`webauthn`); the MFA ticket of a password login (`ticket`); step-up for
//! sensitive operations (`step_up`); the tenant MFA policy (`policy`). What they share is
//! here: the budget of attempts (the lockout's, shared with the password) and checking a
//! presented code.
//!
//! Every failed second factor counts towards the account lockout, exactly like a wrong
//! password, so a stolen password plus guessed codes is no faster than guessing passwords.

mod backup_codes;
pub(crate) mod policy;
pub mod routes;
mod step_up;
pub mod store;
mod ticket;
mod totp;
pub mod webauthn;

pub use backup_codes::{BACKUP_CODES, regenerate_backup_codes};
pub use policy::enrolment_required;
pub use step_up::{
    prove_password, record_step_up, require_password_proof, require_step_up, require_step_up_of,
    step_up,
};
pub use ticket::{TICKET_LIFETIME, finish_login, issue_ticket, methods, ticket_user, verify_login};
pub use totp::{confirm_totp, remove_totp, setup_totp};

use crate::identity::mail::SecurityNotice;
use std::time::Duration;

use serde::Serialize;
use subtle::ConstantTimeEq as _;
use utoipa::ToSchema;

use super::lockout::{self, Admission};
use super::{Credential, Principal};
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::Timestamp;
use crate::error::{DomainError, DomainResult};
use crate::identity::store as users;
use crate::ids::{SessionId, TenantId, UserId};

/// What a factor change did to the session that made it.
pub(crate) enum FactorChange {
    /// A factor was added: other sessions end; this one gains no step-up from it.
    Enrolled,
    /// A factor was removed (an MFA reset): other sessions end and this one must step up
    /// again.
    Removed,
}

/// Finishes a change of the caller's factors inside `tx`: every other session of the user
/// ends (if this one was stolen, the change at least signs the owner out), the event is
/// recorded with the number of sessions ended, the transaction commits, and every instance
/// forgets the ended sessions and the user's cached enrolment.
pub(crate) async fn factor_changed(
    app: &AppState,
    mut tx: crate::store::SystemTx,
    ctx: &RequestContext,
    principal: &Principal,
    change: FactorChange,
    event: Event,
) -> DomainResult<()> {
    let sid = session_of(principal)?;
    let user = principal.user_id();
    let reason = match change {
        FactorChange::Enrolled => "mfa_enrolled",
        FactorChange::Removed => "mfa_reset",
    };
    let revoked =
        users::revoke_user_sessions(&mut tx, user, Some(sid), reason, Timestamp::now()).await?;
    if let FactorChange::Removed = change {
        users::set_step_up(&mut tx, sid, None).await?;
    }
    let event = event.by_user(user).detail("sessions_revoked", revoked.len());
    audit::record_platform(&mut tx, principal.tenant_id(), ctx, event).await?;
    tx.commit().await?;
    app.identity().sessions.revoked(&revoked).await;
    app.identity().sessions.user_changed(user).await;
    let notice = match change {
        FactorChange::Enrolled => SecurityNotice::FactorAdded,
        FactorChange::Removed => SecurityNotice::FactorRemoved,
    };
    crate::identity::mail::security_notice(app, user, notice);
    Ok(())
}

/// Per-instance MFA settings. Whether a session must enrol, and when it last stepped up,
/// travel with the session's cached state (`identity::session_cache`).
pub struct Mfa {
    pub step_up: Duration,
    pub webauthn: Option<::webauthn_rs::Webauthn>,
}

impl Mfa {
    pub fn new(step_up: Duration, public_url: &url::Url) -> Mfa {
        Mfa { step_up, webauthn: webauthn::relying_party(public_url) }
    }
}

/// The factor a client presents.
#[derive(Debug)]
pub enum Factor {
    Totp(String),
    BackupCode(String),
}

fn session_of(principal: &Principal) -> DomainResult<SessionId> {
    match principal.credential() {
        Credential::Session(sid) => Ok(*sid),
        Credential::ApiKey { .. } => Err(DomainError::Forbidden("API keys have no second factor")),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TotpSetup {
    /// Base32 seed, for manual entry.
    pub secret: String,
    /// `otpauth://` URI for a QR code.
    pub otpauth_uri: String,
}

/// Enrolling a factor (TOTP, a passkey) needs a fresh proof on this session: of an existing
/// factor when the user has one (a step-up), else of the password (`prove_password`). An
/// access token alone never enrols anything: a stolen one could otherwise add the thief's
/// factor, pass every step-up with it and lock the owner out.
pub(crate) async fn guard_enrolment(app: &AppState, principal: &Principal) -> DomainResult<()> {
    let sid = session_of(principal)?;
    let mut tx = app.store().system_read().await?;
    let enrolled = store::has_second_factor(&mut tx, principal.user_id()).await?;
    tx.commit().await?;
    if enrolled {
        require_step_up(app, principal).await
    } else {
        require_password_proof(app, sid).await
    }
}

/// Reserves one attempt at a second factor of `user` in the account's lockout budget before
/// the factor is checked (`lockout::Lockout::admit`, shared with the password login):
/// concurrent guesses each take their own slot, so no burst gets more checks than the
/// threshold allows. A correct factor clears the count (`clear_attempts`); a wrong one stays
/// counted (`record_failure`).
pub(crate) async fn take_attempt(
    app: &AppState,
    ctx: &RequestContext,
    user: UserId,
) -> DomainResult<lockout::Attempt> {
    let lockout = &app.identity().lockout;
    match lockout.admit(&lockout::ip_key(&ctx.net), &lockout::account_key(user)).await? {
        Admission::AddressThrottled(until) => {
            Err(DomainError::TooManyAttempts { retry_after: Timestamp::now().retry_after(until) })
        }
        Admission::AccountLocked => Err(DomainError::InvalidCredentials),
        Admission::Granted(attempt) => Ok(attempt),
    }
}

/// A failed second factor (its attempt is already counted): counted per address, audited
/// for a verified subject only, and a lock it caused is audited.
pub(crate) async fn record_failure(
    app: &AppState,
    ctx: &RequestContext,
    tenant: Option<TenantId>,
    user: Option<UserId>,
    locked_until: Option<Timestamp>,
    context: &str,
) -> DomainResult<()> {
    app.identity().lockout.failed(&lockout::ip_key(&ctx.net)).await?;
    metrics::counter!("auth_mfa_failures_total").increment(1);
    let mut tx = app.store().system_tx().await?;
    let mut event = Event::new(Action::MfaFailed).failure().detail("context", context.to_owned());
    if let Some(user) = user {
        event = event.target("user", user);
    }
    audit::record_platform(&mut tx, tenant, ctx, event).await?;
    if let (Some(user), Some(until)) = (user, locked_until) {
        super::login::record_lockout(app, &mut tx, ctx, tenant, user, until, "second_factor")
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A correct second factor: the account's failure count starts again.
pub(crate) async fn clear_attempts(app: &AppState, user: UserId) -> DomainResult<()> {
    app.identity().lockout.succeeded(&lockout::account_key(user)).await?;
    Ok(())
}

/// Checks a TOTP or backup code of `user`; on success returns the method used.
pub(super) async fn check_factor(
    app: &AppState,
    ctx: &RequestContext,
    user: UserId,
    tenant: Option<TenantId>,
    factor: &Factor,
    context: &str,
) -> DomainResult<&'static str> {
    let attempt = take_attempt(app, ctx, user).await?;
    let mut tx = app.store().system_tx().await?;
    let ok = match factor {
        Factor::Totp(code) => {
            match store::totp(&mut tx, user).await?.filter(|t| t.confirmed_at.is_some()) {
                Some(row) => {
                    let seed = totp::open_seed(app, user, &row)?;
                    match totp::totp(&seed, "")?.check(code.trim(), totp::now_secs()) {
                        // A code is good once per time step: a replayed one fails here.
                        Some(step) => {
                            store::use_totp_step(&mut tx, user, i64::try_from(step).unwrap_or(0))
                                .await?
                        }
                        None => false,
                    }
                }
                None => false,
            }
        }
        Factor::BackupCode(code) => {
            let hash = backup_codes::hash_code(user, code);
            let mut spent = false;
            for (id, stored) in store::unused_backup_codes(&mut tx, user).await? {
                if bool::from(stored.ct_eq(&hash)) {
                    spent = store::spend_backup_code(&mut tx, id, Timestamp::now()).await?;
                    break;
                }
            }
            if spent {
                audit::record_platform(
                    &mut tx,
                    tenant,
                    ctx,
                    Event::new(Action::MfaBackupCodeUsed).by_user(user),
                )
                .await?;
            }
            spent
        }
    };
    if !ok {
        drop(tx);
        record_failure(app, ctx, tenant, Some(user), attempt.locked_until, context).await?;
        return Err(DomainError::InvalidCredentials);
    }
    tx.commit().await?;
    clear_attempts(app, user).await?;
    Ok(match factor {
        Factor::Totp(_) => "totp",
        Factor::BackupCode(_) => "backup_code",
    })
}
