//! The group commit's interleavings, each built step by step on a real SQLite file.

use std::time::Duration;

use sqlx::sqlite::SqliteConnectOptions;

use super::*;
use crate::store::sql::{self, Query};

/// A writer on a fresh file with one table, and a second connection to read it as
/// another process would (it sees only what was committed).
async fn setup() -> (tempfile::TempDir, Arc<Writer>, SqliteConnection) {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = SqliteConnectOptions::new()
        .filename(dir.path().join("db"))
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
    let mut reader = SqliteConnection::connect_with(&options).await.expect("connect");
    sqlx::query("CREATE TABLE t (v INTEGER PRIMARY KEY)")
        .execute(&mut reader)
        .await
        .expect("table");
    (dir, Writer::new(options), reader)
}

async fn insert(member: &mut Member, v: i64) {
    sqlx::query("INSERT INTO t (v) VALUES ($1)")
        .bind(v)
        .execute(member.conn().await.expect("the member holds the writer"))
        .await
        .expect("insert");
}

async fn committed(reader: &mut SqliteConnection) -> Vec<i64> {
    sqlx::query_scalar("SELECT v FROM t ORDER BY v").fetch_all(reader).await.expect("read")
}

/// Begins once the writer's turn is taken by someone else, so it waits and counts.
async fn queue(writer: &Arc<Writer>) -> tokio::task::JoinHandle<Member> {
    let before = writer.waiting.load(Ordering::SeqCst);
    let queued = writer.clone();
    let handle = tokio::spawn(async move { queued.begin().await.expect("begin") });
    while writer.waiting.load(Ordering::SeqCst) == before {
        tokio::task::yield_now().await;
    }
    handle
}

/// A group of two: the first member wrote 1 and committed while the second waited, so its
/// commit waits for the group; the second now holds the turn.
async fn group_of_two(
    writer: &Arc<Writer>,
) -> (tokio::task::JoinHandle<Result<(), StoreError>>, Member) {
    let mut first = writer.begin().await.expect("begin");
    insert(&mut first, 1).await;
    let next = queue(writer).await;
    let first_commit = tokio::spawn(first.commit());
    (first_commit, next.await.expect("turn"))
}

/// A group of three: the first member wrote 1 and committed while two more writes waited,
/// in order, ahead of its committer (so the second's commit leaves the group open for the
/// third); the second now holds the turn, the third waits for it.
async fn group_of_three(
    writer: &Arc<Writer>,
) -> (tokio::task::JoinHandle<Result<(), StoreError>>, Member, tokio::task::JoinHandle<Member>) {
    let mut first = writer.begin().await.expect("begin");
    insert(&mut first, 1).await;
    let second = queue(writer).await;
    let third = queue(writer).await;
    let first_commit = tokio::spawn(first.commit());
    (first_commit, second.await.expect("turn"), third)
}

#[tokio::test]
async fn a_member_commits_with_the_group_and_not_before() {
    let (_dir, writer, mut reader) = setup().await;
    let (first_commit, mut second) = group_of_two(&writer).await;
    assert!(second.nested, "the second write runs inside the first's transaction");
    insert(&mut second, 2).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!first_commit.is_finished(), "answered before its data was committed");
    assert_eq!(committed(&mut reader).await, Vec::<i64>::new());
    second.commit().await.expect("the group commits");
    first_commit.await.expect("task").expect("the first hears the group's result");
    assert_eq!(committed(&mut reader).await, vec![1, 2]);
    // One COMMIT covered both; the next write starts a new transaction.
    let third = writer.begin().await.expect("begin");
    assert!(!third.nested);
}

