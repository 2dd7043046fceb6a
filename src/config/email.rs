//! Settings of the mail side: the SMTP relay, the platform's sender, the resolver that checks
//! sending domains, and how the outbox delivers.

use std::net::SocketAddr;
use std::time::Duration;

use super::parse::parse_retention;
use super::settings::{Setting, s, secret};
use super::storage::read_pem_certificates;
use super::{Parser, Profile, parse_duration, parse_range};
use crate::crypto::Secret;

/// How the relay is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// `smtps://`: TLS from the first byte.
    Implicit,
    /// `smtp://`: STARTTLS, required (outside development, or whenever the relay offers it).
    StartTls,
    /// `smtp://` to a loopback relay that offers no STARTTLS, development only.
    Opportunistic,
}

#[derive(Debug)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub user: Option<String>,
    pub password: Option<Secret<String>>,
    /// Extra trusted roots for the relay (`BULWARK_SMTP_CA_FILE`), PEM.
    pub ca_pem: Option<Vec<u8>>,
}

#[derive(Debug)]
pub struct EmailConfig {
    /// Unset: messages stay queued and `/readyz` says `"smtp": "unconfigured"`.
    pub smtp: Option<SmtpConfig>,
    /// The sender of the platform's own mail.
    pub from: Option<String>,
    /// The resolver that checks sending domains; `None`: the system's.
    pub dns_resolver: Option<SocketAddr>,
    pub workers: usize,
    /// Delays before each retry; past the last one a message is `failed`.
    pub retry_schedule: Vec<Duration>,
    /// How long a claimed message stays claimed (a crashed worker's are retried after it).
    pub lease: Duration,
    /// Recipients per tenant per rolling hour and per rolling day.
    pub hourly_limit: i64,
    pub daily_limit: i64,
    /// The key of signed bounce and complaint events (`POST /hooks/email/events`); unset,
    /// the route refuses every delivery.
    pub events_secret: Option<Secret<Vec<u8>>>,
    /// Bodies of finished messages older than this are purged (metadata kept); `None`: kept.
    pub content_retention: Option<Duration>,
}

pub(super) fn email(p: &mut Parser<'_>, env: Profile) -> EmailConfig {
    let url = p.secret_text("BULWARK_SMTP_URL");
    let password = p.secret_text("BULWARK_SMTP_PASSWORD");
    let ca_pem = p.optional("BULWARK_SMTP_CA_FILE", read_pem_certificates);
    let smtp = url.and_then(|url| match parse_smtp_url(url.expose(), env) {
        Ok((host, port, security, user)) => {
            Some(SmtpConfig { host, port, security, user, password, ca_pem })
        }
        Err(reason) => {
            p.problem(&format!("BULWARK_SMTP_URL: {reason}"));
            None
        }
    });
    EmailConfig {
        smtp,
        from: p.optional("BULWARK_EMAIL_FROM", |v| {
            crate::email::address::parse(v).map(|_| v.trim().to_owned())
        }),
        dns_resolver: p.optional("BULWARK_DNS_RESOLVER", |v| {
            v.parse().map_err(|_| "must be ip:port".to_owned())
        }),
        workers: p.parse("BULWARK_EMAIL_WORKERS", |v| parse_range(v, 1, 64).map(|n| n as usize)),
        retry_schedule: p.parse("BULWARK_EMAIL_RETRY_SCHEDULE", |v| {
            v.split(',').map(|d| parse_duration(d.trim())).collect()
        }),
        lease: p.parse("BULWARK_EMAIL_LEASE", parse_duration),
        hourly_limit: p
            .parse("BULWARK_EMAIL_HOURLY_LIMIT", |v| parse_range(v, 1, 100_000_000).map(i64::from)),
        daily_limit: p.parse("BULWARK_EMAIL_DAILY_LIMIT", |v| {
            parse_range(v, 1, 1_000_000_000).map(i64::from)
        }),
        events_secret: p.optional(
            "BULWARK_EMAIL_EVENTS_SECRET",
            crate::crypto::standard_webhooks::parse_secret,
        ),
        content_retention: p.parse("BULWARK_RETENTION_EMAIL_CONTENT", parse_retention),
    }
}

