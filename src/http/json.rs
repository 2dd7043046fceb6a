//! Strict request bodies and query strings.
//!
//! `Json<T>` insists on `application/json`, respects the route's body limit (413), refuses
//! malformed JSON and trailing bytes (400), and reports type errors, missing and unknown
//! fields (bodies use `deny_unknown_fields`) as 422 with the path of each field. serde's own
//! messages quote the offending value ("invalid type: string \"hunter2\""), and the value
//! could be a password: only the path and what was expected reach the client.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::problem::{FieldError, Problem};

/// A JSON request body (strict) or response body.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let SignedJson(value, _) = SignedJson::from_request(req, state).await?;
        Ok(Json(value))
    }
}

/// A JSON body parsed strictly like [`Json`], kept with its exact bytes: signed webhooks
/// verify the bytes as sent and use the value.
#[derive(Debug, Clone)]
pub struct SignedJson<T>(pub T, pub Bytes);

impl<T, S> FromRequest<S> for SignedJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        if !is_json(req.headers().get(header::CONTENT_TYPE)) {
            return Err(Problem::for_status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(body_problem)?;
        let value = parse_json(&bytes)?;
        Ok(SignedJson(value, bytes))
    }
}

/// An optional JSON body: none at all reads as `T::default()`; anything else must be JSON,
/// exactly as for [`Json`].
#[derive(Debug, Clone, Copy, Default)]
pub struct OptionalJson<T>(pub T);

impl<T, S> FromRequest<S> for OptionalJson<T>
where
    T: DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let json = is_json(req.headers().get(header::CONTENT_TYPE));
        let bytes = Bytes::from_request(req, state).await.map_err(body_problem)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        if !json {
            return Err(Problem::for_status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
        }
        parse_json(&bytes).map(OptionalJson)
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A JSON response body with 201 Created.
#[derive(Debug, Clone, Copy)]
pub struct Created<T>(pub T);

impl<T: Serialize> IntoResponse for Created<T> {
    fn into_response(self) -> Response {
        (StatusCode::CREATED, axum::Json(self.0)).into_response()
    }
}

fn is_json(content_type: Option<&header::HeaderValue>) -> bool {
    let Some(value) = content_type.and_then(|v| v.to_str().ok()) else { return false };
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json"
}

fn body_problem(rejection: BytesRejection) -> Problem {
    // axum maps a body over the route's limit (DefaultBodyLimit) to 413.
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Problem::for_status(StatusCode::PAYLOAD_TOO_LARGE)
    } else {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "Bad request",
            "The request body could not be read.",
        )
    }
}

/// Parses a JSON document strictly; public for the fuzz targets.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    // Syntax first: the typed parse would report `{"a":` as an unknown field `a` (422)
    // before it reaches the broken end, and malformed JSON is a 400 wherever it breaks.
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
        .map_err(|err| json_problem(&err, "."))?;
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        json_problem(err.inner(), &path)
    })?;
    deserializer.end().map_err(|err| json_problem(&err, "."))?;
    // serde reads a struct from an array of its fields in order too (`[null, null]` as an
    // empty PATCH); every body of this API is an object, so nothing else is accepted.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(validation_failed(vec![FieldError {
            field: "(body)".into(),
            message: "must be a JSON object".into(),
        }]));
    }
    Ok(value)
}

fn json_problem(err: &serde_json::Error, path: &str) -> Problem {
    use serde_json::error::Category;
    match err.classify() {
        Category::Syntax | Category::Eof | Category::Io => Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "Malformed JSON",
            format!("The body is not valid JSON (line {}, column {}).", err.line(), err.column()),
        ),
        Category::Data => {
            let field =
                if path == "." || path.is_empty() { "(body)".to_owned() } else { path.to_owned() };
            let message = describe_data_error(&err.to_string());
            validation_failed(vec![FieldError { field, message }])
        }
    }
}

pub fn validation_failed(errors: Vec<FieldError>) -> Problem {
    let detail = match errors.as_slice() {
        [only] => format!("`{}`: {}", only.field, only.message),
        _ => format!("{} fields are invalid; see `errors`.", errors.len()),
    };
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", "Validation failed", detail)
        .with_errors(errors)
}

