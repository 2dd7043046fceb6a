//! CSV exports: any cells produce a file that parses back to the same rows, every cell
//! neutralised so a spreadsheet evaluates none of them.
//!
//! A panic here (`assert!`, `expect`) is the finding: libFuzzer reports it as a crash and
//! keeps the input, so `expect` states a property, not an unhandled error.
#![no_main]

use bulwark::crm::exports::{HEADER, neutralise, write_csv};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|rows: Vec<Vec<String>>| {
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|mut row| {
            row.resize(HEADER.len(), String::new());
            row
        })
        .collect();
    let bytes = write_csv(rows.iter().map(Vec::as_slice)).expect("writing to memory works");
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(bytes.as_slice());
    assert_eq!(reader.headers().expect("header").iter().collect::<Vec<_>>(), HEADER);
    let back: Vec<csv::StringRecord> =
        reader.records().map(|record| record.expect("the file parses")).collect();
    assert_eq!(back.len(), rows.len(), "rows were lost or invented");
    for (row, record) in rows.iter().zip(&back) {
        assert_eq!(record.len(), HEADER.len());
        for (cell, written) in row.iter().zip(record.iter()) {
            assert_eq!(written, neutralise(cell));
            assert!(!written.starts_with(['=', '+', '-', '@', '\t', '\r']), "{written:?}");
        }
    }
});
