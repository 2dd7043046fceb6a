//! SQLite's writer: one connection for every write of this process, with group commit.
//!
//! SQLite admits one writer at a time, and with `synchronous = FULL` each commit waits for an
//! fsync of the WAL. Write transactions queue here in arrival order (a FIFO mutex instead of
//! SQLite's busy handler, whose sleeping back-off gave second-long tails) and run one after
//! another on one connection, whose page cache stays warm between them.
//!
//! Group commit: a transaction that commits while others wait for their turn does not
//! COMMIT. Its work stays in the open SQLite transaction, the next one runs, and it queues
//! for the turn once more; whoever then commits, commits every transaction of the group with
//! one fsync. `commit` returns only once the group's COMMIT has succeeded, so a request never
//! answers before its data is on disk, and a failed COMMIT fails every member.
//!
//! Each transaction after the first of a group runs inside a SAVEPOINT, so one that fails (is
//! dropped without commit) rolls back its own work only. The SAVEPOINT is sent in front of
//! the member's first statement, in the same call to SQLite's thread (`Member::send`):
//! under load every create is such a member, and each call is a hand-off to that thread and
//! back. sqlx still runs a text of several statements with binds on SQLite but calls the
//! behaviour deprecated; the writer's tests fail loudly should a later sqlx refuse it.
//! Should SQLite abandon the whole
//! transaction (an I/O error, a full disk), the savepoint is gone, and every member of the
//! group gets the error instead of a success it did not have.
//!
//! A group is committed even when the request that joined it is cancelled (a client hanging
//! up drops its request's future): COMMIT runs in a task of its own, and a member cancelled
//! while it waits for its group leaves a task behind that commits the group when the turn
//! comes back.

#![allow(clippy::disallowed_methods, reason = "the store is where SQL lives")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection as _, SqliteConnection};
use tokio::sync::{Mutex, OwnedMutexGuard, SetOnce};

use pending::Rider;

use super::StoreError;
use super::kept::{Kept, Value};
use super::tx::count_statement;

/// The most transactions one COMMIT covers: a bound on how long the first of them waits.
const MAX_GROUP: usize = 32;
/// The most audit chain heads hinted at once (a chain per tenant); past it the hints start
/// over, which costs each chain one read of its head.
const AUDIT_HEADS: usize = 4096;

pub(super) struct Writer {
    options: SqliteConnectOptions,
    slot: Arc<Mutex<Slot>>,
    /// Transactions waiting for their first turn (not members waiting to commit a group).
    waiting: AtomicUsize,
}

#[derive(Default)]
struct Slot {
    /// Opened at the first write, kept for the next; `None` again after it failed.
    conn: Option<SqliteConnection>,
    /// The open SQLite transaction and the members whose work it holds.
    group: Option<Group>,
    /// The audit chains' heads (sequence number and hash) as writes on this connection last
    /// left them: a hint that saves reading a head before an append. Only a hint: a member
    /// rolled back, a failed group or another process may have moved the head since, so the
    /// append that uses it checks it in the same statement (`audit::store::append`).
    audit_heads: std::collections::HashMap<uuid::Uuid, (i64, Vec<u8>)>,
    /// Values read on this connection and kept while they hold (see `kept`).
    kept: Kept,
    /// Set by SQLite's rollback hook: the open transaction is gone. Besides our own ROLLBACKs
    /// (which end the group anyway), that is SQLite rolling back by itself after an I/O error
    /// or a full disk. The group's work is then lost: nothing more may run in it (statements
    /// would run in autocommit mode, and a later member's SAVEPOINT would open a transaction
    /// whose COMMIT reports success for the lost work). Cleared when a group begins.
    rolled_back: Arc<AtomicBool>,
}

struct Group {
    members: usize,
    outcome: Outcome,
}

/// How a group ended: set once, by whoever committed or abandoned it; setting it wakes every
/// member waiting for it.
type Outcome = Arc<SetOnce<Result<(), Arc<str>>>>;

/// One write transaction: holds the writer's turn from begin until commit or drop.
pub struct Member {
    turn: Option<OwnedMutexGuard<Slot>>,
    writer: Arc<Writer>,
    /// Inside a savepoint: earlier members' work shares the SQLite transaction.
    nested: bool,
    /// A nested member's SAVEPOINT is not sent on its own: it travels with the member's first
    /// statement (`send`), one hand-off to SQLite's thread instead of two. Until then the
    /// member has changed nothing, so there is nothing of its own to roll back.
    savepoint_pending: bool,
    /// A statement to send along with the next one (`RawTx::ride_along`).
    rider: Rider,
}