/// Once its group is committed, a member answers without the turn: the next group need
/// not hand the turn through every member of the last before it begins.
#[tokio::test]
async fn a_member_hears_its_group_commit_without_waiting_for_the_turn() {
    let (_dir, writer, mut reader) = setup().await;
    let (first_commit, mut second) = group_of_two(&writer).await;
    insert(&mut second, 2).await;
    // The first member's committer waits ahead of the third write, and the third ahead
    // of the second's committer: the first commits the group, the third takes the turn.
    let third = queue(&writer).await;
    let second_commit = tokio::spawn(second.commit());
    first_commit.await.expect("task").expect("the group commits");
    let mut third = third.await.expect("turn");
    assert!(!third.nested, "the third write begins a new group");
    let heard = tokio::time::timeout(Duration::from_secs(5), second_commit).await;
    let heard = heard.expect("the second member waited for the turn the third holds");
    heard.expect("task").expect("the second member's work is committed");
    insert(&mut third, 3).await;
    third.commit().await.expect("commit");
    assert_eq!(committed(&mut reader).await, vec![1, 2, 3]);
}

/// The request that commits a group can be cancelled while COMMIT runs (a timeout, a
/// client gone): the group is still committed and every other member hears so.
#[tokio::test]
async fn a_group_commits_although_the_request_committing_it_is_cancelled() {
    use futures_util::FutureExt as _;
    let (_dir, writer, mut reader) = setup().await;
    let (first_commit, mut second) = group_of_two(&writer).await;
    insert(&mut second, 2).await;
    // Nobody waits, so the second commits the group itself: its future is polled once
    // (the commit is under way) and dropped, as a cancelled request's future is.
    drop(second.commit().now_or_never());
    let heard = tokio::time::timeout(Duration::from_secs(5), first_commit).await;
    let heard = heard.expect("the first member never heard the group's outcome");
    heard.expect("task").expect("the group was committed, the first member told otherwise");
    assert_eq!(committed(&mut reader).await, vec![1, 2]);
    let next = writer.begin().await.expect("the writer is free again");
    assert!(!next.nested, "the committed group was left open");
}

