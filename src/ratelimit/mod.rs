//! Rate limiting: a rule engine over two backends.
//!
//! Each endpoint declares a per-minute category and optionally an hourly family; every rule
//! matching either applies, keyed per rule (IP, user, IP+user, API key or tenant). The
//! response carries the `X-RateLimit-*` headers of the tightest rule; a refusal is 429 with
//! `Retry-After`. In memory by default (one instance); on Redis, one atomic script per
//! decision, shared by every instance. When Redis is unreachable each rule fails open or
//! closed as configured (default: closed for auth and sensitive, open for reads and writes).

pub mod client;
mod memory;
mod redis_store;
pub mod rules;
pub mod window;

use std::sync::Arc;

pub use client::{ClientAddress, ClientNet};
pub use rules::{KeyKind, Match, OnBackendError, Rule};

use crate::clock::Timestamp;
use crate::redis_link::RedisLink;
use window::Decision;

/// The per-minute rate-limit layer a route belongs to (spec §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateCategory {
    Read,
    Write,
    Sensitive,
    Auth,
    /// Token refresh: counted per session, after the presented token names its session, so
    /// failed logins from a shared address never sign its users out.
    Refresh,
    /// Probes and documents that must never be throttled (`/healthz`, `/readyz`).
    Exempt,
}

impl RateCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            RateCategory::Read => "read",
            RateCategory::Write => "write",
            RateCategory::Sensitive => "sensitive",
            RateCategory::Auth => "auth",
            RateCategory::Refresh => "refresh",
            RateCategory::Exempt => "exempt",
        }
    }
}

/// The per-hour route family a route belongs to, if any (spec §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteFamily {
    Auth,
    Admin,
    Uploads,
    PaymentWebhooks,
    /// Signed bounce and complaint events from the relay.
    EmailEvents,
}

impl RouteFamily {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteFamily::Auth => "auth",
            RouteFamily::Admin => "admin",
            RouteFamily::Uploads => "uploads",
            RouteFamily::PaymentWebhooks => "payment_webhooks",
            RouteFamily::EmailEvents => "email_events",
        }
    }
}

/// Who a request is, for keying rules.
#[derive(Debug, Clone)]
pub struct ClientKey {
    pub net: ClientNet,
    /// User id, or the API key's id for key-authenticated requests.
    pub user: Option<String>,
    pub api_key: Option<String>,
    pub tenant: Option<String>,
    /// The session a refresh token belongs to (refresh only).
    pub session: Option<String>,
}

impl ClientKey {
    /// A client that presented no (valid) credential: only its address is known.
    pub fn anonymous(net: ClientNet) -> ClientKey {
        ClientKey { net, user: None, api_key: None, tenant: None, session: None }
    }
}

/// The headline figures of the tightest rule, for the response headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headline {
    pub limit: u32,
    pub remaining: u32,
    pub reset_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No rule applies (exempt route, or limits switched off).
    Unlimited,
    Allowed(Headline),
    Refused {
        headline: Headline,
        retry_after_secs: u64,
        rule: String,
    },
    /// The shared backend is down and a matching rule fails closed.
    Unavailable {
        rule: String,
    },
}

enum Backend {
    Memory(memory::MemoryStore),
    // Boxed: the Redis client (with its TLS roots) dwarfs the in-memory store handle.
    Redis(Box<redis_store::RedisStore>),
}

pub struct RateLimiter {
    rules: Vec<Rule>,
    backend: Backend,
    enabled: bool,
}

