//! Listing: filters, sorting and keyset (cursor) pagination over unencrypted columns.
//!
//! The SQL text is assembled from `&'static str` fragments chosen from closed lists (never
//! from input); every value is a bind. Sorting is by a column and the id as a tie-breaker;
//! the cursor carries both, so pages are stable while rows are added.

#![allow(clippy::disallowed_methods, reason = "the list builder is store code")]

use serde::{Deserialize, Serialize};
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use crate::error::DomainError;
use crate::http::pagination::{decode_cursor, encode_cursor};
use crate::on_tx;
use crate::store::{StoreError, TenantTx};

#[derive(Debug, Clone)]
pub enum Bind {
    Uuid(Uuid),
    Text(String),
    Int(i64),
    Bool(bool),
    Bytes(Vec<u8>),
}

/// A sortable column: its name in `?sort=`, its SQL, and the kind of its values.
#[derive(Debug, Clone, Copy)]
pub struct SortColumn {
    pub name: &'static str,
    pub sql: &'static str,
    pub text: bool,
}

pub const BY_CREATED: SortColumn =
    SortColumn { name: "created_at", sql: "created_at", text: false };
pub const BY_UPDATED: SortColumn =
    SortColumn { name: "updated_at", sql: "updated_at", text: false };

#[derive(Debug, Clone, Copy)]
pub struct Sort {
    pub column: SortColumn,
    pub descending: bool,
}

/// Parses `?sort=name` or `?sort=-name` against the allowed columns.
pub fn parse_sort(value: Option<&str>, allowed: &[SortColumn]) -> Result<Sort, DomainError> {
    let Some(value) = value else { return Ok(Sort { column: BY_CREATED, descending: false }) };
    let (descending, name) = match value.strip_prefix('-') {
        Some(name) => (true, name),
        None => (false, value),
    };
    let column = allowed.iter().find(|c| c.name == name).copied().ok_or_else(|| {
        let names: Vec<&str> = allowed.iter().map(|c| c.name).collect();
        DomainError::invalid(
            "sort",
            format!("must be one of {} (prefix - for descending)", names.join(", ")),
        )
    })?;
    Ok(Sort { column, descending })
}

#[derive(Serialize, Deserialize)]
struct Cursor(serde_json::Value, Uuid);

pub struct ListQuery {
    sql: String,
    binds: Vec<Bind>,
}

impl ListQuery {
    /// `select` is the SELECT … FROM … part; the tenant filter comes first, always.
    pub fn new(select: &'static str, table_alias: &'static str, tx: &TenantTx) -> ListQuery {
        let mut query =
            ListQuery { sql: format!("{select} WHERE {table_alias}tenant_id = $1"), binds: vec![] };
        query.binds.push(Bind::Uuid(tx.tenant_id().as_uuid()));
        query
    }

    fn placeholder(&mut self, bind: Bind) -> String {
        self.binds.push(bind);
        format!("${}", self.binds.len())
    }

    /// Adds `AND <fragment>` where `?` in the fragment is the bound value.
    pub fn and(&mut self, fragment: &'static str, bind: Bind) -> &mut Self {
        let placeholder = self.placeholder(bind);
        self.sql.push_str(" AND ");
        self.sql.push_str(&fragment.replace('?', &placeholder));
        self
    }

    pub fn and_if<T>(
        &mut self,
        fragment: &'static str,
        value: Option<T>,
        bind: impl FnOnce(T) -> Bind,
    ) -> &mut Self {
        if let Some(value) = value {
            self.and(fragment, bind(value));
        }
        self
    }

    /// A condition without a value.
    pub fn and_raw(&mut self, fragment: &'static str) -> &mut Self {
        self.sql.push_str(" AND ");
        self.sql.push_str(fragment);
        self
    }

    /// Keyset pagination and order; fetches `limit + 1` rows so the caller knows whether a
    /// next page exists.
    pub fn page(
        &mut self,
        sort: Sort,
        cursor: Option<&str>,
        limit: i64,
        alias: &'static str,
    ) -> Result<&mut Self, DomainError> {
        let column = sort.column.sql;
        let (cmp, dir) = if sort.descending { ("<", "DESC") } else { (">", "ASC") };
        if let Some(Cursor(value, id)) = decode_cursor::<CursorText>(cursor)?.map(|c| c.0) {
            let bound = if sort.column.text {
                Bind::Text(value.as_str().unwrap_or_default().to_owned())
            } else {
                Bind::Int(value.as_i64().unwrap_or_default())
            };
            let v = self.placeholder(bound);
            let i = self.placeholder(Bind::Uuid(id));
            self.sql.push_str(&format!(
                " AND ({alias}{column} {cmp} {v} OR ({alias}{column} = {v} AND {alias}id {cmp} {i}))"
            ));
        }
        let l = self.placeholder(Bind::Int(limit + 1));
        self.sql.push_str(&format!(" ORDER BY {alias}{column} {dir}, {alias}id {dir} LIMIT {l}"));
        Ok(self)
    }

    pub async fn fetch<R>(&self, tx: &mut TenantTx) -> Result<Vec<R>, StoreError>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
            + Send
            + Unpin,
    {
        let sql = self.sql.clone();
        let binds = self.binds.clone();
        Ok(on_tx!(tx, |c| {
            // Assembled only from static fragments and numbered placeholders (see above).
            let mut query = sqlx::query_as::<_, R>(AssertSqlSafe(sql));
            for bind in binds {
                query = match bind {
                    Bind::Uuid(v) => query.bind(v),
                    Bind::Text(v) => query.bind(v),
                    Bind::Int(v) => query.bind(v),
                    Bind::Bool(v) => query.bind(v),
                    Bind::Bytes(v) => query.bind(v),
                };
            }
            query.fetch_all(c).await
        })?)
    }
}

/// The cursor's JSON, carried inside the opaque base64 cursor.
struct CursorText(Cursor);

impl std::str::FromStr for CursorText {
    type Err = serde_json::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        serde_json::from_str(s).map(CursorText)
    }
}

/// The cursor pointing after `row`.
pub fn cursor_after(sort: Sort, text: Option<&str>, int: Option<i64>, id: Uuid) -> String {
    let value = if sort.column.text {
        serde_json::Value::from(text.unwrap_or_default())
    } else {
        serde_json::Value::from(int.unwrap_or_default())
    };
    encode_cursor(&serde_json::to_string(&Cursor(value, id)).unwrap_or_default())
}

/// Turns `limit + 1` rows into a page of views and the next cursor.
pub fn paginate<R, V>(
    mut rows: Vec<R>,
    limit: i64,
    cursor_of: impl Fn(&R) -> String,
    view: impl FnMut(R) -> Result<V, DomainError>,
) -> Result<crate::http::pagination::Page<V>, DomainError> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(cursor_of)
    } else {
        None
    };
    Ok(crate::http::pagination::Page {
        items: rows.into_iter().map(view).collect::<Result<_, _>>()?,
        next_cursor,
    })
}
