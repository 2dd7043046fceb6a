//! What SQLite's writer keeps between transactions: values it read on its connection (a
//! tenant's current data key version, its active webhook subscriptions), kept while nothing
//! that could change them has happened, so the next write need not read them again. Each
//! read saved is a hand-off to SQLite's thread and back, the cost of a write on one
//! connection.
//!
//! Unlike the audit heads (`writer::Slot::audit_heads`, hints checked inside the append's own
//! statement), these are exact, because every way their rows can change forgets them:
//! - a change on the writer's connection: SQLite's update hook names the table of every row
//!   inserted, updated or deleted (foreign-key cascades and triggers included), and a change
//!   to a table in `TABLES` forgets that table's values before the statement returns. The
//!   hook does not see WITHOUT ROWID tables, `REPLACE` conflicts or the truncate shortcut of
//!   a bare `DELETE` (which foreign keys rule out); the test below holds the schema and the
//!   code to that;
//! - a rollback, whether ours (a member's savepoint, a group) or one SQLite makes itself
//!   (a full disk, an I/O error: its rollback hook), and a failed COMMIT forget them all: a
//!   value read after a change that is then undone would describe rows that never were;
//! - another connection or process (the CLI's key rotation, another pool connection): `PRAGMA
//!   data_version` changes when another connection commits. The first write of each group
//!   that asks for a value reads it once (one statement per group, not per write); the group
//!   holds SQLite's write lock (`BEGIN IMMEDIATE`), so nobody else commits until it ends;
//! - a new connection: its `data_version` counts anew, so nothing carries over.
//!
//! `webhooks::what_the_writer_keeps_follows_changes_made_anywhere` (integration) and the
//! writer's `what_the_writer_keeps_lasts_until_anything_could_change_it` break if one is missed.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use uuid::Uuid;

/// The tables the values describe.
pub const TENANT_KEYS: &str = "tenant_keys";
pub const WEBHOOK_SUBSCRIPTIONS: &str = "webhook_subscriptions";
const TABLES: [&str; 2] = [TENANT_KEYS, WEBHOOK_SUBSCRIPTIONS];

/// The most values kept for one table (one per tenant); past it they start over, which costs
/// each tenant one read.
const LIMIT: usize = 4096;

pub type Value = Arc<dyn Any + Send + Sync>;

/// Shared between the writer's slot and the hooks on its connection.
#[derive(Clone, Default)]
pub(super) struct Kept {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    /// A map per table of `TABLES`, by tenant.
    values: [HashMap<Uuid, Value>; TABLES.len()],
    /// `PRAGMA data_version` on the writer's connection when the values were last known to
    /// hold; `None` for a connection not yet asked.
    data_version: Option<i64>,
    /// Whether the open group has asked `data_version` yet: until it has, nothing is kept.
    checked: bool,
}

fn table_index(table: &str) -> Option<usize> {
    TABLES.iter().position(|t| *t == table)
}

impl Kept {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The lock guards plain map operations, which cannot leave a map half-changed.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The update hook: a row of `table` changed on the writer's connection.
    pub(super) fn changed(&self, table: &str) {
        if let Some(i) = table_index(table) {
            self.inner().values[i].clear();
        }
    }

    /// Forgets everything (a rollback, a failed commit, a new connection); the next ask reads
    /// `data_version` again.
    pub(super) fn forget_all(&self) {
        let mut inner = self.inner();
        inner.values.iter_mut().for_each(HashMap::clear);
        inner.data_version = None;
        inner.checked = false;
    }

    /// A new group began: its first ask reads `data_version`.
    pub(super) fn begin_group(&self) {
        self.inner().checked = false;
    }

    /// Whether this group still has to read `data_version` before it may ask.
    pub(super) fn unchecked(&self) -> bool {
        !self.inner().checked
    }

    /// What `PRAGMA data_version` says now: unless it is what it was when the values were
    /// kept, another connection committed since, and they go.
    pub(super) fn validate(&self, data_version: i64) {
        let mut inner = self.inner();
        if inner.data_version != Some(data_version) {
            inner.values.iter_mut().for_each(HashMap::clear);
            inner.data_version = Some(data_version);
        }
        inner.checked = true;
    }

    pub(super) fn get(&self, table: &'static str, key: Uuid) -> Option<Value> {
        let i = table_index(table)?;
        self.inner().values[i].get(&key).cloned()
    }

    /// Keeps `value`, unless this group has not checked `data_version` (see `Inner::checked`).
    pub(super) fn set(&self, table: &'static str, key: Uuid, value: Value) {
        let Some(i) = table_index(table) else { return };
        let mut inner = self.inner();
        if !inner.checked {
            return;
        }
        let map = &mut inner.values[i];
        if map.len() >= LIMIT && !map.contains_key(&key) {
            map.clear();
        }
        map.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::TABLES;

    /// The update hook sees every change to the kept tables only while they are rowid tables
    /// no statement `REPLACE`s into, and with foreign keys (which rule out the truncate
    /// shortcut of a bare `DELETE`).
    #[test]
    fn the_kept_tables_are_ones_the_update_hook_sees_whole() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut schema = String::new();
        let mut dir: Vec<_> = std::fs::read_dir(root.join("migrations/sqlite"))
            .expect("migrations")
            .map(|e| e.expect("entry").path())
            .collect();
        dir.sort();
        for path in dir {
            schema.push_str(&std::fs::read_to_string(path).expect("migration"));
        }
        let schema = schema.to_lowercase();
        for table in TABLES {
            let creates: Vec<_> =
                schema.match_indices(&format!("create table {table} (")).collect();
            assert!(!creates.is_empty(), "{table} is never created");
            for (start, _) in creates {
                let body = &schema[start..];
                let create = &body[..body.find(';').expect("statement end")];
                assert!(!create.contains("without rowid"), "{table} is WITHOUT ROWID");
                assert!(create.contains("references"), "{table} has no foreign key");
            }
        }
        let mut sources = vec![root.join("src")];
        while let Some(path) = sources.pop() {
            if path.is_dir() {
                sources
                    .extend(std::fs::read_dir(&path).expect("dir").map(|e| e.expect("e").path()));
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("source").to_lowercase();
                for table in TABLES {
                    for replace in
                        [format!("replace into {table}"), format!("or replace into {table}")]
                    {
                        assert!(
                            !text.contains(&replace),
                            "{} REPLACEs into {table}",
                            path.display()
                        );
                    }
                }
            }
        }
    }
}
