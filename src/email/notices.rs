//! The platform's own mail to a tenant's users (security notices), queued in the tenant's
//! outbox like any message — sealed, durable, retried — but from `BULWARK_EMAIL_FROM` and
//! without a sending domain of the tenant. Without a relay or a sender, nothing is queued.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use super::messages::{Payload, place};
use super::store::{self, MessageRow};
use crate::app::AppState;
use crate::clock::Timestamp;
use crate::error::{DomainError, DomainResult};
use crate::ids::EmailMessageId;
use crate::store::TenantTx;

/// A notice to write.
pub struct Notice<'a> {
    pub to: Vec<String>,
    pub subject: &'a str,
    pub text: String,
    /// Whether the tenant's suppression list applies: yes for mail a tenant's member causes
    /// to a stranger (an invitation); no for notices about an account's own security.
    pub suppressible: bool,
}

/// Queues `notice` in the transaction's tenant; `false` when mail is not configured.
pub async fn queue(app: &AppState, tx: &mut TenantTx, notice: Notice<'_>) -> DomainResult<bool> {
    let email = &app.config().email;
    let (Some(from), Some(_)) = (&email.from, &email.smtp) else { return Ok(false) };
    // An address the mail side cannot use (an IDN not in its xn-- form) is left out rather
    // than blocking the notice for everyone else.
    let keys = crate::crm::sealing_keys(app, tx).await?;
    let mut to = vec![];
    for address in notice.to {
        let Ok(parsed) = super::address::parse(&address) else { continue };
        let bare = parsed.email.to_string();
        if notice.suppressible && super::suppressions::is_suppressed(tx, &keys, &bare).await? {
            continue;
        }
        to.push(address);
    }
    if to.is_empty() {
        return Ok(false);
    }
    let id = EmailMessageId::new();
    let now = Timestamp::now();
    let host = from.rsplit('@').next().unwrap_or("localhost").trim_end_matches('>');
    let payload = Payload {
        from: from.clone(),
        to,
        cc: vec![],
        bcc: vec![],
        reply_to: None,
        subject: notice.subject.to_owned(),
        text: Some(notice.text),
        html: None,
        headers: BTreeMap::new(),
    };
    let plain = Zeroizing::new(
        serde_json::to_vec(&payload).map_err(|err| DomainError::Internal(err.to_string()))?,
    );
    let row = MessageRow {
        id,
        message_id: format!("<{id}@{host}>"),
        domain_id: None,
        stream: "transactional".into(),
        key_version: i32::try_from(keys.current_version()).unwrap_or(i32::MAX),
        payload: keys.encrypt(&place(tx.tenant_id(), id), &plain),
        recipients: i32::try_from(payload.to.len()).unwrap_or(i32::MAX),
        status: "queued".into(),
        attempts: 0,
        created_at: now,
        updated_at: now,
    };
    store::insert_message(tx, &row).await?;
    store::insert_event(tx, id, "queued", now, None, None).await?;
    crate::store::queue::EMAIL.enqueue(tx, id, now).await?;
    Ok(true)
}

/// Wakes the workers after the transaction that queued notices committed.
pub fn wake(app: &AppState) {
    app.email_wake().notify_one();
}
