//! TOTP (RFC 6238, SHA-1, 6 digits, 30 s, ±1 step, a code accepted once per time step): the
//! seed is sealed under a key derived from the master key and bound to its user.

use totp_rs::{Algorithm, Builder as TotpBuilder, Secret as TotpSecret, Totp};
use zeroize::Zeroizing;

use super::backup_codes::new_backup_codes;
use super::{FactorChange, TotpSetup, factor_changed, guard_enrolment, session_of, store};
use crate::app::AppState;
use crate::audit::{Action, Event, RequestContext};
use crate::clock::Timestamp;
use crate::crypto;
use crate::error::{DomainError, DomainResult};
use crate::identity::Principal;
use crate::identity::store as users;
use crate::ids::UserId;

pub(super) const TOTP_PURPOSE: &str = "totp-seeds";

pub(super) fn totp(secret: &[u8], account: &str) -> DomainResult<Totp> {
    TotpBuilder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_skew(1)
        .with_secret(TotpSecret::new(secret.to_vec().into_boxed_slice()))
        .with_issuer(Some("Bulwark"))
        .with_account_name(account)
        .build()
        .map_err(|err| DomainError::Internal(format!("TOTP: {err}")))
}

pub(super) fn seed_aad(user: UserId) -> Vec<u8> {
    format!("bulwark:totp:v1:{user}").into_bytes()
}

pub(super) fn now_secs() -> u64 {
    u64::try_from(Timestamp::now().secs()).unwrap_or(0)
}

pub async fn setup_totp(app: &AppState, principal: &Principal) -> DomainResult<TotpSetup> {
    guard_enrolment(app, principal).await?;
    let user_id = principal.user_id();
    let mut tx = app.store().system_tx().await?;
    if store::totp(&mut tx, user_id).await?.is_some_and(|t| t.confirmed_at.is_some()) {
        return Err(DomainError::Conflict("TOTP is already set up; remove it first"));
    }
    let user = users::user_by_id(&mut tx, user_id).await?.ok_or(DomainError::NotFound("user"))?;
    let seed = Zeroizing::new(crypto::random_bytes::<20>());
    let sealed = app
        .keys()
        .seal(TOTP_PURPOSE, &seed_aad(user_id), seed.as_slice())
        .map_err(|e| DomainError::Internal(e.to_string()))?;
    store::put_unconfirmed_totp(
        &mut tx,
        user_id,
        principal.tenant_id(),
        &sealed,
        app.keys().current_id(),
        Timestamp::now(),
    )
    .await?;
    tx.commit().await?;
    let totp = totp(seed.as_slice(), &user.email)?;
    Ok(TotpSetup {
        secret: totp.secret().to_base32(),
        otpauth_uri: totp.to_url().map_err(|err| DomainError::Internal(err.to_string()))?,
    })
}

pub(super) fn open_seed(
    app: &AppState,
    user: UserId,
    row: &store::TotpRow,
) -> DomainResult<Zeroizing<Vec<u8>>> {
    app.keys()
        .open(TOTP_PURPOSE, &seed_aad(user), &row.secret_sealed)
        .map_err(|err| DomainError::Internal(format!("TOTP seed: {err}")))
}

/// Confirms the enrolment with a first code; returns the backup codes (shown once).
pub async fn confirm_totp(
    app: &AppState,
    ctx: &RequestContext,
    principal: &Principal,
    code: &str,
) -> DomainResult<Vec<String>> {
    session_of(principal)?;
    guard_enrolment(app, principal).await?;
    let user = principal.user_id();
    let mut tx = app.store().system_tx().await?;
    let row = store::totp(&mut tx, user)
        .await?
        .filter(|t| t.confirmed_at.is_none())
        .ok_or(DomainError::Conflict("no TOTP set-up is pending; start one first"))?;
    let seed = open_seed(app, user, &row)?;
    let step = totp(&seed, "")?.check(code.trim(), now_secs());
    let Some(step) = step else {
        drop(tx);
        return Err(DomainError::invalid("code", "is not the current code of the authenticator"));
    };
    let now = Timestamp::now();
    let step = i64::try_from(step).unwrap_or(0);
    if !store::confirm_totp(&mut tx, user, &row.secret_sealed, step, now).await? {
        return Err(DomainError::Conflict("the TOTP set-up changed meanwhile; start again"));
    }
    let codes = new_backup_codes(&mut tx, user, principal.tenant_id(), now).await?;
    // Enrolling proves nothing about this session (it is never marked stepped up), and a
    // new factor ends every other session.
    let event = Event::new(Action::MfaEnrolled).detail("method", "totp");
    factor_changed(app, tx, ctx, principal, FactorChange::Enrolled, event).await?;
    Ok(codes)
}

/// Removes TOTP and the backup codes; an MFA reset ends every other session.
pub async fn remove_totp(
    app: &AppState,
    ctx: &RequestContext,
    principal: &Principal,
) -> DomainResult<()> {
    session_of(principal)?;
    let user = principal.user_id();
    let mut tx = app.store().system_tx().await?;
    if store::delete_totp(&mut tx, user).await? == 0 {
        return Err(DomainError::NotFound("TOTP"));
    }
    store::delete_backup_codes(&mut tx, user).await?;
    let event = Event::new(Action::MfaRemoved).detail("method", "totp");
    factor_changed(app, tx, ctx, principal, FactorChange::Removed, event).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_test_vectors_hold() {
        // RFC 6238 appendix B (SHA-1 seed), truncated to 6 digits.
        let t = totp(b"12345678901234567890", "x").expect("totp");
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(t.generate(time).to_string(), code, "T={time}");
            assert!(t.check(code, time).is_some());
        }
        assert!(t.check("000000", 59).is_none());
    }
}