impl RateLimiter {
    pub fn new(
        rules: Vec<Rule>,
        enabled: bool,
        redis: Option<RedisLink>,
        max_keys: usize,
    ) -> RateLimiter {
        let backend = match redis {
            Some(redis) => Backend::Redis(Box::new(redis_store::RedisStore::new(redis))),
            None => Backend::Memory(memory::MemoryStore::new(max_keys)),
        };
        // Every rule's counters exist from start-up (alerts read them; see telemetry::metrics).
        for rule in &rules {
            metrics::counter!("rate_limit_rejections_total", "rule" => rule.name.clone())
                .increment(0);
            metrics::counter!("rate_limit_warnings_total", "rule" => rule.name.clone())
                .increment(0);
        }
        RateLimiter { rules, backend, enabled }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    fn applies(rule: &Rule, category: RateCategory, family: Option<RouteFamily>) -> bool {
        match rule.matches {
            Match::Category(c) => c == category,
            Match::Family(f) => family == Some(f),
        }
    }

    /// Counts one request of a route of `category` (and `family`) against every rule that
    /// matches it.
    pub async fn check(
        &self,
        category: RateCategory,
        family: Option<RouteFamily>,
        client: &ClientKey,
    ) -> Verdict {
        if !self.enabled {
            return Verdict::Unlimited;
        }
        let mut tightest: Option<Headline> = None;
        let mut refusal: Option<(Headline, u64, String)> = None;
        for rule in self.rules.iter().filter(|rule| Self::applies(rule, category, family)) {
            let key = rule_key(rule, client);
            let window_ms = u64::try_from(rule.window.as_millis()).unwrap_or(u64::MAX);
            let decision = match &self.backend {
                Backend::Memory(store) => Ok(store.hit(&key, now_ms(), rule.limit, window_ms)),
                // Boxed: the Redis round trip's future is a kilobyte that every request's
                // gate would otherwise carry and copy, Redis or not.
                Backend::Redis(store) => Box::pin(store.hit(&key, rule.limit, window_ms)).await,
            };
            let decision: Decision = match decision {
                Ok(decision) => decision,
                Err(_) => match rule.on_backend_error {
                    OnBackendError::Closed => {
                        metrics::counter!("rate_limit_backend_failures_total", "rule" => rule.name.clone(), "mode" => "closed").increment(1);
                        return Verdict::Unavailable { rule: rule.name.clone() };
                    }
                    OnBackendError::Open => {
                        metrics::counter!("rate_limit_backend_failures_total", "rule" => rule.name.clone(), "mode" => "open").increment(1);
                        continue;
                    }
                },
            };
            let headline = Headline {
                limit: decision.limit,
                remaining: decision.remaining,
                reset_secs: decision.reset_ms.div_ceil(1000),
            };
            if decision.crossed_warning {
                metrics::counter!("rate_limit_warnings_total", "rule" => rule.name.clone())
                    .increment(1);
                tracing::warn!(rule = %rule.name, limit = rule.limit, "a client passed 80 % of a rate limit");
            }
            if !decision.allowed {
                metrics::counter!("rate_limit_rejections_total", "rule" => rule.name.clone())
                    .increment(1);
                let retry = decision.retry_after_ms.div_ceil(1000).max(1);
                if refusal.as_ref().is_none_or(|(_, r, _)| retry > *r) {
                    refusal = Some((headline, retry, rule.name.clone()));
                }
            }
            if tightest
                .is_none_or(|t| (headline.remaining, headline.limit) < (t.remaining, t.limit))
            {
                tightest = Some(headline);
            }
        }
        match (refusal, tightest) {
            (Some((headline, retry_after_secs, rule)), _) => {
                Verdict::Refused { headline, retry_after_secs, rule }
            }
            (None, Some(headline)) => Verdict::Allowed(headline),
            (None, None) => Verdict::Unlimited,
        }
    }

    /// Periodic upkeep of the in-memory backend: drops counters of past windows.
    pub fn sweep(&self) {
        if let Backend::Memory(store) = &self.backend {
            store.sweep(now_ms());
        }
    }

    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Redis(_))
    }
}

fn now_ms() -> u64 {
    u64::try_from(Timestamp::now().millis()).unwrap_or(0)
}

/// The counter key of a request under a rule. A rule keyed on a user or key falls back to
/// the IP for anonymous requests, so they are limited too.
pub fn rule_key(rule: &Rule, client: &ClientKey) -> String {
    use std::fmt::Write as _;
    // One allocation, written in place: this runs for every rule of every request.
    let mut key = String::with_capacity(rule.name.len() + 64);
    key.push_str(&rule.name);
    key.push('|');
    fn named<'a>(kind: &'static str, value: &'a Option<String>) -> Option<(&'static str, &'a str)> {
        value.as_deref().map(|v| (kind, v))
    }
    let who = match rule.key {
        KeyKind::Ip => None,
        KeyKind::User | KeyKind::IpUser => named("user:", &client.user),
        KeyKind::ApiKey => named("key:", &client.api_key),
        KeyKind::Tenant => named("tenant:", &client.tenant),
        KeyKind::Session => named("session:", &client.session),
    };
    // Writing into a String cannot fail.
    match who {
        Some((kind, value)) => {
            if rule.key == KeyKind::IpUser {
                let _ = write!(key, "ip:{}|", client.net);
            }
            key.push_str(kind);
            key.push_str(value);
        }
        None => {
            let _ = write!(key, "ip:{}", client.net);
        }
    }
    key
}

