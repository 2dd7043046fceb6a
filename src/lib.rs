//! Bulwark: a multi-tenant CRM and email platform with its security controls built in.
//!
//! Module map (see docs/ARCHITECTURE.md): `config` parses settings once; `app` assembles the
//! application; `http` owns the endpoint table, middleware, problem+json and the server;
//! `store` owns pools, migrations and transactions; `identity` owns accounts, sessions,
//! tokens and API keys; `tenancy` owns roles, permissions, members and the tenant scope;
//! `audit` owns the hash-chained audit log; `crypto` owns key material; `telemetry` owns
//! logs, metrics and health; `ttl_cache` is the one bounded cache of the request path's
//! lookups (sessions, API keys, verified tokens); `webhooks` owns outbound subscriptions and
//! their delivery, `integrations` the Google and Zoom connections and their token vault,
//! `payments` Stripe's events and payments; `dns` is the one configurable resolver; `console`
//! is the browser console, pages over the same domain functions as the API.

#![forbid(unsafe_code)]

pub mod app;
pub mod audit;
pub mod backup;
pub mod clock;
pub mod config;
pub mod console;
pub mod containment;
pub mod crm;
pub mod crypto;
pub mod dns;
pub mod documents;
pub mod email;
pub mod error;
pub mod http;
pub mod idempotency;
pub mod identity;
pub mod ids;
pub mod integrations;
mod layering;
pub mod maintenance;
pub mod pagination;
pub mod payments;
pub mod platform;
pub mod ratelimit;
pub mod redis_link;
pub mod schema;
pub mod store;
pub mod telemetry;
pub mod tenancy;
pub mod ttl_cache;
pub mod webhooks;

pub use app::{AppState, Application};