impl Writer {
    pub(super) fn new(options: SqliteConnectOptions) -> Arc<Self> {
        // A savepoint's journal in memory, not a temporary file opened and closed per member.
        let options = options.pragma("temp_store", "MEMORY");
        Arc::new(Writer { options, slot: Arc::default(), waiting: AtomicUsize::new(0) })
    }

    /// Waits for the turn (up to `WRITER_TIMEOUT`, as the busy timeout it replaces would
    /// have), then begins a transaction or, inside an open group, a savepoint.
    pub(super) async fn begin(self: &Arc<Self>) -> Result<Member, StoreError> {
        let waiting = Waiting::count(&self.waiting);
        let turn =
            tokio::time::timeout(super::WRITER_TIMEOUT, self.slot.clone().lock_owned()).await;
        drop(waiting);
        let mut turn = turn.map_err(|_| StoreError::Unavailable(sqlx::Error::PoolTimedOut))?;
        if turn.group.is_some() && (turn.conn.is_none() || turn.rolled_back.load(Ordering::SeqCst))
        {
            // The group's transaction is gone (its connection closed, or SQLite rolled it
            // back): its members hear so, and this write begins a group of its own instead of
            // a savepoint whose transaction would be new and commit as if the group's.
            fail_group(&mut turn, "the write transaction was lost");
        }
        if turn.conn.is_none() {
            let mut conn = SqliteConnection::connect_with(&self.options).await?;
            let mut handle = conn.lock_handle().await?;
            let kept = turn.kept.clone();
            handle.set_update_hook(move |change| kept.changed(change.table));
            // Every rollback, also one SQLite makes itself (a full disk, an I/O error).
            let (kept, rolled_back) = (turn.kept.clone(), turn.rolled_back.clone());
            handle.set_rollback_hook(move || {
                kept.forget_all();
                rolled_back.store(true, Ordering::SeqCst);
            });
            drop(handle);
            turn.kept.forget_all();
            turn.conn = Some(conn);
        }
        let nested = turn.group.is_some();
        if !nested {
            count_statement();
            turn.rolled_back.store(false, Ordering::SeqCst);
            if let Err(err) = run(&mut turn, "BEGIN IMMEDIATE").await {
                // Busy past the timeout, or a broken connection: the next write opens anew.
                turn.conn = None;
                return Err(err);
            }
            turn.group = Some(Group { members: 0, outcome: Outcome::default() });
            turn.kept.begin_group();
        }
        Ok(Member {
            turn: Some(turn),
            writer: self.clone(),
            nested,
            savepoint_pending: nested,
            rider: Rider::None,
        })
    }

    /// Closes the connection once the writes in progress are done. A group still open is
    /// rolled back with it; whoever takes the turn next fails it (`begin`, `commit_group`).
    pub(super) async fn close(&self) {
        let mut turn = self.slot.lock().await;
        if let Some(conn) = turn.conn.take() {
            let _ = conn.close().await;
        }
    }
}

impl Member {
    /// The writer's connection while this member holds the turn (from `begin` until `commit`
    /// or drop, which both consume it), after what is still pending (its savepoint, a
    /// rider) was sent; an error, never a panic, should that ever not hold. Refused once
    /// SQLite rolled the transaction back by itself (`Slot::rolled_back`).
    pub(super) async fn conn(&mut self) -> Result<&mut SqliteConnection, StoreError> {
        if let Some(rider) = self.queued_rider() {
            // A statement not run through `send` (a raw one): the rider goes first, alone.
            let (text, binds) = rider.into_parts();
            count_statement();
            let ran = self.send(&text, binds).await?;
            self.rider = Rider::Sent(ran.changed);
        } else if self.savepoint_pending {
            self.savepoint_pending = false;
            let turn = self.turn.as_mut().ok_or_else(gone)?;
            if turn.rolled_back.load(Ordering::SeqCst) {
                return Err(lost());
            }
            count_statement();
            if let Err(err) = run(turn, "SAVEPOINT member").await {
                // Without its savepoint the group's transaction cannot be trusted to hold.
                fail_group(turn, "a savepoint failed");
                return Err(err);
            }
        }
        let turn = self.turn.as_mut().ok_or_else(gone)?;
        if turn.rolled_back.load(Ordering::SeqCst) {
            return Err(lost());
        }
        turn.conn.as_mut().ok_or_else(gone)
    }

