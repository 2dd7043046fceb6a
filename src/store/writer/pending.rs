//! What a member sends along with its next statement, in the same call to SQLite's thread:
//! its pending `SAVEPOINT` and a rider (`RawTx::ride_along`). Each call is a hand-off to
//! that thread and back, the cost of a write on the writer's one connection.

use std::sync::atomic::Ordering;

use futures_util::TryStreamExt as _;
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, Either, Executor as _};

use super::{Member, fail_group, gone, lost};
use crate::store::StoreError;
use crate::store::sql::{self, Query};

/// A statement riding along with a member's next one.
#[derive(Default)]
pub(in crate::store) enum Rider {
    #[default]
    None,
    /// Not sent yet.
    Queued(Query),
    /// Sent; how many rows it changed.
    Sent(u64),
}

/// What a statement sent by `send` gave: its rows, and how many rows it changed.
pub(in crate::store) struct Ran {
    pub rows: Vec<SqliteRow>,
    pub changed: u64,
}

impl Member {
    /// Whether the next statement should go through `send`, to take along what is pending.
    pub(in crate::store) fn has_pending(&self) -> bool {
        self.savepoint_pending || matches!(self.rider, Rider::Queued(_))
    }

    /// Queues a statement to go along with the next one (see `RawTx::ride_along`); false if
    /// the transaction has a rider already, queued or with its count not yet asked.
    pub(in crate::store) fn ride_along(&mut self, rider: Query) -> bool {
        if !matches!(self.rider, Rider::None) {
            return false;
        }
        self.rider = Rider::Queued(rider);
        true
    }

    /// The rider if it waits to be sent (taken out); a sent one's count stays for `take_rider`.
    pub(super) fn queued_rider(&mut self) -> Option<Query> {
        match std::mem::take(&mut self.rider) {
            Rider::Queued(rider) => Some(rider),
            other => {
                self.rider = other;
                None
            }
        }
    }

    /// What became of the rider: how many rows it changed, or itself if it was not sent.
    pub(in crate::store) fn take_rider(&mut self) -> Option<Result<u64, Query>> {
        match std::mem::take(&mut self.rider) {
            Rider::None => None,
            Rider::Queued(rider) => Some(Err(rider)),
            Rider::Sent(changed) => Some(Ok(changed)),
        }
    }

    /// Runs a statement with what is pending around it, all in one call to SQLite's thread
    /// (sqlx runs a text of several statements one after another, binding `$n` by number): a
    /// nested member's `SAVEPOINT` in front of its first statement, a rider after it (its
    /// placeholders renumbered past the statement's). The savepoint reports first: an
    /// error before its report means it was not opened, and the group fails as in `conn`; an
    /// error after it is a statement's own, which the member's rollback to its savepoint
    /// undoes. Each statement's count of changed rows is its own report's, never a sum
    /// (SQLite's count after a SAVEPOINT is the previous statement's).
    pub(in crate::store) async fn send(
        &mut self,
        statement: &str,
        mut binds: Vec<sql::Value>,
    ) -> Result<Ran, StoreError> {
        // Taken only once the text goes out: a member whose savepoint was never sent must not
        // roll back to one (it would be an earlier member's).
        let savepoint = self.savepoint_pending;
        let mut text = String::with_capacity(statement.len() + 512);
        if savepoint {
            text.push_str("SAVEPOINT member; ");
        }
        text.push_str(statement);
        let rider = self.queued_rider().map(|rider| {
            let (rider, rider_binds) = rider.into_parts();
            text.push_str("; ");
            text.push_str(&sql::renumbered(&rider, binds.len()));
            binds.extend(rider_binds);
        });
        let args = sql::sqlite_args(binds)?;
        let turn = self.turn.as_mut().ok_or_else(gone)?;
        if turn.rolled_back.load(Ordering::SeqCst) {
            return Err(lost());
        }
        let conn = turn.conn.as_mut().ok_or_else(gone)?;
        self.savepoint_pending = false;
        let mut results = conn.fetch_many(sqlx::query_with(AssertSqlSafe(text), args));
        let (mut rows, mut reports) = (Vec::new(), Vec::with_capacity(3));
        let ended = loop {
            match results.try_next().await {
                Ok(Some(Either::Left(done))) => reports.push(done.rows_affected()),
                Ok(Some(Either::Right(row))) => rows.push(row),
                Ok(None) => break Ok(()),
                Err(err) => break Err(StoreError::from(err)),
            }
        };
        drop(results);
        if savepoint && reports.is_empty() {
            fail_group(turn, "a savepoint failed");
            return Err(ended.err().unwrap_or_else(gone));
        }
        ended?;
        let first = usize::from(savepoint);
        let (Some(&changed), rider_changed) = (reports.get(first), reports.get(first + 1)) else {
            return Err(gone());
        };
        if rider.is_some() {
            self.rider = Rider::Sent(rider_changed.copied().ok_or_else(gone)?);
        }
        Ok(Ran { rows, changed })
    }
}
