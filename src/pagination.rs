//! Cursor pagination, shared by every list: `?limit=` (default 50, at most 200) and an opaque
//! `?cursor=`; lists answer `{"items": [...], "next_cursor": string|null}`. A cursor this
//! list did not issue is a 422, never silently the first page.

use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::DomainError;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn limit(&self) -> Result<i64, DomainError> {
        check_limit(self.limit)
    }

    pub fn after<T: FromStr>(&self) -> Result<Option<T>, DomainError> {
        decode_cursor(self.cursor.as_deref())
    }
}

pub fn check_limit(limit: Option<i64>) -> Result<i64, DomainError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(DomainError::invalid("limit", "must be between 1 and 200")),
    }
}

pub fn encode_cursor(value: &str) -> String {
    URL_SAFE_NO_PAD.encode(value.as_bytes())
}

pub fn decode_cursor<T: FromStr>(cursor: Option<&str>) -> Result<Option<T>, DomainError> {
    let Some(cursor) = cursor else { return Ok(None) };
    let invalid = || DomainError::invalid("cursor", "is not a cursor this list issued");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    text.parse().map(Some).map_err(|_| invalid())
}

/// The parameters a type takes out of a query string it shares with another type (a list's
/// paging beside its filters).
pub trait QueryFields {
    const FIELDS: &'static [&'static str];
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// `rows` were fetched with `limit + 1`: the extra row says whether there is a next page.
    pub fn from_rows<R>(
        mut rows: Vec<R>,
        limit: i64,
        key: impl Fn(&R) -> String,
        view: impl Fn(R) -> T,
    ) -> Page<T> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|row| encode_cursor(&key(row)))
        } else {
            None
        };
        Page { items: rows.into_iter().map(view).collect(), next_cursor }
    }

    /// `from_rows` for views that can fail (values opened with a key): only the rows of the
    /// page are opened, not the extra one.
    pub fn try_from_rows<R, E>(
        rows: Vec<R>,
        limit: i64,
        key: impl Fn(&R) -> String,
        view: impl Fn(R) -> Result<T, E>,
    ) -> Result<Page<T>, E> {
        let page = Page::from_rows(rows, limit, key, |row| row);
        let items = page.items.into_iter().map(view).collect::<Result<_, _>>()?;
        Ok(Page { items, next_cursor: page.next_cursor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let cursor = encode_cursor("42");
        assert_eq!(decode_cursor::<i64>(Some(&cursor)).ok().flatten(), Some(42));
        assert!(decode_cursor::<i64>(Some("!!!")).is_err());
        assert!(decode_cursor::<i64>(Some(&encode_cursor("x"))).is_err());
        assert!(check_limit(Some(0)).is_err() && check_limit(Some(201)).is_err());
        assert_eq!(check_limit(None).ok(), Some(50));
    }

    #[test]
    fn a_page_holds_at_most_limit_items_and_points_past_the_last() {
        let page = Page::from_rows(vec![1, 2, 3], 2, |n| n.to_string(), |n| n * 10);
        assert_eq!(page.items, vec![10, 20]);
        assert_eq!(page.next_cursor, Some(encode_cursor("2")));
        let last = Page::from_rows(vec![1], 2, |n| n.to_string(), |n| n);
        assert_eq!(last.next_cursor, None);
    }
}
