//! Structured JSON logs on stdout, one object per line, with redaction.
//!
//! The layer owns the output format, so redaction cannot be bypassed by a formatter option:
//! a field whose name says password, token, secret, key, authorization, cookie or
//! credential is written as `"[redacted]"` (identifiers ending in `_id` excepted), and any
//! string value that looks like a bearer credential, a JWT or a Bulwark API key is redacted
//! whatever its field is called. Request headers and bodies are never logged at all; this is
//! the second wall. Fields of enclosing spans (`request_id`, …) are copied into each line.

use std::io::Write as _;

pub use super::log_output::flush;

use serde_json::Value;
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

/// `haystack` contains `needle` (ASCII lower case), ignoring ASCII case, without allocating.
fn contains_ignoring_case(haystack: &str, needle: &str) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

pub fn is_sensitive_name(name: &str) -> bool {
    let id = name.len() >= 3 && name[name.len() - 3..].eq_ignore_ascii_case("_id");
    !id && SENSITIVE_NAMES.iter().any(|word| contains_ignoring_case(name, word))
}

/// Values that are credentials whatever the field is called.
pub fn looks_like_credential(value: &str) -> bool {
    // Every log line runs this on each of its strings, so one pass: the word patterns all
    // start with a `b`, and only where one stands is the rest compared.
    let bytes = value.as_bytes();
    let word = bytes.iter().enumerate().any(|(at, byte)| {
        byte | 0x20 == b'b' && {
            let rest = &bytes[at..];
            starts_with_ignoring_case(rest, b"bearer ")
                || starts_with_ignoring_case(rest, b"basic ")
                || rest.starts_with(b"bwk_")
        }
    });
    // A JWT: three base64url segments, the first a JSON object (`eyJ` = `{"`).
    word || value.contains("eyJ")
        && value
            .split(|c: char| c.is_whitespace() || c == '"' || c == '=')
            .any(|word| word.starts_with("eyJ") && word.matches('.').count() == 2)
}

fn starts_with_ignoring_case(bytes: &[u8], prefix: &[u8]) -> bool {
    bytes.get(..prefix.len()).is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// A span's or event's fields, in the order recorded; names are the callsite's `'static`
/// field names, so recording allocates only for values.
#[derive(Default)]
struct Fields(Vec<(&'static str, Value)>);

impl Fields {
    fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(key, _)| *key == name).map(|(_, value)| value)
    }
}

/// One JSON object being written.
struct Line(Vec<u8>);

impl Line {
    /// A line that starts with the time, level and target every line has.
    fn start(level: &tracing::Level, target: &str) -> Line {
        let mut line = Line(Vec::with_capacity(320));
        line.0.extend_from_slice(b"{\"ts\":\"");
        write_timestamp(&mut line.0);
        line.0.push(b'"');
        line.known("level", level.as_str());
        line.known("target", target);
        line
    }

    fn key(&mut self, key: &str) {
        self.0.push(b',');
        self.string(key);
        self.0.push(b':');
    }

    /// A JSON string. Most need no escape (no `"`, `\\` or control character) and are
    /// copied; the rest go through serde_json.
    fn string(&mut self, text: &str) {
        if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
            self.0.reserve(text.len() + 2);
            self.0.push(b'"');
            self.0.extend_from_slice(text.as_bytes());
            self.0.push(b'"');
        } else {
            // Invariant: a string always serializes into a Vec.
            let _ = serde_json::to_writer(&mut self.0, text);
        }
    }

    fn pair(&mut self, key: &str, value: &Value) {
        self.key(key);
        let _ = serde_json::to_writer(&mut self.0, value);
    }

    /// A string this code chose (a level, a target, a route template, a message): escaped,
    /// not searched for credentials.
    fn known(&mut self, key: &str, value: &str) {
        self.key(key);
        self.string(value);
    }

    /// A string value, redacted when it looks like a credential.
    fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        let value = if looks_like_credential(value) { REDACTED } else { value };
        self.string(value);
    }

    fn finish(mut self) -> Vec<u8> {
        self.0.extend_from_slice(b"}\n");
        self.0
    }
}

/// RFC 3339 UTC with milliseconds, written by hand: the general formatter cost more than
/// the rest of a log line. The date and time up to the second are formatted once a second
/// (per thread) and copied.
fn write_timestamp(out: &mut Vec<u8>) {
    let since_epoch =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let seconds = i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX);
    write_timestamp_at(out, seconds, since_epoch.subsec_millis());
}

/// `seconds` since the Unix epoch, and `millis` past it.
fn write_timestamp_at(out: &mut Vec<u8>, seconds: i64, millis: u32) {
    use std::cell::Cell;
    thread_local! {
        /// The last second formatted, and its text (`2026-12-07T17:10:05`).
        static SECOND: Cell<(i64, [u8; 19])> = const { Cell::new((i64::MIN, [0; 19])) };
    }
    let prefix = SECOND.with(|cached| {
        let (second, text) = cached.get();
        if second == seconds {
            return text;
        }
        let mut text = [0; 19];
        let now = time::OffsetDateTime::from_unix_timestamp(seconds)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let (year, month, day) = now.to_calendar_date();
        // Years past 9999 would be cut short: this clock does not reach them.
        let _ = write!(
            &mut text[..],
            "{year:04}-{:02}-{day:02}T{:02}:{:02}:{:02}",
            u8::from(month),
            now.hour(),
            now.minute(),
            now.second()
        );
        cached.set((seconds, text));
        text
    });
    out.extend_from_slice(&prefix);
    let digit = |n: u32| b'0' + (n % 10) as u8;
    out.extend_from_slice(&[b'.', digit(millis / 100), digit(millis / 10), digit(millis), b'Z']);
}

