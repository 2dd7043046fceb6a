//! Backup codes: ten random 12-character codes (60 bits each, so a SHA-256 bound to the user
//! needs no slow hash), single use, shown once.

use sha2::{Digest as _, Sha256};

use super::{session_of, store};
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::Timestamp;
use crate::crypto;
use crate::error::{DomainError, DomainResult};
use crate::identity::Principal;
use crate::ids::{TenantId, UserId};

pub const BACKUP_CODES: usize = 10;
/// 32 symbols without 0/o, 1/l: a random byte maps onto it without bias (256 = 8 × 32).
const CODE_ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";

pub(super) fn hash_code(user: UserId, code: &str) -> Vec<u8> {
    let normalised: String =
        code.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
    Sha256::new()
        .chain_update(user.to_string())
        .chain_update(b":")
        .chain_update(normalised)
        .finalize()
        .to_vec()
}

pub(super) async fn new_backup_codes(
    tx: &mut crate::store::SystemTx,
    user: UserId,
    tenant: Option<TenantId>,
    now: Timestamp,
) -> DomainResult<Vec<String>> {
    let mut codes = vec![];
    let mut hashes = vec![];
    for _ in 0..BACKUP_CODES {
        let bytes = crypto::random_bytes::<12>();
        let raw: String =
            bytes.iter().map(|b| CODE_ALPHABET[usize::from(*b) % 32] as char).collect();
        let code = format!("{}-{}-{}", &raw[0..4], &raw[4..8], &raw[8..12]);
        hashes.push(hash_code(user, &code));
        codes.push(code);
    }
    store::replace_backup_codes(tx, user, tenant, &hashes, now).await?;
    Ok(codes)
}

pub async fn regenerate_backup_codes(
    app: &AppState,
    ctx: &RequestContext,
    principal: &Principal,
) -> DomainResult<Vec<String>> {
    session_of(principal)?;
    let user = principal.user_id();
    let mut tx = app.store().system_tx().await?;
    if store::totp(&mut tx, user).await?.is_none_or(|t| t.confirmed_at.is_none()) {
        return Err(DomainError::Conflict("backup codes come with TOTP; set it up first"));
    }
    let codes = new_backup_codes(&mut tx, user, principal.tenant_id(), Timestamp::now()).await?;
    audit::record_platform(
        &mut tx,
        principal.tenant_id(),
        ctx,
        Event::new(Action::MfaBackupCodesRegenerated).by_user(user),
    )
    .await?;
    tx.commit().await?;
    Ok(codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_codes_hash_per_user_and_ignore_formatting() {
        let (a, b) = (UserId::new(), UserId::new());
        assert_eq!(hash_code(a, "abcd-efgh-jkmn"), hash_code(a, "ABCD EFGH JKMN"));
        assert_ne!(hash_code(a, "abcd-efgh-jkmn"), hash_code(b, "abcd-efgh-jkmn"));
    }
}
