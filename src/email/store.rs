//! SQL of the mail side.

use crate::clock::Timestamp;
use crate::ids::EmailDomainId;
use crate::store::{StoreError, TenantTx, query};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DomainRow {
    pub id: EmailDomainId,
    pub domain: String,
    pub selector: String,
    /// The tenant data key `dkim_private` is sealed under (rotation finds older ones).
    pub key_version: i32,
    /// PKCS#1 PEM sealed under the tenant's key.
    pub dkim_private: Vec<u8>,
    pub dkim_public: String,
    pub status: String,
    pub created_at: Timestamp,
    pub verified_at: Option<Timestamp>,
}

/// The domains of the transaction's tenant (`$1`), narrowed by `$rest`.
macro_rules! domains_where {
    ($rest:literal) => {
        concat!(
            "SELECT id, domain, selector, key_version, dkim_private, dkim_public, status, \
             created_at, verified_at FROM email_domains WHERE tenant_id = $1 ",
            $rest
        )
    };
}

pub async fn insert_domain(tx: &mut TenantTx, row: &DomainRow) -> Result<(), StoreError> {
    let tenant = tx.tenant_id();
    query(
        "INSERT INTO email_domains (id, tenant_id, domain, selector, key_version, dkim_private, \
         dkim_public, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .binds((
        row.id,
        tenant,
        row.domain.as_str(),
        row.selector.as_str(),
        row.key_version,
        row.dkim_private.as_slice(),
        row.dkim_public.as_str(),
        row.status.as_str(),
        row.created_at,
    ))
    .execute(tx)
    .await?;
    Ok(())
}

pub async fn domains(tx: &mut TenantTx) -> Result<Vec<DomainRow>, StoreError> {
    let tenant = tx.tenant_id();
    query(domains_where!("ORDER BY domain")).bind(tenant).fetch_all(tx).await
}

pub async fn domain(tx: &mut TenantTx, id: EmailDomainId) -> Result<Option<DomainRow>, StoreError> {
    let tenant = tx.tenant_id();
    query(domains_where!("AND id = $2")).binds((tenant, id)).fetch_optional(tx).await
}

pub async fn domain_by_name(
    tx: &mut TenantTx,
    name: &str,
) -> Result<Option<DomainRow>, StoreError> {
    let tenant = tx.tenant_id();
    query(domains_where!("AND domain = $2")).binds((tenant, name)).fetch_optional(tx).await
}

pub async fn delete_domain(tx: &mut TenantTx, id: EmailDomainId) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    query("DELETE FROM email_domains WHERE tenant_id = $1 AND id = $2")
        .binds((tenant, id))
        .execute_one(tx)
        .await
}

pub async fn mark_verified(
    tx: &mut TenantTx,
    id: EmailDomainId,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    query("UPDATE email_domains SET status = 'verified', verified_at = $3 WHERE tenant_id = $1 AND id = $2")
        .binds((tenant, id, now))
        .execute_one(tx)
        .await
}

/// Domains whose key is sealed under a data key older than `version` (rotation).
pub async fn older_than(tx: &mut TenantTx, version: i32) -> Result<Vec<DomainRow>, StoreError> {
    let tenant = tx.tenant_id();
    query(domains_where!("AND key_version < $2 ORDER BY id LIMIT 100"))
        .binds((tenant, version))
        .fetch_all(tx)
        .await
}

/// Rewrites a domain's sealed key, unless it changed since it was read.
pub async fn reseal(
    tx: &mut TenantTx,
    id: EmailDomainId,
    was: i32,
    version: i32,
    sealed: &[u8],
) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    query(
        "UPDATE email_domains SET key_version = $4, dkim_private = $5 \
         WHERE tenant_id = $1 AND id = $2 AND key_version = $3",
    )
    .binds((tenant, id, was, version, sealed))
    .execute_one(tx)
    .await
}
