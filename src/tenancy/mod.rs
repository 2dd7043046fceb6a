//! Tenants, roles and permissions, the `TenantScope` every tenant-owned query takes, and the
//! members of a tenant (users, invitations).
//!
//! The role → permission table is fixed in code (spec §2): reviewing who may do what means
//! reading `Role::permissions`, nothing else.

pub mod members;
mod roles;
pub mod routes;
mod scope;
pub mod store;

pub use roles::{Permission, Role};
pub use scope::{Actor, TenantScope};
