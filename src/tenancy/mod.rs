//! Tenants, roles and permissions, and the `TenantScope` every tenant-owned query takes.
//!
//! The role → permission table is fixed in code (spec §2): reviewing who may do what means
//! reading `Role::permissions`, nothing else.

mod roles;

pub use roles::{Permission, Role};
