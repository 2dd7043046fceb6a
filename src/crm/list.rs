//! Listing CRM records: sort orders as enums, keyset cursors, and turning `limit + 1` rows
//! into a page. The SQL side (filters and the keyset condition) is `crm::store::ListQuery`.
//!
//! A list sorts by one column of its [`SortColumn`] enum and the id as a tie-breaker; the
//! cursor carries both, so pages are stable while rows are added. `?sort=name` sorts
//! ascending, `?sort=-name` descending; an unknown column or a cursor of another list or
//! order is a 422, never a silent first page.

use std::fmt;
use std::marker::PhantomData;

use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

use super::Keyed;
use crate::error::DomainError;
#[cfg(test)]
use crate::pagination::Page;
use crate::pagination::{check_limit, decode_cursor, encode_cursor};

/// The value a row has in the sort column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SortValue {
    Int(i64),
    Text(String),
}

/// The columns a list can sort by: one enum per list, the first variant the default.
pub trait SortColumn: Copy + fmt::Debug + Send + Sync + 'static {
    type Row;
    /// Every column, the default first.
    const ALL: &'static [Self];
    /// Its name in `?sort=`.
    fn name(self) -> &'static str;
    /// Its SQL expression (a column, maybe with a table alias): a literal, never input.
    fn sql(self) -> &'static str;
    /// Whether its values are text (else integers: times, amounts).
    fn is_text(self) -> bool;
    /// A row's value in this column.
    fn value(self, row: &Self::Row) -> SortValue;
}

/// A sort order: a column and a direction.
#[derive(Debug, Clone, Copy)]
pub struct Sort<C> {
    pub column: C,
    pub descending: bool,
}

impl<C: SortColumn> Default for Sort<C> {
    fn default() -> Self {
        Sort { column: C::ALL[0], descending: false }
    }
}

impl<C: SortColumn> Sort<C> {
    pub fn parse(text: &str) -> Option<Sort<C>> {
        let (descending, name) = match text.strip_prefix('-') {
            Some(name) => (true, name),
            None => (false, text),
        };
        let column = C::ALL.iter().copied().find(|c| c.name() == name)?;
        Some(Sort { column, descending })
    }

    fn names() -> Vec<String> {
        C::ALL.iter().flat_map(|c| [c.name().to_owned(), format!("-{}", c.name())]).collect()
    }
}

impl<'de, C: SortColumn> Deserialize<'de> for Sort<C> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Sort::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("must be one of {}", Sort::<C>::names().join(", ")))
        })
    }
}

/// The OpenAPI schema of `?sort=` for the columns `C`: a string enum of every column, with
/// and without `-`. Each column enum implements `ToSchema` with it (`sort_schema!`), and
/// its list's filter declares `#[param(value_type = Option<ThatEnum>)]`.
pub fn schema_of_sort<C: SortColumn>() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(Sort::<C>::names()))
        .description(Some("The sort column; prefix `-` for descending."))
        .into()
}

/// `ToSchema` for a sort-column enum, describing `?sort=` (see `schema_of_sort`).
macro_rules! sort_schema {
    ($column:ty) => {
        impl utoipa::PartialSchema for $column {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::crm::list::schema_of_sort::<$column>()
            }
        }
        impl utoipa::ToSchema for $column {}
    };
}
pub(crate) use sort_schema;

/// The page a list request asks for: `?sort=`, `?limit=` and `?cursor=`, as given (checked
/// by `PageRequest::new`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = ""))]
pub struct Paging<C: SortColumn> {
    pub sort: Option<Sort<C>>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

impl<C: SortColumn> Default for Paging<C> {
    fn default() -> Self {
        Paging { sort: None, limit: None, cursor: None }
    }
}

impl<C: SortColumn> Paging<C> {
    pub fn request(&self) -> Result<PageRequest<C>, DomainError> {
        PageRequest::new(self.sort, self.cursor.as_deref(), self.limit)
    }

    /// The OpenAPI of the three parameters.
    pub fn params() -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let param = |name: &str, description: &str, schema: utoipa::openapi::RefOr<_>| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Query)
                .description(Some(description))
                .schema(Some(schema))
                .build()
        };
        let limit = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .maximum(Some(200))
            .into();
        let cursor = ObjectBuilder::new().schema_type(Type::String).into();
        vec![
            param("sort", "The order; prefix `-` for descending.", schema_of_sort::<C>()),
            param("limit", "Page size, 1 to 200 (default 50).", limit),
            param("cursor", "`next_cursor` of the previous page.", cursor),
        ]
    }
}

/// Lists sort by the times every record has, unless they say otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByTime {
    CreatedAt,
    UpdatedAt,
}

/// `?sort=created_at` or `updated_at` over rows `R`.
pub struct TimeSort<R>(ByTime, PhantomData<fn() -> R>);

impl<R> Clone for TimeSort<R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R> Copy for TimeSort<R> {}

impl<R> fmt::Debug for TimeSort<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<R: Keyed + 'static> utoipa::PartialSchema for TimeSort<R> {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        schema_of_sort::<Self>()
    }
}

impl<R: Keyed + 'static> utoipa::ToSchema for TimeSort<R> {}

impl<R: Keyed + 'static> SortColumn for TimeSort<R> {
    type Row = R;
    const ALL: &'static [Self] =
        &[TimeSort(ByTime::CreatedAt, PhantomData), TimeSort(ByTime::UpdatedAt, PhantomData)];
    fn name(self) -> &'static str {
        match self.0 {
            ByTime::CreatedAt => "created_at",
            ByTime::UpdatedAt => "updated_at",
        }
    }
    fn sql(self) -> &'static str {
        self.name()
    }
    fn is_text(self) -> bool {
        false
    }
    fn value(self, row: &R) -> SortValue {
        let key = row.key();
        SortValue::Int(match self.0 {
            ByTime::CreatedAt => key.created_at.millis(),
            ByTime::UpdatedAt => key.updated_at.millis(),
        })
    }
}

