//! Problem rendering: any status, detail, request id, field errors and extra members give
//! valid problem+json whose standard members are never overwritten and which never carries
//! the internal cause.
//!
//! A panic here (`assert!`, `expect`) is the finding: libFuzzer reports it as a crash and
//! keeps the input, so `expect` states a property, not an unhandled error.
#![no_main]

use arbitrary::Arbitrary;
use axum::http::StatusCode;
use bulwark::http::problem::{FieldError, Problem};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const CAUSE: &str = "relation users does not exist at /srv/bulwark/src/store.rs";

#[derive(Arbitrary, Debug)]
struct Input {
    status: u16,
    detail: String,
    request_id: String,
    errors: Option<Vec<(String, String)>>,
    extra: Vec<(String, String)>,
}

fuzz_target!(|input: Input| {
    let Ok(status) = StatusCode::from_u16(input.status) else { return };
    let mut problem = Problem::for_status(status).with_cause(CAUSE);
    problem.detail = input.detail.clone().into();
    if let Some(errors) = &input.errors {
        problem = problem.with_errors(
            errors
                .iter()
                .map(|(field, message)| FieldError {
                    field: field.clone(),
                    message: message.clone(),
                })
                .collect(),
        );
    }
    for (key, value) in &input.extra {
        problem = problem.with_extra(key, Value::String(value.clone()));
    }
    let bytes = problem.body(&input.request_id);
    let body: Value = serde_json::from_slice(&bytes).expect("always JSON");
    assert_eq!(body["status"], status.as_u16());
    assert_eq!(body["type"], format!("https://bulwark.dev/problems/{}", problem.code));
    assert_eq!(body["title"], problem.title);
    assert_eq!(body["code"], problem.code);
    assert_eq!(body["detail"], input.detail.as_str());
    assert_eq!(body["request_id"], input.request_id.as_str());
    let from_input = format!("{input:?}").contains("relation users");
    if !from_input {
        assert!(!String::from_utf8_lossy(&bytes).contains("relation users"), "the cause leaked");
    }
});
