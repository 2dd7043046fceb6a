//! Maintenance: what runs beside the requests — the retention purge, key rotation and
//! tenant deletion — as scheduled jobs (`app::maintain`) or CLI commands. Each works through
//! the same transactions and audit log as a request, acting as the system.

pub mod retention;
pub mod rotation;
pub mod shred_ledger;
mod store;
pub mod tenant_deletion;
