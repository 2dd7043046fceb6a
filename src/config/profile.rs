//! The rules of the staging and production profiles: what a deployment must not run with.
//! Development keeps the two-command start and says so loudly instead.

use super::parse::{self, parse_switch};
use super::sources::RawValues;
use super::{Config, DatabaseUrl};

/// The deployment profile: development relaxes the fail-closed rules; staging and
/// production apply them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Development,
    Staging,
    Production,
}

impl Profile {
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Development => "development",
            Profile::Staging => "staging",
            Profile::Production => "production",
        }
    }

    pub fn is_development(self) -> bool {
        self == Profile::Development
    }
}

/// The shortest secret (JWT keys, the metrics token), in bytes.
pub const MIN_SECRET_BYTES: usize = 32;
/// The least entropy a JWT secret must show, by its byte frequencies, outside development.
/// 32 random bytes show about 150 bits, 32 random base64 characters 145, 32 hex characters
/// 118; a repeated character shows 0 and `dev-secret-dev-secret-dev-secret` 91. The estimate
/// catches repetition, not a sentence, so the README asks for random bytes.
pub const MIN_SECRET_ENTROPY_BITS: f64 = 100.0;

/// What `serve` prints in the development profile, the default, so nobody runs a deployment
/// on it unknowingly.
pub const DEVELOPMENT_BANNER: &str = "\
=====================================================================
 DEVELOPMENT PROFILE (BULWARK_ENV=development): not for real data.
 Secrets are generated into the data directory, plain http and http://
 CORS origins are allowed, HSTS is off and development-only switches
 are accepted. Set BULWARK_ENV=production for a deployment.
=====================================================================";

/// The rules of staging and production: fail closed on anything unsafe.
pub(super) fn profile_problems(config: &Config, raw: &RawValues) -> Vec<String> {
    let mut problems = vec![];
    if config.env.is_development() {
        return problems;
    }
    let env = config.env.as_str();
    if config.public_url.scheme() != "https" {
        problems.push(format!(
            "BULWARK_PUBLIC_URL must be an https:// URL in {env} (tokens, cookies and links depend on it)"
        ));
    }
    if config.http.hsts_max_age.is_none() {
        problems.push(format!(
            "HSTS is off (BULWARK_HSTS=off or BULWARK_HSTS_MAX_AGE=0); it must stay on in {env}"
        ));
    }
    if config.metrics_listen.is_some_and(|a| !a.ip().is_loopback())
        && config.metrics_token.is_none()
    {
        problems.push(format!(
            "BULWARK_METRICS_LISTEN is reachable from other machines: set BULWARK_METRICS_TOKEN in {env}"
        ));
    }
    let identity = &config.identity;
    if identity.session_idle_timeout <= identity.access_token_ttl
        || identity.session_idle_timeout > identity.session_absolute_timeout
    {
        // Idle time counts refreshes, and a client refreshes when its access token expires.
        problems.push(format!(
            "BULWARK_SESSION_IDLE_TIMEOUT must lie between BULWARK_ACCESS_TOKEN_TTL and \
             BULWARK_SESSION_ABSOLUTE_TIMEOUT in {env}: shorter, it signs active users out"
        ));
    }
    for origin in config.http.cors_origins.iter().filter(|o| o.starts_with("http://")) {
        problems.push(format!(
            "BULWARK_CORS_ORIGINS: `{origin}` is plain http; credentialed CORS to it is refused in {env}"
        ));
    }
    if let DatabaseUrl::Postgres(url) = &config.database.url
        && let Err(reason) = parse::remote_postgres_is_verified(url.expose())
    {
        problems.push(format!("BULWARK_DATABASE_URL: {reason} in {env}"));
    }
    if let Some(url) = &config.redis_url
        && let Err(reason) = parse::remote_redis_is_tls(url.expose())
    {
        problems.push(format!("BULWARK_REDIS_URL: {reason} in {env}"));
    }
    if config.secrets.jwt_secret.expose().len() >= MIN_SECRET_BYTES
        && parse::estimated_entropy_bits(config.secrets.jwt_secret.expose())
            < MIN_SECRET_ENTROPY_BITS
    {
        problems.push(format!(
            "BULWARK_JWT_SECRET looks like text of low entropy (a repeated character or a \
             phrase); use at least {MIN_SECRET_BYTES} random bytes in {env}"
        ));
    }
    for (name, off_value, what) in [
        ("BULWARK_RATE_LIMITS", "off", "disables rate limiting"),
        ("BULWARK_COOKIE_SECURE", "off", "makes cookies insecure"),
    ] {
        if raw.is_set(name) && raw.get(name).is_some_and(|v| parse_switch(v) == Ok(false)) {
            problems.push(format!(
                "{name}={off_value} {what}: a development-only switch, refused in {env}"
            ));
        }
    }
    problems
}
