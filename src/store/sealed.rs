//! Re-sealing a table's sealed column under the current data key (tenant key rotation): the
//! two statements every such column needs, written once from the table's and the columns'
//! names. `crm::reseal_column` runs them in batches.

use super::{StoreError, TenantTx, query};

/// A column of values sealed under a tenant data key, and the column of that key's version.
pub struct SealedColumn {
    /// For messages: e.g. `email_domains.dkim_private`.
    pub name: &'static str,
    select: &'static str,
    update: &'static str,
}

/// `sealed_column!("table", "version column", "value column")`.
macro_rules! sealed_column {
    ($table:literal, $version:literal, $value:literal) => {
        $crate::store::sealed::SealedColumn::new(
            concat!($table, ".", $value),
            concat!(
                "SELECT id, ",
                $version,
                ", ",
                $value,
                " FROM ",
                $table,
                " WHERE tenant_id = $1 AND ",
                $version,
                " < $2 ORDER BY id LIMIT 200"
            ),
            concat!(
                "UPDATE ",
                $table,
                " SET ",
                $version,
                " = $4, ",
                $value,
                " = $5",
                " WHERE tenant_id = $1 AND id = $2 AND ",
                $version,
                " = $3"
            ),
        )
    };
}
pub(crate) use sealed_column;

impl SealedColumn {
    #[doc(hidden)]
    pub const fn new(name: &'static str, select: &'static str, update: &'static str) -> Self {
        SealedColumn { name, select, update }
    }

    /// Up to 200 rows sealed under a data key older than `version`: (id, its key version, the
    /// sealed value).
    pub async fn older_than(
        &self,
        tx: &mut TenantTx,
        version: i32,
    ) -> Result<Vec<(uuid::Uuid, i32, Vec<u8>)>, StoreError> {
        let tenant = tx.tenant_id();
        query(self.select).binds((tenant, version)).fetch_all(tx).await
    }

    /// Rewrites one sealed value, unless its row changed since it was read.
    pub async fn reseal(
        &self,
        tx: &mut TenantTx,
        id: uuid::Uuid,
        was: i32,
        version: i32,
        sealed: &[u8],
    ) -> Result<bool, StoreError> {
        let tenant = tx.tenant_id();
        query(self.update).binds((tenant, id, was, version, sealed)).execute_one(tx).await
    }
}
