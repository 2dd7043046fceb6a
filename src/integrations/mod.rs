//! Integrations with Google (Calendar) and Zoom (meetings) over OAuth 2.0 (spec §9).
//!
//! A member connects their own account; `integrations:manage` connects one for the whole
//! tenant. `connect` starts an authorization-code flow with PKCE and a MACed, single-use
//! `state` bound to the user's session; `callback` checks every part of it (refusals are
//! 400 `invalid_state` and audited), exchanges the code with the verifier and keeps the
//! tokens in the vault: sealed under the tenant's key, never in a response or a log (views
//! carry none, and `http::secret_filter` drops token keys from every integration response
//! as a second wall). Tokens are refreshed when used within 5 minutes of expiry and by a
//! background task before they expire; a failed refresh marks the connection `error` and
//! mails its user. Disconnecting revokes at the provider first (retried, audited when it
//! fails) and deletes the tokens regardless.

mod oauth;
pub mod providers;
pub mod routes;
mod store;
mod tokens;
mod vault;
pub mod zoom;

use self::tokens::usable_token;
pub use self::tokens::{refresh, refresher};
use self::vault::{Vault, open, place, seal, version};

use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use self::store::{IntegrationRow, StateRow};
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::Timestamp;
use crate::config::OAuthProvider;
use crate::crypto::KeySet;
use crate::error::{DomainError, DomainResult};
use crate::ids::{IntegrationId, TenantId, UserId};
use crate::tenancy::{Actor, Permission, TenantScope};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Google,
    Zoom,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Google => "google",
            Provider::Zoom => "zoom",
        }
    }

    pub fn parse(text: &str) -> Option<Provider> {
        match text {
            "google" => Some(Provider::Google),
            "zoom" => Some(Provider::Zoom),
            _ => None,
        }
    }

    /// The least scopes the features need (docs/INTEGRATIONS.md): Google, the account's
    /// address and its calendar's events; Zoom, creating meetings and reading its own user.
    pub fn scopes(self) -> &'static str {
        match self {
            Provider::Google => "openid email https://www.googleapis.com/auth/calendar.events",
            Provider::Zoom => "meeting:write user:read",
        }
    }

    /// Its operator settings; 404 `integration_disabled` when it is off.
    pub fn settings(self, app: &AppState) -> DomainResult<&OAuthProvider> {
        let integrations = &app.config().integrations;
        let settings = match self {
            Provider::Google => integrations.google.as_ref(),
            Provider::Zoom => integrations.zoom.as_ref(),
        };
        settings.ok_or(DomainError::IntegrationDisabled(self.as_str()))
    }
}

/// A connection as the API shows it: never a token.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationView {
    pub id: IntegrationId,
    pub provider: Provider,
    /// `connected`, or `error` (a refresh failed: reconnect).
    pub status: String,
    /// `user` (the caller's own) or `tenant` (connected for everyone).
    pub scope: String,
    pub account_email: Option<String>,
    pub scopes: Vec<String>,
    pub connected_at: Timestamp,
    pub expires_at: Option<Timestamp>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationList {
    pub items: Vec<IntegrationView>,
}

fn view(keys: &KeySet, tenant: TenantId, row: &IntegrationRow) -> DomainResult<IntegrationView> {
    let vault = open(keys, tenant, row)?;
    Ok(IntegrationView {
        id: row.id,
        provider: Provider::parse(&row.provider).unwrap_or(Provider::Google),
        status: row.status.clone(),
        scope: row.scope.clone(),
        account_email: vault.account_email.clone(),
        scopes: row.scopes.split_whitespace().map(str::to_owned).collect(),
        connected_at: row.connected_at,
        expires_at: row.expires_at,
    })
}

