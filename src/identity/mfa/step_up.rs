//! Step-up: a session proves a second factor again to be allowed sensitive operations for
//! `BULWARK_STEP_UP_SECONDS`; and the weaker password proof, which only unlocks enrolling a
//! first factor (never what needs a second one).

use super::{Factor, check_factor, session_of};
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::Timestamp;
use crate::crypto::Secret;
use crate::error::{DomainError, DomainResult};
use crate::identity::store as users;
use crate::identity::{Credential, Principal};
use crate::ids::SessionId;

/// Marks the session verified now, after a TOTP or backup code.
pub async fn step_up(
    app: &AppState,
    ctx: &RequestContext,
    principal: &Principal,
    factor: &Factor,
) -> DomainResult<()> {
    let sid = session_of(principal)?;
    let method =
        check_factor(app, ctx, principal.user_id(), principal.tenant_id(), factor, "step_up")
            .await?;
    record_step_up(app, ctx, principal, sid, method).await
}

pub async fn record_step_up(
    app: &AppState,
    ctx: &RequestContext,
    principal: &Principal,
    sid: SessionId,
    method: &str,
) -> DomainResult<()> {
    let mut tx = app.store().system_tx().await?;
    users::set_step_up(&mut tx, sid, Some(Timestamp::now())).await?;
    audit::record_platform(
        &mut tx,
        principal.tenant_id(),
        ctx,
        Event::new(Action::StepUp).by_user(principal.user_id()).detail("method", method.to_owned()),
    )
    .await?;
    tx.commit().await?;
    app.identity().sessions.changed(sid).await;
    Ok(())
}

/// 403 `step_up_required` unless the session verified a second factor recently.
pub async fn require_step_up(app: &AppState, principal: &Principal) -> DomainResult<()> {
    match (principal.credential(), principal.session()) {
        (Credential::Session(_), Some(session)) => recent(app, session.step_up_at),
        (Credential::Session(_), None) => Err(DomainError::StepUpRequired),
        (Credential::ApiKey { .. }, _) => Err(DomainError::Forbidden(
            "this operation needs a second-factor step-up, which an API key cannot give",
        )),
    }
}

/// 403 `step_up_required` unless this session verified a second factor recently.
pub async fn require_step_up_of(app: &AppState, sid: SessionId) -> DomainResult<()> {
    recent(app, session_state(app, sid).await?.and_then(|s| s.step_up_at))
}

/// The session's cached state (see `identity::session_cache`): no database work when warm.
async fn session_state(
    app: &AppState,
    sid: SessionId,
) -> DomainResult<Option<std::sync::Arc<crate::identity::session_cache::LiveSession>>> {
    let identity = app.identity();
    Ok(identity
        .sessions
        .live(app.store(), sid, identity.settings.session_idle, Timestamp::now())
        .await?)
}

fn recent(app: &AppState, at: Option<Timestamp>) -> DomainResult<()> {
    match at {
        Some(at) if at.plus(app.identity().mfa.step_up) >= Timestamp::now() => Ok(()),
        _ => Err(DomainError::StepUpRequired),
    }
}

/// `POST /auth/step-up {"password"}`: proves the password for this session (a reserved
/// lockout attempt, like a login; audited). It unlocks enrolling a first factor, nothing else.
pub async fn prove_password(
    app: &AppState,
    ctx: &RequestContext,
    principal: &Principal,
    password: &Secret<String>,
) -> DomainResult<()> {
    let sid = session_of(principal)?;
    crate::identity::login::check_password_of(app, ctx, principal, password, "password").await?;
    let mut tx = app.store().system_tx().await?;
    users::set_password_proof(&mut tx, sid, Timestamp::now()).await?;
    audit::record_platform(
        &mut tx,
        principal.tenant_id(),
        ctx,
        Event::new(Action::PasswordProof).by_user(principal.user_id()),
    )
    .await?;
    tx.commit().await?;
    app.identity().sessions.changed(sid).await;
    Ok(())
}

/// 403 `step_up_required` unless this session proved its password recently.
pub async fn require_password_proof(app: &AppState, sid: SessionId) -> DomainResult<()> {
    recent(app, session_state(app, sid).await?.and_then(|s| s.password_proof_at))
}
