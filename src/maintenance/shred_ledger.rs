//! The shred ledger: which tenants were deleted, kept outside the database.
//!
//! Deleting a tenant destroys its keys, which makes its data unreadable everywhere — except
//! in a backup taken before, which still holds the wrapped keys. So each deletion first
//! appends a signed line to a file beside the audit checkpoints (`BULWARK_SHRED_LEDGER`),
//! and `bulwark restore` reads that file before it writes a row: the keys of every tenant it
//! names are never restored (their data stays ciphertext) and the tenant is deleted again
//! (accounts closed, records removed). Lines are signed with an Ed25519 key derived from the
//! master key, so a line added by someone without it is refused, not obeyed.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::signature::{ED25519, KeyPair as _, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::crypto::KeyRing;
use crate::ids::TenantId;

const PURPOSE: &str = "shred-ledger-ed25519-v1";

/// One line of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shredded {
    pub tenant_id: TenantId,
    pub at: Timestamp,
    /// The id of the master key the signing key derives from.
    pub key: String,
    /// Ed25519 over [`Shredded::message`], base64.
    pub sig: String,
}

impl Shredded {
    fn message(tenant: TenantId, at: Timestamp) -> Vec<u8> {
        format!("bulwark shred ledger v1\n{tenant}\n{}", at.millis()).into_bytes()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("the shred ledger {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("the shred ledger {path}, line {line}: {reason}")]
    Line { path: PathBuf, line: usize, reason: String },
    #[error("the shred ledger's signing key: {0}")]
    Key(String),
}

/// Appends a signed line for `tenant` and syncs it to disk. Called before the keys are
/// destroyed: a deletion that cannot be recorded does not happen.
pub fn record(path: &Path, ring: &KeyRing, tenant: TenantId) -> Result<(), LedgerError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let (key, pair) =
        ring.signing_pair(PURPOSE, None).map_err(|e| LedgerError::Key(e.to_string()))?;
    let at = Timestamp::now();
    let sig = BASE64.encode(pair.sign(&Shredded::message(tenant, at)).as_ref());
    let entry = Shredded { tenant_id: tenant, at, key, sig };
    // Invariant: an id, an integer and strings always serialize.
    let mut line = serde_json::to_vec(&entry).expect("a ledger line serializes");
    line.push(b'\n');
    let fail = |err: std::io::Error| LedgerError::File {
        path: path.to_owned(),
        reason: err.kind().to_string(),
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    file.write_all(&line).map_err(fail)?;
    file.sync_data().map_err(fail)
}

/// The tenants the ledger names, every signature checked. A missing file is an empty ledger
/// (nothing was ever deleted here); an unreadable file or a line that does not verify is an
/// error, so a restore never proceeds on a ledger it could not read whole.
pub fn read(path: &Path, ring: &KeyRing) -> Result<Vec<TenantId>, LedgerError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(err) => {
            return Err(LedgerError::File {
                path: path.to_owned(),
                reason: err.kind().to_string(),
            });
        }
    };
    let mut tenants = vec![];
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let bad = |reason: &str| LedgerError::Line {
            path: path.to_owned(),
            line: n + 1,
            reason: reason.to_owned(),
        };
        let entry: Shredded = serde_json::from_str(line).map_err(|_| bad("not a ledger entry"))?;
        let (_, pair) = ring
            .signing_pair(PURPOSE, Some(&entry.key))
            .map_err(|_| bad("signed under a master key that is not configured"))?;
        let sig = BASE64.decode(&entry.sig).map_err(|_| bad("the signature is not base64"))?;
        UnparsedPublicKey::new(&ED25519, pair.public_key().as_ref())
            .verify(&Shredded::message(entry.tenant_id, entry.at), &sig)
            .map_err(|_| bad("the signature does not verify"))?;
        if !tenants.contains(&entry.tenant_id) {
            tenants.push(entry.tenant_id);
        }
    }
    Ok(tenants)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> KeyRing {
        let keys =
            crate::config::parse_master_keys("k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
                .expect("keys");
        KeyRing::new(&keys).expect("ring")
    }

    #[test]
    fn recorded_tenants_read_back_and_a_forged_or_altered_line_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ledger.jsonl");
        let ring = ring();
        assert_eq!(read(&path, &ring).expect("no file, no tenants"), vec![]);
        let (a, b) = (TenantId::new(), TenantId::new());
        record(&path, &ring, a).expect("record a");
        record(&path, &ring, b).expect("record b");
        assert_eq!(read(&path, &ring).expect("read"), vec![a, b]);

        // Someone with write access to the file but not the master key adds a tenant.
        let text = std::fs::read_to_string(&path).expect("read");
        let forged = text
            .lines()
            .next()
            .expect("line")
            .replace(&a.to_string(), &TenantId::new().to_string());
        std::fs::write(&path, format!("{text}{forged}\n")).expect("write");
        let err = read(&path, &ring).expect_err("a forged line is refused");
        assert!(err.to_string().contains("line 3"), "{err}");

        // A line signed under another master key that is not configured.
        std::fs::write(&path, text.replace("\"key\":\"k1\"", "\"key\":\"k0\"")).expect("write");
        assert!(read(&path, &ring).is_err());
    }
}
