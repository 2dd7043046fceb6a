//! SQL of the mail side, by what it owns; here the re-sealing every mail table shares.

use crate::store::{StoreError, TenantTx, query};

mod domains;
mod messages;
mod suppressions;
mod templates;

pub use domains::*;
pub use messages::*;
pub use suppressions::*;
pub use templates::*;

/// The mail tables with values sealed under a tenant data key.
#[derive(Debug, Clone, Copy)]
pub enum Sealed {
    Domains,
    /// A domain's next DKIM key, while a rotation waits for its record.
    NextDkim,
    Messages,
    Suppressions,
    Templates,
}

/// The two statements of re-sealing one table's column: read what an older key sealed,
/// rewrite it unless the row changed meanwhile.
macro_rules! sealed_sql {
    ($table:literal, $version:literal, $value:literal) => {
        (
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

impl Sealed {
    pub const ALL: [Sealed; 5] = [
        Sealed::Domains,
        Sealed::NextDkim,
        Sealed::Messages,
        Sealed::Suppressions,
        Sealed::Templates,
    ];

    /// (select, update) for this table's sealed column and its key version.
    const fn sql(self) -> (&'static str, &'static str) {
        match self {
            Sealed::Domains => sealed_sql!("email_domains", "key_version", "dkim_private"),
            Sealed::NextDkim => {
                sealed_sql!("email_domains", "next_key_version", "next_dkim_private")
            }
            Sealed::Messages => sealed_sql!("email_messages", "key_version", "payload"),
            Sealed::Suppressions => sealed_sql!("email_suppressions", "key_version", "email_enc"),
            Sealed::Templates => sealed_sql!("email_templates", "key_version", "content"),
        }
    }
}

/// Up to 200 rows of `table` sealed under a data key older than `version`: (id, its key
/// version, the sealed value).
pub async fn sealed_older_than(
    tx: &mut TenantTx,
    table: Sealed,
    version: i32,
) -> Result<Vec<(uuid::Uuid, i32, Vec<u8>)>, StoreError> {
    let tenant = tx.tenant_id();
    query(table.sql().0).binds((tenant, version)).fetch_all(tx).await
}

/// Rewrites one sealed value, unless its row changed since it was read.
pub async fn reseal(
    tx: &mut TenantTx,
    table: Sealed,
    id: uuid::Uuid,
    was: i32,
    version: i32,
    sealed: &[u8],
) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    query(table.sql().1).binds((tenant, id, was, version, sealed)).execute_one(tx).await
}
