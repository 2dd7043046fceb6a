//! The reading side's checks: an archive's lines in order, every table's count and hash, and
//! the manifest, as they stream past.

use super::BackupError;
use super::archive::{self, Header, Line, Manifest, Record, TableHash, TableSummary};

/// Checks each line of an archive as it is read: a header first, rows inside tables, every
/// table's count and hash as recorded, then a manifest that lists exactly those tables, and
/// nothing after it.
#[derive(Default)]
pub struct Checker {
    header: Option<Header>,
    table: Option<(TableStartState, TableHash)>,
    summaries: Vec<TableSummary>,
    manifest: Option<Manifest>,
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
            }
            _ => return corrupt("a line out of place"),
        }
        Ok(line)
    }

    pub fn finish(self) -> Result<(Header, Manifest), BackupError> {
        match (self.header, self.manifest) {
            (Some(header), Some(manifest)) => Ok((header, manifest)),
            _ => Err(BackupError::Corrupt("the archive ends before its manifest".into())),
        }
    }
}
