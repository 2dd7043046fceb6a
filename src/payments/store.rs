//! SQL of payments.

use crate::clock::Timestamp;
use crate::ids::{CompanyId, PaymentId};
use crate::store::{StoreError, TenantTx, query};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PaymentRow {
    pub id: PaymentId,
    pub company_id: CompanyId,
    pub kind: String,
    pub amount_minor: i64,
    pub currency: String,
    pub stripe_object_id: String,
    pub stripe_event_id: String,
    pub occurred_at: Timestamp,
    pub created_at: Timestamp,
}

pub async fn insert(tx: &mut TenantTx, row: &PaymentRow) -> Result<(), StoreError> {
    let tenant = tx.tenant_id();
    query(
        "INSERT INTO payments (id, tenant_id, company_id, kind, amount_minor, currency, \
         stripe_object_id, stripe_event_id, occurred_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .binds((
        row.id,
        tenant,
        row.company_id,
        row.kind.as_str(),
        row.amount_minor,
        row.currency.as_str(),
        row.stripe_object_id.as_str(),
        row.stripe_event_id.as_str(),
        row.occurred_at,
        row.created_at,
    ))
    .execute(tx)
    .await?;
    Ok(())
}

/// What was recorded as refunded of one Stripe charge so far (minor units).
pub async fn refunded(tx: &mut TenantTx, charge: &str) -> Result<i64, StoreError> {
    let tenant = tx.tenant_id();
    query(
        "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM payments \
         WHERE tenant_id = $1 AND kind = 'refund' AND stripe_object_id = $2",
    )
    .binds((tenant, charge))
    .scalar(tx)
    .await
}

/// Whether the transaction's tenant has this company.
pub async fn company_exists(tx: &mut TenantTx, company: CompanyId) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    let found: i64 = query("SELECT count(*) FROM companies WHERE tenant_id = $1 AND id = $2")
        .binds((tenant, company))
        .scalar(tx)
        .await?;
    Ok(found > 0)
}

/// Newest first, of one company or all; `before` is the last id of the previous page.
pub async fn list(
    tx: &mut TenantTx,
    company: Option<CompanyId>,
    before: Option<PaymentId>,
    limit: i64,
) -> Result<Vec<PaymentRow>, StoreError> {
    let tenant = tx.tenant_id();
    query(
        "SELECT id, company_id, kind, amount_minor, currency, stripe_object_id, stripe_event_id, \
         occurred_at, created_at FROM payments WHERE tenant_id = $1 \
         AND ($2 IS NULL OR company_id = $2) AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4",
    )
    .binds((tenant, company, before, limit))
    .fetch_all(tx)
    .await
}
