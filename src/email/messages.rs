//! Sending: a message is checked, sealed under the tenant's key and queued in the outbox in
//! one transaction with its audit event (`send`); the workers of `delivery` take it from
//! there. Reading: a tenant's messages and what happened to each.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::store::{self, MessageRow};
use super::templates::{self, Variables};
use super::{address, quotas, suppressions};
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::Timestamp;
use crate::crypto::KeySet;
use crate::crypto::field::Place;
use crate::error::{DomainError, DomainResult};
use crate::ids::{EmailMessageId, EmailTemplateId, TenantId};
use crate::pagination::{Page, check_limit, decode_cursor};
use crate::store::TenantTx;
use crate::tenancy::{Permission, TenantScope};

/// At most this many recipients (to, cc and bcc together) per message.
pub const MAX_RECIPIENTS: usize = 50;
/// The largest message body (text and HTML together), in bytes.
pub const MAX_BODY: usize = 10 * 1024 * 1024;
const MAX_SUBJECT: usize = 998;

/// The stream a message goes out on: broadcast mail carries one-click unsubscribe.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    #[default]
    Transactional,
    Broadcast,
}

impl Stream {
    fn as_str(self) -> &'static str {
        match self {
            Stream::Transactional => "transactional",
            Stream::Broadcast => "broadcast",
        }
    }
}

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    Queued,
    Sent,
    Deferred,
    Failed,
    Bounced,
    /// Every recipient was on the suppression list: nothing to send.
    Suppressed,
}

impl MessageStatus {
    fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Queued => "queued",
            MessageStatus::Sent => "sent",
            MessageStatus::Deferred => "deferred",
            MessageStatus::Failed => "failed",
            MessageStatus::Bounced => "bounced",
            MessageStatus::Suppressed => "suppressed",
        }
    }
}

/// What a tenant asks to send.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    /// On a verified sending domain of the tenant: `a@mail.example.com` or `Name <a@…>`.
    #[schema(max_length = 320)]
    pub from: String,
    #[schema(min_items = 1, max_items = 50)]
    pub to: Vec<String>,
    #[serde(default)]
    #[schema(max_items = 50)]
    pub cc: Vec<String>,
    /// Receive the message without appearing in it.
    #[serde(default)]
    #[schema(max_items = 50)]
    pub bcc: Vec<String>,
    #[schema(nullable = false)]
    pub reply_to: Option<String>,
    /// Required unless `template_id` gives it.
    #[schema(min_length = 1, max_length = 998, nullable = false)]
    pub subject: Option<String>,
    /// The plain-text part (at least one of `text` and `html`, or a `template_id`).
    #[schema(nullable = false)]
    pub text: Option<String>,
    #[schema(nullable = false)]
    pub html: Option<String>,
    /// Subject and bodies from this template, rendered with `variables` (then `subject`,
    /// `text` and `html` must be absent).
    #[schema(nullable = false)]
    pub template_id: Option<EmailTemplateId>,
    /// The template's values; escaped in its HTML part.
    #[schema(value_type = Option<Object>, nullable = false)]
    pub variables: Option<Variables>,
    #[serde(default)]
    pub stream: Stream,
    /// Extra headers: names `X-…` or `List-Id`, one-line values.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// A message as it is sealed (and, opened, delivered).
