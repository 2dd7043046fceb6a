//! What SQLite's writer remembers between transactions: values it read on its connection
//! (a tenant's current data key, its webhook subscriptions), kept while nothing that could
//! change them has happened, so the next write need not read them again. Each read saved is
//! a hand-off to SQLite's thread and back, the cost of a write on one connection.
//!
//! Unlike the audit heads (`Slot::audit_heads`, checked inside the append's own statement),
//! these are exact, not hints to verify, because every way the rows can change forgets them:
//! - a change on the writer's connection: SQLite's update hook names the table of every row
//!   inserted, updated or deleted (foreign-key cascades included), and a change to a table
//!   in `TABLES` forgets that table's values at once, before the statement returns;
//! - a rollback (of a member's savepoint or of a group) and a failed COMMIT forget them all:
//!   a value read after a change that is then undone would describe rows that never were;
//! - another connection or process (a reader cannot write; a CLI command can): `PRAGMA
//!   data_version` changes when another connection commits. The first member of each group
//!   that asks for a value reads it once (one statement per group, not per write); as the
//!   group holds SQLite's write lock (`BEGIN IMMEDIATE`), nobody else commits until it ends.
//! - a new connection: its `data_version` counts from anew, so nothing carries over.
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

/// The most values kept at once (one per tenant and table); past it they start over, which
/// costs each tenant one read.
const LIMIT: usize = 8192;

pub type Value = Arc<dyn Any + Send + Sync>;

/// Shared between the writer's slot and the update hook on its connection.
#[derive(Clone, Default)]
pub(super) struct Hints {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    values: HashMap<(&'static str, Uuid), Value>,
    /// `PRAGMA data_version` on the writer's connection when the values were last known to
    /// hold; `None` for a connection not yet asked.
    data_version: Option<i64>,
}

impl Hints {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The lock guards plain map operations, which cannot leave the map half-changed.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The update hook: a row of `table` changed on the writer's connection.
    pub(super) fn changed(&self, table: &str) {
        if TABLES.contains(&table) {
            self.inner().values.retain(|(of, _), _| *of != table);
        }
    }

    /// Forgets everything: a rollback, a failed commit, a new connection.
    pub(super) fn forget_all(&self) {
        let mut inner = self.inner();
        inner.values.clear();
        inner.data_version = None;
    }

    /// What `PRAGMA data_version` says now: unless it is what it was when the values were
    /// kept, another connection committed since, and they go.
    pub(super) fn validate(&self, data_version: i64) {
        let mut inner = self.inner();
        if inner.data_version != Some(data_version) {
            inner.values.clear();
            inner.data_version = Some(data_version);
        }
    }

    pub(super) fn get(&self, table: &'static str, key: Uuid) -> Option<Value> {
        self.inner().values.get(&(table, key)).cloned()
    }

    pub(super) fn set(&self, table: &'static str, key: Uuid, value: Value) {
        let mut inner = self.inner();
        if inner.values.len() >= LIMIT && !inner.values.contains_key(&(table, key)) {
            inner.values.clear();
        }
        inner.values.insert((table, key), value);
    }
}