/// The user acting (an API key acts for its owner).
fn acting_user(scope: &TenantScope) -> DomainResult<UserId> {
    match scope.actor() {
        Actor::User { user_id, .. } => Ok(*user_id),
        Actor::ApiKey { owner, .. } => Ok(*owner),
        Actor::System { .. } => Err(DomainError::Forbidden("a user's action")),
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectRequest {
    /// Connect an account for the whole tenant (needs `integrations:manage`); default: the
    /// caller's own.
    #[serde(default)]
    pub tenant_wide: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectView {
    /// Send the user's browser here; the provider sends it back to the callback.
    pub authorize_url: String,
}

pub async fn connect(
    app: &AppState,
    scope: &TenantScope,
    provider: Provider,
    request: ConnectRequest,
) -> DomainResult<ConnectView> {
    let settings = provider.settings(app)?;
    let Actor::User { user_id, session_id } = scope.actor() else {
        return Err(DomainError::Forbidden("connecting needs a signed-in user"));
    };
    if request.tenant_wide {
        scope.require(Permission::IntegrationsManage)?;
    }
    let now = Timestamp::now();
    let nonce = oauth::random_token();
    let claims = oauth::StateClaims {
        user_id: *user_id,
        provider: provider.as_str().to_owned(),
        ts: now.secs(),
        nonce: nonce.clone(),
    };
    let state = oauth::sign_state(app, &claims)?;
    let (verifier, challenge) = oauth::pkce();
    let hash = oauth::nonce_hash(&nonce);
    let mut tx = app.store().tenant_tx(scope).await?;
    let row = StateRow {
        user_id: *user_id,
        session_id: session_id.to_string(),
        provider: provider.as_str().to_owned(),
        scope: if request.tenant_wide { "tenant" } else { "user" }.to_owned(),
        verifier: app
            .keys()
            .seal(VERIFIER_PURPOSE, &hash, verifier.as_bytes())
            .map_err(|err| DomainError::Internal(format!("PKCE verifier: {err}")))?,
        expires_at: now.plus(oauth::STATE_LIFETIME),
    };
    store::purge_states(&mut tx, now).await?;
    store::insert_state(&mut tx, &hash, &row).await?;
    tx.commit().await?;
    Ok(ConnectView {
        authorize_url: oauth::authorize_url(app, provider, settings, &state, &challenge),
    })
}

/// The PKCE verifier of a connect in progress is sealed under a purpose key of the master
/// keys (bound to its nonce's hash), not a tenant key: a tenant key rotation during the 10
/// minutes of a connect does not strand it.
const VERIFIER_PURPOSE: &str = "oauth-pkce-verifier";

/// Refuses a callback: audited (the reason in the event), one answer for every reason.
async fn refuse(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    provider: Provider,
    reason: &'static str,
) -> DomainError {
    let event = Event::new(Action::IntegrationStateRefused)
        .by_scope(scope)
        .failure()
        .detail("provider", provider.as_str())
        .detail("reason", reason);
    if let Err(err) = audit::record_alone(app, scope, ctx, event).await {
        tracing::error!(error = %err, "a refused OAuth state could not be audited");
    }
    DomainError::InvalidState(reason)
}

/// The provider sent the browser back: check the state, exchange the code, store the tokens.
pub async fn callback(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    provider: Provider,
    code: Option<&str>,
    state: Option<&str>,
) -> DomainResult<IntegrationView> {
    let settings = provider.settings(app)?;
    let Actor::User { user_id, session_id } = scope.actor() else {
        return Err(DomainError::Forbidden("connecting needs a signed-in user"));
    };
    let (Some(code), Some(state)) = (code, state) else {
        // The user declined at the provider, or the redirect lost its parameters.
        return Err(refuse(app, scope, ctx, provider, "no code or state").await);
    };
    let claims = match oauth::open_state(app, state) {
        Ok(claims) => claims,
        Err(reason) => return Err(refuse(app, scope, ctx, provider, reason).await),
    };
    let now = Timestamp::now();
    let reason = if claims.provider != provider.as_str() {
        Some("another provider's")
    } else if claims.user_id != *user_id {
        Some("another user's")
    } else if now.secs().saturating_sub(claims.ts) > 600 || claims.ts > now.secs() + 60 {
        Some("expired")
    } else {
        None
    };
    if let Some(reason) = reason {
        return Err(refuse(app, scope, ctx, provider, reason).await);
    }
    // Single use: taken (and committed) before anything else can fail.
    let hash = oauth::nonce_hash(&claims.nonce);
    let mut tx = app.store().tenant_tx(scope).await?;
    let taken = store::take_state(&mut tx, &hash).await?;
    tx.commit().await?;
    let Some(taken) = taken else {
        return Err(refuse(app, scope, ctx, provider, "replayed or unknown").await);
    };
    let reason = if taken.session_id != session_id.to_string() {
        Some("another session's")
    } else if taken.expires_at < now {
        Some("expired")
    } else if taken.provider != provider.as_str() || taken.user_id != *user_id {
        Some("another user's")
    } else {
        None
    };
    if let Some(reason) = reason {
        return Err(refuse(app, scope, ctx, provider, reason).await);
    }
    let verifier = app
        .keys()
        .open(VERIFIER_PURPOSE, &hash, &taken.verifier)
        .map_err(|err| DomainError::Internal(format!("PKCE verifier: {err}")))?;
    let verifier = Zeroizing::new(String::from_utf8_lossy(&verifier).into_owned());
    let tokens = oauth::exchange(app, provider, settings, code, &verifier).await?;
    let account = providers::account(provider, settings, &tokens.access_token).await?;
    let id = IntegrationId::new();
    let mut tx = app.store().tenant_tx(scope).await?;
    let keys = crate::crm::sealing_keys(app, &mut tx).await?;
    let vault = Vault {
        access_token: tokens.access_token.clone(),
        refresh_token: tokens.refresh_token.clone(),
        account_email: account.email.clone(),
        external_id: Some(account.id.clone()),
    };
    let row = IntegrationRow {
        id,
        user_id: *user_id,
        provider: provider.as_str().to_owned(),
        scope: taken.scope.clone(),
        status: "connected".into(),
        scopes: tokens.scope.clone().unwrap_or_else(|| provider.scopes().to_owned()),
        key_version: version(&keys),
        sealed: seal(&keys, scope.tenant_id(), id, &vault)?,
        expires_at: tokens.expires_at(now),
        connected_at: now,
        updated_at: now,
    };
    let external = (provider == Provider::Zoom).then_some(account.id.as_str());
    let replaced = store::replace(&mut tx, &row, external).await?;
    let replaced = match replaced {
        Some(old) => {
            let event = Event::new(Action::IntegrationDisconnect)
                .by_scope(scope)
                .target("integration", old.id)
                .detail("provider", provider.as_str())
                .detail("reason", "replaced");
            audit::record(&mut tx, ctx, event).await?;
            open(&keys, scope.tenant_id(), &old).ok()
        }
        None => None,
    };
    let event = Event::new(Action::IntegrationConnect)
        .by_scope(scope)
        .target("integration", id)
        .detail("provider", provider.as_str())
        .detail("scope", taken.scope.as_str());
    audit::record(&mut tx, ctx, event).await?;
    tx.commit().await?;
    // The replaced grant is still live at the provider: revoke it (its tokens are gone here).
    if let Some(old) = replaced {
        let settings = provider.settings(app)?;
        let token = Zeroizing::new(old.refresh_token.clone().unwrap_or(old.access_token.clone()));
        let client_settings = (settings.revoke_url.clone(), settings.client_id.clone());
        let secret = Zeroizing::new(settings.client_secret.expose().clone());
        tokio::spawn(async move {
            if let Err(err) =
                oauth::revoke_with(&client_settings.0, &client_settings.1, &secret, &token).await
            {
                tracing::warn!(error = %err, "revoking a replaced connection failed");
            }
        });
    }
    view(&keys, scope.tenant_id(), &row)
}

pub async fn list(app: &AppState, scope: &TenantScope) -> DomainResult<IntegrationList> {
    let user = acting_user(scope)?;
    let (rows, keys) =
        crate::crm::read_sealed(app, scope, async |tx| store::visible_to(tx, user).await).await?;
    let tenant = scope.tenant_id();
    let items = rows.iter().map(|row| view(&keys, tenant, row)).collect::<DomainResult<_>>()?;
    Ok(IntegrationList { items })
}

/// Revokes at the provider (three tries), then deletes the tokens whatever came of it.
pub async fn disconnect(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    provider: Provider,
    tenant_wide: bool,
) -> DomainResult<()> {
    // A provider the operator turned off since: the tokens still go, unrevoked (audited).
    let settings = provider.settings(app).ok();
    let user = acting_user(scope)?;
    if tenant_wide {
        scope.require(Permission::IntegrationsManage)?;
    }
    let (rows, keys) =
        crate::crm::read_sealed(app, scope, async |tx| store::visible_to(tx, user).await).await?;
    let wanted = if tenant_wide { "tenant" } else { "user" };
    let row = rows
        .into_iter()
        .find(|r| {
            r.provider == provider.as_str()
                && r.scope == wanted
                && (tenant_wide || r.user_id == user)
        })
        .ok_or(DomainError::NotFound("integration"))?;
    let vault = open(&keys, scope.tenant_id(), &row)?;
    let token = vault.refresh_token.as_deref().unwrap_or(&vault.access_token);
    let mut revoked = Err(DomainError::Upstream("revoke: the provider is not configured".into()));
    if let Some(settings) = settings {
        for delay in [0, 250, 1000] {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            revoked = oauth::revoke(settings, token).await;
            if revoked.is_ok() {
                break;
            }
        }
    }
    let mut tx = app.store().tenant_tx(scope).await?;
    if let Err(err) = revoked {
        tracing::warn!(error = %err, provider = provider.as_str(), "revocation failed");
        let event = Event::new(Action::IntegrationRevokeFailed)
            .by_scope(scope)
            .failure()
            .target("integration", row.id)
            .detail("provider", provider.as_str());
        audit::record(&mut tx, ctx, event).await?;
    }
    store::delete(&mut tx, row.id).await?;
    let event = Event::new(Action::IntegrationDisconnect)
        .by_scope(scope)
        .target("integration", row.id)
        .detail("provider", provider.as_str());
    audit::record(&mut tx, ctx, event).await?;
    disconnected(&mut tx, provider, row.id, "disconnected").await?;
    Ok(tx.commit().await?)
}

/// Ends the connections `user` made (all the tenant's with `None`): a member deactivated, a
/// tenant deleted. The tokens go at once (audited, subscribers told); then each grant is
/// revoked at its provider, a failure logged. How many ended.
pub async fn end_connections(
    app: &AppState,
    scope: &TenantScope,
    user: Option<UserId>,
    reason: &'static str,
) -> DomainResult<usize> {
    let mut tx = app.store().tenant_tx(scope).await?;
    let rows = store::made_by(&mut tx, user).await?;
    if rows.is_empty() {
        tx.commit().await?;
        return Ok(0);
    }
    let keys = crate::crm::tenant_keys(app, &mut tx).await?;
    let mut grants = vec![];
    for row in &rows {
        let provider = Provider::parse(&row.provider).unwrap_or(Provider::Google);
        store::delete(&mut tx, row.id).await?;
        let event = Event::new(Action::IntegrationDisconnect)
            .by_scope(scope)
            .target("integration", row.id)
            .detail("provider", provider.as_str())
            .detail("reason", reason);
        audit::record(&mut tx, &RequestContext::system(), event).await?;
        disconnected(&mut tx, provider, row.id, reason).await?;
        if let Ok(vault) = open(&keys, scope.tenant_id(), row) {
            grants.push((provider, vault));
        }
    }
    tx.commit().await?;
    for (provider, vault) in &grants {
        let Ok(settings) = provider.settings(app) else { continue };
        let token = vault.refresh_token.as_deref().unwrap_or(&vault.access_token);
        if let Err(err) = oauth::revoke(settings, token).await {
            tracing::warn!(error = %err, provider = provider.as_str(), reason, "revocation failed");
        }
    }
    Ok(rows.len())
}

/// Tells the tenant's webhook subscribers a connection is gone.
async fn disconnected(
    tx: &mut crate::store::TenantTx,
    provider: Provider,
    id: IntegrationId,
    reason: &str,
) -> DomainResult<()> {
    let data = serde_json::json!({"id": id, "provider": provider.as_str(), "reason": reason});
    crate::webhooks::events::emit(tx, crate::webhooks::EventKind::IntegrationDisconnected, data)
        .await?;
    Ok(())
}

/// Zoom's deauthorization: deletes every connection of that Zoom user (and nothing fetched
/// through them is kept elsewhere), audits it in each tenant, and tells subscribers; the
/// tenants touched.
pub async fn remove_external(
    app: &AppState,
    ctx: &RequestContext,
    provider: Provider,
    external_id: &str,
) -> DomainResult<Vec<TenantId>> {
    let mut tx = app.store().system_read().await?;
    let found = store::by_external(&mut tx, provider.as_str(), external_id).await?;
    tx.commit().await?;
    let mut tenants = vec![];
    for (tenant, id) in found {
        let scope = TenantScope::system(tenant, "zoom deauthorization");
        let mut tx = app.store().tenant_tx(&scope).await?;
        let notes = store::take_notes(&mut tx, id).await?;
        if store::delete(&mut tx, id).await? {
            let event = Event::new(Action::IntegrationDeauthorized)
                .by_scope(&scope)
                .target("integration", id)
                .detail("provider", provider.as_str())
                .detail("notes_removed", notes.len());
            audit::record(&mut tx, ctx, event).await?;
            disconnected(&mut tx, provider, id, "deauthorized").await?;
            tenants.push(tenant);
        }
        tx.commit().await?;
        // What was fetched through the connection and noted on activities goes too. A crash
        // here leaves a line behind (its record is gone): the notes are taken first so a
        // retry never edits twice, and the worst case is a stale link, not lost data.
        for (activity, hash) in notes {
            crate::crm::activities::remove_details_lines(app, &scope, ctx, activity, &[hash])
                .await?;
        }
    }
    Ok(tenants)
}

/// Tenant key rotation: re-seals every connection under the current data key; how many.
pub async fn reseal(app: &AppState, scope: &TenantScope) -> DomainResult<u64> {
    let tenant = scope.tenant_id();
    let column = crate::store::sealed::sealed_column!("integrations", "key_version", "sealed");
    crate::crm::reseal_column(app, scope, &column, |id| place(tenant, IntegrationId::from_uuid(id)))
        .await
}
