//! `Idempotency-Key` on POSTs that create or send.
//!
//! Per scope (the caller: a user or an API key within its tenant; for anonymous routes the
//! client address) and key, for 24 hours:
//! the first request runs and its response is stored (encrypted); a retry with the same key
//! and the same request (method, path and body fingerprint) gets the stored response again
//! with `Idempotent-Replayed: true`; the same key with a different request is 422; a
//! duplicate arriving while the first still runs is 409. Only successful (2xx) responses are
//! stored: a refused or failed request changed nothing, so its key is released and a retry
//! runs again. The records live in the database, so they hold across instances and restarts.

mod store;

use std::time::Duration;

use sha2::{Digest as _, Sha256};

use crate::app::AppState;
use crate::clock::Timestamp;
use crate::crypto::aead;
use crate::store::StoreError;

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED: &str = "idempotent-replayed";
const LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Responses larger than this are not kept (none of ours come close).
pub const MAX_STORED: usize = 1 << 20;
const PURPOSE: &str = "idempotency-responses";

/// What a request with a key may do.
pub enum Claim {
    /// Run it; then `keep` its answer or `release` the key.
    Fresh,
    /// Answer with the stored response.
    Replay { status: u16, content_type: Option<String>, body: Vec<u8> },
    /// The key was used for another request.
    Mismatch,
    /// A request with this key is still running.
    InFlight,
}

/// Whether a presented key is acceptable: 1 to 255 visible ASCII characters.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= 255 && key.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// What identifies "the same request": method, path with query, and body.
pub fn fingerprint(method: &str, path_and_query: &str, body: &[u8]) -> Vec<u8> {
    Sha256::new()
        .chain_update(method)
        .chain_update(b"\n")
        .chain_update(path_and_query)
        .chain_update(b"\n")
        .chain_update(body)
        .finalize()
        .to_vec()
}

fn aad(scope: &str, key: &str) -> Vec<u8> {
    format!("bulwark:idempotency:v1:{scope}:{key}").into_bytes()
}

/// Claims `(scope, key)` for a request with this fingerprint.
pub async fn claim(
    app: &AppState,
    scope: &str,
    key: &str,
    fingerprint: &[u8],
    timeout: Duration,
) -> Result<Claim, StoreError> {
    let now = Timestamp::now();
    let locked_until = now.plus(timeout + Duration::from_secs(5));
    let mut tx = app.store().system_tx().await?;
    if store::claim(&mut tx, scope, key, fingerprint, now, locked_until, now.plus(LIFETIME)).await?
    {
        tx.commit().await?;
        return Ok(Claim::Fresh);
    }
    let Some(row) = store::get(&mut tx, scope, key).await? else {
        // Purged between the two statements: claim again.
        store::claim(&mut tx, scope, key, fingerprint, now, locked_until, now.plus(LIFETIME))
            .await?;
        tx.commit().await?;
        return Ok(Claim::Fresh);
    };
    let claim = if row.expires_at <= now {
        store::delete(&mut tx, scope, key).await?;
        store::claim(&mut tx, scope, key, fingerprint, now, locked_until, now.plus(LIFETIME))
            .await?;
        Claim::Fresh
    } else if row.fingerprint != fingerprint {
        Claim::Mismatch
    } else if row.state == "in_flight" {
        if row.locked_until <= now {
            // The first attempt died (crash, deploy) without an answer: this one takes over.
            store::relock(&mut tx, scope, key, locked_until).await?;
            Claim::Fresh
        } else {
            Claim::InFlight
        }
    } else {
        let body = match (&row.body, &row.master_key_id) {
            (Some(sealed), Some(master)) => app
                .keys()
                .derive_with(master, PURPOSE)
                .ok()
                .and_then(|k| aead::open(k.expose(), &aad(scope, key), sealed).ok())
                .map(|plain| plain.to_vec()),
            _ => Some(vec![]),
        };
        match body {
            Some(body) => Claim::Replay {
                status: row.status.and_then(|s| u16::try_from(s).ok()).unwrap_or(200),
                content_type: row.content_type,
                body,
            },
            // Sealed under a master key no longer configured: the answer is lost, and running
            // the request again could duplicate its effect.
            None => Claim::Mismatch,
        }
    };
    tx.commit().await?;
    Ok(claim)
}

/// The request failed or was refused: it changed nothing, so a retry may run again.
pub async fn release(app: &AppState, scope: &str, key: &str) -> Result<(), StoreError> {
    let mut tx = app.store().system_tx().await?;
    store::delete(&mut tx, scope, key).await?;
    tx.commit().await?;
    Ok(())
}

/// Keeps a successful response (sealed) for the key's remaining lifetime. One too large to
/// keep releases the key instead.
pub async fn keep(
    app: &AppState,
    scope: &str,
    key: &str,
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<(), StoreError> {
    if body.len() > MAX_STORED {
        release(app, scope, key).await?;
        return Err(StoreError::Setup("a response too large to keep for idempotency".into()));
    }
    let (master, sealing_key) =
        app.keys().derive_current(PURPOSE).map_err(|err| StoreError::Setup(err.to_string()))?;
    let sealed = aead::seal(sealing_key.expose(), &aad(scope, key), body);
    let mut tx = app.store().system_tx().await?;
    let finished = store::Finished {
        status: i32::from(status),
        content_type,
        body: &sealed,
        master_key_id: &master,
    };
    store::finish(&mut tx, scope, key, &finished).await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes records past their 24 hours. Run periodically.
pub async fn purge_expired(app: &AppState) -> Result<u64, StoreError> {
    let mut tx = app.store().system_tx().await?;
    let removed = store::purge_expired(&mut tx, Timestamp::now()).await?;
    tx.commit().await?;
    Ok(removed)
}
