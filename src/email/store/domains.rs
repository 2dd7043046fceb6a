//! SQL of sending domains and their DKIM keys.

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
    /// A rotation's next key: published beside the current one, signing once it verifies.
    pub next_selector: Option<String>,
    pub next_dkim_private: Option<Vec<u8>>,
    pub next_dkim_public: Option<String>,
}

/// The domains of the transaction's tenant (`$1`), narrowed by `$rest`.
macro_rules! domains_where {
    ($rest:literal) => {
        concat!(
            "SELECT id, domain, selector, key_version, dkim_private, dkim_public, status, \
             created_at, verified_at, next_selector, next_dkim_private, next_dkim_public FROM email_domains WHERE tenant_id = $1 ",
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

/// Keeps a new key beside the current one (replacing an earlier rotation still pending).
pub async fn set_next_key(
    tx: &mut TenantTx,
    id: EmailDomainId,
    selector: &str,
    key_version: i32,
    private: &[u8],
    public: &str,
) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    query(
        "UPDATE email_domains SET next_selector = $3, next_key_version = $4, \
         next_dkim_private = $5, next_dkim_public = $6 WHERE tenant_id = $1 AND id = $2",
    )
    .binds((tenant, id, selector, key_version, private, public))
    .execute_one(tx)
    .await
}

/// The next key becomes the signing key (`private`: it, sealed for its new place), if it is
/// still the one `selector` names.
pub async fn promote_next_key(
    tx: &mut TenantTx,
    id: EmailDomainId,
    selector: &str,
    key_version: i32,
    private: &[u8],
) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    query(
        "UPDATE email_domains SET selector = next_selector, key_version = $4, \
         dkim_private = $5, dkim_public = next_dkim_public, \
         next_selector = NULL, next_key_version = NULL, next_dkim_private = NULL, \
         next_dkim_public = NULL WHERE tenant_id = $1 AND id = $2 AND next_selector = $3",
    )
    .binds((tenant, id, selector, key_version, private))
    .execute_one(tx)
    .await
}
