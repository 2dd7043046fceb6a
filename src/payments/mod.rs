//! Payments against a tenant's companies, recorded from Stripe's signed events (`stripe`):
//! `payment_intent.succeeded`, `charge.refunded` and `invoice.paid` whose object's metadata
//! names the tenant (`tenant_id`) and the company (`company_id`). Amounts and currencies
//! only: a card number never reaches Bulwark (Stripe's event objects carry none) and nothing
//! else of the object is kept. Reading needs `payments:read` (managers and up).

pub mod routes;
mod store;
pub mod stripe;

use serde::Serialize;
use utoipa::ToSchema;

use self::store::PaymentRow;
use crate::app::AppState;
use crate::clock::Timestamp;
use crate::error::DomainResult;
use crate::ids::{CompanyId, PaymentId};
use crate::pagination::{Page, check_limit, decode_cursor};
use crate::tenancy::{Permission, TenantScope};

#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentView {
    pub id: PaymentId,
    pub company_id: CompanyId,
    /// `payment` (a payment intent succeeded), `refund` (a charge was refunded) or
    /// `invoice` (an invoice was paid).
    pub kind: String,
    /// In minor units of `currency`; a refund's amount is what was refunded.
    pub amount_minor: i64,
    pub currency: String,
    /// Stripe's id of the object (`pi_…`, `ch_…`, `in_…`).
    pub stripe_object_id: String,
    /// When Stripe says it happened.
    pub occurred_at: Timestamp,
    pub created_at: Timestamp,
}

impl From<PaymentRow> for PaymentView {
    fn from(row: PaymentRow) -> Self {
        PaymentView {
            id: row.id,
            company_id: row.company_id,
            kind: row.kind,
            amount_minor: row.amount_minor,
            currency: row.currency,
            stripe_object_id: row.stripe_object_id,
            occurred_at: row.occurred_at,
            created_at: row.created_at,
        }
    }
}

/// The tenant's payments, newest first, of one company when `company` is given.
pub async fn list(
    app: &AppState,
    scope: &TenantScope,
    company: Option<CompanyId>,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> DomainResult<Page<PaymentView>> {
    scope.require(Permission::PaymentsRead)?;
    let limit = check_limit(limit)?;
    let before = decode_cursor::<uuid::Uuid>(cursor)?.map(PaymentId::from_uuid);
    let mut tx = app.store().tenant_read(scope).await?;
    let rows = store::list(&mut tx, company, before, limit + 1).await?;
    tx.commit().await?;
    Ok(Page::from_rows(rows, limit, |r| r.id.to_string(), PaymentView::from))
}