impl<C: SortColumn> crate::pagination::QueryFields for Paging<C> {
    const FIELDS: &'static [&'static str] = &["sort", "limit", "cursor"];
}

/// Where the next page starts: after this value and id, in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    /// The sort column's name and direction, so a cursor of another order is refused.
    s: String,
    v: SortValue,
    id: Uuid,
}

impl std::str::FromStr for Cursor {
    type Err = serde_json::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        serde_json::from_str(s)
    }
}

/// One page request of a list: order, position and size, all checked.
#[derive(Debug, Clone)]
pub struct PageRequest<C> {
    pub sort: Sort<C>,
    /// The last row of the previous page: its sort value and id.
    pub after: Option<(SortValue, Uuid)>,
    pub limit: i64,
    _rows: PhantomData<fn() -> C>,
}

impl<C: SortColumn> PageRequest<C> {
    pub fn new(
        sort: Option<Sort<C>>,
        cursor: Option<&str>,
        limit: Option<i64>,
    ) -> Result<PageRequest<C>, DomainError> {
        let sort = sort.unwrap_or_default();
        let limit = check_limit(limit)?;
        let after = match decode_cursor::<Cursor>(cursor)? {
            None => None,
            Some(cursor) => {
                let kind_matches = match cursor.v {
                    SortValue::Text(_) => sort.column.is_text(),
                    SortValue::Int(_) => !sort.column.is_text(),
                };
                if cursor.s != order_name(sort) || !kind_matches {
                    return Err(DomainError::invalid(
                        "cursor",
                        "belongs to another list or sort order; start again without it",
                    ));
                }
                Some((cursor.v, cursor.id))
            }
        };
        Ok(PageRequest { sort, after, limit, _rows: PhantomData })
    }

    /// Cuts the `limit + 1` rows the query fetched to the page, with the cursor of the next
    /// page when there is one.
    pub fn cut(
        &self,
        mut rows: Vec<C::Row>,
        id_of: impl Fn(&C::Row) -> Uuid,
    ) -> (Vec<C::Row>, Option<String>) {
        let limit = usize::try_from(self.limit).unwrap_or(usize::MAX);
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|row| {
                let cursor = Cursor {
                    s: order_name(self.sort),
                    v: self.sort.column.value(row),
                    id: id_of(row),
                };
                // Invariant: a struct of a string, an integer or string, and a UUID always
                // serializes to JSON.
                encode_cursor(&serde_json::to_string(&cursor).expect("a cursor serializes"))
            })
        } else {
            None
        };
        (rows, next_cursor)
    }
}

fn order_name<C: SortColumn>(sort: Sort<C>) -> String {
    format!("{}{}", if sort.descending { "-" } else { "" }, sort.column.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum By {
        Created,
        Name,
    }

    struct Row(i64, String, Uuid);

    impl SortColumn for By {
        type Row = Row;
        const ALL: &'static [By] = &[By::Created, By::Name];
        fn name(self) -> &'static str {
            match self {
                By::Created => "created_at",
                By::Name => "name",
            }
        }
        fn sql(self) -> &'static str {
            self.name()
        }
        fn is_text(self) -> bool {
            self == By::Name
        }
        fn value(self, row: &Row) -> SortValue {
            match self {
                By::Created => SortValue::Int(row.0),
                By::Name => SortValue::Text(row.1.clone()),
            }
        }
    }

    fn page_of(rows: Vec<Row>, request: &PageRequest<By>) -> Page<i64> {
        let (rows, next_cursor) = request.cut(rows, |r| r.2);
        Page { items: rows.into_iter().map(|r| r.0).collect(), next_cursor }
    }

    #[test]
    fn sorts_parse_by_name_and_direction_and_unknown_ones_are_refused() {
        let sort: Sort<By> = serde_json::from_str("\"-name\"").expect("parses");
        assert_eq!((sort.column, sort.descending), (By::Name, true));
        assert!(serde_json::from_str::<Sort<By>>("\"email\"").is_err());
        assert_eq!(Sort::<By>::default().column, By::Created);
    }

    #[test]
    fn a_cursor_continues_its_own_order_only() {
        let request = PageRequest::<By>::new(None, None, Some(1)).expect("request");
        let rows = vec![Row(1, "a".into(), Uuid::nil()), Row(2, "b".into(), Uuid::nil())];
        let page = page_of(rows, &request);
        assert_eq!(page.items, vec![1]);
        let cursor = page.next_cursor.expect("a next page");
        let next = PageRequest::<By>::new(None, Some(&cursor), Some(1)).expect("same order");
        assert_eq!(next.after, Some((SortValue::Int(1), Uuid::nil())));
        let other_order = Sort::parse("-created_at");
        assert!(PageRequest::<By>::new(other_order, Some(&cursor), Some(1)).is_err());
        assert!(PageRequest::<By>::new(Sort::parse("name"), Some(&cursor), None).is_err());
        assert!(PageRequest::<By>::new(None, Some("garbage"), None).is_err());
        let forged = encode_cursor(
            "{\"s\":\"created_at\",\"v\":\"text\",\"id\":\"00000000-0000-0000-0000-000000000000\"}",
        );
        assert!(
            PageRequest::<By>::new(None, Some(&forged), None).is_err(),
            "a text value on a time column"
        );
    }
}