/// A member waiting for its group can be cancelled too: its work is still committed, by
/// the task its cancelled wait leaves behind, although no other member commits.
#[tokio::test]
async fn a_group_commits_although_a_member_waiting_for_it_is_cancelled() {
    use futures_util::FutureExt as _;
    let (_dir, writer, mut reader) = setup().await;
    let mut first = writer.begin().await.expect("begin");
    insert(&mut first, 1).await;
    let second = queue(&writer).await;
    // Someone waits, so the first waits for its group: polled once and dropped.
    drop(first.commit().now_or_never());
    // The second takes the turn and gives up without committing.
    let second = second.await.expect("turn");
    assert!(second.nested, "the second write joined the first's group");
    drop(second);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while committed(&mut reader).await != vec![1] {
        assert!(tokio::time::Instant::now() < deadline, "the cancelled member's work is lost");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let next = writer.begin().await.expect("the writer is free again");
    assert!(!next.nested, "the committed group was left open");
}

#[tokio::test]
async fn a_member_dropped_without_commit_takes_only_its_own_work_back() {
    let (_dir, writer, mut reader) = setup().await;
    let (first_commit, mut failing) = group_of_two(&writer).await;
    insert(&mut failing, 2).await;
    let after = queue(&writer).await;
    drop(failing);
    // The first member's committer queued before this one: it commits the group (its
    // own work, without the failed member's) before the next write begins.
    let mut third = after.await.expect("turn");
    insert(&mut third, 3).await;
    third.commit().await.expect("commit");
    first_commit.await.expect("task").expect("the first member's work is committed");
    assert_eq!(committed(&mut reader).await, vec![1, 3]);
}

#[tokio::test]
async fn the_first_write_dropped_rolls_back_and_frees_the_writer() {
    let (_dir, writer, mut reader) = setup().await;
    let mut first = writer.begin().await.expect("begin");
    insert(&mut first, 1).await;
    drop(first);
    let mut next = writer.begin().await.expect("the writer is free again");
    assert!(!next.nested, "nothing was left open");
    insert(&mut next, 1).await;
    next.commit().await.expect("commit");
    assert_eq!(committed(&mut reader).await, vec![1]);
}

#[tokio::test]
async fn a_group_that_cannot_commit_fails_every_member() {
    let (_dir, writer, mut reader) = setup().await;
    let (first_commit, mut second) = group_of_two(&writer).await;
    // What SQLite does after an I/O error or a full disk: the whole transaction is gone.
    sqlx::query("ROLLBACK").execute(second.conn().await.expect("held")).await.expect("rollback");
    // Nothing more runs in it: a statement now would commit on its own (autocommit).
    assert!(second.conn().await.is_err(), "a statement could run after the group was rolled back");
    assert!(second.commit().await.is_err(), "COMMIT without a transaction succeeded");
    let first_result = first_commit.await.expect("task");
    assert!(first_result.is_err(), "the first member was told its write succeeded");
    assert!(!committed(&mut reader).await.contains(&1));
}

/// A write whose request is cancelled while it waits for its turn stops counting as
/// waiting: a count left behind would send every later commit the long way round.
#[tokio::test]
async fn a_write_cancelled_while_waiting_is_not_counted() {
    let (_dir, writer, _reader) = setup().await;
    let first = writer.begin().await.expect("begin");
    let cancelled = queue(&writer).await;
    cancelled.abort();
    assert!(cancelled.await.is_err(), "the waiting write was not cancelled");
    assert_eq!(writer.waiting.load(Ordering::SeqCst), 0, "the cancelled write still counts");
    first.commit().await.expect("commit");
}

/// A later member must not turn a group SQLite rolled back into a success: its SAVEPOINT
/// would open a fresh transaction, whose COMMIT reported the lost work as committed.
#[tokio::test]
async fn a_group_sqlite_rolled_back_is_never_reported_committed() {
    let (_dir, writer, mut reader) = setup().await;
    let (first_commit, mut second, third) = group_of_three(&writer).await;
    sqlx::query("ROLLBACK").execute(second.conn().await.expect("held")).await.expect("rollback");
    // The third waits, so the second's commit would leave its (lost) work to the group.
    // Bounded: should the third join the lost group, it holds the turn and nobody answers.
    let second_result = tokio::time::timeout(Duration::from_secs(5), second.commit()).await;
    let second_result = second_result.expect("the second member never heard");
    assert!(second_result.is_err(), "the second member was told its write succeeded");
    let mut third = third.await.expect("turn");
    assert!(!third.nested, "the third write joined the lost group");
    insert(&mut third, 3).await;
    third.commit().await.expect("commit");
    let first_result = first_commit.await.expect("task");
    assert!(first_result.is_err(), "the first member was told its lost write succeeded");
    assert_eq!(committed(&mut reader).await, vec![3]);
}

/// The writer closed (shutdown) with a group open: its members hear it was lost, and a
/// write after it does not join the group on a new connection.
#[tokio::test]
async fn closing_the_writer_fails_the_open_group() {
    let (_dir, writer, mut reader) = setup().await;
    let mut first = writer.begin().await.expect("begin");
    insert(&mut first, 1).await;
    let second = queue(&writer).await;
    // Shutdown closes the writer after the second write's turn, ahead of a third write
    // and of the members' committers.
    let closing = {
        let writer = writer.clone();
        tokio::spawn(async move { writer.close().await })
    };
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
    let third = queue(&writer).await;
    let first_commit = tokio::spawn(first.commit());
    let mut second = second.await.expect("turn");
    insert(&mut second, 2).await;
    let second_commit = tokio::spawn(second.commit());
    closing.await.expect("close");
    let mut third = third.await.expect("turn");
    assert!(!third.nested, "a write joined a group whose connection was closed");
    insert(&mut third, 3).await;
    third.commit().await.expect("commit");
    let first_result = first_commit.await.expect("task");
    assert!(first_result.is_err(), "the first member was told its lost write was committed");
    assert!(second_commit.await.expect("task").is_err(), "and the second too");
    assert_eq!(committed(&mut reader).await, vec![3]);
}

/// What the writer keeps for the subscriptions table (see `kept`), asked as a member.
async fn kept(member: &mut Member) -> Option<i64> {
    let key = uuid::Uuid::nil();
    let value = member.kept(super::super::kept::WEBHOOK_SUBSCRIPTIONS, key).await;
    value.expect("kept").and_then(|v| v.downcast::<i64>().ok()).map(|v| *v)
}

fn keep(member: &mut Member, value: i64) {
    let table = super::super::kept::WEBHOOK_SUBSCRIPTIONS;
    member.keep(table, uuid::Uuid::nil(), Arc::new(value));
}

async fn exec(member: &mut Member, sql: &'static str) {
    sqlx::query(sql).execute(member.conn().await.expect("held")).await.expect(sql);
}

#[tokio::test]
async fn what_the_writer_keeps_lasts_until_anything_could_change_it() {
    let (_dir, writer, mut reader) = setup().await;
    for sql in [
        "CREATE TABLE tenants (id INTEGER PRIMARY KEY)",
        "CREATE TABLE webhook_subscriptions \
         (tenant INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE)",
        "INSERT INTO tenants (id) VALUES (1), (2)",
        "INSERT INTO webhook_subscriptions (tenant) VALUES (1)",
    ] {
        sqlx::query(sql).execute(&mut reader).await.expect(sql);
    }
    // Kept from one transaction to the next while other tables change.
    let mut first = writer.begin().await.expect("begin");
    assert_eq!(kept(&mut first).await, None);
    keep(&mut first, 1);
    insert(&mut first, 1).await;
    first.commit().await.expect("commit");
    let mut next = writer.begin().await.expect("begin");
    assert_eq!(kept(&mut next).await, Some(1), "not kept");
    // A change to its table on the writer's connection forgets it at once.
    exec(&mut next, "UPDATE webhook_subscriptions SET tenant = 1").await;
    assert_eq!(kept(&mut next).await, None, "kept across a change to its table");
    keep(&mut next, 2);
    // So does a row going with its parent (a foreign-key cascade).
    exec(&mut next, "DELETE FROM tenants WHERE id = 1").await;
    assert_eq!(kept(&mut next).await, None, "kept across a cascading delete");
    keep(&mut next, 3);
    next.commit().await.expect("commit");
    // A rollback forgets everything: what was read may have been undone.
    let mut undone = writer.begin().await.expect("begin");
    assert_eq!(kept(&mut undone).await, Some(3));
    drop(undone);
    let mut after = writer.begin().await.expect("begin");
    assert_eq!(kept(&mut after).await, None, "kept across a rollback");
    keep(&mut after, 4);
    after.commit().await.expect("commit");
    // Another connection's commit (another process) forgets everything.
    sqlx::query("INSERT INTO t (v) VALUES (9)").execute(&mut reader).await.expect("insert");
    let mut elsewhere = writer.begin().await.expect("begin");
    assert_eq!(kept(&mut elsewhere).await, None, "kept across another connection's commit");
    keep(&mut elsewhere, 5);
    elsewhere.commit().await.expect("commit");
    // Nothing is kept by a transaction that did not ask first (and so did not check).
    let mut unasked = writer.begin().await.expect("begin");
    keep(&mut unasked, 6);
    unasked.commit().await.expect("commit");
    let mut last = writer.begin().await.expect("begin");
    assert_eq!(kept(&mut last).await, Some(5), "kept without checking data_version");
    // A rollback SQLite makes itself (after a full disk, an I/O error) forgets everything.
    sqlx::query("ROLLBACK").execute(last.conn().await.expect("held")).await.expect("rollback");
    assert_eq!(kept(&mut last).await, None, "kept across SQLite's own rollback");
}

fn one_value(v: i64) -> Vec<sql::Value> {
    vec![sql::Value::Int(Some(v))]
}

/// A nested member's SAVEPOINT travels with its first statement (one hand-off): the count
/// of changed rows is the statement's own (SQLite's count after a SAVEPOINT still says the
/// previous statement's), and a first statement that fails is undone alone: the rollback to
/// its savepoint must not reach the savepoint of the member before it.
#[tokio::test]
async fn a_members_first_statement_carries_its_savepoint() {
    let (_dir, writer, mut reader) = setup().await;
    let (first_commit, mut second, third) = group_of_three(&writer).await;
    assert!(second.has_pending(), "the savepoint went ahead on its own");
    let none = "UPDATE t SET v = 10 WHERE v = $1";
    let ran = second.send(none, one_value(5)).await.expect("update");
    assert_eq!(ran.changed, 0, "the count is the first member's insert's, not the update's");
    assert!(!second.has_pending());
    insert(&mut second, 2).await;
    let second_commit = tokio::spawn(second.commit());
    let mut third = third.await.expect("turn");
    assert!(third.nested && third.has_pending());
    let taken = "INSERT INTO t (v) VALUES ($1) RETURNING v";
    assert!(third.send(taken, one_value(1)).await.is_err(), "a duplicate key");
    drop(third);
    let heard = tokio::time::timeout(Duration::from_secs(5), second_commit).await;
    heard.expect("the group was never committed").expect("task").expect("the second's commit");
    first_commit.await.expect("task").expect("the first's commit");
    assert_eq!(committed(&mut reader).await, vec![1, 2], "the failed member undid another's work");
    // A first statement's rows come back as a plain statement's would.
    let mut fourth = writer.begin().await.expect("begin");
    insert(&mut fourth, 3).await;
    let fifth = queue(&writer).await;
    let fourth_commit = tokio::spawn(fourth.commit());
    let mut fifth = fifth.await.expect("turn");
    let ran = fifth.send(taken, one_value(4)).await.expect("insert");
    let returned: Vec<i64> = ran.rows.iter().map(|row| sqlx::Row::get(row, 0)).collect();
    assert_eq!((returned, ran.changed), (vec![4], 1));
    fifth.commit().await.expect("commit");
    fourth_commit.await.expect("task").expect("commit");
    assert_eq!(committed(&mut reader).await, vec![1, 2, 3, 4]);
}

/// A nested member that sends nothing has opened no savepoint, and leaving rolls nothing
/// back: the group goes on for the others.
#[tokio::test]
async fn a_member_that_wrote_nothing_leaves_its_group_whole() {
    let (_dir, writer, mut reader) = setup().await;
    let (first_commit, second) = group_of_two(&writer).await;
    assert!(second.has_pending());
    drop(second);
    first_commit.await.expect("task").expect("the group commits");
    assert_eq!(committed(&mut reader).await, vec![1]);
}

fn insert_of(v: i64) -> Query {
    sql::query("INSERT INTO t (v) VALUES ($1)").bind(v)
}

/// A rider goes along with the next statement, placeholders renumbered past its binds, and
/// what it changed stays known until asked, whatever runs after it; a rider that nothing
/// took along is handed back unsent, and a commit with one still queued is refused.
#[tokio::test]
async fn a_rider_goes_along_and_its_count_waits_to_be_asked() {
    let (_dir, writer, mut reader) = setup().await;
    let mut member = writer.begin().await.expect("begin");
    assert!(member.ride_along(insert_of(2)));
    assert!(!member.ride_along(insert_of(3)), "a second rider displaced the first");
    let ran = member.send("INSERT INTO t (v) VALUES ($1)", one_value(1)).await.expect("send");
    assert_eq!(ran.changed, 1);
    insert(&mut member, 5).await;
    assert!(matches!(member.take_rider(), Some(Ok(1))), "the rider's count was lost");
    assert!(member.take_rider().is_none());
    member.commit().await.expect("commit");
    assert_eq!(committed(&mut reader).await, vec![1, 2, 5]);

    let mut member = writer.begin().await.expect("begin");
    assert!(member.ride_along(insert_of(7)));
    let Some(Err(unsent)) = member.take_rider() else { panic!("the rider was not handed back") };
    assert_eq!(unsent.sql(), "INSERT INTO t (v) VALUES ($1)");
    assert!(member.ride_along(insert_of(8)));
    assert!(member.commit().await.is_err(), "a commit left a queued statement behind");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(committed(&mut reader).await, vec![1, 2, 5]);
}
