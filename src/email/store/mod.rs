//! SQL of the mail side, by what it owns; here the re-sealing every mail table shares.

use crate::store::{StoreError, TenantTx, query};

mod domains;
mod messages;
mod outbox;
mod suppressions;
mod templates;

pub use domains::*;
pub use messages::*;
pub use outbox::*;
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

impl Sealed {
    pub const ALL: [Sealed; 5] = [
        Sealed::Domains,
        Sealed::NextDkim,
        Sealed::Messages,
        Sealed::Suppressions,
        Sealed::Templates,
    ];
}

/// Up to 200 rows of `table` sealed under a data key older than `version`: (id, its key
/// version, the sealed value).
pub async fn sealed_older_than(
    tx: &mut TenantTx,
    table: Sealed,
    version: i32,
) -> Result<Vec<(uuid::Uuid, i32, Vec<u8>)>, StoreError> {
    let tenant = tx.tenant_id();
    let sql = match table {
        Sealed::Domains => {
            "SELECT id, key_version, dkim_private FROM email_domains \
             WHERE tenant_id = $1 AND key_version < $2 ORDER BY id LIMIT 200"
        }
        Sealed::NextDkim => {
            "SELECT id, next_key_version, next_dkim_private FROM email_domains \
             WHERE tenant_id = $1 AND next_key_version < $2 ORDER BY id LIMIT 200"
        }
        Sealed::Templates => {
            "SELECT id, key_version, content FROM email_templates \
             WHERE tenant_id = $1 AND key_version < $2 ORDER BY id LIMIT 200"
        }
        Sealed::Messages => {
            "SELECT id, key_version, payload FROM email_messages \
             WHERE tenant_id = $1 AND key_version < $2 ORDER BY id LIMIT 200"
        }
        Sealed::Suppressions => {
            "SELECT id, key_version, email_enc FROM email_suppressions \
             WHERE tenant_id = $1 AND key_version < $2 ORDER BY id LIMIT 200"
        }
    };
    query(sql).binds((tenant, version)).fetch_all(tx).await
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
    let sql = match table {
        Sealed::Domains => {
            "UPDATE email_domains SET key_version = $4, dkim_private = $5 \
             WHERE tenant_id = $1 AND id = $2 AND key_version = $3"
        }
        Sealed::NextDkim => {
            "UPDATE email_domains SET next_key_version = $4, next_dkim_private = $5 \
             WHERE tenant_id = $1 AND id = $2 AND next_key_version = $3"
        }
        Sealed::Templates => {
            "UPDATE email_templates SET key_version = $4, content = $5 \
             WHERE tenant_id = $1 AND id = $2 AND key_version = $3"
        }
        Sealed::Messages => {
            "UPDATE email_messages SET key_version = $4, payload = $5 \
             WHERE tenant_id = $1 AND id = $2 AND key_version = $3"
        }
        Sealed::Suppressions => {
            "UPDATE email_suppressions SET key_version = $4, email_enc = $5 \
             WHERE tenant_id = $1 AND id = $2 AND key_version = $3"
        }
    };
    query(sql).binds((tenant, id, was, version, sealed)).execute_one(tx).await
}
