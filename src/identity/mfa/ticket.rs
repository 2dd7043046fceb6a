//! Completing a sign-in with a second factor: the single-use ticket a correct password
//! earns (5 minutes), and what redeems it.

use super::{Factor, check_factor, store};
use crate::app::AppState;
use crate::audit::RequestContext;
use crate::clock::Timestamp;
use crate::crypto::Secret;
use crate::error::{DomainError, DomainResult};
use crate::identity::login::{TokenPair, start_session};
use crate::identity::store as users;
use crate::identity::tokens::{opaque_token, token_hash};
use crate::ids::{TenantId, UserId};

pub const TICKET_LIFETIME: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// The methods a user can complete a login with.
pub async fn methods(app: &AppState, user: UserId) -> DomainResult<Vec<&'static str>> {
    let mut tx = app.store().system_read().await?;
    let mut methods = vec![];
    if store::totp(&mut tx, user).await?.is_some_and(|t| t.confirmed_at.is_some()) {
        methods.push("totp");
        methods.push("backup_code");
    }
    if !store::credentials(&mut tx, user).await?.is_empty() {
        methods.push("webauthn");
    }
    tx.commit().await?;
    Ok(methods)
}

/// After a correct password for an account with MFA: a single-use ticket for 5 minutes.
pub async fn issue_ticket(
    app: &AppState,
    user: UserId,
    tenant: Option<TenantId>,
) -> DomainResult<String> {
    let token = opaque_token();
    let mut tx = app.store().system_tx().await?;
    store::insert_challenge(
        &mut tx,
        &store::NewChallenge {
            purpose: "mfa_ticket",
            user: Some(user),
            tenant,
            token_hash: Some(&token_hash(token.expose())),
            session: None,
            state: None,
            expires_at: Timestamp::now().plus(TICKET_LIFETIME),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(token.expose().clone())
}

/// The live ticket's user, or the uniform 401.
pub async fn ticket_user(
    app: &AppState,
    ticket: &Secret<String>,
) -> DomainResult<(uuid::Uuid, UserId)> {
    let mut tx = app.store().system_read().await?;
    let row = store::challenge_by_token(&mut tx, &token_hash(ticket.expose())).await?;
    tx.commit().await?;
    match row {
        Some(row)
            if row.purpose == "mfa_ticket"
                && row.used_at.is_none()
                && row.expires_at > Timestamp::now() =>
        {
            Ok((row.id, row.user_id.ok_or(DomainError::InvalidCredentials)?))
        }
        _ => Err(DomainError::Unauthenticated("unknown, used or expired MFA ticket")),
    }
}

/// Completes a login with the ticket and a second factor; the session counts as stepped up.
pub async fn verify_login(
    app: &AppState,
    ctx: &RequestContext,
    ticket: &Secret<String>,
    factor: &Factor,
) -> DomainResult<TokenPair> {
    let (ticket_id, user) = ticket_user(app, ticket).await?;
    let mut tx = app.store().system_read().await?;
    let row = users::user_by_id(&mut tx, user).await?.ok_or(DomainError::InvalidCredentials)?;
    tx.commit().await?;
    let tenant = row.tenant_id;
    check_factor(app, ctx, user, tenant, factor, "login").await?;
    finish_login(app, ctx, ticket_id, &row).await
}

pub async fn finish_login(
    app: &AppState,
    ctx: &RequestContext,
    ticket_id: uuid::Uuid,
    user: &users::UserRow,
) -> DomainResult<TokenPair> {
    let now = Timestamp::now();
    let mut tx = app.store().system_tx().await?;
    if !store::spend_challenge(&mut tx, ticket_id, now).await? || !user.is_active() {
        return Err(DomainError::Unauthenticated("MFA ticket already used"));
    }
    tx.commit().await?;
    start_session(app, ctx, user, Some(now)).await
}
