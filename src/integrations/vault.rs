//! The sealed half of a connection: its tokens and who the account is at the provider,
//! encrypted under the tenant's data key with the row's place as associated data.

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::store::IntegrationRow;
use crate::crypto::KeySet;
use crate::crypto::field::Place;
use crate::error::{DomainError, DomainResult};
use crate::ids::{IntegrationId, TenantId};

/// What is sealed: the tokens and who the account is at the provider.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub(super) struct Vault {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub account_email: Option<String>,
    pub external_id: Option<String>,
}

pub(super) fn place(tenant: TenantId, id: IntegrationId) -> Place<'static> {
    Place { tenant, table: "integrations", column: "sealed", row: id.as_uuid() }
}

pub(super) fn seal(
    keys: &KeySet,
    tenant: TenantId,
    id: IntegrationId,
    vault: &Vault,
) -> DomainResult<Vec<u8>> {
    let plain = Zeroizing::new(
        serde_json::to_vec(vault).map_err(|err| DomainError::Internal(err.to_string()))?,
    );
    Ok(keys.encrypt(&place(tenant, id), &plain))
}

pub(super) fn open(keys: &KeySet, tenant: TenantId, row: &IntegrationRow) -> DomainResult<Vault> {
    let plain = keys
        .decrypt(&place(tenant, row.id), &row.sealed)
        .map_err(|err| DomainError::Internal(format!("integration {}: {err}", row.id)))?;
    serde_json::from_slice(&plain).map_err(|err| DomainError::Internal(err.to_string()))
}

pub(super) fn version(keys: &KeySet) -> i32 {
    i32::try_from(keys.current_version()).unwrap_or(i32::MAX)
}
