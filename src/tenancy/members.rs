//! The members of a tenant: listing, role changes, deactivation and invitations.
//!
//! Rules: nobody grants a role above their own or changes someone above them; the last
//! active owner can be neither demoted nor deactivated; a role change or deactivation
//! revokes the user's sessions (and, for deactivation, API keys) at once.

use super::store::{self as db, InvitationRow, MemberRow, NewInvitation};
use super::{Role, TenantScope};
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::Timestamp;
use crate::crypto::Secret;
use crate::error::{DomainError, DomainResult};
use crate::identity::account::{check_new_account, insert_account};
use crate::identity::store::{self as identity_db, NewUser};
use crate::identity::tokens::{opaque_token, token_hash};
use crate::identity::{check_email, normalize_email};
use crate::ids::{InvitationId, TenantId, UserId};

pub const INVITATION_LIFETIME: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

pub async fn list(
    app: &AppState,
    scope: &TenantScope,
    after: Option<UserId>,
    limit: i64,
) -> DomainResult<Vec<MemberRow>> {
    let mut tx = app.store().tenant_read(scope).await?;
    let rows = db::list_members(&mut tx, after, limit).await?;
    tx.commit().await?;
    Ok(rows)
}

fn role_of(member: &MemberRow) -> DomainResult<Role> {
    member
        .role
        .as_deref()
        .and_then(Role::parse)
        .ok_or_else(|| DomainError::Internal("a tenant member without a role".into()))
}

pub async fn change_role(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    target: UserId,
    new_role: Role,
) -> DomainResult<MemberRow> {
    let mut tx = app.store().tenant_tx(scope).await?;
    let mut member = db::member(&mut tx, target).await?.ok_or(DomainError::NotFound("user"))?;
    let current = role_of(&member)?;
    if new_role > scope.role() {
        return Err(DomainError::Forbidden("you cannot grant a role above your own"));
    }
    if current > scope.role() {
        return Err(DomainError::Forbidden("you cannot change the role of someone above you"));
    }
    if current == new_role {
        tx.commit().await?;
        return Ok(member);
    }
    if current == Role::Owner
        && member.status == "active"
        && db::lock_active_owners(&mut tx).await? <= 1
    {
        return Err(DomainError::Conflict("the last owner cannot be demoted"));
    }
    let now = Timestamp::now();
    db::set_role(&mut tx, target, new_role.as_str(), now).await?;
    let revoked =
        identity_db::revoke_user_sessions(&mut tx, target, None, "role_change", now).await?;
    // Invitations the member sent for roles above their new one die with the demotion.
    let withdrawn = withdraw_invitations_of(&mut tx, target, Some(new_role), now).await?;
    audit::record(
        &mut tx,
        ctx,
        Event::new(Action::UserRoleChange)
            .by_scope(scope)
            .target("user", target)
            .detail("from", current.as_str())
            .detail("to", new_role.as_str())
            .detail("sessions_revoked", revoked.len())
            .detail("invitations_withdrawn", withdrawn),
    )
    .await?;
    tx.commit().await?;
    app.identity().sessions.revoked(&revoked).await;
    // The member's keys act within their role: narrowed (or widened) at once.
    app.identity().api_keys.changed().await;
    member.role = Some(new_role.as_str().to_owned());
    Ok(member)
}

pub async fn deactivate(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    target: UserId,
) -> DomainResult<()> {
    let mut tx = app.store().tenant_tx(scope).await?;
    let member = db::member(&mut tx, target).await?.ok_or(DomainError::NotFound("user"))?;
    if member.status != "active" {
        tx.commit().await?;
        return Ok(());
    }
    let role = role_of(&member)?;
    if role > scope.role() {
        return Err(DomainError::Forbidden("you cannot deactivate someone above you"));
    }
    if role == Role::Owner && db::lock_active_owners(&mut tx).await? <= 1 {
        return Err(DomainError::Conflict("the last owner cannot be removed"));
    }
    let now = Timestamp::now();
    db::deactivate(&mut tx, target, now).await?;
    let revoked =
        identity_db::revoke_user_sessions(&mut tx, target, None, "deactivated", now).await?;
    let keys = identity_db::revoke_user_api_keys(&mut tx, target, now).await?;
    let withdrawn = withdraw_invitations_of(&mut tx, target, None, now).await?;
    audit::record(
        &mut tx,
        ctx,
        Event::new(Action::UserDeactivate)
            .by_scope(scope)
            .target("user", target)
            .detail("sessions_revoked", revoked.len())
            .detail("api_keys_revoked", keys)
            .detail("invitations_withdrawn", withdrawn),
    )
    .await?;
    tx.commit().await?;
    app.identity().sessions.revoked(&revoked).await;
    app.identity().api_keys.changed().await;
    // Their provider grants end too (a tenant-wide one they connected included).
    if let Err(err) =
        crate::integrations::end_connections(app, scope, Some(target), "deactivated").await
    {
        tracing::error!(error = %err, user = %target, "a deactivated member's integrations could not be ended");
    }
    Ok(())
}

