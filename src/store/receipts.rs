//! Signed deliveries received from outside (the relay's bounce events, Stripe's and Zoom's
//! webhooks), by source and the sender's id: each is acted on once. A receipt is recorded in
//! the same transaction as the action, so a crash between the two loses neither: the
//! sender's retry finds no receipt and acts; a second delivery finds one and changes nothing.

use super::{AsRawTx, StoreError, query};
use crate::clock::Timestamp;

/// Records a signed webhook delivery; `false` when its id was seen before.
/// Any transaction may record one (a tenant's, where the delivery acts); only platform code
/// reads them.
pub async fn claim(
    tx: &mut impl AsRawTx,
    source: &str,
    webhook_id: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    // A plain INSERT: `ON CONFLICT` would need the rows to be visible to the transaction,
    // which a tenant's is not. A second delivery of the id waits for the first to end, then
    // meets the key (and its transaction ends unused).
    let inserted =
        query("INSERT INTO webhook_receipts (source, webhook_id, received_at) VALUES ($1, $2, $3)")
            .binds((source, webhook_id, now))
            .execute(tx)
            .await;
    match inserted {
        Ok(_) => Ok(true),
        Err(StoreError::Conflict(_)) => Ok(false),
        Err(err) => Err(err),
    }
}

/// Whether a delivery with this id was recorded (platform transactions only).
pub async fn seen(
    tx: &mut impl AsRawTx,
    source: &str,
    webhook_id: &str,
) -> Result<bool, StoreError> {
    let n: i64 =
        query("SELECT count(*) FROM webhook_receipts WHERE source = $1 AND webhook_id = $2")
            .binds((source, webhook_id))
            .scalar(tx)
            .await?;
    Ok(n > 0)
}
