//! Settings of what Bulwark talks to on a tenant's behalf: outbound webhooks, the OAuth
//! providers (Google, Zoom) and the signed hooks of Zoom and Stripe. Their table entries live
//! here too, beside the code that reads them.

use std::time::Duration;

use url::Url;

use super::settings::{Setting, s, secret};
use super::{Parser, Profile, parse_duration, parse_range};
use crate::crypto::Secret;

/// Outbound webhooks.
#[derive(Debug, Clone)]
pub struct WebhooksConfig {
    /// Ranges a webhook may reach although they are private (`BULWARK_WEBHOOK_ALLOW_PRIVATE`).
    pub allow_private: crate::webhooks::target::AllowPrivate,
    /// Deliveries posted at once per instance.
    pub workers: usize,
    /// Delays before each retry of a failed delivery; past the last one it is `failed`.
    pub retry_schedule: Vec<Duration>,
    /// How long one attempt may take, connection included.
    pub timeout: Duration,
    /// Deliveries in a row that failed for good before a subscription is disabled.
    pub disable_after: i32,
}

/// One OAuth provider, on when its client id is set.
#[derive(Debug)]
pub struct OAuthProvider {
    pub client_id: String,
    pub client_secret: Secret<String>,
    pub auth_url: Url,
    pub token_url: Url,
    pub revoke_url: Url,
    /// The base of the provider's API (`BULWARK_P_API_URL`).
    pub api_url: Url,
}

#[derive(Debug, Default)]
pub struct IntegrationsConfig {
    pub google: Option<OAuthProvider>,
    pub zoom: Option<OAuthProvider>,
    /// Where Zoom's data-compliance confirmation goes after a deauthorization.
    pub zoom_compliance_url: Option<Url>,
    /// The key of `x-zm-signature` on `POST /hooks/zoom`; unset, that route refuses all.
    pub zoom_webhook_secret: Option<Secret<String>>,
    /// Keys of `Stripe-Signature` on `POST /hooks/stripe`, the first current; any verifies.
    pub stripe_webhook_secrets: Vec<Secret<String>>,
}

pub(super) const SETTINGS: &[Setting] = &[
    s(
        "BULWARK_WEBHOOK_ALLOW_PRIVATE",
        "webhooks.allow_private",
        None,
        "comma-separated CIDRs outbound webhooks may reach although private (e.g. `127.0.0.0/8` in tests); empty: none",
    ),
    s(
        "BULWARK_WEBHOOK_WORKERS",
        "webhooks.workers",
        Some("8"),
        "webhook deliveries posted at once per instance",
    ),
    s(
        "BULWARK_WEBHOOK_RETRY_SCHEDULE",
        "webhooks.retry_schedule",
        Some("2m,3m,6m,10m,15m"),
        "delays before each retry of a failed webhook delivery; after the last one it is `failed`",
    ),
    s(
        "BULWARK_WEBHOOK_TIMEOUT",
        "webhooks.timeout",
        Some("5s"),
        "how long one webhook delivery attempt may take",
    ),
    s(
        "BULWARK_WEBHOOK_DISABLE_AFTER",
        "webhooks.disable_after",
        Some("5"),
        "deliveries in a row that failed for good before a subscription is disabled and its owner notified",
    ),
    s(
        "BULWARK_GOOGLE_CLIENT_ID",
        "integrations.google_client_id",
        None,
        "Google OAuth client id; unset: Google is off",
    ),
    secret(
        "BULWARK_GOOGLE_CLIENT_SECRET",
        "integrations.google_client_secret",
        "Google OAuth client secret",
    ),
    s(
        "BULWARK_GOOGLE_AUTH_URL",
        "integrations.google_auth_url",
        Some("https://accounts.google.com/o/oauth2/v2/auth"),
        "Google's authorization endpoint",
    ),
    s(
        "BULWARK_GOOGLE_TOKEN_URL",
        "integrations.google_token_url",
        Some("https://oauth2.googleapis.com/token"),
        "Google's token endpoint",
    ),
    s(
        "BULWARK_GOOGLE_REVOKE_URL",
        "integrations.google_revoke_url",
        Some("https://oauth2.googleapis.com/revoke"),
        "Google's revocation endpoint",
    ),
    s(
        "BULWARK_GOOGLE_API_URL",
        "integrations.google_api_url",
        Some("https://www.googleapis.com"),
        "base URL of Google's APIs (userinfo, Calendar)",
    ),
    s(
        "BULWARK_ZOOM_CLIENT_ID",
        "integrations.zoom_client_id",
        None,
        "Zoom OAuth client id; unset: Zoom is off",
    ),
    secret(
        "BULWARK_ZOOM_CLIENT_SECRET",
        "integrations.zoom_client_secret",
        "Zoom OAuth client secret",
    ),
    s(
        "BULWARK_ZOOM_AUTH_URL",
        "integrations.zoom_auth_url",
        Some("https://zoom.us/oauth/authorize"),
        "Zoom's authorization endpoint",
    ),
    s(
        "BULWARK_ZOOM_TOKEN_URL",
        "integrations.zoom_token_url",
        Some("https://zoom.us/oauth/token"),
        "Zoom's token endpoint",
    ),
    s(
        "BULWARK_ZOOM_REVOKE_URL",
        "integrations.zoom_revoke_url",
        Some("https://zoom.us/oauth/revoke"),
        "Zoom's revocation endpoint",
    ),
    s(
        "BULWARK_ZOOM_API_URL",
        "integrations.zoom_api_url",
        Some("https://api.zoom.us"),
        "base URL of Zoom's API",
    ),
    s(
        "BULWARK_ZOOM_COMPLIANCE_URL",
        "integrations.zoom_compliance_url",
        Some("https://api.zoom.us/oauth/data/compliance"),
        "where the data-compliance confirmation of a Zoom deauthorization goes",
    ),
    secret(
        "BULWARK_ZOOM_WEBHOOK_SECRET",
        "integrations.zoom_webhook_secret",
        "secret token of Zoom's signed events (`POST /hooks/zoom`); unset: that route refuses everything",
    ),
    secret(
        "BULWARK_STRIPE_WEBHOOK_SECRETS",
        "integrations.stripe_webhook_secrets",
        "comma-separated `whsec_…` signing secrets of Stripe's events (`POST /hooks/stripe`), the first current; unset: that route refuses everything",
    ),
];

