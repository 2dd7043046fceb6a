//! The reading side's checks: an archive's lines in order, every table's count and hash, and
//! the manifest, as they stream past.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::signature::{ED25519, KeyPair as _, UnparsedPublicKey};
use sha2::{Digest as _, Sha256};

use super::BackupError;
use super::archive::{self, Header, Line, Manifest, Record, TableHash, TableSummary};
use crate::crypto::KeyRing;

/// Checks each line of an archive as it is read: a header first, rows inside tables, every
/// table's count and hash as recorded, then a manifest that lists exactly those tables, and
/// nothing after it.
#[derive(Default)]
pub struct Checker {
    header: Option<Header>,
    table: Option<(TableStartState, TableHash)>,
    summaries: Vec<TableSummary>,
    manifest: Option<Manifest>,
    /// Every line before the manifest, which its signature covers.
    lines: Sha256,
    signed_lines: Option<Vec<u8>>,
}

struct TableStartState {
    name: String,
    columns: usize,
}

impl Checker {
    pub fn accept(&mut self, raw: &[u8]) -> Result<Line, BackupError> {
        let corrupt = |what: &str| Err(BackupError::Corrupt(what.to_owned()));
        if self.manifest.is_some() {
            return corrupt("lines follow the manifest");
        }
        let line = archive::parse_line(raw)?;
        if !matches!(line, Line::Record(Record::Manifest(_))) {
            self.lines.update(raw);
        }
        match (&line, self.header.is_some(), &mut self.table) {
            (Line::Record(Record::Header(h)), false, _) => {
                if h.format != archive::FORMAT || h.version != archive::VERSION {
                    return corrupt("an unknown format or version");
                }
                self.header = Some(h.clone());
            }
            (_, false, _) | (Line::Record(Record::Header(_)), true, _) => {
                return corrupt("the header is missing or repeated");
            }
            (Line::Record(Record::Table(t)), true, None) => {
                let state = TableStartState { name: t.name.clone(), columns: t.columns.len() };
                self.table = Some((state, TableHash::default()));
            }
            (Line::Row(cells), true, Some((state, hash))) => {
                if cells.len() != state.columns {
                    return corrupt("a row's width differs from its table's");
                }
                hash.add(raw);
            }
            (Line::Record(Record::End(recorded)), true, Some(_)) => {
                let Some((state, hash)) = self.table.take() else { return corrupt("no table") };
                let computed = hash.finish(&state.name);
                if &computed != recorded {
                    return Err(BackupError::Corrupt(format!(
                        "table {}: the rows differ from the recorded count and hash",
                        state.name
                    )));
                }
                self.summaries.push(computed);
            }
            (Line::Record(Record::Manifest(m)), true, None) => {
                if m.tables != self.summaries {
                    return corrupt("the manifest does not match the tables");
                }
                self.manifest = Some(m.clone());
                self.signed_lines = Some(std::mem::take(&mut self.lines).finalize().to_vec());
            }
            _ => return corrupt("a line out of place"),
        }
        Ok(line)
    }

    /// The header and manifest of a complete archive whose manifest was signed with a key
    /// derived from one of `ring`'s master keys; anything else is refused.
    pub fn finish(self, ring: &KeyRing) -> Result<(Header, Manifest), BackupError> {
        let (Some(header), Some(manifest), Some(lines)) =
            (self.header, self.manifest, self.signed_lines)
        else {
            return Err(BackupError::Corrupt("the archive ends before its manifest".into()));
        };
        let forged = || {
            BackupError::Corrupt(
                "the manifest's signature does not verify: not written by this deployment".into(),
            )
        };
        let (_, pair) = ring
            .signing_pair(archive::SIGNING_PURPOSE, Some(&manifest.key))
            .map_err(|_| forged())?;
        let sig = BASE64.decode(&manifest.sig).map_err(|_| forged())?;
        let message = archive::signed_message(&lines, manifest.documents, manifest.completed_at);
        UnparsedPublicKey::new(&ED25519, pair.public_key().as_ref())
            .verify(&message, &sig)
            .map_err(|_| forged())?;
        Ok((header, manifest))
    }
}
