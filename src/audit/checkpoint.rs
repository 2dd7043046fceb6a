//! Signed checkpoints of the audit chains, kept outside the database.
//!
//! A chain's head row sits in the same database as the chain, so whoever can delete the
//! newest events can also move the head back, and whoever can rewrite every event can
//! recompute every hash: `verify` alone cannot see either. Every `events` events and every
//! `interval`, each chain that moved gets a checkpoint — (chain, seq, hash, time) signed with
//! an Ed25519 key derived from the master key — appended to a sink the database cannot
//! reach (a JSON-lines file; the object store once documents land). `verify --checkpoints`
//! then requires every checkpointed event to still exist with the signed hash.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt as _;
use uuid::Uuid;

use super::chain::Broken;
use super::store;
use crate::clock::Timestamp;
use crate::crypto::{KeyRing, hex};
use crate::store::{Store, StoreError};

/// The HKDF purpose of the signing key; a new master key means a new signing key, and each
/// checkpoint names the master key it was signed under.
const PURPOSE: &str = "audit-checkpoint-ed25519-v1";

/// One signed checkpoint: one line of the sink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub chain_id: Uuid,
    pub seq: i64,
    /// The event's hash, hex.
    pub hash: String,
    pub at: Timestamp,
    /// The id of the master key the signing key derives from.
    pub key: String,
    /// Ed25519 over [`Checkpoint::message`], base64.
    pub sig: String,
}

impl Checkpoint {
    fn message(chain_id: Uuid, seq: i64, hash: &str, at: Timestamp) -> Vec<u8> {
        format!("bulwark audit checkpoint v1\n{chain_id}\n{seq}\n{hash}\n{}", at.millis())
            .into_bytes()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the checkpoint sink {path}: {reason}")]
    Sink { path: PathBuf, reason: String },
    #[error("the signing key: {0}")]
    Key(String),
}

fn signing_key(ring: &KeyRing, key_id: Option<&str>) -> Result<(String, Ed25519KeyPair), String> {
    ring.signing_pair(PURPOSE, key_id).map_err(|e| e.to_string())
}

/// When to checkpoint, and where to.
#[derive(Debug, Clone)]
pub struct Policy {
    pub events: i64,
    pub interval: Duration,
    pub sink: PathBuf,
}

/// Writes checkpoints for the chains that moved; one per instance, owned by its task.
pub struct Checkpointer {
    key_id: String,
    pair: Ed25519KeyPair,
    policy: Policy,
    /// Per chain: the last checkpointed seq and when.
    last: HashMap<Uuid, (i64, Instant)>,
}

impl Checkpointer {
    pub fn new(ring: &KeyRing, policy: Policy) -> Result<Checkpointer, CheckpointError> {
        let (key_id, pair) = signing_key(ring, None).map_err(CheckpointError::Key)?;
        Ok(Checkpointer { key_id, pair, policy, last: HashMap::new() })
    }

    /// Signs the heads due a checkpoint and appends them to the sink (then syncs it); with
    /// `all`, every head that moved since its last checkpoint (at shutdown). Returns how many.
    pub async fn run(&mut self, db: &Store, all: bool) -> Result<usize, CheckpointError> {
        let mut tx = db.system_read().await?;
        let heads = store::heads(&mut tx).await?;
        tx.commit().await?;
        let now = Instant::now();
        let mut lines = String::new();
        let mut written = vec![];
        for head in heads {
            let due = match self.last.get(&head.chain_id) {
                None => true,
                Some((seq, at)) => {
                    head.seq > *seq
                        && (all
                            || head.seq - seq >= self.policy.events
                            || now.duration_since(*at) >= self.policy.interval)
                }
            };
            if !due {
                continue;
            }
            let hash = hex(&head.hash);
            let at = Timestamp::now();
            let signature =
                self.pair.sign(&Checkpoint::message(head.chain_id, head.seq, &hash, at));
            let checkpoint = Checkpoint {
                chain_id: head.chain_id,
                seq: head.seq,
                hash,
                at,
                key: self.key_id.clone(),
                sig: BASE64.encode(signature.as_ref()),
            };
            // Invariant: a Checkpoint is ids, integers and strings, which always serialize.
            lines.push_str(&serde_json::to_string(&checkpoint).expect("a checkpoint serializes"));
            lines.push('\n');
            written.push((head.chain_id, head.seq));
        }
        if written.is_empty() {
            return Ok(0);
        }
        append(&self.policy.sink, lines.as_bytes()).await?;
        for (chain, seq) in &written {
            self.last.insert(*chain, (*seq, now));
        }
        metrics::counter!("audit_checkpoints_total").increment(written.len() as u64);
        Ok(written.len())
    }
}

async fn append(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    let fail = |err: std::io::Error| CheckpointError::Sink {
        path: path.to_owned(),
        reason: err.kind().to_string(),
    };
    let mut file =
        tokio::fs::OpenOptions::new().create(true).append(true).open(path).await.map_err(fail)?;
    file.write_all(bytes).await.map_err(fail)?;
    file.sync_data().await.map_err(fail)
}

/// Reads a sink file; a line that is not a checkpoint is an error naming it.
pub fn read(path: &Path) -> Result<Vec<Checkpoint>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| format!("{} cannot be read ({})", path.display(), err.kind()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str(line)
                .map_err(|_| format!("{} line {} is not a checkpoint", path.display(), n + 1))
        })
        .collect()
}