    /// The hinted head of an audit chain (see `Slot::audit_heads`).
    pub(super) fn audit_head(&self, chain: uuid::Uuid) -> Option<(i64, Vec<u8>)> {
        self.turn.as_ref().and_then(|turn| turn.audit_heads.get(&chain).cloned())
    }

    pub(super) fn set_audit_head(&mut self, chain: uuid::Uuid, seq: i64, hash: Vec<u8>) {
        if let Some(turn) = self.turn.as_mut() {
            if turn.audit_heads.len() >= AUDIT_HEADS && !turn.audit_heads.contains_key(&chain) {
                turn.audit_heads.clear();
            }
            turn.audit_heads.insert(chain, (seq, hash));
        }
    }

    /// A value the writer kept under `table` and `key` (see `kept`). The first ask of a group
    /// first reads `PRAGMA data_version`, which forgets everything should another connection
    /// have committed since.
    pub(super) async fn kept(
        &mut self,
        table: &'static str,
        key: uuid::Uuid,
    ) -> Result<Option<Value>, StoreError> {
        let turn = self.turn.as_mut().ok_or_else(gone)?;
        if turn.kept.unchecked() {
            let conn = turn.conn.as_mut().ok_or_else(gone)?;
            count_statement();
            let version: i64 = sqlx::query_scalar("PRAGMA data_version").fetch_one(conn).await?;
            turn.kept.validate(version);
        }
        Ok(turn.kept.get(table, key))
    }

    /// Keeps a value read in this transaction; only once `kept` asked in this group, so it is
    /// never kept against a `data_version` it was not read under.
    pub(super) fn keep(&mut self, table: &'static str, key: uuid::Uuid, value: Value) {
        if let Some(turn) = self.turn.as_mut() {
            turn.kept.set(table, key, value);
        }
    }

    /// Returns once this transaction's work is committed, with the group's result.
    pub(super) async fn commit(mut self) -> Result<(), StoreError> {
        if matches!(self.rider, Rider::Queued(_)) {
            // Whoever queued it meant it to be part of this transaction (an audit event).
            return Err(StoreError::Unavailable(sqlx::Error::Protocol(
                "a statement queued to ride along was never sent".into(),
            )));
        }
        let Some(mut turn) = self.turn.take() else { return Err(gone()) };
        let Some(group) = turn.group.as_mut() else { return Err(gone()) };
        group.members += 1;
        if self.writer.waiting.load(Ordering::SeqCst) == 0 || group.members >= MAX_GROUP {
            // In a task of its own: a request cancelled during COMMIT (a timeout, a client
            // gone) must not leave the group without its outcome or its failure handled.
            let committer = tokio::spawn(async move { commit_group(&mut turn).await });
            return committer.await.map_err(|_| gone())?;
        }
        // Others wait: let them add their work, and commit when the turn comes back, unless
        // one of them committed the group first. Whoever commits wakes the rest, which then
        // leave the queue: the turn does not pass through every member of a committed group
        // before the next group may begin. The request waits itself (the commit wakes it, not
        // a task that then wakes it); should it be cancelled meanwhile, `Awaiting` hands the
        // wait to a task, so the group is committed all the same.
        let awaiting = Awaiting {
            outcome: group.outcome.clone(),
            slot: self.writer.slot.clone(),
            armed: true,
        };
        drop(turn);
        let turn = tokio::select! {
            biased;
            _ = awaiting.outcome.wait() => None,
            turn = awaiting.slot.clone().lock_owned() => Some(turn),
        };
        let outcome = awaiting.disarm();
        if let Some(done) = outcome.get() {
            return done.clone().map_err(failed);
        }
        // Without the turn the wait ended on the outcome, which is then set (above).
        let Some(mut turn) = turn else { return Err(gone()) };
        // No await between the turn and the task: the COMMIT cannot be cancelled half-way.
        let committer = tokio::spawn(async move { commit_group(&mut turn).await });
        committer.await.map_err(|_| gone())?
    }
}