pub(super) fn webhooks(p: &mut Parser<'_>) -> WebhooksConfig {
    WebhooksConfig {
        allow_private: p.optional("BULWARK_WEBHOOK_ALLOW_PRIVATE", str::parse).unwrap_or_default(),
        workers: p.parse("BULWARK_WEBHOOK_WORKERS", |v| parse_range(v, 1, 64).map(|n| n as usize)),
        retry_schedule: p.parse("BULWARK_WEBHOOK_RETRY_SCHEDULE", |v| {
            v.split(',').map(|d| parse_duration(d.trim())).collect()
        }),
        timeout: p.parse("BULWARK_WEBHOOK_TIMEOUT", parse_duration),
        disable_after: p.parse("BULWARK_WEBHOOK_DISABLE_AFTER", |v| {
            parse_range(v, 1, 1000).map(|n| i32::try_from(n).unwrap_or(i32::MAX))
        }),
    }
}

fn parse_url(value: &str) -> Result<Url, String> {
    match Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "https" | "http") && url.host().is_some() => Ok(url),
        _ => Err("must be an absolute http(s) URL".into()),
    }
}

/// A provider (`GOOGLE`, `ZOOM`): off without a client id; a client id without a secret is a
/// problem outside development (in development, a warning, and the provider stays off).
fn provider(p: &mut Parser<'_>, env: Profile, name: &str) -> Option<OAuthProvider> {
    let client_id = p.text(&format!("BULWARK_{name}_CLIENT_ID"))?.trim().to_owned();
    let Some(client_secret) = p.secret_text(&format!("BULWARK_{name}_CLIENT_SECRET")) else {
        let message = format!(
            "BULWARK_{name}_CLIENT_ID is set without BULWARK_{name}_CLIENT_SECRET: the provider stays off"
        );
        if env.is_development() {
            p.warnings.push(message);
        } else {
            p.problem(&message);
        }
        return None;
    };
    let url =
        |p: &mut Parser<'_>, what: &str| p.parse(&format!("BULWARK_{name}_{what}_URL"), parse_url);
    Some(OAuthProvider {
        client_id,
        client_secret,
        auth_url: url(p, "AUTH"),
        token_url: url(p, "TOKEN"),
        revoke_url: url(p, "REVOKE"),
        api_url: url(p, "API"),
    })
}

pub(super) fn integrations(p: &mut Parser<'_>, env: Profile) -> IntegrationsConfig {
    IntegrationsConfig {
        google: provider(p, env, "GOOGLE"),
        zoom: provider(p, env, "ZOOM"),
        zoom_compliance_url: Some(p.parse("BULWARK_ZOOM_COMPLIANCE_URL", parse_url)),
        zoom_webhook_secret: p.secret_text("BULWARK_ZOOM_WEBHOOK_SECRET"),
        stripe_webhook_secrets: p
            .secret_text("BULWARK_STRIPE_WEBHOOK_SECRETS")
            .map(|all| {
                all.expose()
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| Secret::new(s.to_owned()))
                    .collect()
            })
            .unwrap_or_default(),
    }
}
