//! RFC 9457 problem details: the one shape of every error response.
//!
//! A handler or extractor returns a `Problem` (usually through `ApiError`). It travels as a
//! response extension with an empty body; `render`, called by the edge middleware that knows the
//! request id, writes the body. Bare error responses from the framework or tower layers
//! (404, 405, 408, 413, panics) are turned into problems there too, so every refusal has
//! the same shape. The cause of a 5xx goes to the log, never into the body.

use std::borrow::Cow;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";
const TYPE_BASE: &str = "https://bulwark.dev/problems/";

/// The body of every error response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProblemBody {
    /// Stable URI naming the kind of problem: `https://bulwark.dev/problems/<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind, the same for every occurrence.
    pub title: String,
    pub status: u16,
    /// What went wrong with this request, safe to show to the client.
    pub detail: String,
    /// The last segment of `type`, for clients that match on a code.
    pub code: String,
    /// The request id (also in the `X-Request-Id` header); quote it to support.
    pub request_id: String,
    /// Per-field validation errors, when the problem is `validation_failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldError {
    /// JSON path of the offending field, e.g. `address.postal_code`.
    pub field: String,
    pub message: String,
}

/// A problem on its way to the renderer.
#[derive(Debug, Clone)]
pub struct Problem {
    pub status: StatusCode,
    pub code: &'static str,
    pub title: &'static str,
    pub detail: Cow<'static, str>,
    pub errors: Option<Vec<FieldError>>,
    /// Extra members (e.g. readiness `checks`); never secrets.
    pub extra: Option<Map<String, Value>>,
    /// For the log only.
    pub cause: Option<String>,
    /// Seconds, sent as `Retry-After` (429, 503).
    pub retry_after: Option<u64>,
}

impl Problem {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        detail: impl Into<Cow<'static, str>>,
    ) -> Self {
        Problem {
            status,
            code,
            title,
            detail: detail.into(),
            errors: None,
            extra: None,
            cause: None,
            retry_after: None,
        }
    }

    /// The problem for a bare status code produced outside our handlers.
    pub fn for_status(status: StatusCode) -> Self {
        let (code, title, detail) = match status {
            StatusCode::BAD_REQUEST => ("bad_request", "Bad request", "The request is malformed."),
            StatusCode::UNAUTHORIZED => {
                ("unauthenticated", "Authentication required", "Valid credentials are required.")
            }
            StatusCode::FORBIDDEN => ("forbidden", "Forbidden", "You may not do this."),
            StatusCode::NOT_FOUND => ("not_found", "Not found", "No such resource."),
            StatusCode::METHOD_NOT_ALLOWED => (
                "method_not_allowed",
                "Method not allowed",
                "This resource does not support that method; see the Allow header.",
            ),
            StatusCode::REQUEST_TIMEOUT => {
                ("request_timeout", "Request timeout", "The request took too long to complete.")
            }
            StatusCode::PAYLOAD_TOO_LARGE => (
                "payload_too_large",
                "Payload too large",
                "The request body is larger than this endpoint accepts.",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "unsupported_media_type",
                "Unsupported media type",
                "Send the body as application/json.",
            ),
            StatusCode::TOO_MANY_REQUESTS => {
                ("rate_limited", "Too many requests", "Slow down; see the Retry-After header.")
            }
            StatusCode::SERVICE_UNAVAILABLE => (
                "unavailable",
                "Service unavailable",
                "The service is temporarily unavailable; retry later.",
            ),
            status if status.is_server_error() => {
                ("internal", "Internal error", "Something went wrong on our side.")
            }
            _ => ("error", "Error", "The request failed."),
        };
        Problem::new(status, code, title, detail)
    }

    pub fn with_cause(mut self, cause: impl std::fmt::Display) -> Self {
        self.cause = Some(cause.to_string());
        self
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = Some(errors);
        self
    }

    pub fn with_extra(mut self, key: &str, value: Value) -> Self {
        self.extra.get_or_insert_with(Map::new).insert(key.to_owned(), value);
        self
    }

    /// The problem+json body: the standard members first, extra members never overwriting
    /// them, the cause never included.
    pub fn body(&self, request_id: &str) -> Vec<u8> {
        let body = ProblemBody {
            kind: format!("{TYPE_BASE}{}", self.code),
            title: self.title.to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone().into_owned(),
            code: self.code.to_owned(),
            request_id: request_id.to_owned(),
            errors: self.errors.clone(),
        };
        let mut value = serde_json::to_value(body).unwrap_or(Value::Null);
        if let (Value::Object(object), Some(extra)) = (&mut value, &self.extra) {
            for (key, member) in extra {
                object.entry(key.clone()).or_insert_with(|| member.clone());
            }
        }
        // Serializing a map of strings and numbers cannot fail; fall back to an empty object.
        serde_json::to_vec(&value).unwrap_or_else(|_| b"{}".to_vec())
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = self.status;
        response.extensions_mut().insert(self);
        response
    }
}

/// Writes the body of every problem, and turns any other error response into one.
/// Renders the problem a refused or failed response carries (see the module comment); other
/// responses pass untouched. Called by the edge middleware (`request_id::track_requests`),
/// which knows the request id.
pub fn render(response: Response, request_id: &str) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_problem_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    let (mut parts, body) = response.into_parts();
    let problem = match parts.extensions.remove::<Problem>() {
        Some(problem) => problem,
        // Already rendered (e.g. by a nested renderer): leave it.
        None if is_problem_json => return Response::from_parts(parts, body),
        None => Problem::for_status(status),
    };
    if let Some(cause) = &problem.cause {
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), code = problem.code, cause = %cause, "request failed");
        } else {
            tracing::info!(status = status.as_u16(), code = problem.code, cause = %cause, "request refused");
        }
    }
    // A console page already shows the problem: logged above, its HTML kept.
    let is_html = parts
        .headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if is_html {
        return Response::from_parts(parts, body);
    }
    let bytes = problem.body(request_id);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    if let Some(seconds) = problem.retry_after {
        parts.headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if status == StatusCode::UNAUTHORIZED && !parts.headers.contains_key(header::WWW_AUTHENTICATE) {
        parts
            .headers
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"bulwark\""));
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_carries_type_title_status_detail_code_and_request_id() {
        let problem = Problem::for_status(StatusCode::NOT_FOUND);
        let body: Value = serde_json::from_slice(&problem.body("req-1")).expect("json");
        assert_eq!(body["type"], "https://bulwark.dev/problems/not_found");
        assert_eq!(body["title"], "Not found");
        assert_eq!(body["status"], 404);
        assert_eq!(body["code"], "not_found");
        assert_eq!(body["request_id"], "req-1");
        assert!(body["detail"].is_string());
        assert!(body.get("errors").is_none());
    }

    #[test]
    fn the_cause_never_reaches_the_body() {
        let problem = Problem::for_status(StatusCode::INTERNAL_SERVER_ERROR)
            .with_cause("relation \"users\" does not exist at /srv/bulwark/src/store.rs:42");
        let body = String::from_utf8(problem.body("r")).expect("utf-8");
        assert!(!body.contains("users") && !body.contains("/srv"), "{body}");
    }

    #[test]
    fn extra_members_cannot_overwrite_the_standard_ones() {
        let problem = Problem::for_status(StatusCode::SERVICE_UNAVAILABLE)
            .with_extra("status", Value::from(200))
            .with_extra("checks", serde_json::json!({"database": "down"}));
        let body: Value = serde_json::from_slice(&problem.body("r")).expect("json");
        assert_eq!(body["status"], 503);
        assert_eq!(body["checks"]["database"], "down");
    }
}