/// What every line logged while a request is served carries, set by the edge middleware
/// for the request's task. A task-local, not a span: entering and leaving a span on every
/// poll, and recording its fields, cost more than the whole request's own work.
#[derive(Debug, Clone)]
pub struct RequestFields {
    pub request_id: String,
    pub method: String,
    pub path: String,
    pub client_ip: Option<std::net::IpAddr>,
}

tokio::task_local! {
    static REQUEST: std::sync::Arc<RequestFields>;
}

/// Runs `future` with `fields` on every line it logs.
/// Not an `async fn`: that would hold `future` twice, as its argument and inside the scope.
pub fn in_request<F: Future>(
    fields: std::sync::Arc<RequestFields>,
    future: F,
) -> impl Future<Output = F::Output> {
    REQUEST.scope(fields, future)
}

impl RequestFields {
    fn write(&self, line: &mut Line, unless: &Fields) {
        if unless.get("request_id").is_none() {
            line.str("request_id", &self.request_id);
        }
        if unless.get("method").is_none() {
            line.str("method", &self.method);
        }
        if unless.get("path").is_none() {
            line.str("path", &self.path);
        }
        if let Some(ip) = self.client_ip
            && unless.get("client_ip").is_none()
        {
            line.key("client_ip");
            line.0.push(b'"');
            write_ip(&mut line.0, ip);
            line.0.push(b'"');
        }
    }
}

/// An address as text (it prints as digits, letters, `.` and `:`: nothing to escape). IPv4,
/// the common case, by hand: the formatter cost more than the rest of the line's fields.
fn write_ip(out: &mut Vec<u8>, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            for (at, octet) in v4.octets().into_iter().enumerate() {
                if at > 0 {
                    out.push(b'.');
                }
                if octet >= 100 {
                    out.push(b'0' + octet / 100);
                }
                if octet >= 10 {
                    out.push(b'0' + octet / 10 % 10);
                }
                out.push(b'0' + octet % 10);
            }
        }
        std::net::IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// The access line of a finished request, written directly (the hot path's one line): the
/// same JSON object an `info!` event would give, when the filter lets it through.
pub fn request_completed(fields: &RequestFields, status: u16, route: &str, latency_ms: f64) {
    const TARGET: &str = "bulwark::http::request_id";
    if !tracing::enabled!(target: TARGET, tracing::Level::INFO) {
        return;
    }
    let mut line = Line::start(&tracing::Level::INFO, TARGET);
    fields.write(&mut line, &Fields::default());
    line.pair("status", &Value::from(status));
    line.known("route", route);
    line.pair("latency_ms", &Value::from(latency_ms));
    line.known("msg", "request completed");
    super::log_output::send(&line.finish());
}

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
        match self.0.iter_mut().find(|(key, _)| *key == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
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
        let mut fields = Fields::default();
        event.record(&mut fields);
        for (key, _) in &mut fields.0 {
            if *key == "message" {
                *key = "msg";
            }
        }
        // Written straight into the line's buffer, in a fixed order: time, level, target, the
        // request's fields, the spans' fields from the root (unless the event names the same
        // key), the event's.
        let metadata = event.metadata();
        let mut line = Line::start(metadata.level(), metadata.target());
        let _ = REQUEST.try_with(|request| request.write(&mut line, &fields));
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(span_fields) = span.extensions().get::<Fields>() {
                    for (key, value) in &span_fields.0 {
                        if fields.get(key).is_none() {
                            line.pair(key, value);
                        }
                    }
                }
            }
        }
        for (key, value) in &fields.0 {
            line.pair(key, value);
        }
        super::log_output::send(&line.finish());
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
        assert!(looks_like_credential("BASIC dXNlcjpwYXNz"));
        assert!(looks_like_credential("x=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"));
        assert!(!looks_like_credential("eyJhbGciOiJIUzI1NiJ9 only one segment"));
        assert!(!looks_like_credential("a bob and a bee"));
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        for text in [
            "plain",
            "",
            "quote \" here",
            "back\\slash",
            "line\nbreak",
            "tab\t",
            "\u{1}",
            "é ✓ \u{7f}",
        ] {
            let mut line = Line(vec![]);
            line.string(text);
            assert_eq!(line.0, serde_json::to_vec(text).expect("a string"), "{text:?}");
        }
    }

    #[test]
    fn addresses_print_as_the_standard_library_prints_them() {
        for text in
            ["0.0.0.0", "9.10.99.100", "192.0.2.255", "255.255.255.255", "2001:db8::1", "::1"]
        {
            let ip: std::net::IpAddr = text.parse().expect("an address");
            let mut out = vec![];
            write_ip(&mut out, ip);
            assert_eq!(String::from_utf8(out).expect("ASCII"), ip.to_string());
        }
    }

    #[test]
    fn timestamps_are_rfc3339_with_milliseconds_across_seconds() {
        use time::format_description::well_known::Rfc3339;
        let first = time::macros::datetime!(2026-12-07 17:10:05.042 UTC);
        for now in [
            first,
            first + time::Duration::milliseconds(900),
            first + time::Duration::milliseconds(958),
            first + time::Duration::days(400) + time::Duration::milliseconds(7),
        ] {
            let mut out = vec![];
            write_timestamp_at(&mut out, now.unix_timestamp(), u32::from(now.millisecond()));
            let text = String::from_utf8(out).expect("ASCII");
            assert_eq!(time::OffsetDateTime::parse(&text, &Rfc3339).expect("RFC 3339"), now);
            assert_eq!(text.len(), 24, "{text}");
        }
    }
}
