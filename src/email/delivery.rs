//! Delivery: workers claim due messages from the outbox with a lease (so several instances
//! deliver each message once, and a crashed worker's messages are retried after the lease),
//! open them inside their tenant, sign them with the domain's DKIM key and hand them to the
//! relay over a pooled, TLS-verified SMTP connection.
//!
//! A relay's 2xx makes the message `sent`; a 4xx or a connection failure defers it along
//! `BULWARK_EMAIL_RETRY_SCHEDULE` (with jitter), then `failed`; a 5xx is final, `bounced`.
//! The `Message-ID` is fixed when the message is queued, so a retry carries the same one. A
//! crash after the relay accepted a message and before its status is written sends it again
//! after the lease: at least once, never lost. The `email_sending` kill switch pauses the
//! workers; what is queued waits.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
use tokio::sync::watch;
use zeroize::Zeroizing;

use super::messages::{self, Payload};
use super::{address, domains, store, suppressions, unsubscribe};
use crate::app::AppState;
use crate::clock::Timestamp;
use crate::config::{EmailConfig, SmtpConfig, SmtpSecurity};
use crate::containment::features::Feature;
use crate::error::{DomainError, DomainResult};
use crate::ids::{EmailMessageId, TenantId};
use crate::store::queue::EMAIL;
use crate::tenancy::TenantScope;
use crate::webhooks::EventKind;

/// How often an idle worker looks for due messages (a send wakes it at once).
const POLL: Duration = Duration::from_secs(1);

pub type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// The relay transport, built once: lettre pools its connections, one per worker. lettre
/// 0.11.23 leaves Nagle's algorithm on, so each message on a connection waits out the relay's
/// delayed ACK (~40 ms on Linux; fixed upstream in lettre#1159, not yet released): throughput
/// comes from concurrent connections, hence a pool as large as the workers.
pub fn transport(smtp: &SmtpConfig, workers: usize) -> Result<Transport, String> {
    let mut tls = TlsParameters::builder(smtp.host.clone());
    if let Some(pem) = &smtp.ca_pem {
        let certificate = Certificate::from_pem(pem).map_err(|err| format!("SMTP CA: {err}"))?;
        tls = tls.add_root_certificate(certificate);
    }
    let tls = tls.build_rustls().map_err(|err| format!("SMTP TLS: {err}"))?;
    let tls = match smtp.security {
        SmtpSecurity::Implicit => Tls::Wrapper(tls),
        SmtpSecurity::StartTls => Tls::Required(tls),
        SmtpSecurity::Opportunistic => Tls::Opportunistic(tls),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.clone())
        .port(smtp.port)
        .tls(tls)
        .timeout(Some(Duration::from_secs(30)))
        .pool_config(PoolConfig::new().max_size(u32::try_from(workers).unwrap_or(u32::MAX)));
    if let Some(user) = &smtp.user {
        let password = smtp.password.as_ref().map(|p| p.expose().clone()).unwrap_or_default();
        builder = builder.credentials(Credentials::new(user.clone(), password));
    }
    Ok(builder.build())
}

