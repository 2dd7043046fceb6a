//! One-click unsubscribe (RFC 8058) for the `broadcast` stream. A broadcast message has one
//! recipient, so its link is theirs: `/u/{token}`, where the token is the tenant and message
//! ids and a MAC over them under the tenant's index key — unguessable, bound to its tenant,
//! and valid across data-key rotations. `GET` shows a confirmation page and changes nothing;
//! `POST` (what mailbox providers send, `List-Unsubscribe=One-Click`) suppresses the address
//! for that tenant (`unsubscribe`), records an `unsubscribed` event and is audited.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq as _;

use super::{address, messages, store, suppressions};
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::Timestamp;
use crate::crypto::KeySet;
use crate::error::{DomainError, DomainResult};
use crate::ids::{EmailMessageId, TenantId};
use crate::tenancy::TenantScope;

const MAC_LEN: usize = 16;

fn mac(keys: &KeySet, message: EmailMessageId) -> Vec<u8> {
    let mut tag = keys.blind_index("email_unsubscribe", "token", &message.to_string());
    tag.truncate(MAC_LEN);
    tag
}

/// The token of a message's link.
pub(super) fn token(keys: &KeySet, tenant: TenantId, message: EmailMessageId) -> String {
    let mut bytes = Vec::with_capacity(32 + MAC_LEN);
    bytes.extend_from_slice(tenant.as_uuid().as_bytes());
    bytes.extend_from_slice(message.as_uuid().as_bytes());
    bytes.extend_from_slice(&mac(keys, message));
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The headers a broadcast message carries (both covered by its DKIM signature).
pub(super) fn headers(
    app: &AppState,
    keys: &KeySet,
    tenant: TenantId,
    message: EmailMessageId,
) -> [(&'static str, String); 2] {
    let base = app.config().public_url.as_str().trim_end_matches('/');
    [
        ("List-Unsubscribe", format!("<{base}/u/{}>", token(keys, tenant, message))),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".to_owned()),
    ]
}

/// The tenant and message a token names, before its MAC is checked.
fn parse(token: &str) -> Option<(TenantId, EmailMessageId, Vec<u8>)> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    if bytes.len() != 32 + MAC_LEN {
        return None;
    }
    let tenant = uuid::Uuid::from_slice(&bytes[..16]).ok()?;
    let message = uuid::Uuid::from_slice(&bytes[16..32]).ok()?;
    Some((TenantId::from_uuid(tenant), EmailMessageId::from_uuid(message), bytes[32..].to_vec()))
}

/// Whether `token` is one this platform issued (the confirmation page): the tenant and
/// message it names; 404 otherwise.
pub async fn check(app: &AppState, token: &str) -> DomainResult<(TenantId, EmailMessageId)> {
    let (tenant, message, tag) = parse(token).ok_or(DomainError::NotFound("link"))?;
    let scope = TenantScope::system(tenant, "unsubscribe link");
    let mut tx = app.store().tenant_read(&scope).await?;
    let keys = crate::crm::tenant_keys(app, &mut tx).await;
    tx.commit().await?;
    // A tenant without keys (no such tenant) is as unknown as a bad MAC.
    let keys = keys.map_err(|_| DomainError::NotFound("link"))?;
    if bool::from(mac(&keys, message).ct_eq(&tag)) {
        Ok((tenant, message))
    } else {
        Err(DomainError::NotFound("link"))
    }
}

/// Suppresses the link's recipient for its tenant; repeating it changes nothing more.
pub async fn confirm(app: &AppState, ctx: &RequestContext, token: &str) -> DomainResult<()> {
    // The MAC is checked in a read transaction first: a forged link never takes the write
    // lock (and, on SQLite, never queues behind every writer).
    let (tenant, message) = check(app, token).await?;
    let scope = TenantScope::system(tenant, "unsubscribe link");
    let mut tx = app.store().tenant_tx(&scope).await?;
    let row = store::message(&mut tx, message).await?.ok_or(DomainError::NotFound("link"))?;
    let keys = crate::crm::sealing_keys(app, &mut tx).await?;
    let payload = messages::open(&keys, tenant, &row)?;
    let Some(recipient) = payload.to.first().and_then(|a| address::parse(a).ok()) else {
        return Err(DomainError::NotFound("link"));
    };
    let recipient = recipient.email.to_string();
    let added =
        suppressions::add(&mut tx, &keys, &recipient, suppressions::Reason::Unsubscribe, None)
            .await?;
    if added.is_some() {
        store::insert_event(&mut tx, message, "unsubscribed", Timestamp::now(), None, Some(0))
            .await?;
        let event =
            Event::new(Action::EmailUnsubscribe).by_scope(&scope).target("email_message", message);
        audit::record(&mut tx, ctx, event).await?;
    }
    Ok(tx.commit().await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_only_in_their_own_shape() {
        let tenant = TenantId::from_uuid(uuid::Uuid::now_v7());
        let message = EmailMessageId::new();
        let mut bytes = tenant.as_uuid().as_bytes().to_vec();
        bytes.extend_from_slice(message.as_uuid().as_bytes());
        bytes.extend_from_slice(&[7; MAC_LEN]);
        let parsed = parse(&URL_SAFE_NO_PAD.encode(&bytes));
        assert_eq!(parsed.map(|(t, m, _)| (t, m)), Some((tenant, message)));
        bytes.push(0);
        assert!(parse(&URL_SAFE_NO_PAD.encode(&bytes)).is_none());
        assert!(parse("not base64 !").is_none());
    }
}
