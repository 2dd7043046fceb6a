//! SQL shared by the CRM resources: a record by id, writing and deleting one, reference
//! checks, and the list builder (filters and keyset pagination).
//!
//! List SQL is assembled from `&'static str` fragments of the resource stores and numbered
//! placeholders, never from input; every value is a bind, and the tenant filter comes
//! first, always.

use uuid::Uuid;

use super::Record;
use super::list::{PageRequest, SortColumn, SortValue};
use crate::clock::Timestamp;
use crate::ids::{ContactId, TenantId};
use crate::store::{Bind, Binds, Query, Row, StoreError, TenantTx, Value, query};

/// `R::SELECT` of the transaction's tenant (`$1`) narrowed by `rest`, over the record's own
/// columns (`{a}` stands for `R::ALIAS`).
fn select<R: Record>(tx: &TenantTx, rest: &str) -> Query {
    let sql = format!(
        "{} WHERE {a}tenant_id = $1 {}",
        R::SELECT,
        rest.replace("{a}", R::ALIAS),
        a = R::ALIAS
    );
    Query::assembled(sql, Vec::new()).bind(tx.tenant_id())
}

/// One record of the transaction's tenant.
pub async fn get<R: Record>(tx: &mut TenantTx, id: R::Id) -> Result<Option<R::Row>, StoreError> {
    select::<R>(tx, "AND {a}id = $2").bind(id).fetch_optional(tx).await
}

/// The records that name one contact (`contact_id`), for the privacy export.
pub async fn of_contact<R: Record>(
    tx: &mut TenantTx,
    contact: ContactId,
) -> Result<Vec<R::Row>, StoreError> {
    select::<R>(tx, "AND {a}contact_id = $2 ORDER BY {a}id").bind(contact).fetch_all(tx).await
}

/// Records sealed under a data key older than `version`, for rotation.
pub async fn older_than<R: Record>(
    tx: &mut TenantTx,
    version: i32,
    limit: i64,
) -> Result<Vec<R::Row>, StoreError> {
    select::<R>(tx, "AND {a}key_version < $2 ORDER BY {a}id LIMIT $3")
        .binds((version, limit))
        .fetch_all(tx)
        .await
}

/// Inserts a record (`insert`) or rewrites it whole. `values` bind to `R::WRITES` in order,
/// after the id (`$1`) and the tenant (`$2`); `now` binds last, as an insert's creation and
/// update time or a rewrite's update time. The row as written when `R::RETURNING` names its
/// columns; `None` when it does not, or when a rewrite found no such record.
pub async fn write<R: Record>(
    tx: &mut TenantTx,
    id: R::Id,
    values: impl Binds,
    insert: bool,
    now: Timestamp,
) -> Result<Option<R::Row>, StoreError> {
    let sql = write_sql(R::TABLE, R::WRITES, R::REWRITE_IF, R::RETURNING, insert);
    let query =
        Query::assembled(sql, Vec::new()).bind(id).bind(tx.tenant_id()).binds(values).bind(now);
    if R::RETURNING.is_empty() {
        query.execute(tx).await?;
        return Ok(None);
    }
    query.fetch_optional(tx).await
}

/// `write`'s statement, built from a record's constants only (never from input), so that
/// each resource names its columns once and no placeholder is numbered by hand.
fn write_sql(
    table: &str,
    columns: &[&str],
    rewrite_if: &str,
    returning: &str,
    insert: bool,
) -> String {
    let now = columns.len() + 3;
    let mut sql = if insert {
        let names = ["id", "tenant_id"].iter().chain(columns).chain(&["created_at", "updated_at"]);
        let values = (1..now).chain([now, now]).map(|n| format!("${n}"));
        format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            names.copied().collect::<Vec<_>>().join(", "),
            values.collect::<Vec<_>>().join(", ")
        )
    } else {
        let sets = columns.iter().zip(3..).map(|(column, n)| format!("{column} = ${n}, "));
        let mut sql = format!("UPDATE {table} SET {}", sets.collect::<String>());
        sql.push_str(&format!("updated_at = ${now} WHERE id = $1 AND tenant_id = $2"));
        if !rewrite_if.is_empty() {
            sql.push_str(" AND ");
            sql.push_str(rewrite_if);
        }
        sql
    };
    if !returning.is_empty() {
        sql.push_str(" RETURNING ");
        sql.push_str(returning);
    }
    sql
}

/// Unlinks the records that point at one (`R::UNLINK`), then deletes it; false when the
/// tenant has no such record.
pub async fn delete<R: Record>(tx: &mut TenantTx, id: R::Id) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    for sql in R::UNLINK {
        query(sql).bind(tenant).bind(id).execute(tx).await?;
    }
    let sql = format!("DELETE FROM {} WHERE tenant_id = $1 AND id = $2", R::TABLE);
    Query::assembled(sql, Vec::new()).bind(tenant).bind(id).execute_one(tx).await
}

/// Whether `R::IN_USE` counts anything for this record.
pub async fn in_use<R: Record>(tx: &mut TenantTx, id: R::Id) -> Result<bool, StoreError> {
    let Some((sql, _)) = R::IN_USE else { return Ok(false) };
    let tenant = tx.tenant_id();
    let count: i64 = query(sql).bind(tenant).bind(id).scalar(tx).await?;
    Ok(count > 0)
}

/// Records another may point at, and how to count one of this tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ref {
    User,
    Company,
    Contact,
    Deal,
    Lead,
    Pipeline,
}

