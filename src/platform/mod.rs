//! The platform super-admin's view of the deployment. The super-admin has no tenant scope,
//! so nothing here reaches a tenant's business data: tenants appear as accounts, and every
//! look is audited in the platform chain.

pub mod routes;

use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::error::DomainResult;
use crate::identity::Principal;
use crate::ids::TenantId;
use crate::tenancy::store::{self as db, TenantRow};

/// A page of tenants after `after`; audited.
pub async fn list_tenants(
    app: &AppState,
    ctx: &RequestContext,
    principal: &Principal,
    after: Option<TenantId>,
    limit: i64,
) -> DomainResult<Vec<TenantRow>> {
    let mut tx = app.store().system_tx().await?;
    let rows = db::list_tenants(&mut tx, after, limit).await?;
    audit::record_platform(
        &mut tx,
        None,
        ctx,
        Event::new(Action::PlatformTenantsList)
            .by_user(principal.user_id())
            .detail("count", rows.len()),
    )
    .await?;
    tx.commit().await?;
    Ok(rows)
}