/// Shared by AppState.
pub type SharedLimiter = Arc<RateLimiter>;

#[cfg(test)]
mod tests {
    use super::*;

    fn route(category: RateCategory) -> (RateCategory, Option<RouteFamily>) {
        (category, (category == RateCategory::Auth).then_some(RouteFamily::Auth))
    }

    fn client(ip: &str) -> ClientKey {
        let net = ClientNet::of(ip.parse().expect("ip"), 64);
        ClientKey::anonymous(net)
    }

    #[tokio::test]
    async fn the_21st_auth_request_is_refused_and_another_client_is_not() {
        let limiter = RateLimiter::new(rules::defaults(), true, None, 10_000);
        for n in 0..20 {
            match limiter
                .check(
                    route(RateCategory::Auth).0,
                    route(RateCategory::Auth).1,
                    &client("192.0.2.1"),
                )
                .await
            {
                Verdict::Allowed(h) => assert_eq!(h.remaining, 19 - n),
                other => panic!("request {} refused: {other:?}", n + 1),
            }
        }
        assert!(matches!(
            limiter
                .check(
                    route(RateCategory::Auth).0,
                    route(RateCategory::Auth).1,
                    &client("192.0.2.1")
                )
                .await,
            Verdict::Refused { .. }
        ));
        assert!(matches!(
            limiter
                .check(
                    route(RateCategory::Auth).0,
                    route(RateCategory::Auth).1,
                    &client("192.0.2.2")
                )
                .await,
            Verdict::Allowed(_)
        ));
    }

    #[tokio::test]
    async fn exempt_routes_and_a_disabled_limiter_are_unlimited() {
        let limiter = RateLimiter::new(rules::defaults(), true, None, 10_000);
        assert_eq!(
            limiter
                .check(
                    route(RateCategory::Exempt).0,
                    route(RateCategory::Exempt).1,
                    &client("192.0.2.1")
                )
                .await,
            Verdict::Unlimited
        );
        let off = RateLimiter::new(rules::defaults(), false, None, 10_000);
        assert_eq!(
            off.check(
                route(RateCategory::Auth).0,
                route(RateCategory::Auth).1,
                &client("192.0.2.1")
            )
            .await,
            Verdict::Unlimited
        );
    }

    #[test]
    fn keys_separate_users_behind_one_address() {
        let rule = &rules::defaults()[0];
        let mut a = client("192.0.2.1");
        a.user = Some("u1".into());
        let mut b = a.clone();
        b.user = Some("u2".into());
        assert_ne!(rule_key(rule, &a), rule_key(rule, &b));
        assert_eq!(rule_key(rule, &client("192.0.2.1")), "read-per-minute|ip:192.0.2.1");
    }

    /// The keys live in Redis across a rolling deploy: their shape must not change.
    #[test]
    fn every_kind_of_key_keeps_its_shape() {
        let mut rule = rules::defaults()[0].clone();
        rule.name = "r".into();
        let anonymous = client("192.0.2.1");
        let mut known = anonymous.clone();
        known.user = Some("u".into());
        known.api_key = Some("k".into());
        known.tenant = Some("t".into());
        known.session = Some("s".into());
        let expected = [
            (KeyKind::Ip, "r|ip:192.0.2.1", "r|ip:192.0.2.1"),
            (KeyKind::User, "r|user:u", "r|ip:192.0.2.1"),
            (KeyKind::IpUser, "r|ip:192.0.2.1|user:u", "r|ip:192.0.2.1"),
            (KeyKind::ApiKey, "r|key:k", "r|ip:192.0.2.1"),
            (KeyKind::Tenant, "r|tenant:t", "r|ip:192.0.2.1"),
            (KeyKind::Session, "r|session:s", "r|ip:192.0.2.1"),
        ];
        for (kind, of_known, of_anonymous) in expected {
            rule.key = kind;
            assert_eq!(rule_key(&rule, &known), of_known, "{kind:?}");
            assert_eq!(rule_key(&rule, &anonymous), of_anonymous, "{kind:?}");
        }
    }
}
