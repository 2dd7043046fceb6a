//! The mail side (spec §8): sending domains with DKIM keys (`domains`, `dkim`), checked
//! through DNS (`dns`); addresses and header values as they are accepted (`address`).

pub mod address;
mod dkim;
mod dns;
pub mod domains;
pub mod routes;
mod store;