#[derive(Debug, Serialize, Deserialize)]
pub struct Payload {
    pub from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    pub reply_to: Option<String>,
    pub subject: String,
    pub text: Option<String>,
    pub html: Option<String>,
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecipientStatus {
    pub email: String,
    /// `queued`, or `suppressed` (on the tenant's suppression list: not sent).
    pub status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    pub id: EmailMessageId,
    /// `queued`, or `suppressed` when every recipient is.
    pub status: &'static str,
    pub recipients: Vec<RecipientStatus>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// `queued`, `sent`, `deferred`, `failed`, `bounced`, `complained`, `suppressed` or
    /// `unsubscribed`.
    #[serde(rename = "type")]
    pub kind: String,
    pub at: Timestamp,
    /// The recipient it concerns, when it concerns one (a bounce, a complaint, an
    /// unsubscribe); none for what happened to the whole message.
    pub recipient: Option<String>,
    /// The relay's reply, when there was one.
    pub detail: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageView {
    pub id: EmailMessageId,
    /// `queued`, `sent`, `deferred` (a retry is due), `failed` or `bounced`.
    pub status: String,
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub stream: String,
    pub created_at: Timestamp,
    /// Oldest first (the one message read only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<EventView>>,
}

pub(super) fn place(tenant: TenantId, id: EmailMessageId) -> Place<'static> {
    Place { tenant, table: "email_messages", column: "payload", row: id.as_uuid() }
}

fn invalid(field: &str, message: impl Into<String>) -> (String, String) {
    (field.to_owned(), message.into())
}

/// Checks a message; every problem at once, no value echoed.
fn check(message: &NewMessage) -> Result<(), DomainError> {
    let mut problems = vec![];
    if let Err(why) = address::parse(&message.from) {
        problems.push(invalid("from", why));
    }
    for (field, list) in [("to", &message.to), ("cc", &message.cc), ("bcc", &message.bcc)] {
        for (n, recipient) in list.iter().enumerate() {
            if let Err(why) = address::parse(recipient) {
                problems.push(invalid(&format!("{field}[{n}]"), why));
            }
        }
    }
    let count = message.to.len() + message.cc.len() + message.bcc.len();
    if message.to.is_empty() || count > MAX_RECIPIENTS {
        problems.push(invalid("to", format!("1 to {MAX_RECIPIENTS} recipients in all")));
    }
    if let Some(reply_to) = &message.reply_to
        && let Err(why) = address::parse(reply_to)
    {
        problems.push(invalid("reply_to", why));
    }
    let subject = message.subject.as_deref().unwrap_or_default().trim();
    if subject.is_empty() || subject.chars().count() > MAX_SUBJECT {
        problems.push(invalid("subject", format!("must be 1 to {MAX_SUBJECT} characters")));
    } else if let Err(why) = address::check_header_value(subject) {
        problems.push(invalid("subject", why));
    }
    if message.stream == Stream::Broadcast && (message.to.len() != 1 || count != 1) {
        problems.push(invalid(
            "to",
            "a broadcast message goes to one recipient (its unsubscribe link is theirs)",
        ));
    }
    if message.text.is_none() && message.html.is_none() {
        problems.push(invalid("text", "give `text`, `html` or both"));
    }
    for (name, value) in &message.headers {
        let allowed = name.len() <= 64
            && (name.eq_ignore_ascii_case("List-Id")
                || (name.len() > 2
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && name.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("X-"))));
        if !allowed {
            problems.push(invalid("headers", "names must be `X-…` or `List-Id`"));
        } else if address::check_header_value(value).is_err() || value.len() > 998 {
            problems.push(invalid("headers", "values must be one line of at most 998 bytes"));
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(DomainError::Invalid(problems)) }
}

/// Queues a message: checked, sealed and written to the outbox with its audit event in one
/// transaction. Its `from` must be on a verified domain of the tenant.
pub async fn send(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    message: NewMessage,
) -> DomainResult<Accepted> {
    scope.require(Permission::EmailSend)?;
    app.containment().switches.require(crate::containment::features::Feature::EmailSending)?;
    let message = with_template(app, scope, message).await?;
    let body =
        message.text.as_ref().map_or(0, String::len) + message.html.as_ref().map_or(0, String::len);
    if body > MAX_BODY {
        return Err(DomainError::TooLarge { limit: MAX_BODY as u64 });
    }
    check(&message)?;
    // Checked above: `from` parses.
    let from = address::parse(&message.from)
        .map_err(|why| DomainError::Invalid(vec![invalid("from", why)]))?;
    let domain_name = from.email.domain().to_ascii_lowercase();
    let id = EmailMessageId::new();
    let now = Timestamp::now();
    let mut tx = app.store().tenant_tx(scope).await?;
    let domain = store::domain_by_name(&mut tx, &domain_name)
        .await?
        .filter(|d| d.status == "verified")
        .ok_or_else(|| {
            DomainError::Invalid(vec![invalid("from", "must be on a verified sending domain")])
        })?;
    let keys = crate::crm::sealing_keys(app, &mut tx).await?;
    // Suppressed recipients are answered as such and left out of the message.
    let mut recipients = vec![];
    let mut deliverable = [vec![], vec![], vec![]];
    for (list, out) in [&message.to, &message.cc, &message.bcc].into_iter().zip(&mut deliverable) {
        for email in list {
            let email = email.trim().to_owned();
            // Checked above: every recipient parses.
            let bare = address::parse(&email).map(|m| m.email.to_string()).unwrap_or_default();
            if suppressions::is_suppressed(&mut tx, &keys, &bare).await? {
                recipients.push(RecipientStatus { email, status: "suppressed" });
            } else {
                recipients.push(RecipientStatus { email: email.clone(), status: "queued" });
                out.push(email);
            }
        }
    }
    let [to, cc, bcc] = deliverable;
    let count = to.len() + cc.len() + bcc.len();
    let anyone = count > 0;
    quotas::within(app, &mut tx, ctx, i64::try_from(count).unwrap_or(i64::MAX), now).await?;
    let payload = Payload {
        from: message.from.trim().to_owned(),
        to,
        cc,
        bcc,
        reply_to: message.reply_to.map(|a| a.trim().to_owned()),
        subject: message.subject.unwrap_or_default().trim().to_owned(),
        text: message.text,
        html: message.html,
        headers: message.headers,
    };
    let plain = Zeroizing::new(
        serde_json::to_vec(&payload).map_err(|err| DomainError::Internal(err.to_string()))?,
    );
    let row = MessageRow {
        id,
        message_id: format!("<{}@{}>", id, domain.domain),
        domain_id: Some(domain.id),
        stream: message.stream.as_str().to_owned(),
        key_version: i32::try_from(keys.current_version()).unwrap_or(i32::MAX),
        payload: keys.encrypt(&place(scope.tenant_id(), id), &plain),
        recipients: i32::try_from(count).unwrap_or(i32::MAX),
        status: if anyone { "queued" } else { "suppressed" }.into(),
        attempts: 0,
        created_at: now,
        updated_at: now,
    };
    store::insert_message(&mut tx, &row).await?;
    if anyone {
        store::insert_event(&mut tx, id, "queued", now, None, None).await?;
        crate::store::queue::EMAIL.enqueue(&mut tx, id, now).await?;
    } else {
        store::insert_event(&mut tx, id, "suppressed", now, None, None).await?;
    }
    let event = Event::new(Action::EmailSend)
        .by_scope(scope)
        .target("email_message", id)
        .detail("recipients", recipients.len())
        .detail("stream", message.stream.as_str());
    audit::record(&mut tx, ctx, event).await?;
    tx.commit().await?;
    app.email_wake().notify_one();
    let status = if anyone { "queued" } else { "suppressed" };
    Ok(Accepted { id, status, recipients })
}

/// Fills subject and bodies in from the message's template, rendered with its variables.
async fn with_template(
    app: &AppState,
    scope: &TenantScope,
    mut message: NewMessage,
) -> DomainResult<NewMessage> {
    let Some(id) = message.template_id else {
        if message.variables.is_some() {
            return Err(DomainError::invalid("variables", "only with `template_id`"));
        }
        return Ok(message);
    };
    if message.subject.is_some() || message.text.is_some() || message.html.is_some() {
        return Err(DomainError::invalid(
            "template_id",
            "a template gives subject and bodies: leave `subject`, `text` and `html` out",
        ));
    }
    let mut tx = app.store().tenant_read(scope).await?;
    let template = templates::load(app, &mut tx, id).await?;
    tx.commit().await?;
    // Another tenant's template is as unknown as a made-up id.
    let template =
        template.ok_or_else(|| DomainError::invalid("template_id", "no such template"))?;
    let rendered = templates::render(&template, &message.variables.take().unwrap_or_default())?;
    message.subject = Some(rendered.subject);
    message.text = rendered.text;
    message.html = rendered.html;
    Ok(message)
}

pub(super) fn open(keys: &KeySet, tenant: TenantId, row: &MessageRow) -> DomainResult<Payload> {
    let plain = keys
        .decrypt(&place(tenant, row.id), &row.payload)
        .map_err(|err| DomainError::Internal(format!("email message {}: {err}", row.id)))?;
    serde_json::from_slice(&plain).map_err(|err| DomainError::Internal(err.to_string()))
}

fn view(keys: &KeySet, tenant: TenantId, row: MessageRow) -> DomainResult<MessageView> {
    let payload = open(keys, tenant, &row)?;
    Ok(view_of(row, payload))
}

fn view_of(row: MessageRow, payload: Payload) -> MessageView {
    MessageView {
        id: row.id,
        status: row.status,
        from: payload.from,
        to: payload.to,
        subject: payload.subject,
        stream: row.stream,
        created_at: row.created_at,
        events: None,
    }
}

/// The tenant's messages, newest first, optionally of one status.
pub async fn list(
    app: &AppState,
    scope: &TenantScope,
    status: Option<MessageStatus>,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> DomainResult<Page<MessageView>> {
    scope.require(Permission::EmailSend)?;
    let limit = check_limit(limit)?;
    let before = decode_cursor::<uuid::Uuid>(cursor)?.map(EmailMessageId::from_uuid);
    let status = status.map(MessageStatus::as_str);
    let read = async |tx: &mut TenantTx| store::messages(tx, status, before, limit + 1).await;
    crate::crm::sealed_page(app, scope, limit, read, |r| r.id.to_string(), view).await
}

/// One message with its events.
pub async fn get(
    app: &AppState,
    scope: &TenantScope,
    id: EmailMessageId,
) -> DomainResult<MessageView> {
    scope.require(Permission::EmailSend)?;
    let ((row, events), keys) = crate::crm::read_sealed(app, scope, async |tx| {
        Ok((store::message(tx, id).await?, store::events(tx, id).await?))
    })
    .await?;
    let row = row.ok_or(DomainError::NotFound("email message"))?;
    let payload = open(&keys, scope.tenant_id(), &row)?;
    // Events name their recipient by position in to, cc and bcc (no address in the clear).
    let everyone: Vec<String> =
        payload.to.iter().chain(&payload.cc).chain(&payload.bcc).cloned().collect();
    let recipient = |n: Option<i32>| {
        n.and_then(|n| usize::try_from(n).ok()).and_then(|n| everyone.get(n)).cloned()
    };
    let events = events
        .into_iter()
        .map(|(kind, at, detail, n)| EventView { kind, at, recipient: recipient(n), detail })
        .collect();
    let mut view = view_of(row, payload);
    view.events = Some(events);
    Ok(view)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> NewMessage {
        NewMessage {
            from: "Acme <news@mail.acme.example>".into(),
            to: vec!["ada@example.com".into()],
            cc: vec![],
            bcc: vec![],
            reply_to: None,
            subject: Some("Hello".into()),
            text: Some("Hi".into()),
            html: None,
            template_id: None,
            variables: None,
            stream: Stream::Transactional,
            headers: BTreeMap::from([("X-Campaign".into(), "spring".into())]),
        }
    }

    #[test]
    fn a_good_message_passes_and_every_injection_is_refused() {
        assert!(check(&message()).is_ok());
        let refused = |change: &dyn Fn(&mut NewMessage)| {
            let mut m = message();
            change(&mut m);
            check(&m).is_err()
        };
        assert!(refused(&|m| m.subject = Some("Hi\r\nBcc: victim@example.com".into())));
        assert!(refused(&|m| m.to = vec!["ada@example.com\nBcc: x@example.com".into()]));
        assert!(refused(&|m| {
            m.headers.insert("Bcc".into(), "victim@example.com".into());
        }));
        assert!(refused(&|m| {
            m.headers.insert("X-Evil".into(), "a\r\nBcc: victim@example.com".into());
        }));
        assert!(refused(&|m| {
            m.headers.insert("X-Bad Name".into(), "v".into());
        }));
        assert!(refused(&|m| {
            m.headers.insert("€abc".into(), "v".into());
        }));
        assert!(refused(&|m| m.to = vec![]));
        assert!(refused(&|m| m.to = vec!["a@example.com".into(); 51]));
        assert!(refused(&|m| m.text = None));
        assert!(refused(&|m| m.reply_to = Some("nobody".into())));
        assert!(!refused(&|m| {
            m.headers.insert("List-Id".into(), "<news.acme.example>".into());
        }));
    }
}
