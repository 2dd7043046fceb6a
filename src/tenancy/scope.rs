//! `TenantScope`: proof that the caller acts inside one tenant, with the rights it holds.
//!
//! Fields are private and the only constructors are `from_principal` (called by the gate
//! after authentication) and `system` (named, for workers and CLI commands, and recorded as
//! the system actor in the audit log). Every tenant-owned query takes a scope, through
//! `Store::tenant_tx`, so a handler cannot reach tenant data without one.

use std::sync::Arc;

use super::{Permission, Role};
use crate::error::DomainError;
use crate::identity::{Credential, Principal};
use crate::ids::{ApiKeyId, SessionId, TenantId, UserId};

/// Who acts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    User {
        user_id: UserId,
        session_id: SessionId,
    },
    ApiKey {
        key_id: ApiKeyId,
        owner: UserId,
    },
    /// A worker or CLI command; `reason` names it in the audit log.
    System {
        reason: &'static str,
    },
}

impl Actor {
    /// The human behind the action, if any (API keys act for their creator).
    pub fn user_id(&self) -> Option<UserId> {
        match self {
            Actor::User { user_id, .. } => Some(*user_id),
            Actor::ApiKey { owner, .. } => Some(*owner),
            Actor::System { .. } => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct TenantScope {
    tenant_id: TenantId,
    actor: Actor,
    role: Role,
    /// API keys: the scopes of the key; the role's permissions still bound them.
    scopes: Option<Arc<[Permission]>>,
}

impl TenantScope {
    /// `None` for a principal outside any tenant (the platform super-admin).
    pub(crate) fn from_principal(principal: &Principal) -> Option<TenantScope> {
        let tenant_id = principal.tenant_id()?;
        let role = principal.role()?;
        let (actor, scopes) = match principal.credential() {
            Credential::Session(session_id) => {
                (Actor::User { user_id: principal.user_id(), session_id: *session_id }, None)
            }
            Credential::ApiKey { id, scopes } => {
                (Actor::ApiKey { key_id: *id, owner: principal.user_id() }, Some(scopes.clone()))
            }
        };
        Some(TenantScope { tenant_id, actor, role, scopes })
    }

    /// The scope of a super-admin acting in a tenant under a break-glass grant
    /// (`containment::grants`), which checked the grant; the audit log records the
    /// super-admin's user and session as the actor.
    pub(crate) fn break_glass(
        tenant_id: TenantId,
        user_id: UserId,
        session_id: SessionId,
        role: Role,
    ) -> TenantScope {
        TenantScope { tenant_id, actor: Actor::User { user_id, session_id }, role, scopes: None }
    }

    /// A scope for platform work inside one tenant (retention purge, key rotation). Every
    /// call site names why; the audit log records the system as the actor.
    pub fn system(tenant_id: TenantId, reason: &'static str) -> TenantScope {
        TenantScope { tenant_id, actor: Actor::System { reason }, role: Role::Owner, scopes: None }
    }

    pub fn tenant_id(&self) -> TenantId {
        self.tenant_id
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn may(&self, permission: Permission) -> bool {
        self.role.may(permission)
            && self.scopes.as_ref().is_none_or(|scopes| {
                permission.allowed_for_api_keys() && scopes.contains(&permission)
            })
    }

    pub fn require(&self, permission: Permission) -> Result<(), DomainError> {
        if self.may(permission) {
            Ok(())
        } else {
            Err(DomainError::Forbidden("you lack the permission this needs"))
        }
    }

    pub fn is_api_key(&self) -> bool {
        matches!(self.actor, Actor::ApiKey { .. })
    }
}