/// Ends the pending invitations `inviter` sent for a role above `kept` (all of them when
/// `None`): an invitation carries its inviter's authority, which a demotion or deactivation
/// takes away.
async fn withdraw_invitations_of(
    tx: &mut crate::store::TenantTx,
    inviter: UserId,
    kept: Option<Role>,
    now: Timestamp,
) -> DomainResult<usize> {
    let mut withdrawn = 0;
    for (id, role) in db::pending_invitations_by(tx, inviter, now).await? {
        let above = match (kept, Role::parse(&role)) {
            (Some(kept), Some(role)) => role > kept,
            _ => true,
        };
        if above && db::revoke_invitation(tx, id, now).await? {
            withdrawn += 1;
        }
    }
    Ok(withdrawn)
}

/// Resets a member's second factors (TOTP, backup codes, passkeys) so a member who lost them
/// can enrol again; their sessions end. For owners and admins (`users:manage`, a recent
/// step-up, on the route), never on someone above the caller; audited.
pub async fn reset_factors(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    target: UserId,
) -> DomainResult<()> {
    if matches!(scope.actor(), crate::tenancy::Actor::User { user_id, .. } if *user_id == target) {
        // One's own factors are removed from one's account, with a step-up of that factor;
        // this path is for recovering someone else.
        return Err(DomainError::Forbidden("reset your own factors from your account"));
    }
    // Second factors are identity data (system transactions only, on PostgreSQL by policy):
    // the member is found in the same system transaction, inside the caller's tenant.
    let mut tx = app.store().system_tx().await?;
    let member = identity_db::user_by_id(&mut tx, target)
        .await?
        .filter(|u| u.tenant_id == Some(scope.tenant_id()))
        .ok_or(DomainError::NotFound("user"))?;
    let role = member.role.as_deref().and_then(Role::parse).unwrap_or(Role::Owner);
    if role > scope.role() {
        return Err(DomainError::Forbidden("you cannot reset the factors of someone above you"));
    }
    let now = Timestamp::now();
    let removed = crate::identity::mfa::store::delete_all_factors(&mut tx, target).await?;
    let revoked =
        identity_db::revoke_user_sessions(&mut tx, target, None, "mfa_reset", now).await?;
    audit::record_platform(
        &mut tx,
        Some(scope.tenant_id()),
        ctx,
        Event::new(Action::MfaReset)
            .by_scope(scope)
            .target("user", target)
            .detail("factors_removed", removed)
            .detail("sessions_revoked", revoked.len()),
    )
    .await?;
    tx.commit().await?;
    app.identity().sessions.revoked(&revoked).await;
    app.identity().sessions.user_changed(target).await;
    Ok(())
}

pub struct InvitationCreated {
    pub row: InvitationRow,
    pub token: Secret<String>,
    pub accept_url: String,
}

