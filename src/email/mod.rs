//! The mail side (spec §8): sending domains with DKIM keys (`domains`, `dkim`), checked
//! through DNS (`dns`); messages queued in a transactional outbox (`messages`) and delivered
//! by workers over SMTP (`delivery`); addresses and header values as they are accepted
//! (`address`).

pub mod address;
pub mod delivery;
mod dkim;
pub mod domains;
pub mod events;
pub mod messages;
pub mod notices;
pub mod public_routes;
pub mod quotas;
pub mod retention;
pub mod rotation;
pub mod routes;
mod store;
pub mod suppressions;
pub mod templates;
pub mod unsubscribe;