/// serde's message without the value it quotes and without the position suffix.
fn describe_data_error(message: &str) -> String {
    let message = message.rsplit_once(" at line ").map_or(message, |(head, _)| head);
    if message.starts_with("unknown field") || message.starts_with("missing field") {
        // Only field names (ours and the client's key) are quoted here.
        return clip(message);
    }
    if let Some((_, expected)) = message.split_once(", expected ") {
        let kind = if message.starts_with("invalid type") { "wrong type" } else { "invalid value" };
        return clip(&format!("{kind}, expected {expected}"));
    }
    if message.starts_with("invalid") || message.contains('"') || message.contains('`') {
        return "invalid value".into();
    }
    // Messages of our own validating types (`Email`, `Password`, …) never quote input.
    clip(message)
}

fn clip(text: &str) -> String {
    text.chars().take(300).collect()
}

/// A strict query string: unknown parameters and bad values are a 422 problem.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer).map(Query).map_err(|err| {
            let field = err.path().to_string();
            let message = describe_data_error(&err.inner().to_string());
            validation_failed(vec![FieldError { field, message }])
        })
    }
}

/// A query string holding two strict sets of parameters: `B`'s (named by `B::FIELDS`, e.g.
/// a list's `sort`, `limit`, `cursor`) and `A`'s (the rest, e.g. its filters).
#[derive(Debug, Clone)]
pub struct QueryPair<A, B>(pub A, pub B);

impl<A, B, S> FromRequestParts<S> for QueryPair<A, B>
where
    A: DeserializeOwned,
    B: DeserializeOwned + crate::pagination::QueryFields,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        let query = parts.uri.query().unwrap_or_default();
        let (b, a): (Vec<_>, Vec<_>) = form_urlencoded::parse(query.as_bytes())
            .partition(|(key, _)| B::FIELDS.contains(&key.as_ref()));
        Ok(QueryPair(strict_query(a)?, strict_query(b)?))
    }
}

fn strict_query<T: DeserializeOwned>(
    pairs: Vec<(std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>)>,
) -> Result<T, Problem> {
    let query = form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
    let deserializer =
        serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let field = err.path().to_string();
        let message = describe_data_error(&err.inner().to_string());
        validation_failed(vec![FieldError { field, message }])
    })
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "fields exist to be deserialized")]
    struct Login {
        email: String,
        password: String,
        remember: Option<bool>,
    }

    fn problem(body: &str) -> Problem {
        parse_json::<Login>(body.as_bytes()).expect_err("must be refused")
    }

    #[test]
    fn syntax_errors_are_400_malformed_json() {
        for body in [
            "{",
            "{\"email\": }",
            "",
            "{\"email\": \"a\", ",
            "{\"email\":\"a\",\"password\":\"b\"} x",
        ] {
            let p = problem(body);
            assert_eq!(p.status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(p.code, "malformed_json", "{body}");
        }
    }

    #[test]
    fn a_body_is_an_object_never_an_array_of_fields() {
        // serde alone would read this as email "a@b.c", password "secret".
        let p = problem(r#" ["a@b.c", "secret", null]"#);
        assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(p.detail.contains("JSON object"), "{}", p.detail);
        assert!(parse_json::<Login>(br#" {"email":"a@b.c","password":"secret"}"#).is_ok());
    }

    #[test]
    fn unknown_and_missing_fields_are_422_naming_the_field() {
        let p = problem(r#"{"email":"a@b.c","password":"x","admin":true}"#);
        assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(p.detail.contains("admin"), "{}", p.detail);
        let p = problem(r#"{"email":"a@b.c"}"#);
        assert!(p.detail.contains("password"), "{}", p.detail);
    }

    #[test]
    fn a_wrongly_typed_value_is_never_echoed() {
        let p = problem(r#"{"email":"a@b.c","password":"x","remember":"hunter2-secret"}"#);
        assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
        let errors = p.errors.expect("field errors");
        assert_eq!(errors[0].field, "remember");
        assert!(!errors[0].message.contains("hunter2"), "{}", errors[0].message);
        assert!(!p.detail.contains("hunter2"), "{}", p.detail);
        let p = problem(r#"{"email":"a@b.c","password":12345678}"#);
        assert!(!p.detail.contains("12345678"), "{}", p.detail);
    }

    #[test]
    fn content_type_must_be_json() {
        assert!(is_json(Some(&header::HeaderValue::from_static("application/json"))));
        assert!(is_json(Some(&header::HeaderValue::from_static(
            "Application/JSON; charset=utf-8"
        ))));
        assert!(!is_json(Some(&header::HeaderValue::from_static("text/plain"))));
        assert!(!is_json(Some(&header::HeaderValue::from_static("application/jsonx"))));
        assert!(!is_json(None));
    }
}
