//! One definition per query, run on either backend.
//!
//! A [`Query`] is SQL text plus binds held as plain values ([`Value`]). Running it turns the
//! values into the backend's argument buffer in one non-generic function per backend, so a
//! query site compiles once, not once per backend (the old `on_tx!` macro compiled every
//! body twice). Rows decode through `sqlx::FromRow`, which each row type derives for both
//! backends; only the row type is generic, never the query site.
//!
//! `$1, $2` placeholders work on SQLite too (sqlx maps them by number), so one text serves
//! both backends. Where the dialects really differ (`FOR UPDATE`, `SKIP LOCKED`, session
//! settings), the store function picks the text with `tx.backend()` and says so beside it.
//!
//! Why this and not sqlx's `Any` driver or a query builder: docs/ARCHITECTURE.md, "Query
//! layer", has the measurements.

#![allow(clippy::disallowed_methods, reason = "the store is where SQL lives")]

use std::borrow::Cow;

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Arguments as _, AssertSqlSafe};
use uuid::Uuid;

use super::tx::{Conn, count_statement};
use super::{AsRawTx, RawTx, StoreError};

/// A bound value. Each variant carries its own NULL, so PostgreSQL sees a typed parameter
/// (`NULL::uuid`, not an untyped NULL it would have to guess).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Uuid(Option<Uuid>),
    Text(Option<String>),
    Int(Option<i64>),
    Int4(Option<i32>),
    Bool(Option<bool>),
    Bytes(Option<Vec<u8>>),
}

/// Anything that can be bound to a query.
pub trait Bind {
    fn into_value(self) -> Value;
}

impl Bind for Value {
    fn into_value(self) -> Value {
        self
    }
}

macro_rules! bind_as {
    ($variant:ident: $($t:ty => |$v:ident| $e:expr),+ $(,)?) => {$(
        impl Bind for $t {
            fn into_value(self) -> Value {
                let $v = self;
                Value::$variant(Some($e))
            }
        }
        impl Bind for Option<$t> {
            fn into_value(self) -> Value {
                Value::$variant(self.map(|$v| $e))
            }
        }
    )+};
}

bind_as!(Uuid: Uuid => |v| v);
bind_as!(Text: String => |v| v, &str => |v| v.to_owned(), &String => |v| v.clone());
bind_as!(Int: i64 => |v| v);
bind_as!(Int4: i32 => |v| v);
bind_as!(Bool: bool => |v| v);
bind_as!(Bytes: Vec<u8> => |v| v, &[u8] => |v| v.to_vec(), &Vec<u8> => |v| v.clone());

impl Bind for &Option<String> {
    fn into_value(self) -> Value {
        Value::Text(self.clone())
    }
}

impl Bind for &Option<Vec<u8>> {
    fn into_value(self) -> Value {
        Value::Bytes(self.clone())
    }
}

/// Several values bound at once, in order: `query(sql).binds((id, tenant, name, now))`.
pub trait Binds {
    fn push_into(self, binds: &mut Vec<Value>);
}

macro_rules! binds_tuple {
    ($($name:ident),+) => {
        impl<$($name: Bind),+> Binds for ($($name,)+) {
            #[allow(non_snake_case, reason = "the type names double as value names")]
            fn push_into(self, binds: &mut Vec<Value>) {
                let ($($name,)+) = self;
                $(binds.push($name.into_value());)+
            }
        }
    };
}

binds_tuple!(A);
binds_tuple!(A, B);
binds_tuple!(A, B, C);
binds_tuple!(A, B, C, D);
binds_tuple!(A, B, C, D, E);
binds_tuple!(A, B, C, D, E, F);
binds_tuple!(A, B, C, D, E, F, G);
binds_tuple!(A, B, C, D, E, F, G, H);
binds_tuple!(A, B, C, D, E, F, G, H, I);
binds_tuple!(A, B, C, D, E, F, G, H, I, J);
binds_tuple!(A, B, C, D, E, F, G, H, I, J, K);
binds_tuple!(A, B, C, D, E, F, G, H, I, J, K, L);
binds_tuple!(A, B, C, D, E, F, G, H, I, J, K, L, M);
binds_tuple!(A, B, C, D, E, F, G, H, I, J, K, L, M, N);
binds_tuple!(A, B, C, D, E, F, G, H, I, J, K, L, M, N, O);
binds_tuple!(A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P);
binds_tuple!(A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P, Q);
binds_tuple!(A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P, Q, R);