/// `smtp://[user@]host:port` or `smtps://[user@]host:port` (the password has its own
/// setting, so it never sits in a URL that might be logged).
fn parse_smtp_url(
    text: &str,
    env: Profile,
) -> Result<(String, u16, SmtpSecurity, Option<String>), String> {
    let url = url::Url::parse(text).map_err(|_| "not a URL".to_owned())?;
    if url.password().is_some() {
        return Err("put the password in BULWARK_SMTP_PASSWORD, not in the URL".into());
    }
    let host = url.host_str().filter(|h| !h.is_empty()).ok_or("names no host")?.to_owned();
    let user = Some(url.username()).filter(|u| !u.is_empty()).map(str::to_owned);
    let loopback = matches!(host.as_str(), "localhost" | "127.0.0.1" | "[::1]");
    let security = match url.scheme() {
        "smtps" => SmtpSecurity::Implicit,
        "smtp" if env.is_development() && loopback => SmtpSecurity::Opportunistic,
        "smtp" => SmtpSecurity::StartTls,
        _ => return Err("must be smtp:// or smtps://".into()),
    };
    let port = url.port().unwrap_or(if security == SmtpSecurity::Implicit { 465 } else { 587 });
    Ok((host, port, security, user))
}

/// The settings `email` reads (listed with the rest by `settings::all`).
pub(super) const SETTINGS: &[Setting] = &[
    secret(
        "BULWARK_SMTP_URL",
        "email.smtp_url",
        "the relay: `smtp://[user@]host:port` (STARTTLS, required outside development; plain only to a loopback relay in development) or `smtps://…` (implicit TLS). Unset: mail stays queued",
    ),
    secret("BULWARK_SMTP_PASSWORD", "email.smtp_password", "the relay user's password"),
    s(
        "BULWARK_SMTP_CA_FILE",
        "email.smtp_ca_file",
        None,
        "PEM file of certificate authorities trusted for the relay besides the system's",
    ),
    s(
        "BULWARK_EMAIL_FROM",
        "email.from",
        None,
        "sender of the platform's own mail (verification, resets, invitations, notices)",
    ),
    secret(
        "BULWARK_EMAIL_EVENTS_SECRET",
        "email.events_secret",
        "`whsec_<base64>` key of signed bounce and complaint events (`POST /hooks/email/events`, Standard Webhooks); unset: that route refuses everything",
    ),
    s(
        "BULWARK_RETENTION_EMAIL_CONTENT",
        "retention.email_content",
        Some("30d"),
        "bodies of finished messages older than this are purged, metadata kept (`off`: kept)",
    ),
    s(
        "BULWARK_DNS_RESOLVER",
        "email.dns_resolver",
        None,
        "`ip:port` of the resolver that checks sending domains (default: the system's)",
    ),
    s(
        "BULWARK_EMAIL_WORKERS",
        "email.workers",
        Some("16"),
        "messages delivered at once per instance (each on its own pooled relay connection)",
    ),
    s(
        "BULWARK_EMAIL_RETRY_SCHEDULE",
        "email.retry_schedule",
        Some("1m,5m,15m,1h,4h,12h"),
        "delays before each retry of a deferred message; after the last one it is `failed`",
    ),
    s(
        "BULWARK_EMAIL_LEASE",
        "email.lease",
        Some("60s"),
        "how long a claimed message stays claimed; a crashed worker's messages are retried after it",
    ),
    s(
        "BULWARK_EMAIL_HOURLY_LIMIT",
        "email.hourly_limit",
        Some("1000"),
        "recipients a tenant may send to per rolling hour; past it, 429 `quota_exceeded`",
    ),
    s(
        "BULWARK_EMAIL_DAILY_LIMIT",
        "email.daily_limit",
        Some("10000"),
        "recipients a tenant may send to per rolling day",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_say_how_the_relay_is_reached() {
        let prod = Profile::Production;
        let dev = Profile::Development;
        let parsed = parse_smtp_url("smtp://mailer@relay.example:2525", prod).expect("parses");
        assert_eq!(
            parsed,
            ("relay.example".into(), 2525, SmtpSecurity::StartTls, Some("mailer".into()))
        );
        let parsed = parse_smtp_url("smtps://relay.example", prod).expect("parses");
        assert_eq!((parsed.1, parsed.2), (465, SmtpSecurity::Implicit));
        // Plain SMTP only to a loopback relay in development; STARTTLS everywhere else.
        assert_eq!(
            parse_smtp_url("smtp://127.0.0.1:25", dev).expect("ok").2,
            SmtpSecurity::Opportunistic
        );
        assert_eq!(
            parse_smtp_url("smtp://127.0.0.1:25", prod).expect("ok").2,
            SmtpSecurity::StartTls
        );
        assert_eq!(
            parse_smtp_url("smtp://relay.example", dev).expect("ok").2,
            SmtpSecurity::StartTls
        );
        for bad in
            ["http://relay.example", "smtp://u:secret@relay.example", "relay.example", "smtp://"]
        {
            assert!(parse_smtp_url(bad, prod).is_err(), "{bad}");
        }
    }
}
