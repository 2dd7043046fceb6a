//! The hash chain: how an event is hashed, and verification of every chain.

use serde::Serialize;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use super::store::{self, AuditRow};
use crate::ids::TenantId;
use crate::store::{Store, StoreError};

/// The `prev_hash` of the first event of a chain.
pub const GENESIS: [u8; 32] = [0; 32];

/// The fields an event's hash covers, in a fixed order. Changing this struct changes every
/// hash: bump `v` and keep the old layout for old events if it ever must change.
#[derive(Serialize)]
pub(super) struct Canonical<'a> {
    v: u8,
    id: String,
    chain_id: String,
    tenant_id: Option<String>,
    seq: i64,
    occurred_at: i64,
    actor_type: &'a str,
    actor_id: Option<&'a str>,
    action: &'a str,
    target_type: Option<&'a str>,
    target_id: Option<&'a str>,
    outcome: &'a str,
    ip: Option<&'a str>,
    user_agent: Option<&'a str>,
    request_id: Option<&'a str>,
    details: &'a str,
}

impl<'a> Canonical<'a> {
    pub(super) fn of(row: &'a AuditRow) -> Canonical<'a> {
        Canonical {
            v: 1,
            id: row.id.to_string(),
            chain_id: row.chain_id.to_string(),
            tenant_id: row.tenant_id.map(|t| t.to_string()),
            seq: row.seq,
            occurred_at: row.occurred_at.millis(),
            actor_type: &row.actor_type,
            actor_id: row.actor_id.as_deref(),
            action: &row.action,
            target_type: row.target_type.as_deref(),
            target_id: row.target_id.as_deref(),
            outcome: &row.outcome,
            ip: row.ip.as_deref(),
            user_agent: row.user_agent.as_deref(),
            request_id: row.request_id.as_deref(),
            details: &row.details,
        }
    }
}

pub(super) fn event_hash(prev_hash: &[u8], event: &Canonical<'_>) -> [u8; 32] {
    // Invariant: `Canonical` holds only strings, integers and options of them, which
    // serde_json always serializes (no maps with non-string keys, no floats).
    let encoded = serde_json::to_vec(event).expect("a Canonical event always serializes");
    Sha256::new().chain_update(prev_hash).chain_update(&encoded).finalize().into()
}

/// The first break found in a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub chain_id: Uuid,
    /// The first event that does not verify, when there is one to name.
    pub event_id: Option<Uuid>,
    pub reason: String,
}

#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    pub chains: usize,
    pub events: usize,
    pub broken: Vec<Broken>,
}

const PAGE: i64 = 1000;

/// Verifies every chain, or only `tenant`'s. Reads in pages, so memory stays flat.
pub async fn verify(store: &Store, tenant: Option<TenantId>) -> Result<VerifyReport, StoreError> {
    let mut tx = store.system_read().await?;
    let mut report = VerifyReport::default();
    for (chain, head) in store::chains(&mut tx, tenant.map(|t| t.as_uuid())).await? {
        report.chains += 1;
        // Retention may have purged a prefix: the anchor is where the kept chain begins.
        let (mut expected_seq, mut prev_hash) = match store::anchor(&mut tx, chain).await? {
            Some((seq, hash)) => (seq + 1, hash),
            None => (1, GENESIS.to_vec()),
        };
        let mut last_id = None;
        let mut broken = None;
        'pages: loop {
            let page = store::chain_page(&mut tx, chain, expected_seq - 1, PAGE).await?;
            if page.is_empty() {
                break;
            }
            for row in &page {
                report.events += 1;
                let fail =
                    |reason: String| Broken { chain_id: chain, event_id: Some(row.id), reason };
                if row.seq != expected_seq {
                    broken = Some(fail(format!(
                        "sequence jumps from {} to {}: events are missing before it",
                        expected_seq - 1,
                        row.seq
                    )));
                    break 'pages;
                }
                if row.prev_hash != prev_hash {
                    broken = Some(fail("prev_hash does not match the previous event".into()));
                    break 'pages;
                }
                let hash = event_hash(&row.prev_hash, &Canonical::of(row));
                if row.hash != hash {
                    broken = Some(fail("the event was modified (hash mismatch)".into()));
                    break 'pages;
                }
                prev_hash = row.hash.clone();
                last_id = Some(row.id);
                expected_seq += 1;
            }
        }
        if broken.is_none() {
            let last_seq = expected_seq - 1;
            broken = match head {
                None => Some(Broken {
                    chain_id: chain,
                    event_id: last_id,
                    reason: "the chain's head record is missing".into(),
                }),
                Some(head) if head.seq != last_seq || head.hash != prev_hash => Some(Broken {
                    chain_id: chain,
                    event_id: last_id,
                    reason: format!(
                        "the chain ends at event {last_seq} but its head records event {}: events were deleted from the end or the head was altered",
                        head.seq
                    ),
                }),
                Some(_) => None,
            };
        }
        report.broken.extend(broken);
    }
    tx.commit().await?;
    Ok(report)
}