/// A row type both backends can decode (what `#[derive(sqlx::FromRow)]` gives).
pub trait Row:
    for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin
{
}

impl<T> Row for T where
    T: for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin
{
}

/// SQL text and its binds. Build with [`query`], add values with [`Query::bind`], run with
/// one of the fetch methods on a transaction.
#[derive(Debug, Clone)]
#[must_use = "a query does nothing until it is run on a transaction"]
pub struct Query {
    sql: Cow<'static, str>,
    binds: Vec<Value>,
}

/// A query whose text is a literal (the usual case).
pub fn query(sql: &'static str) -> Query {
    Query { sql: Cow::Borrowed(sql), binds: Vec::new() }
}

impl Query {
    /// A query whose text was assembled at run time. Only for builders that assemble it
    /// from `&'static str` fragments and numbered placeholders (`crm::store`'s lists and
    /// writes), never from input.
    pub(crate) fn assembled(sql: String, binds: Vec<Value>) -> Query {
        Query { sql: Cow::Owned(sql), binds }
    }

    pub fn bind(mut self, value: impl Bind) -> Query {
        self.binds.push(value.into_value());
        self
    }

    /// Binds a tuple of values, in order.
    pub fn binds(mut self, values: impl Binds) -> Query {
        values.push_into(&mut self.binds);
        self
    }

    pub fn sql(&self) -> &str {
        &self.sql
    }

    pub(super) fn into_parts(self) -> (Cow<'static, str>, Vec<Value>) {
        (self.sql, self.binds)
    }

    /// Runs a statement; the number of rows it changed.
    pub async fn execute(self, tx: &mut impl AsRawTx) -> Result<u64, StoreError> {
        self.execute_raw(tx.raw()).await
    }

    async fn execute_raw(self, tx: &mut RawTx) -> Result<u64, StoreError> {
        let Query { sql, binds } = self;
        count_statement();
        if let Some(member) = tx.member_with_pending() {
            return Ok(member.send(&sql, binds).await?.changed);
        }
        let sql = AssertSqlSafe(sql);
        let named = tx.named_statements();
        Ok(match tx.conn().await? {
            Conn::Sqlite(c) => {
                sqlx::query_with(sql, sqlite_args(binds)?).execute(c).await?.rows_affected()
            }
            Conn::Postgres(c) => sqlx::query_with(sql, pg_args(binds)?)
                .persistent(named)
                .execute(c)
                .await?
                .rows_affected(),
        })
    }

    /// Runs a statement that must change exactly one row: `Ok(false)` when it changed none
    /// (the row was missing, another tenant's, or already in the target state).
    pub async fn execute_one(self, tx: &mut impl AsRawTx) -> Result<bool, StoreError> {
        Ok(self.execute_raw(tx.raw()).await? == 1)
    }

    pub async fn fetch_all<R: Row>(self, tx: &mut impl AsRawTx) -> Result<Vec<R>, StoreError> {
        let Query { sql, binds } = self;
        count_statement();
        let raw = tx.raw();
        if let Some(member) = raw.member_with_pending() {
            let ran = member.send(&sql, binds).await?;
            return ran.rows.iter().map(decode).collect();
        }
        let sql = AssertSqlSafe(sql);
        let named = raw.named_statements();
        Ok(match raw.conn().await? {
            Conn::Sqlite(c) => sqlx::query_as_with(sql, sqlite_args(binds)?).fetch_all(c).await,
            Conn::Postgres(c) => {
                sqlx::query_as_with(sql, pg_args(binds)?).persistent(named).fetch_all(c).await
            }
        }?)
    }

    pub async fn fetch_optional<R: Row>(
        self,
        tx: &mut impl AsRawTx,
    ) -> Result<Option<R>, StoreError> {
        let Query { sql, binds } = self;
        count_statement();
        let raw = tx.raw();
        if let Some(member) = raw.member_with_pending() {
            let ran = member.send(&sql, binds).await?;
            return ran.rows.first().map(decode).transpose();
        }
        let sql = AssertSqlSafe(sql);
        let named = raw.named_statements();
        Ok(match raw.conn().await? {
            Conn::Sqlite(c) => {
                sqlx::query_as_with(sql, sqlite_args(binds)?).fetch_optional(c).await
            }
            Conn::Postgres(c) => {
                sqlx::query_as_with(sql, pg_args(binds)?).persistent(named).fetch_optional(c).await
            }
        }?)
    }

