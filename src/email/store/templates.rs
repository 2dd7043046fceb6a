//! SQL of email templates.

use crate::clock::Timestamp;
use crate::ids::EmailTemplateId;
use crate::store::{StoreError, TenantTx, query};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TemplateRow {
    pub id: EmailTemplateId,
    pub name: String,
    pub key_version: i32,
    /// Subject and bodies, sealed under the tenant's key.
    pub content: Vec<u8>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The templates of the transaction's tenant (`$1`), narrowed by `$rest`.
macro_rules! templates_where {
    ($rest:literal) => {
        concat!(
            "SELECT id, name, key_version, content, created_at, updated_at FROM email_templates \
             WHERE tenant_id = $1 ",
            $rest
        )
    };
}

/// `false` when the tenant has a template of that name already.
pub async fn insert_template(tx: &mut TenantTx, row: &TemplateRow) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    query(
        "INSERT INTO email_templates (id, tenant_id, name, key_version, content, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, name) DO NOTHING",
    )
    .binds((
        row.id,
        tenant,
        row.name.as_str(),
        row.key_version,
        row.content.as_slice(),
        row.created_at,
        row.updated_at,
    ))
    .execute_one(tx)
    .await
}

/// Name order; `after` is the last name of the previous page.
pub async fn templates(
    tx: &mut TenantTx,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<TemplateRow>, StoreError> {
    let tenant = tx.tenant_id();
    query(templates_where!("AND ($2 IS NULL OR name > $2) ORDER BY name LIMIT $3"))
        .binds((tenant, after, limit))
        .fetch_all(tx)
        .await
}

pub async fn template(
    tx: &mut TenantTx,
    id: EmailTemplateId,
) -> Result<Option<TemplateRow>, StoreError> {
    let tenant = tx.tenant_id();
    query(templates_where!("AND id = $2")).binds((tenant, id)).fetch_optional(tx).await
}

/// `false` when another template of the tenant has that name (or the template is gone).
pub async fn update_template(tx: &mut TenantTx, row: &TemplateRow) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    let taken = query(templates_where!("AND name = $2 AND id <> $3"))
        .binds((tenant, row.name.as_str(), row.id))
        .fetch_optional::<TemplateRow>(tx)
        .await?
        .is_some();
    if taken {
        return Ok(false);
    }
    query(
        "UPDATE email_templates SET name = $3, key_version = $4, content = $5, updated_at = $6 \
         WHERE tenant_id = $1 AND id = $2",
    )
    .binds((
        tenant,
        row.id,
        row.name.as_str(),
        row.key_version,
        row.content.as_slice(),
        row.updated_at,
    ))
    .execute_one(tx)
    .await
}

pub async fn delete_template(tx: &mut TenantTx, id: EmailTemplateId) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    query("DELETE FROM email_templates WHERE tenant_id = $1 AND id = $2")
        .binds((tenant, id))
        .execute_one(tx)
        .await
}
