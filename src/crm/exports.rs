//! `POST /api/v1/exports/contacts`: the contacts the caller may see, as CSV.
//!
//! Permission `export:run`, the sensitive rate-limit category, a recent step-up, and an audit
//! event with the row count (and a metric, so unusual volume raises an alert). Cells a
//! spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, tab or carriage
//! return) are neutralised with a leading apostrophe (OWASP CSV injection).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::routes;

use super::contacts::routes::{ContactFilter, filtered};
use super::contacts::store::{self as contacts, ContactRow};
use super::contacts::{self as contact, ContactView};
use super::list::{BY_CREATED, ListQuery, Sort};
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::error::{DomainError, DomainResult};
use crate::http::json::parse_json;
use crate::http::problem::Problem;
use crate::http::{Endpoint, RateCategory};
use crate::tenancy::{Permission, TenantScope};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::permission(
            routes!(export_contacts),
            Permission::ExportRun,
            RateCategory::Sensitive,
        )
        .step_up(),
    ]
}

/// Most rows one export returns; narrow the filter beyond it.
pub const MAX_ROWS: usize = 100_000;
const BATCH: i64 = 1_000;

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
        view.created_at.clone(),
        view.updated_at.clone(),
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

/// Export contacts as CSV. An empty body (or `{}`) exports every contact the caller may see.
#[utoipa::path(post, path = "/api/v1/exports/contacts", tag = "contacts",
    request_body(content = Option<ExportRequest>, description = "Optional; `{\"filter\": {...}}`"),
    responses((status = 200, description = "The contacts, one per row", content_type = "text/csv")))]
async fn export_contacts(
    State(app): State<AppState>,
    ctx: RequestContext,
    scope: TenantScope,
    body: Bytes,
) -> Result<Response, Problem> {
    let request: ExportRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ExportRequest::default()
    } else {
        parse_json(&body)?
    };
    let (csv, count) = export(&app, &scope, &ctx, &request.filter).await?;
    let name = format!(
        "attachment; filename=\"contacts-{}.csv\"",
        crate::clock::rfc3339(crate::clock::now_ms()).get(..10).unwrap_or("export")
    );
    let mut response = csv.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    if let Ok(value) = HeaderValue::from_str(&name) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert("x-export-rows", HeaderValue::from(count));
    Ok(response)
}

async fn export(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    filter: &ContactFilter,
) -> DomainResult<(Vec<u8>, usize)> {
    let unmasked = scope.may(Permission::ContactsReadSensitive);
    let mut tx = app.store().tenant_tx(scope).await?;
    let keys = contact::keys(app, &mut tx).await?;
    let mut records: Vec<Vec<String>> = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let mut query = ListQuery::new(contacts::SELECT, "", &tx);
        filtered(&mut query, &keys, filter)?;
        let sort = Sort { column: BY_CREATED, descending: false };
        query.page(sort, cursor.as_deref(), BATCH, "")?;
        let mut rows: Vec<ContactRow> = query.fetch(&mut tx).await?;
        let more = rows.len() > usize::try_from(BATCH).unwrap_or(usize::MAX);
        rows.truncate(usize::try_from(BATCH).unwrap_or(usize::MAX));
        cursor =
            rows.last().map(|r| super::list::cursor_after(sort, None, Some(r.created_at), r.id));
        for row in &rows {
            let data = contact::open(&keys, scope.tenant_id(), row)?;
            records.push(record(&contact::view(row, data, unmasked)));
        }
        if records.len() > MAX_ROWS {
            return Err(DomainError::invalid(
                "filter",
                "matches more than 100000 contacts; narrow it",
            ));
        }
        if !more {
            break;
        }
    }
    let csv = write_csv(records.iter().map(Vec::as_slice))
        .map_err(|err| DomainError::Internal(err.to_string()))?;
    audit::record(
        &mut tx,
        ctx,
        Event::new(Action::ExportContacts)
            .by_scope(scope)
            .detail("rows", records.len())
            .detail("unmasked", unmasked),
    )
    .await?;
    tx.commit().await?;
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