    /// Exactly one row; none is an error (use `fetch_optional` where none is normal).
    pub async fn fetch_one<R: Row>(self, tx: &mut impl AsRawTx) -> Result<R, StoreError> {
        self.fetch_optional(tx).await?.ok_or(StoreError::Database(sqlx::Error::RowNotFound))
    }

    /// The first column of every row.
    pub async fn scalars<T>(self, tx: &mut impl AsRawTx) -> Result<Vec<T>, StoreError>
    where
        (T,): Row,
    {
        Ok(self.fetch_all::<(T,)>(tx).await?.into_iter().map(|(v,)| v).collect())
    }

    /// The first column of the first row, if there is one.
    pub async fn scalar_optional<T>(self, tx: &mut impl AsRawTx) -> Result<Option<T>, StoreError>
    where
        (T,): Row,
    {
        Ok(self.fetch_optional::<(T,)>(tx).await?.map(|(v,)| v))
    }

    /// The first column of the one row (`count(*)`, `RETURNING x`).
    pub async fn scalar<T>(self, tx: &mut impl AsRawTx) -> Result<T, StoreError>
    where
        (T,): Row,
    {
        Ok(self.fetch_one::<(T,)>(tx).await?.0)
    }
}

/// `sql` with each placeholder `$n` moved to `$(n + offset)`: a statement sent after others
/// in one text (`writer::Member::send`), whose binds follow theirs. Our statements' texts
/// are literals whose only `$` are placeholders.
pub(super) fn renumbered(sql: &str, offset: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&(n + offset).to_string()),
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

/// A row of a statement a SQLite writer's member sent with what was pending
/// (`writer::Member::send`).
fn decode<R: Row>(row: &SqliteRow) -> Result<R, StoreError> {
    Ok(<R as sqlx::FromRow<'_, SqliteRow>>::from_row(row)?)
}

/// A value the driver cannot encode: a bug in a bind, reported like any database error.
type ArgsResult<A> = Result<A, StoreError>;

fn encode_failed(err: sqlx::error::BoxDynError) -> StoreError {
    StoreError::Database(sqlx::Error::Encode(err))
}

/// Adds every bind to a backend's argument buffer: the same match for both backends, written
/// once (`Arguments::add` is generic over each value's `Encode` for that backend).
macro_rules! add_all {
    ($args:ident, $binds:ident) => {
        $args.reserve($binds.len(), 0);
        for value in $binds {
            match value {
                Value::Uuid(v) => $args.add(v).map_err(encode_failed)?,
                Value::Text(v) => $args.add(v).map_err(encode_failed)?,
                Value::Int(v) => $args.add(v).map_err(encode_failed)?,
                Value::Int4(v) => $args.add(v).map_err(encode_failed)?,
                Value::Bool(v) => $args.add(v).map_err(encode_failed)?,
                Value::Bytes(v) => $args.add(v).map_err(encode_failed)?,
            }
        }
    };
}

pub(super) fn sqlite_args(binds: Vec<Value>) -> ArgsResult<SqliteArguments> {
    let mut args = SqliteArguments::default();
    add_all!(args, binds);
    Ok(args)
}

fn pg_args(binds: Vec<Value>) -> ArgsResult<PgArguments> {
    let mut args = PgArguments::default();
    add_all!(args, binds);
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rider_s_placeholders_follow_the_statement_s() {
        let sql =
            "INSERT INTO t SELECT $1, $2 WHERE EXISTS (SELECT 1 FROM h WHERE a = $2 AND b = $12)";
        assert_eq!(
            renumbered(sql, 18),
            "INSERT INTO t SELECT $19, $20 WHERE EXISTS (SELECT 1 FROM h WHERE a = $20 AND b = $30)"
        );
        assert_eq!(renumbered("SELECT $1", 0), "SELECT $1");
    }

    #[test]
    fn binds_keep_their_type_when_null() {
        let q = query("SELECT $1, $2, $3").bind(None::<Uuid>).bind(Some("a")).bind(7_i64);
        assert_eq!(
            q.binds,
            [Value::Uuid(None), Value::Text(Some("a".into())), Value::Int(Some(7))]
        );
    }
}
