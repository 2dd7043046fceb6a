//! WebAuthn passkeys (webauthn-rs): registration for a signed-in user, login as the second
//! factor after a password, passwordless login (discoverable credentials), and step-up.
//!
//! The relying party is the host of `BULWARK_PUBLIC_URL` and the origin its origin, so an
//! assertion made for another site (phishing) does not verify. Ceremony state stays on the
//! server (`auth_challenges`, five minutes, single use); the client holds only its id.

use serde_json::Value;
use uuid::Uuid;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

use super::store::{self, NewChallenge};
use super::{
    FactorChange, Principal, TICKET_LIFETIME, factor_changed, finish_login, guard_enrolment,
    record_failure, record_step_up, session_of, ticket_user,
};
use crate::app::AppState;
use crate::audit::{Action, Event, RequestContext};
use crate::clock::Timestamp;
use crate::crypto::Secret;
use crate::error::{DomainError, DomainResult};
use crate::identity::login::TokenPair;
use crate::identity::store as users;
use crate::ids::{TenantId, UserId};

/// The relying party, or `None` when the public URL has no domain name (WebAuthn does not
/// work on bare IP addresses).
pub fn relying_party(public_url: &url::Url) -> Option<Webauthn> {
    let rp_id = public_url.domain()?;
    WebauthnBuilder::new(rp_id, public_url).ok()?.rp_name("Bulwark").build().ok()
}

fn rp(app: &AppState) -> DomainResult<&Webauthn> {
    app.identity()
        .mfa
        .webauthn
        .as_ref()
        .ok_or(DomainError::Conflict("passkeys need BULWARK_PUBLIC_URL with a domain name"))
}

fn failed(err: impl std::fmt::Display) -> DomainError {
    tracing::info!(error = %err, "WebAuthn ceremony refused");
    DomainError::InvalidCredentials
}

/// `{challenge_id, publicKey: {...}}`: the options exactly as webauthn-rs serializes them.
fn challenge_json(id: Uuid, options: impl serde::Serialize) -> DomainResult<Value> {
    let mut value =
        serde_json::to_value(options).map_err(|e| DomainError::Internal(e.to_string()))?;
    if let Value::Object(map) = &mut value {
        map.insert("challenge_id".into(), Value::from(id.to_string()));
    }
    Ok(value)
}

async fn passkeys(app: &AppState, user: UserId) -> DomainResult<Vec<Passkey>> {
    let mut tx = app.store().system_read().await?;
    let rows = store::credentials(&mut tx, user).await?;
    tx.commit().await?;
    Ok(rows.iter().filter_map(|r| serde_json::from_str(&r.passkey).ok()).collect())
}

