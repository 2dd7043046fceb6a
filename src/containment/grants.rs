//! Break-glass: the platform super-admin reads (or, when the grant says so, changes) one
//! tenant's data only through a time-boxed grant. The grant needs a recent step-up, is
//! audited in the platform chain and in the tenant's own (so the tenant's audit log shows
//! it), lasts at most an hour and ends by itself.
//!
//! During the grant the super-admin calls the ordinary tenant routes with
//! `X-Bulwark-Tenant: {tenant_id}`; the gate (`http::gate`) asks `scope_for` for a tenant
//! scope. The scope carries an admin's rights (never the owner's billing), the super-admin
//! as the actor of every audit event, and refuses every method but GET and HEAD unless the
//! grant allows writes. Without a grant the answer is 404, as for anyone outside the tenant.
//!
//! When mail is configured (`BULWARK_SMTP_URL`, `BULWARK_EMAIL_FROM`) the tenant's owners are
//! mailed about each grant, through the tenant's outbox; the tenant's audit log shows it
//! either way.

use std::time::Duration;

use super::store::{self, GrantRow};
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::Timestamp;
use crate::email::notices::{self, Notice};
use crate::error::{DomainError, DomainResult};
use crate::identity::{Credential, Principal};
use crate::ids::{GrantId, TenantId};
use crate::tenancy::{Permission, Role, TenantScope};

/// The header naming the tenant a super-admin acts in under a grant.
pub const HEADER: &str = "x-bulwark-tenant";

/// The longest grant.
pub const MAX_MINUTES: u32 = 60;

/// The longest reason kept with a grant.
const MAX_REASON: usize = 500;

/// A grant as the super-admin asks for it.
pub struct GrantRequest {
    pub reason: String,
    pub minutes: u32,
    pub write: bool,
}

/// Opens a grant for `principal` (a super-admin) on `tenant`; audited in both chains.
pub async fn grant(
    app: &AppState,
    ctx: &RequestContext,
    principal: &Principal,
    tenant: TenantId,
    request: GrantRequest,
) -> DomainResult<GrantRow> {
    let mut problems = vec![];
    let reason = request.reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON {
        problems.push(("reason".into(), format!("must be 1 to {MAX_REASON} characters")));
    }
    if !(1..=MAX_MINUTES).contains(&request.minutes) {
        problems.push(("minutes".into(), format!("must be 1 to {MAX_MINUTES}")));
    }
    if !problems.is_empty() {
        return Err(DomainError::Invalid(problems));
    }
    let now = Timestamp::now();
    let row = GrantRow {
        id: GrantId::new(),
        tenant_id: tenant,
        user_id: principal.user_id(),
        reason: reason.to_owned(),
        can_write: request.write,
        created_at: now,
        expires_at: now.plus(Duration::from_secs(u64::from(request.minutes) * 60)),
    };
    let mut tx = app.store().system_tx().await?;
    if !store::tenant_is_active(&mut tx, tenant).await? {
        return Err(DomainError::NotFound("tenant"));
    }
    store::insert_grant(&mut tx, &row).await?;
    let event = || {
        Event::new(Action::PlatformAccessGrant)
            .by_user(principal.user_id())
            .target("access_grant", row.id)
            .detail("tenant_id", tenant.to_string())
            .detail("reason", row.reason.as_str())
            .detail("minutes", request.minutes)
            .detail("write", row.can_write)
            .detail("expires_at", row.expires_at.rfc3339())
    };
    audit::record_platform(&mut tx, None, ctx, event()).await?;
    audit::record_platform(&mut tx, Some(tenant), ctx, event()).await?;
    tx.commit().await?;
    notify_owners(app, &row).await?;
    Ok(row)
}

/// Ends the caller's running grants on `tenant` now (the work is done early); audited in both
/// chains. 404 when none is running.
pub async fn end(
    app: &AppState,
    ctx: &RequestContext,
    principal: &Principal,
    tenant: TenantId,
) -> DomainResult<()> {
    let mut tx = app.store().system_tx().await?;
    let now = Timestamp::now();
    let ended = store::end_grants(&mut tx, principal.user_id(), tenant, now).await?;
    if ended == 0 {
        return Err(DomainError::NotFound("access grant"));
    }
    let event = || {
        Event::new(Action::PlatformAccessEnd)
            .by_user(principal.user_id())
            .detail("tenant_id", tenant.to_string())
            .detail("grants", ended)
    };
    audit::record_platform(&mut tx, None, ctx, event()).await?;
    audit::record_platform(&mut tx, Some(tenant), ctx, event()).await?;
    tx.commit().await?;
    Ok(())
}

/// Mails the tenant's owners about a grant (when mail is configured).
async fn notify_owners(app: &AppState, grant: &GrantRow) -> DomainResult<()> {
    let scope = TenantScope::system(grant.tenant_id, "break-glass notice");
    let mut tx = app.store().tenant_tx(&scope).await?;
    let owners = crate::tenancy::store::owner_emails(&mut tx).await?;
    let access = if grant.can_write { "read and change" } else { "read" };
    let text = format!(
        "A platform administrator of Bulwark opened time-boxed access to your workspace.\n\n\
         Access: {access}\nUntil: {until}\nReason: {reason}\nGrant: {id}\n\n\
         Every action taken under it is in your audit log. If you did not expect this, \
         contact the platform's security team.\n",
        until = grant.expires_at.rfc3339(),
        reason = grant.reason,
        id = grant.id,
    );
    let notice = Notice {
        to: owners,
        subject: "Platform access to your workspace",
        text,
        suppressible: false,
    };
    let queued = notices::queue(app, &mut tx, notice).await?;
    tx.commit().await?;
    if queued {
        notices::wake(app);
    }
    Ok(())
}

/// What a break-glass scope may do at all: never manage who gets in (members, invitations,
/// API keys, the tenant's security settings) or the tenant's money — access created under a
/// grant would outlive it.
pub fn grantable(permission: Permission) -> bool {
    use Permission::*;
    !matches!(permission, UsersManage | ApiKeysManage | TenantManage | BillingManage | CreditManage)
}

/// The tenant scope a super-admin's request gets under a grant on `tenant`: `NotFound`
/// without one (or for anything but a signed-in session), `Forbidden` for a write under a
/// read-only grant.
pub async fn scope_for(
    app: &AppState,
    principal: &Principal,
    tenant: TenantId,
    writes: bool,
) -> DomainResult<TenantScope> {
    let Credential::Session(session) = principal.credential() else {
        return Err(DomainError::NotFound("resource"));
    };
    if !principal.is_superadmin() {
        return Err(DomainError::NotFound("resource"));
    }
    let mut tx = app.store().system_read().await?;
    let grant = store::active_grant(&mut tx, principal.user_id(), tenant, Timestamp::now()).await?;
    tx.commit().await?;
    let grant = grant.ok_or(DomainError::NotFound("resource"))?;
    if writes && !grant.can_write {
        return Err(DomainError::Forbidden("the access grant is read-only"));
    }
    Ok(TenantScope::break_glass(tenant, principal.user_id(), *session, Role::Admin))
}