/// A member's wait for its group, while it lasts. Dropped before `disarm` (the request was
/// cancelled before the group's outcome or the turn came), it leaves a task to wait in its
/// place and commit the group when the turn comes back, in case no other member is left to.
struct Awaiting {
    outcome: Outcome,
    slot: Arc<Mutex<Slot>>,
    armed: bool,
}

impl Awaiting {
    /// The wait is over: the group's outcome, and no task left behind.
    fn disarm(mut self) -> Outcome {
        self.armed = false;
        self.outcome.clone()
    }
}

impl Drop for Awaiting {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (outcome, slot) = (self.outcome.clone(), self.slot.clone());
        // Without a runtime (shutdown) nothing can commit: closing the connection rolls the
        // group back, and no member is left to answer.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            drop(runtime.spawn(async move {
                tokio::select! {
                    biased;
                    _ = outcome.wait() => {}
                    mut turn = slot.lock_owned() => {
                        if outcome.get().is_none() {
                            let _ = commit_group(&mut turn).await;
                        }
                    }
                }
            }));
        }
    }
}

impl Drop for Member {
    /// A transaction dropped without commit rolls back its own work: the whole SQLite
    /// transaction when it began it, its savepoint otherwise. Rolling back needs the
    /// connection, so a task does it while still holding the turn.
    fn drop(&mut self) {
        let Some(turn) = self.turn.take() else { return };
        if self.savepoint_pending {
            // Nothing of its own to undo: the member never sent a statement, and the
            // group's transaction goes on for the others.
            return;
        }
        let nested = self.nested;
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(abandon(turn, nested))),
            // No runtime left to roll back on: closing the connection rolls back everything,
            // and every member of the group hears so.
            Err(_) => {
                let mut turn = turn;
                fail_group(&mut turn, "the write was abandoned at shutdown");
            }
        }
    }
}

async fn abandon(mut turn: OwnedMutexGuard<Slot>, nested: bool) {
    turn.kept.forget_all();
    let statement = if nested { "ROLLBACK TO member" } else { "ROLLBACK" };
    match run(&mut turn, statement).await {
        Ok(()) if !nested => turn.group = None,
        Ok(()) => {}
        Err(_) => fail_group(&mut turn, "the write transaction was rolled back"),
    }
}

/// COMMIT on behalf of every member; each of them gets the result.
async fn commit_group(turn: &mut Slot) -> Result<(), StoreError> {
    let Some(group) = turn.group.take() else { return Err(gone()) };
    metrics::histogram!("sqlite_group_commit_members").record(group.members as f64);
    count_statement();
    let result = run(turn, "COMMIT").await;
    if result.is_err() {
        turn.kept.forget_all();
        if run(turn, "ROLLBACK").await.is_err() {
            turn.conn = None;
        }
    }
    let shared = result.as_ref().map(|_| ()).map_err(|err| Arc::from(err.to_string()));
    let _ = group.outcome.set(shared);
    result
}

/// Ends the group without its work: closing the connection rolls back what SQLite still
/// holds, and the members waiting to commit get the error.
fn fail_group(turn: &mut Slot, why: &str) {
    turn.conn = None;
    turn.audit_heads.clear();
    turn.kept.forget_all();
    if let Some(group) = turn.group.take() {
        let _ = group.outcome.set(Err(Arc::from(why)));
    }
}

async fn run(turn: &mut Slot, statement: &'static str) -> Result<(), StoreError> {
    let Some(conn) = turn.conn.as_mut() else { return Err(gone()) };
    sqlx::query(statement).execute(conn).await?;
    Ok(())
}

fn failed(why: Arc<str>) -> StoreError {
    StoreError::Unavailable(sqlx::Error::Protocol(format!("the group commit failed: {why}")))
}

fn lost() -> StoreError {
    StoreError::Unavailable(sqlx::Error::Protocol("the write transaction was rolled back".into()))
}

/// Counts a transaction waiting for its first turn for as long as it waits, also when its
/// request is cancelled meanwhile (a count left behind would keep every later commit off
/// the path that commits at once when nobody waits).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn count(waiting: &'a AtomicUsize) -> Self {
        waiting.fetch_add(1, Ordering::SeqCst);
        Waiting(waiting)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn gone() -> StoreError {
    StoreError::Unavailable(sqlx::Error::Protocol("the SQLite writer is closed".into()))
}

mod pending;
#[cfg(test)]
mod tests;