async fn save_challenge(
    app: &AppState,
    purpose: &str,
    user: Option<UserId>,
    tenant: Option<TenantId>,
    state: &str,
) -> DomainResult<Uuid> {
    let mut tx = app.store().system_tx().await?;
    let id = store::insert_challenge(
        &mut tx,
        &NewChallenge {
            purpose,
            user,
            tenant,
            token_hash: None,
            session: None,
            state: Some(state),
            expires_at: Timestamp::now().plus(TICKET_LIFETIME),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Takes a ceremony's state: once, before it expires, for the expected purpose.
async fn take_challenge(
    app: &AppState,
    id: Uuid,
    purpose: &str,
) -> DomainResult<store::ChallengeRow> {
    let mut tx = app.store().system_tx().await?;
    let row = store::challenge_by_id(&mut tx, id)
        .await?
        .filter(|r| r.purpose == purpose)
        .ok_or(DomainError::InvalidCredentials)?;
    if !store::spend_challenge(&mut tx, id, Timestamp::now()).await? {
        return Err(DomainError::InvalidCredentials);
    }
    tx.commit().await?;
    Ok(row)
}

fn state<T: serde::de::DeserializeOwned>(row: &store::ChallengeRow) -> DomainResult<T> {
    row.state
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or(DomainError::InvalidCredentials)
}

pub async fn register_start(app: &AppState, principal: &Principal) -> DomainResult<Value> {
    let rp = rp(app)?;
    guard_enrolment(app, principal).await?;
    let user = principal.user_id();
    let existing = passkeys(app, user).await?;
    let mut tx = app.store().system_read().await?;
    let row = users::user_by_id(&mut tx, user).await?.ok_or(DomainError::NotFound("user"))?;
    tx.commit().await?;
    let exclude = existing.iter().map(|p| p.cred_id().clone()).collect();
    let (options, registration) = rp
        .start_passkey_registration(user.as_uuid(), &row.email, &row.display_name, Some(exclude))
        .map_err(|e| DomainError::Internal(e.to_string()))?;
    // A passkey is a discoverable credential: ask for one, so passwordless login can find it
    // (webauthn-rs leaves it optional; its verification does not depend on it).
    let mut options =
        serde_json::to_value(options).map_err(|e| DomainError::Internal(e.to_string()))?;
    if let Some(selection) =
        options.pointer_mut("/publicKey/authenticatorSelection").and_then(Value::as_object_mut)
    {
        selection.insert("residentKey".into(), Value::from("required"));
        selection.insert("requireResidentKey".into(), Value::from(true));
    }
    let state =
        serde_json::to_string(&registration).map_err(|e| DomainError::Internal(e.to_string()))?;
    let id =
        save_challenge(app, "webauthn_register", Some(user), principal.tenant_id(), &state).await?;
    challenge_json(id, options)
}

pub async fn register_finish(
    app: &AppState,
    ctx: &RequestContext,
    principal: &Principal,
    challenge: Uuid,
    credential: &RegisterPublicKeyCredential,
    name: &str,
) -> DomainResult<Uuid> {
    let rp = rp(app)?;
    // Only a session enrols (an API key cannot), checked before any work.
    super::session_of(principal)?;
    guard_enrolment(app, principal).await?;
    let row = take_challenge(app, challenge, "webauthn_register").await?;
    if row.user_id != Some(principal.user_id()) {
        return Err(DomainError::InvalidCredentials);
    }
    let registration: PasskeyRegistration = state(&row)?;
    let passkey = rp.finish_passkey_registration(credential, &registration).map_err(failed)?;
    let json = serde_json::to_string(&passkey).map_err(|e| DomainError::Internal(e.to_string()))?;
    let mut tx = app.store().system_tx().await?;
    let id = store::insert_credential(
        &mut tx,
        principal.user_id(),
        principal.tenant_id(),
        passkey.cred_id().as_ref(),
        &json,
        name,
        Timestamp::now(),
    )
    .await
    .map_err(|err| match err {
        crate::store::StoreError::Conflict(_) => {
            DomainError::Conflict("this passkey is already registered")
        }
        other => other.into(),
    })?;
    // A new factor ends every other session (see `factor_changed`).
    let event = Event::new(Action::PasskeyAdded).target("passkey", id);
    factor_changed(app, tx, ctx, principal, FactorChange::Enrolled, event).await?;
    Ok(id)
}

/// Starts a passkey login: after a password (with the MFA ticket: that user's passkeys), or
/// passwordless (no ticket: any discoverable passkey of this site).
pub async fn login_start(app: &AppState, ticket: Option<&Secret<String>>) -> DomainResult<Value> {
    let rp = rp(app)?;
    match ticket {
        Some(ticket) => {
            let (ticket_id, user) = ticket_user(app, ticket).await?;
            let keys = passkeys(app, user).await?;
            if keys.is_empty() {
                return Err(DomainError::InvalidCredentials);
            }
            let (options, auth) = rp
                .start_passkey_authentication(&keys)
                .map_err(|e| DomainError::Internal(e.to_string()))?;
            let state = serde_json::json!({"ticket": ticket_id, "auth": auth}).to_string();
            let id =
                save_challenge(app, "webauthn_second_factor", Some(user), None, &state).await?;
            challenge_json(id, options)
        }
        None => {
            let (options, auth) = rp
                .start_discoverable_authentication()
                .map_err(|e| DomainError::Internal(e.to_string()))?;
            let state =
                serde_json::to_string(&auth).map_err(|e| DomainError::Internal(e.to_string()))?;
            let id = save_challenge(app, "webauthn_passwordless", None, None, &state).await?;
            challenge_json(id, options)
        }
    }
}

/// Verifies an assertion against the user's stored passkeys and stores the new signature
/// counter, in one transaction holding the user's passkey rows: of two assertions racing with
/// the same counter (a cloned authenticator), the second sees the first one's update.
async fn verify_for(
    app: &AppState,
    user: UserId,
    credential: &PublicKeyCredential,
    verify: impl FnOnce(
        &Webauthn,
        &[Passkey],
    ) -> DomainResult<webauthn_rs::prelude::AuthenticationResult>,
) -> DomainResult<()> {
    let rp = rp(app)?;
    let mut tx = app.store().system_tx().await?;
    let rows = store::credentials_for_update(&mut tx, user).await?;
    let mut keys: Vec<Passkey> =
        rows.iter().filter_map(|r| serde_json::from_str(&r.passkey).ok()).collect();
    let result = verify(rp, &keys)?;
    if let Some(key) = keys.iter_mut().find(|k| k.cred_id() == result.cred_id()) {
        // webauthn-rs compared the sign counter with the challenge's snapshot of the
        // credential; two assertions of a cloned authenticator, each answering its own
        // challenge, both pass that. The locked row is the truth: a counter that does not
        // move past it is a clone or a replay (0 and 0 is an authenticator without one).
        let stored = stored_counter(key);
        if (result.counter() != 0 || stored != 0) && result.counter() <= stored {
            return Err(DomainError::InvalidCredentials);
        }
        key.update_credential(&result);
        let json = serde_json::to_string(key).map_err(|e| DomainError::Internal(e.to_string()))?;
        store::update_credential(
            &mut tx,
            user,
            credential.get_credential_id(),
            &json,
            Timestamp::now(),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The sign counter a stored passkey holds. webauthn-rs keeps the field private (short of its
/// `danger-credential-internals` feature); its serialised form, which we store, carries it.
fn stored_counter(key: &Passkey) -> u32 {
    serde_json::to_value(key)
        .ok()
        .and_then(|v| v["cred"]["counter"].as_u64())
        .and_then(|c| u32::try_from(c).ok())
        .unwrap_or(0)
}

pub async fn login_finish(
    app: &AppState,
    ctx: &RequestContext,
    challenge: Uuid,
    credential: &PublicKeyCredential,
) -> DomainResult<TokenPair> {
    let rp = rp(app)?;
    let mut tx = app.store().system_read().await?;
    let purpose = store::challenge_by_id(&mut tx, challenge)
        .await?
        .map(|r| r.purpose)
        .ok_or(DomainError::InvalidCredentials)?;
    tx.commit().await?;
    let (user, ticket) = match purpose.as_str() {
        "webauthn_second_factor" => {
            let row = take_challenge(app, challenge, "webauthn_second_factor").await?;
            let value: Value = state(&row)?;
            let auth: PasskeyAuthentication = serde_json::from_value(value["auth"].clone())
                .map_err(|_| DomainError::InvalidCredentials)?;
            let ticket: Uuid = serde_json::from_value(value["ticket"].clone())
                .map_err(|_| DomainError::InvalidCredentials)?;
            let user = row.user_id.ok_or(DomainError::InvalidCredentials)?;
            let outcome = verify_for(app, user, credential, |rp, _| {
                rp.finish_passkey_authentication(credential, &auth).map_err(failed)
            })
            .await;
            if let Err(err) = outcome {
                let tenant = tenant_of(app, user).await?;
                record_failure(app, ctx, tenant, Some(user), None, "webauthn").await?;
                return Err(err);
            }
            (user, Some(ticket))
        }
        "webauthn_passwordless" => {
            let row = take_challenge(app, challenge, "webauthn_passwordless").await?;
            let auth: DiscoverableAuthentication = state(&row)?;
            let Ok((user_uuid, _)) = rp.identify_discoverable_authentication(credential) else {
                record_failure(app, ctx, None, None, None, "passwordless").await?;
                return Err(DomainError::InvalidCredentials);
            };
            let user = UserId::from_uuid(user_uuid);
            let outcome = verify_for(app, user, credential, |rp, keys| {
                let key = keys
                    .iter()
                    .find(|k| AsRef::<[u8]>::as_ref(k.cred_id()) == credential.get_credential_id())
                    .ok_or(DomainError::InvalidCredentials)?;
                rp.finish_discoverable_authentication_v2(
                    credential,
                    auth,
                    DiscoverableKey::from(key),
                )
                .map_err(failed)
            })
            .await;
            if let Err(err) = outcome {
                // The user handle is the client's unverified claim: the failure goes to the
                // platform chain without naming anyone, or a stranger could write events into
                // any tenant's chain.
                record_failure(app, ctx, None, None, None, "passwordless").await?;
                return Err(err);
            }
            (user, None)
        }
        _ => return Err(DomainError::InvalidCredentials),
    };
    let mut tx = app.store().system_read().await?;
    let row = users::user_by_id(&mut tx, user)
        .await?
        .filter(|u| u.is_active())
        .ok_or(DomainError::InvalidCredentials)?;
    tx.commit().await?;
    match ticket {
        Some(ticket) => finish_login(app, ctx, ticket, &row).await,
        None => {
            if app
                .identity()
                .lockout
                .locked_until(&crate::identity::lockout::account_key(user), Timestamp::now())
                .await?
                .is_some()
            {
                return Err(DomainError::InvalidCredentials);
            }
            crate::identity::login::start_session(app, ctx, &row, Some(Timestamp::now())).await
        }
    }
}

async fn tenant_of(app: &AppState, user: UserId) -> DomainResult<Option<TenantId>> {
    let mut tx = app.store().system_read().await?;
    let tenant = users::user_by_id(&mut tx, user).await?.and_then(|u| u.tenant_id);
    tx.commit().await?;
    Ok(tenant)
}

pub async fn step_up_start(app: &AppState, principal: &Principal) -> DomainResult<Value> {
    session_of(principal)?;
    let rp = rp(app)?;
    let keys = passkeys(app, principal.user_id()).await?;
    if keys.is_empty() {
        return Err(DomainError::Conflict("no passkey is registered"));
    }
    let (options, auth) =
        rp.start_passkey_authentication(&keys).map_err(|e| DomainError::Internal(e.to_string()))?;
    let state = serde_json::to_string(&auth).map_err(|e| DomainError::Internal(e.to_string()))?;
    let id = save_challenge(
        app,
        "webauthn_step_up",
        Some(principal.user_id()),
        principal.tenant_id(),
        &state,
    )
    .await?;
    challenge_json(id, options)
}

pub async fn step_up_finish(
    app: &AppState,
    ctx: &RequestContext,
    principal: &Principal,
    challenge: Uuid,
    credential: &PublicKeyCredential,
) -> DomainResult<()> {
    let sid = session_of(principal)?;
    let row = take_challenge(app, challenge, "webauthn_step_up").await?;
    if row.user_id != Some(principal.user_id()) {
        return Err(DomainError::InvalidCredentials);
    }
    let auth: PasskeyAuthentication = state(&row)?;
    let outcome = verify_for(app, principal.user_id(), credential, |rp, _| {
        rp.finish_passkey_authentication(credential, &auth).map_err(failed)
    })
    .await;
    if let Err(err) = outcome {
        let (tenant, user) = (principal.tenant_id(), Some(principal.user_id()));
        record_failure(app, ctx, tenant, user, None, "step_up").await?;
        return Err(err);
    }
    record_step_up(app, ctx, principal, sid, "webauthn").await
}

/// The user's passkeys.
pub async fn passkeys_of(
    app: &AppState,
    principal: &Principal,
) -> DomainResult<Vec<store::CredentialRow>> {
    let mut tx = app.store().system_read().await?;
    let rows = store::credentials(&mut tx, principal.user_id()).await?;
    tx.commit().await?;
    Ok(rows)
}

pub async fn remove(
    app: &AppState,
    ctx: &RequestContext,
    principal: &Principal,
    id: Uuid,
) -> DomainResult<()> {
    session_of(principal)?;
    let user = principal.user_id();
    let mut tx = app.store().system_tx().await?;
    if !store::delete_credential(&mut tx, user, id).await? {
        return Err(DomainError::NotFound("passkey"));
    }
    // Removing a factor is an MFA reset: other sessions end, and this one must step up again.
    let event = Event::new(Action::PasskeyRemoved).target("passkey", id);
    factor_changed(app, tx, ctx, principal, FactorChange::Removed, event).await
}