impl Ref {
    fn sql(self) -> &'static str {
        match self {
            // Deactivated users may still own records; they must belong to the tenant.
            Ref::User => "SELECT count(*) FROM users WHERE tenant_id = $1 AND id = $2",
            Ref::Company => "SELECT count(*) FROM companies WHERE tenant_id = $1 AND id = $2",
            Ref::Contact => {
                "SELECT count(*) FROM contacts WHERE tenant_id = $1 AND id = $2 \
                 AND erased_at IS NULL"
            }
            Ref::Deal => "SELECT count(*) FROM deals WHERE tenant_id = $1 AND id = $2",
            Ref::Lead => "SELECT count(*) FROM leads WHERE tenant_id = $1 AND id = $2",
            Ref::Pipeline => "SELECT count(*) FROM pipelines WHERE tenant_id = $1 AND id = $2",
        }
    }
}

/// Whether `id` names a record of `kind` in the transaction's tenant.
pub async fn exists(tx: &mut TenantTx, kind: Ref, id: Uuid) -> Result<bool, StoreError> {
    let tenant = tx.tenant_id();
    let found: i64 = query(kind.sql()).bind(tenant).bind(id).scalar(tx).await?;
    Ok(found > 0)
}

/// A list query under construction: `SELECT … WHERE tenant_id = $1 [AND …] ORDER BY … LIMIT`.
pub struct ListQuery {
    sql: String,
    binds: Vec<Value>,
    alias: &'static str,
}

impl ListQuery {
    /// `select` is the `SELECT … FROM …` part; `alias` prefixes the tenant, sort and id
    /// columns (`"d."` when the select joins).
    pub fn new(select: &'static str, alias: &'static str, tenant: TenantId) -> ListQuery {
        ListQuery {
            sql: format!("{select} WHERE {alias}tenant_id = $1"),
            binds: vec![tenant.into_value()],
            alias,
        }
    }

    fn placeholder(&mut self, value: Value) -> String {
        self.binds.push(value);
        format!("${}", self.binds.len())
    }

    /// Adds `AND <fragment>` when `value` is given; `?` in the fragment is its placeholder.
    pub fn and_if<T: Bind>(&mut self, fragment: &'static str, value: Option<T>) -> &mut Self {
        if let Some(value) = value {
            let placeholder = self.placeholder(value.into_value());
            self.sql.push_str(" AND ");
            self.sql.push_str(&fragment.replace('?', &placeholder));
        }
        self
    }

    /// Adds a condition without a value.
    pub fn and(&mut self, fragment: &'static str) -> &mut Self {
        self.sql.push_str(" AND ");
        self.sql.push_str(fragment);
        self
    }

    /// Keyset pagination and order; fetches `limit + 1` rows, so the page knows whether a
    /// next one exists.
    pub fn page<C: SortColumn>(mut self, request: &PageRequest<C>) -> Query {
        let alias = self.alias;
        let column = request.sort.column.sql();
        let (cmp, dir) = if request.sort.descending { ("<", "DESC") } else { (">", "ASC") };
        if let Some((value, id)) = &request.after {
            let value = match value {
                SortValue::Int(n) => Value::Int(Some(*n)),
                SortValue::Text(t) => Value::Text(Some(t.clone())),
            };
            let v = self.placeholder(value);
            let i = self.placeholder(Value::Uuid(Some(*id)));
            self.sql.push_str(&format!(
                " AND ({column} {cmp} {v} OR ({column} = {v} AND {alias}id {cmp} {i}))"
            ));
        }
        let l = self.placeholder(Value::Int(Some(request.limit.saturating_add(1))));
        self.sql.push_str(&format!(" ORDER BY {column} {dir}, {alias}id {dir} LIMIT {l}"));
        Query::assembled(self.sql, self.binds)
    }
}

/// Runs a list query.
pub async fn fetch_page<R: Row>(tx: &mut TenantTx, query: Query) -> Result<Vec<R>, StoreError> {
    query.fetch_all(tx).await
}

/// How many records of this kind the tenant has (the console's dashboard).
pub async fn count<R: Record>(tx: &mut TenantTx) -> Result<i64, StoreError> {
    // The table's name is a constant of the record kind, never input.
    let sql = format!("SELECT count(*) FROM {} WHERE tenant_id = $1", R::TABLE);
    Query::assembled(sql, vec![]).bind(tx.tenant_id()).scalar(tx).await
}

/// One page of a record's list under its filters.
pub async fn list<R: Record, C: SortColumn>(
    tx: &mut TenantTx,
    filter: &R::Filter,
    page: &PageRequest<C>,
) -> Result<Vec<R::Row>, StoreError> {
    let mut query = ListQuery::new(R::SELECT, R::ALIAS, tx.tenant_id());
    R::filter(&mut query, filter);
    query.page(page).fetch_all(tx).await
}

#[cfg(test)]
mod tests {
    use super::write_sql;

    #[test]
    fn a_write_numbers_its_placeholders_from_the_columns() {
        let insert = write_sql("leads", &["title", "status"], "", "id, title", true);
        assert_eq!(
            insert,
            "INSERT INTO leads (id, tenant_id, title, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) RETURNING id, title"
        );
        let rewrite = write_sql("contacts", &["tags"], "erased_at IS NULL", "", false);
        assert_eq!(
            rewrite,
            "UPDATE contacts SET tags = $3, updated_at = $4 \
             WHERE id = $1 AND tenant_id = $2 AND erased_at IS NULL"
        );
    }
}