/// Runs for the life of `serve` when a relay is configured. At shutdown (`stop` turns true)
/// the round in flight finishes first: a message handed to the relay gets its status written,
/// so a restart does not send it again.
pub async fn worker(app: AppState, transport: Arc<Transport>, mut stop: watch::Receiver<bool>) {
    let config = &app.config().email;
    while !*stop.borrow() {
        if app.containment().switches.enabled(Feature::EmailSending) {
            match crate::store::background(round(&app, &transport, config)).await {
                // A full round: there may be more due right now.
                Ok(n) if n == config.workers => continue,
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "email delivery round failed"),
            }
        }
        tokio::select! {
            () = app.email_wake().notified() => {}
            () = tokio::time::sleep(POLL) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Claims and delivers up to `workers` due messages at once; how many were claimed.
async fn round(app: &AppState, transport: &Transport, config: &EmailConfig) -> DomainResult<usize> {
    let now = Timestamp::now();
    let limit = i64::try_from(config.workers).unwrap_or(1);
    let mut tx = app.store().system_tx().await?;
    let claimed = EMAIL.claim(&mut tx, now, now.plus(config.lease), limit).await?;
    tx.commit().await?;
    let n = claimed.len();
    futures_util::stream::iter(claimed)
        .for_each_concurrent(config.workers, |(message, tenant, attempts, lease)| async move {
            let claim = Claim { tenant, id: message, attempts, lease };
            if let Err(err) = deliver(app, transport, config, &claim).await {
                // The lease runs out and another round retries it.
                tracing::warn!(error = %err, message = %message, "email delivery failed");
            }
        })
        .await;
    Ok(n)
}

/// A message this worker holds the lease of.
struct Claim {
    tenant: TenantId,
    id: EmailMessageId,
    attempts: i32,
    lease: Timestamp,
}

/// What an attempt came to.
enum Outcome {
    Sent(String),
    Deferred(String),
    Bounced(String),
    /// The message cannot be prepared (a key or a stored value that does not open): no
    /// retry would help.
    Failed(String),
}

/// The message, opened and signed, ready for the relay, with its only recipient (a hard
/// bounce suppresses it); or what it came to without an attempt.
enum Prepared {
    Message(Box<Message>, Option<String>),
    Done(Outcome),
}

async fn deliver(
    app: &AppState,
    transport: &Transport,
    config: &EmailConfig,
    claim: &Claim,
) -> DomainResult<()> {
    let scope = TenantScope::system(claim.tenant, "email delivery");
    let mut tx = app.store().tenant_read(&scope).await?;
    let row = store::message(&mut tx, claim.id).await?;
    let Some(row) = row.filter(|row| matches!(row.status.as_str(), "queued" | "deferred")) else {
        // Gone with its tenant, or finished by a worker that stopped before it could take
        // the message out of the queue: nothing to send again.
        tx.commit().await?;
        let mut tx = app.store().system_tx().await?;
        EMAIL.dequeue(&mut tx, claim.id, claim.lease).await?;
        return Ok(tx.commit().await?);
    };
    let prepared = match prepare(app, &scope, &mut tx, &row).await {
        Ok(prepared) => prepared,
        // The database: transient, the lease runs out and the message is tried again.
        Err(err @ DomainError::Store(_)) => return Err(err),
        Err(err) => {
            tracing::error!(error = %err, message = %row.id, "an email cannot be prepared");
            Prepared::Done(Outcome::Failed("the message could not be prepared".into()))
        }
    };
    tx.commit().await?;
    let (outcome, only) = match prepared {
        Prepared::Message(message, only) => (attempt(transport, *message).await, only),
        Prepared::Done(outcome) => (outcome, None),
    };
    let bounced = match (&outcome, only) {
        (Outcome::Bounced(_), Some(only)) => Some(only),
        _ => None,
    };
    record(app, &scope, config, &row, claim, outcome, bounced).await
}

/// Opens the message and, for a tenant's domain, signs it with the domain's DKIM key.
async fn prepare(
    app: &AppState,
    scope: &TenantScope,
    tx: &mut crate::store::TenantTx,
    row: &store::MessageRow,
) -> DomainResult<Prepared> {
    let keys = crate::crm::tenant_keys(app, tx).await?;
    let payload = messages::open(&keys, scope.tenant_id(), row)?;
    let mut everyone = payload.to.iter().chain(&payload.cc).chain(&payload.bcc);
    let only = match (everyone.next(), everyone.next()) {
        (Some(one), None) => address::parse(one).ok().map(|m| m.email.to_string()),
        _ => None,
    };
    let Some(domain_id) = row.domain_id else {
        // The platform's own notice: from BULWARK_EMAIL_FROM, signed by the relay if at all.
        return Ok(Prepared::Message(Box::new(build(&payload, &row.message_id, &[], None)?), only));
    };
    let Some(domain) = store::domain(tx, domain_id).await? else {
        return Ok(Prepared::Done(Outcome::Bounced("the sending domain was removed".into())));
    };
    let pem = keys
        .decrypt(&domains::place(scope, domain.id), &domain.dkim_private)
        .map_err(|err| DomainError::Internal(format!("DKIM key: {err}")))?;
    let pem = Zeroizing::new(
        String::from_utf8(pem.to_vec())
            .map_err(|_| DomainError::Internal("DKIM key is not PEM".into()))?,
    );
    let key = DkimSigningKey::new(&pem, DkimSigningAlgorithm::Rsa)
        .map_err(|err| DomainError::Internal(format!("DKIM key: {err:?}")))?;
    let dkim = dkim_config(domain.selector, domain.domain, key);
    // Broadcast mail carries its recipient's one-click unsubscribe link (RFC 8058).
    let extra = match row.stream.as_str() {
        "broadcast" => unsubscribe::headers(app, &keys, scope.tenant_id(), row.id).to_vec(),
        _ => vec![],
    };
    let message = build(&payload, &row.message_id, &extra, Some(&dkim))?;
    Ok(Prepared::Message(Box::new(message), only))
}

/// Hands a message to the relay.
async fn attempt(transport: &Transport, message: Message) -> Outcome {
    match transport.send(message).await {
        Ok(response) => Outcome::Sent(reply(&response.code().to_string(), response.message())),
        Err(err) if err.is_permanent() => Outcome::Bounced(scrub(&err.to_string())),
        Err(err) => Outcome::Deferred(scrub(&err.to_string())),
    }
}

/// Writes what an attempt came to: the message's status and event, then the queue.
async fn record(
    app: &AppState,
    scope: &TenantScope,
    config: &EmailConfig,
    row: &store::MessageRow,
    claim: &Claim,
    outcome: Outcome,
    bounced: Option<String>,
) -> DomainResult<()> {
    let now = Timestamp::now();
    let attempts = claim.attempts;
    let retry = crate::store::queue::retry_at(now, &config.retry_schedule, attempts);
    let (status, kind, detail, due) = match outcome {
        Outcome::Sent(detail) => ("sent", "sent", detail, None),
        Outcome::Bounced(detail) => ("bounced", "bounced", detail, None),
        Outcome::Failed(detail) => ("failed", "failed", detail, None),
        Outcome::Deferred(detail) => match retry {
            Some(at) => ("deferred", "deferred", detail, Some(at)),
            None => ("failed", "failed", detail, None),
        },
    };
    let mut tx = app.store().tenant_tx(scope).await?;
    store::set_status(&mut tx, row.id, status, attempts, now).await?;
    store::insert_event(&mut tx, row.id, kind, now, Some(&detail), bounced.as_ref().map(|_| 0))
        .await?;
    let hook = match kind {
        "sent" => Some(EventKind::EmailSent),
        "bounced" => Some(EventKind::EmailBounced),
        _ => None,
    };
    if let Some(hook) = hook {
        let data = serde_json::json!({"id": row.id, "attempts": attempts});
        crate::webhooks::events::emit(&mut tx, hook, data).await?;
    }
    // The relay refused the one recipient for good: it gets no more mail from this tenant.
    if let Some(address) = bounced {
        let keys = crate::crm::sealing_keys(app, &mut tx).await?;
        suppressions::add(&mut tx, &keys, &address, suppressions::Reason::HardBounce, None).await?;
    }
    tx.commit().await?;
    let mut tx = app.store().system_tx().await?;
    match due {
        Some(due) => EMAIL.reschedule(&mut tx, row.id, claim.lease, due).await?,
        None => EMAIL.dequeue(&mut tx, row.id, claim.lease).await?,
    };
    tx.commit().await?;
    metrics::counter!("email_attempts_total", "outcome" => kind).increment(1);
    tracing::info!(message = %row.id, outcome = kind, attempt = attempts, "email delivery");
    Ok(())
}

/// The relay's reply as one line.
fn reply<'a>(code: &str, lines: impl Iterator<Item = &'a str>) -> String {
    let text: Vec<&str> = lines.collect();
    scrub(&format!("{code} {}", text.join(" ")))
}

/// A relay's reply without anything that looks like an address (replies often echo the
/// recipient; events keep no address in the clear), at most 300 characters.
pub(super) fn scrub(text: &str) -> String {
    text.split_whitespace()
        .map(|word| if word.contains('@') { "[address]" } else { word })
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(300)
        .collect()
}

/// relaxed/relaxed canonicalization (whitespace a relay refolds does not break the
/// signature), over the headers a reader sees and trusts. Not `Content-Type`: lettre keeps
/// it with the body part, where its signer does not look, so a verifier would hash a header
/// the signer never saw (an absent header listed in `h=` is fine: both sides hash nothing).
fn dkim_config(selector: String, domain: String, key: DkimSigningKey) -> DkimConfig {
    let headers = [
        "From",
        "To",
        "Cc",
        "Reply-To",
        "Subject",
        "Date",
        "Message-ID",
        "MIME-Version",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
    ]
    .into_iter()
    .map(HeaderName::new_from_ascii_str)
    .collect();
    let relaxed = DkimCanonicalization {
        header: DkimCanonicalizationType::Relaxed,
        body: DkimCanonicalizationType::Relaxed,
    };
    DkimConfig::new(selector, domain, key, headers, relaxed)
}

fn mailbox(text: &str) -> DomainResult<Mailbox> {
    address::parse(text).map_err(|why| DomainError::Internal(format!("a stored address {why}")))
}

/// The message as it goes out, DKIM-signed when it comes from a tenant's domain.
fn build(
    payload: &Payload,
    message_id: &str,
    extra: &[(&'static str, String)],
    dkim: Option<&DkimConfig>,
) -> DomainResult<Message> {
    let mut builder = Message::builder()
        .from(mailbox(&payload.from)?)
        .subject(payload.subject.clone())
        .message_id(Some(message_id.to_owned()));
    for to in &payload.to {
        builder = builder.to(mailbox(to)?);
    }
    for cc in &payload.cc {
        builder = builder.cc(mailbox(cc)?);
    }
    for bcc in &payload.bcc {
        builder = builder.bcc(mailbox(bcc)?);
    }
    if let Some(reply_to) = &payload.reply_to {
        builder = builder.reply_to(mailbox(reply_to)?);
    }
    for (name, value) in &payload.headers {
        let name = HeaderName::new_from_ascii(name.clone())
            .map_err(|_| DomainError::Internal("a stored header name".into()))?;
        builder = builder.raw_header(HeaderValue::new(name, value.clone()));
    }
    for (name, value) in extra {
        builder = builder
            .raw_header(HeaderValue::new(HeaderName::new_from_ascii_str(name), value.clone()));
    }
    let built = match (&payload.text, &payload.html) {
        (Some(text), Some(html)) => {
            builder.multipart(MultiPart::alternative_plain_html(text.clone(), html.clone()))
        }
        (None, Some(html)) => builder.singlepart(SinglePart::html(html.clone())),
        (Some(text), None) => builder.singlepart(SinglePart::plain(text.clone())),
        (None, None) => builder.singlepart(SinglePart::plain(String::new())),
    };
    let mut message = built.map_err(|err| DomainError::Internal(format!("message: {err}")))?;
    if let Some(dkim) = dkim {
        message.sign(dkim);
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_lose_their_addresses_and_length() {
        assert_eq!(
            scrub("550 5.1.1 <ada@example.com>: no such user"),
            "550 5.1.1 [address] no such user"
        );
        assert_eq!(scrub(&"x".repeat(400)).len(), 300);
    }
}