pub async fn invite(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    email: &str,
    role: Role,
) -> DomainResult<InvitationCreated> {
    let email = normalize_email(email);
    check_email(&email).map_err(|message| DomainError::invalid("email", message))?;
    if role > scope.role() {
        return Err(DomainError::Forbidden("you cannot invite someone above your own role"));
    }
    let crate::tenancy::Actor::User { user_id: inviter, session_id } = scope.actor().clone() else {
        return Err(DomainError::Forbidden("invitations come from a user"));
    };
    // An invitation to admin or owner hands out that role: it needs a recent second factor,
    // like a role change.
    if role >= Role::Admin {
        crate::identity::mfa::require_step_up_of(app, session_id).await?;
    }
    // One account per address, platform-wide. An address held by an account that never
    // proved it (open signup) is refused here, so a squatter's account is never invited
    // anywhere; acceptance would refuse it too (the address is taken).
    let mut tx = app.store().system_read().await?;
    let holder = identity_db::user_by_email(&mut tx, &email).await?;
    tx.commit().await?;
    if holder.is_some_and(|u| u.email_verified_at.is_none()) {
        return Err(DomainError::Conflict(
            "the address belongs to an account that has not verified it",
        ));
    }
    let token = opaque_token();
    let (id, now) = (InvitationId::new(), Timestamp::now());
    let expires_at = now.plus(INVITATION_LIFETIME);
    let mut tx = app.store().tenant_tx(scope).await?;
    db::insert_invitation(
        &mut tx,
        &NewInvitation {
            id,
            email: &email,
            role: role.as_str(),
            token_hash: &token_hash(token.expose()),
            invited_by: inviter,
            now,
            expires_at,
        },
    )
    .await?;
    audit::record(
        &mut tx,
        ctx,
        Event::new(Action::InvitationCreate)
            .by_scope(scope)
            .target("invitation", id)
            .detail("role", role.as_str()),
    )
    .await?;
    // The token travels in the fragment, which browsers never send to a server or a log.
    let accept_url = format!(
        "{}/invitations/accept#token={}",
        app.identity().settings.public_url,
        token.expose()
    );
    // Mailed with the invitation, in its transaction (the inviter still gets the token).
    let notice = crate::email::notices::Notice {
        to: vec![email.clone()],
        subject: "You are invited to join a team on Bulwark",
        text: format!(
            "You are invited to join as {}. Accept within 7 days:\n\n{accept_url}\n\n\
             If you did not expect this, ignore this message.\n",
            role.as_str()
        ),
        suppressible: true,
    };
    let mailed = crate::email::notices::queue(app, &mut tx, notice).await?;
    tx.commit().await?;
    if mailed {
        crate::email::notices::wake(app);
    }
    Ok(InvitationCreated {
        row: InvitationRow {
            id,
            tenant_id: scope.tenant_id(),
            email,
            role: role.as_str().to_owned(),
            invited_by: inviter,
            created_at: now,
            expires_at,
            accepted_at: None,
        },
        token,
        accept_url,
    })
}

pub async fn list_invitations(
    app: &AppState,
    scope: &TenantScope,
    after: Option<InvitationId>,
    limit: i64,
) -> DomainResult<Vec<InvitationRow>> {
    let mut tx = app.store().tenant_read(scope).await?;
    let rows = db::list_invitations(&mut tx, after, limit).await?;
    tx.commit().await?;
    Ok(rows)
}

pub async fn revoke_invitation(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    id: InvitationId,
) -> DomainResult<()> {
    let mut tx = app.store().tenant_tx(scope).await?;
    if !db::revoke_invitation(&mut tx, id, Timestamp::now()).await? {
        return Err(DomainError::NotFound("invitation"));
    }
    audit::record(
        &mut tx,
        ctx,
        Event::new(Action::InvitationRevoke).by_scope(scope).target("invitation", id),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Creates the invited account. Unknown, used and expired tokens are one 404.
pub async fn accept(
    app: &AppState,
    ctx: &RequestContext,
    token: &Secret<String>,
    password: &Secret<String>,
    display_name: &str,
) -> DomainResult<(TenantId, UserId)> {
    let gone = || DomainError::NotFound("invitation");
    let hash = token_hash(token.expose());
    let mut tx = app.store().system_read().await?;
    let invitation = db::invitation_by_token(&mut tx, &hash).await?.ok_or_else(gone)?;
    let tenant_active = db::tenant_is_active(&mut tx, invitation.tenant_id).await?;
    tx.commit().await?;
    let now = Timestamp::now();
    // A deleted tenant's invitations are dead even if one escaped the deletion.
    if invitation.accepted_at.is_some() || invitation.expires_at <= now || !tenant_active {
        return Err(gone());
    }
    let display_name = display_name.trim();
    check_new_account(&invitation.email, display_name, password, &[])?;
    let password_hash = app
        .identity()
        .hasher
        .hash(password)
        .await
        .map_err(|_| DomainError::Busy { retry_after: 1 })?;
    let (user_id, tenant_id) = (UserId::new(), invitation.tenant_id);
    let mut tx = app.store().system_tx().await?;
    if !db::accept_invitation(&mut tx, invitation.id, user_id, now).await? {
        return Err(gone());
    }
    insert_account(
        &mut tx,
        &NewUser {
            id: user_id,
            tenant_id: Some(tenant_id),
            email: &invitation.email,
            display_name,
            password_hash: &password_hash,
            role: Some(&invitation.role),
            is_superadmin: false,
            now,
        },
    )
    .await?;
    audit::record_platform(
        &mut tx,
        Some(tenant_id),
        ctx,
        Event::new(Action::InvitationAccept)
            .by_user(user_id)
            .target("invitation", invitation.id)
            .detail("role", invitation.role.clone()),
    )
    .await?;
    tx.commit().await?;
    Ok((tenant_id, user_id))
}