/// Checks the chains against signed checkpoints: each signature must verify, and each
/// checkpointed event must still exist with the signed hash (unless retention purged it).
/// Returns the first problem of each chain.
pub async fn check(
    db: &Store,
    ring: &KeyRing,
    checkpoints: &[Checkpoint],
) -> Result<Vec<Broken>, StoreError> {
    let mut keys: HashMap<String, Option<Vec<u8>>> = HashMap::new();
    let mut broken: Vec<Broken> = vec![];
    let mut tx = db.system_read().await?;
    for checkpoint in checkpoints {
        if broken.iter().any(|b| b.chain_id == checkpoint.chain_id) {
            continue;
        }
        let fail =
            |reason: String| Broken { chain_id: checkpoint.chain_id, event_id: None, reason };
        let public = keys
            .entry(checkpoint.key.clone())
            .or_insert_with(|| {
                signing_key(ring, Some(&checkpoint.key))
                    .ok()
                    .map(|(_, pair)| pair.public_key().as_ref().to_vec())
            })
            .clone();
        let Some(public) = public else {
            broken.push(fail(format!(
                "the checkpoint of event {} was signed under master key `{}`, which is not configured",
                checkpoint.seq, checkpoint.key
            )));
            continue;
        };
        let message = Checkpoint::message(
            checkpoint.chain_id,
            checkpoint.seq,
            &checkpoint.hash,
            checkpoint.at,
        );
        let signed = BASE64.decode(&checkpoint.sig).is_ok_and(|sig| {
            UnparsedPublicKey::new(&ED25519, &public).verify(&message, &sig).is_ok()
        });
        if !signed {
            broken.push(fail(format!(
                "the checkpoint of event {} has no valid signature: the checkpoint file was edited",
                checkpoint.seq
            )));
            continue;
        }
        if let Some((anchor_seq, anchor_hash)) = store::anchor(&mut tx, checkpoint.chain_id).await?
        {
            if checkpoint.seq < anchor_seq {
                continue; // purged by retention; the anchor carries the chain on
            }
            if checkpoint.seq == anchor_seq {
                if hex(&anchor_hash) != checkpoint.hash {
                    broken.push(fail(format!(
                        "the retention anchor at event {} differs from its signed checkpoint",
                        checkpoint.seq
                    )));
                }
                continue;
            }
        }
        match store::event_hash_at(&mut tx, checkpoint.chain_id, checkpoint.seq).await? {
            None => broken.push(fail(format!(
                "a signed checkpoint records event {} but the chain no longer has it: events were deleted from the end, or the chain was removed",
                checkpoint.seq
            ))),
            Some(hash) if hex(&hash) != checkpoint.hash => broken.push(fail(format!(
                "event {} differs from its signed checkpoint: the chain was rewritten",
                checkpoint.seq
            ))),
            Some(_) => {}
        }
    }
    tx.commit().await?;
    Ok(broken)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_covers_every_field() {
        let key = crate::config::MasterKey {
            id: "k1".into(),
            key: crate::crypto::Secret::new([7u8; 32]),
        };
        let ring = KeyRing::new(std::slice::from_ref(&key)).expect("ring");
        let (_, pair) = signing_key(&ring, None).expect("key");
        let (chain, at) = (Uuid::nil(), Timestamp::from_millis(1_700_000_000_000));
        let message = Checkpoint::message(chain, 5, "ab", at);
        let signature = pair.sign(&message);
        let public = UnparsedPublicKey::new(&ED25519, pair.public_key().as_ref().to_vec());
        assert!(public.verify(&message, signature.as_ref()).is_ok());
        for other in [
            Checkpoint::message(chain, 4, "ab", at),
            Checkpoint::message(chain, 5, "ac", at),
            Checkpoint::message(Uuid::max(), 5, "ab", at),
            Checkpoint::message(chain, 5, "ab", Timestamp::from_millis(1)),
        ] {
            assert!(public.verify(&other, signature.as_ref()).is_err());
        }
    }
}
