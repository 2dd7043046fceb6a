//! `POST /api/v1/exports/contacts`: the contacts the caller may see, as CSV.
//!
//! Permission `export:run`, the sensitive rate-limit category, a recent step-up, and an audit
//! event with the row count (and a metric, so unusual volume raises an alert). Cells a
//! spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, tab or carriage
//! return) are neutralised with a leading apostrophe (OWASP CSV injection).

pub mod routes;

use serde::Deserialize;
use utoipa::ToSchema;

use super::contacts::{self as contact, ContactFilter, ContactView, Sensitive};
use super::list::PageRequest;
use super::tenant_keys;
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::error::{DomainError, DomainResult};
use crate::tenancy::{Permission, TenantScope};

/// Most rows one export returns; narrow the filter beyond it.
pub const MAX_ROWS: usize = 100_000;
const BATCH: i64 = 200;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    #[serde(default)]
    filter: ContactFilter,
}

pub const HEADER: [&str; 22] = [
    "id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "date_of_birth",
    "ssn",
    "address_line1",
    "address_line2",
    "address_city",
    "address_region",
    "address_postal_code",
    "address_country",
    "bank_holder",
    "bank_iban",
    "bank_account_number",
    "bank_routing_number",
    "company_id",
    "owner_id",
    "tags",
    "created_at",
    "updated_at",
];

/// A cell a spreadsheet will not evaluate.
pub fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

fn record(view: &ContactView) -> Vec<String> {
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    let address = view.address.clone().unwrap_or_default();
    let bank = view.bank_account.clone().unwrap_or_default();
    vec![
        view.id.to_string(),
        s(&view.first_name),
        s(&view.last_name),
        s(&view.email),
        s(&view.phone),
        s(&view.date_of_birth),
        s(&view.ssn),
        s(&address.line1),
        s(&address.line2),
        s(&address.city),
        s(&address.region),
        s(&address.postal_code),
        s(&address.country),
        s(&bank.holder),
        s(&bank.iban),
        s(&bank.account_number),
        s(&bank.routing_number),
        view.company_id.map(|id| id.to_string()).unwrap_or_default(),
        view.owner_id.map(|id| id.to_string()).unwrap_or_default(),
        view.tags.join(";"),
        view.created_at.rfc3339(),
        view.updated_at.rfc3339(),
    ]
}

/// Writes rows as CSV (RFC 4180 quoting by the `csv` crate), every cell neutralised.
pub fn write_csv<'a>(rows: impl IntoIterator<Item = &'a [String]>) -> Result<Vec<u8>, csv::Error> {
    let mut writer =
        csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(vec![]);
    writer.write_record(HEADER)?;
    for row in rows {
        writer.write_record(row.iter().map(|cell| neutralise(cell).into_owned()))?;
    }
    writer.into_inner().map_err(|err| csv::Error::from(err.into_error()))
}

/// The contacts matching `filter` as CSV, every one the caller may see. Audited with the
/// row count.
pub async fn export(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    filter: &ContactFilter,
) -> DomainResult<(Vec<u8>, usize)> {
    let unmasked = scope.may(Permission::ContactsReadSensitive);
    let sensitive = if unmasked { Sensitive::Revealed } else { Sensitive::Masked };
    <super::contacts::Contacts as super::resource::Resource>::check_filter(filter)?;
    // A read: it runs beside writers; only the audit event at the end takes a write turn.
    let mut tx = app.store().tenant_read(scope).await?;
    let keys = tenant_keys(app, &mut tx).await?;
    let mut records: Vec<Vec<String>> = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let page = PageRequest::new(None, cursor.as_deref(), Some(BATCH))?;
        let rows = contact::query_page(&keys, &mut tx, filter, &page).await?;
        let (rows, next) = page.cut(rows, |r| r.id.as_uuid());
        for row in &rows {
            let data = contact::open(&keys, scope.tenant_id(), row)?;
            records.push(record(&contact::view(row, data, sensitive)));
        }
        if records.len() > MAX_ROWS {
            return Err(DomainError::invalid(
                "filter",
                "matches more than 100000 contacts; narrow it",
            ));
        }
        cursor = next;
        if cursor.is_none() {
            break;
        }
    }
    tx.commit().await?;
    let csv = write_csv(records.iter().map(Vec::as_slice))
        .map_err(|err| DomainError::Internal(err.to_string()))?;
    audit::record_alone(
        app,
        scope,
        ctx,
        Event::new(Action::ExportContacts)
            .by_scope(scope)
            .detail("rows", records.len())
            .detail("unmasked", unmasked),
    )
    .await?;
    metrics::counter!("export_rows_total", "export" => "contacts").increment(records.len() as u64);
    Ok((csv, records.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised_and_quoting_is_rfc_4180() {
        let row: Vec<String> = HEADER
            .iter()
            .enumerate()
            .map(|(i, _)| match i {
                1 => "=HYPERLINK(\"http://evil\",\"x\")".to_owned(),
                2 => "+1+1".to_owned(),
                3 => "-2".to_owned(),
                4 => "@SUM(A1)".to_owned(),
                5 => "\tTAB".to_owned(),
                6 => "\rCR".to_owned(),
                7 => "a,b \"quoted\"\nnext".to_owned(),
                _ => "plain".to_owned(),
            })
            .collect();
        let csv = String::from_utf8(write_csv([row.as_slice()]).expect("csv")).expect("utf-8");
        let mut reader = csv::ReaderBuilder::new().from_reader(csv.as_bytes());
        let parsed: Vec<String> = reader
            .records()
            .next()
            .expect("a row")
            .expect("parses")
            .iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(parsed[1], "'=HYPERLINK(\"http://evil\",\"x\")");
        assert_eq!(parsed[2], "'+1+1");
        assert_eq!(parsed[3], "'-2");
        assert_eq!(parsed[4], "'@SUM(A1)");
        assert_eq!(parsed[5], "'\tTAB");
        assert_eq!(parsed[6], "'\rCR");
        assert_eq!(parsed[7], "a,b \"quoted\"\nnext", "quoting round-trips");
        assert_eq!(parsed[8], "plain");
    }
}
