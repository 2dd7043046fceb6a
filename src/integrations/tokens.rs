//! A connection's access token over its life: the one a request may use (refreshed first
//! when it is about to expire), the refresh itself with its race between instances, and the
//! background refresher that keeps tokens off the request path.

use std::time::Duration;

use zeroize::Zeroizing;

use super::vault::{Vault, open, seal, version};
use super::{Provider, acting_user, oauth, store};
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::Timestamp;
use crate::error::{DomainError, DomainResult};
use crate::ids::IntegrationId;
use crate::tenancy::TenantScope;

/// Refresh a token used this close to its expiry.
const REFRESH_WINDOW: Duration = Duration::from_secs(300);

/// The access token of the connection `scope`'s user may use for `provider` (their own,
/// else the tenant's), refreshed first when it expires within 5 minutes.
pub(super) async fn usable_token(
    app: &AppState,
    scope: &TenantScope,
    provider: Provider,
) -> DomainResult<(Zeroizing<String>, IntegrationId)> {
    let user = acting_user(scope)?;
    let (row, keys) = crate::crm::read_sealed(app, scope, async |tx| {
        store::usable(tx, user, provider.as_str()).await
    })
    .await?;
    let row = row.ok_or(DomainError::NotFound("integration"))?;
    if row.status != "connected" {
        return Err(in_error(provider));
    }
    let due = row.expires_at.is_some_and(|at| Timestamp::now().plus(REFRESH_WINDOW) >= at);
    if due {
        let token =
            refresh(app, &TenantScope::system(scope.tenant_id(), "token refresh"), row.id).await?;
        return Ok((token, row.id));
    }
    let vault = open(&keys, scope.tenant_id(), &row)?;
    Ok((Zeroizing::new(vault.access_token.clone()), row.id))
}

/// Refreshes one connection's tokens; the new access token. Several instances (and a
/// request) may try at once: each writes only if the row is as it read it, and the one that
/// finds it changed uses what the winner stored (Zoom's refresh tokens are single-use, so a
/// loser's `invalid_grant` is no failure of the connection). A real failure marks it
/// `error`, audits it and mails its user.
pub async fn refresh(
    app: &AppState,
    scope: &TenantScope,
    id: IntegrationId,
) -> DomainResult<Zeroizing<String>> {
    let (row, keys) =
        crate::crm::read_sealed(app, scope, async |tx| store::by_id(tx, id).await).await?;
    let row = row.ok_or(DomainError::NotFound("integration"))?;
    let provider = Provider::parse(&row.provider).ok_or(DomainError::NotFound("integration"))?;
    if row.status != "connected" {
        return Err(in_error(provider));
    }
    let settings = provider.settings(app)?;
    let tenant = scope.tenant_id();
    let vault = open(&keys, tenant, &row)?;
    let Some(refresh_token) = vault.refresh_token.clone() else {
        return Err(DomainError::Upstream("no refresh token: reconnect".into()));
    };
    let refreshed = oauth::refresh(settings, &refresh_token).await;
    // Strictly later than what was read, so the next writer's check sees the change.
    let now = Timestamp::now().max(row.updated_at.plus(Duration::from_millis(1)));
    let mut tx = app.store().tenant_tx(scope).await?;
    let tokens = match refreshed {
        Ok(tokens) => tokens,
        Err(err) => {
            if !store::mark_error(&mut tx, id, row.updated_at, now).await? {
                tx.commit().await?;
                return current_token(app, scope, id).await;
            }
            tracing::warn!(error = %err, integration = %id, "token refresh failed");
            let event = Event::new(Action::IntegrationRefreshFailed)
                .by_scope(scope)
                .failure()
                .target("integration", id)
                .detail("provider", provider.as_str());
            audit::record(&mut tx, &RequestContext::system(), event).await?;
            tx.commit().await?;
            let text = format!(
                "Bulwark could not renew its access to your {} account, so the connection \
                 stopped working. Connect it again from your integrations.\n",
                provider.as_str()
            );
            crate::identity::mail::owner_notice(
                app,
                row.user_id,
                "An integration needs reconnecting",
                text,
            );
            return Err(in_error(provider));
        }
    };
    let keys = crate::crm::sealing_keys(app, &mut tx).await?;
    let next = Vault {
        access_token: tokens.access_token.clone(),
        // Google keeps the refresh token; Zoom rotates it.
        refresh_token: tokens.refresh_token.clone().or(Some(refresh_token.clone())),
        account_email: vault.account_email.clone(),
        external_id: vault.external_id.clone(),
    };
    let mut updated = row.clone();
    updated.key_version = version(&keys);
    updated.sealed = seal(&keys, tenant, id, &next)?;
    updated.expires_at = tokens.expires_at(now);
    updated.updated_at = now;
    let written = store::update_tokens(&mut tx, &updated, row.updated_at).await?;
    tx.commit().await?;
    if written {
        Ok(Zeroizing::new(tokens.access_token.clone()))
    } else {
        current_token(app, scope, id).await
    }
}

fn in_error(provider: Provider) -> DomainError {
    DomainError::Upstream(format!("{} is in error: reconnect", provider.as_str()))
}

/// The access token a connection holds now (another refresh just wrote it).
async fn current_token(
    app: &AppState,
    scope: &TenantScope,
    id: IntegrationId,
) -> DomainResult<Zeroizing<String>> {
    let (row, keys) =
        crate::crm::read_sealed(app, scope, async |tx| store::by_id(tx, id).await).await?;
    let row = row.ok_or(DomainError::NotFound("integration"))?;
    if row.status != "connected" {
        return Err(in_error(Provider::parse(&row.provider).unwrap_or(Provider::Google)));
    }
    Ok(Zeroizing::new(open(&keys, scope.tenant_id(), &row)?.access_token.clone()))
}

/// Refreshes, every 30 s, the connections that expire within 10 minutes (so a token is
/// rarely refreshed on a request's path). Runs for the life of `serve`.
pub async fn refresher(app: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    loop {
        tick.tick().await;
        if !app.containment().switches.enabled(crate::containment::features::Feature::Integrations)
        {
            continue;
        }
        if let Err(err) = crate::store::background(refresh_due(&app)).await {
            tracing::warn!(error = %err, "background token refresh failed");
        }
    }
}

async fn refresh_due(app: &AppState) -> DomainResult<usize> {
    let soon = Timestamp::now().plus(Duration::from_secs(600));
    let mut tx = app.store().system_read().await?;
    let due = store::expiring(&mut tx, soon, 100).await?;
    tx.commit().await?;
    for (tenant, id) in &due {
        let scope = TenantScope::system(*tenant, "token refresh");
        if let Err(err) = refresh(app, &scope, *id).await {
            tracing::warn!(error = %err, integration = %id, "background refresh failed");
        }
    }
    Ok(due.len())
}
