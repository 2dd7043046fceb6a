//! Structured JSON logs on stdout, one object per line, with redaction.
//!
//! The layer owns the output format, so redaction cannot be bypassed by a formatter option:
//! a field whose name says password, token, secret, key, authorization, cookie or
//! credential is written as `"[redacted]"` (identifiers ending in `_id` excepted), and any
//! string value that looks like a bearer credential, a JWT or a Bulwark API key is redacted
//! whatever its field is called. Request headers and bodies are never logged at all; this is
//! the second wall. Fields of enclosing spans (`request_id`, …) are copied into each line.

use std::io::Write as _;

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;

pub const REDACTED: &str = "[redacted]";

const SENSITIVE_NAMES: &[&str] =
    &["password", "passwd", "token", "secret", "key", "authorization", "cookie", "credential"];

/// Installs the JSON logger for the process. `filter` is `BULWARK_LOG`, e.g.
/// `info,bulwark=debug`. Returns an error for an unparsable filter.
pub fn init(filter: &str) -> Result<(), String> {
    let targets: Targets =
        filter.parse().map_err(|_| format!("BULWARK_LOG: `{filter}` is not a log filter"))?;
    tracing_subscriber::registry()
        .with(JsonLayer.with_filter(targets))
        .try_init()
        .map_err(|err| format!("logging: {err}"))
}

pub fn is_sensitive_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !lower.ends_with("_id") && SENSITIVE_NAMES.iter().any(|word| lower.contains(word))
}

/// Values that are credentials whatever the field is called.
pub fn looks_like_credential(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    if lower.contains("bearer ") || lower.contains("basic ") || value.contains("bwk_") {
        return true;
    }
    // A JWT: three base64url segments, the first a JSON object (`eyJ` = `{"`).
    value
        .split(|c: char| c.is_whitespace() || c == '"' || c == '=')
        .any(|word| word.starts_with("eyJ") && word.matches('.').count() == 2)
}

#[derive(Default)]
struct Fields(Map<String, Value>);

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        let name = field.name();
        let value = if is_sensitive_name(name) {
            Value::from(REDACTED)
        } else {
            match value {
                Value::String(text) if looks_like_credential(&text) => Value::from(REDACTED),
                other => other,
            }
        };
        self.0.insert(name.to_owned(), value);
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::from(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, Value::from(format!("{value:?}")));
    }
}

struct JsonLayer;

impl<S> Layer<S> for JsonLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut extensions = span.extensions_mut();
            if let Some(fields) = extensions.get_mut::<Fields>() {
                values.record(fields);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut line = Map::new();
        let now = time::OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default();
        line.insert("ts".into(), Value::from(now));
        line.insert("level".into(), Value::from(event.metadata().level().as_str()));
        line.insert("target".into(), Value::from(event.metadata().target()));
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<Fields>() {
                    for (key, value) in &fields.0 {
                        line.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        for (key, value) in fields.0 {
            let key = if key == "message" { "msg".to_owned() } else { key };
            line.insert(key, value);
        }
        let Ok(mut bytes) = serde_json::to_vec(&line) else { return };
        bytes.push(b'\n');
        // A closed stdout must not take the server down; the line is lost.
        let _ = std::io::stdout().lock().write_all(&bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_say_secret_are_sensitive_but_ids_are_not() {
        for name in [
            "password",
            "new_password",
            "access_token",
            "client_secret",
            "api_key",
            "Authorization",
            "cookie",
            "set_cookie",
            "x_api_key",
            "credentials",
        ] {
            assert!(is_sensitive_name(name), "{name}");
        }
        for name in ["request_id", "api_key_id", "status", "route", "email_domain", "msg"] {
            assert!(!is_sensitive_name(name), "{name}");
        }
    }

    #[test]
    fn credential_shaped_values_are_caught_under_any_name() {
        assert!(looks_like_credential("Bearer abc.def.ghi"));
        assert!(looks_like_credential("got eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln here"));
        assert!(looks_like_credential("bwk_abcd1234_secretpart"));
        assert!(!looks_like_credential("request completed"));
        assert!(!looks_like_credential("/api/v1/contacts/0190-abc"));
    }
}
