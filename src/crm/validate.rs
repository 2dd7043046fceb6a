//! Field validation for CRM bodies: every problem at once, messages that never repeat the
//! value (it may be personal data).

use serde_json::{Map, Value};

use crate::error::DomainError;

#[derive(Debug, Default)]
pub struct Check(Vec<(String, String)>);

fn printable(text: &str) -> bool {
    !text.chars().any(|c| c.is_control() && c != '\n' && c != '\t')
}

impl Check {
    pub fn new() -> Check {
        Check::default()
    }

    pub fn fail(&mut self, field: &str, message: &str) {
        self.0.push((field.to_owned(), message.to_owned()));
    }

    /// A required single-line text of 1..=max characters.
    pub fn name(&mut self, field: &str, value: &str, max: usize) {
        let n = value.trim().chars().count();
        if n == 0 || n > max || value.contains(['\n', '\r']) || !printable(value) {
            self.fail(field, &format!("must be 1 to {max} characters on one line"));
        }
    }

    pub fn opt_name(&mut self, field: &str, value: Option<&str>, max: usize) {
        if let Some(value) = value {
            self.name(field, value, max);
        }
    }

    /// Multi-line text (notes, details) up to `max` characters.
    pub fn text(&mut self, field: &str, value: &str, max: usize) {
        let n = value.chars().count();
        if n == 0 || n > max || !printable(value) {
            self.fail(field, &format!("must be 1 to {max} printable characters"));
        }
    }

    pub fn email(&mut self, field: &str, value: Option<&str>) {
        if let Some(value) = value
            && crate::identity::check_email(value.trim()).is_err()
        {
            self.fail(field, "must be an email address");
        }
    }

    pub fn phone(&mut self, field: &str, value: Option<&str>) {
        if let Some(value) = value {
            let digits = value.chars().filter(char::is_ascii_digit).count();
            let allowed = value.chars().all(|c| c.is_ascii_digit() || " +-().".contains(c));
            if !allowed || !(4..=20).contains(&digits) || value.len() > 32 {
                self.fail(field, "must be a phone number (4 to 20 digits, + - ( ) . and spaces)");
            }
        }
    }

    /// `YYYY-MM-DD`, a real date.
    pub fn date(&mut self, field: &str, value: Option<&str>) {
        if let Some(value) = value
            && parse_date(value).is_none()
        {
            self.fail(field, "must be a date, YYYY-MM-DD");
        }
    }

    pub fn past_date(&mut self, field: &str, value: Option<&str>) {
        if let Some(value) = value {
            match parse_date(value) {
                None => self.fail(field, "must be a date, YYYY-MM-DD"),
                Some(date) if date > time::OffsetDateTime::now_utc().date() => {
                    self.fail(field, "must not be in the future");
                }
                Some(_) => {}
            }
        }
    }

    /// Identifiers such as SSNs, tax ids, account and routing numbers: letters, digits,
    /// spaces and dashes.
    pub fn identifier(&mut self, field: &str, value: Option<&str>, max: usize) {
        if let Some(value) = value {
            let ok = !value.trim().is_empty()
                && value.len() <= max
                && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ' ');
            if !ok {
                self.fail(field, &format!("must be 1 to {max} letters, digits, spaces or dashes"));
            }
        }
    }

    /// ISO 3166-1 alpha-2.
    pub fn country(&mut self, field: &str, value: Option<&str>) {
        if let Some(value) = value
            && !(value.len() == 2 && value.bytes().all(|b| b.is_ascii_uppercase()))
        {
            self.fail(field, "must be an ISO 3166-1 alpha-2 code such as DE");
        }
    }

    pub fn currency(&mut self, field: &str, value: &str) {
        if !(value.len() == 3 && value.bytes().all(|b| b.is_ascii_uppercase())) {
            self.fail(field, "must be an ISO 4217 code such as EUR");
        }
    }

    pub fn tags(&mut self, field: &str, tags: Option<&[String]>) {
        let Some(tags) = tags else { return };
        if tags.len() > 20 {
            self.fail(field, "at most 20 tags");
        }
        if !tags.iter().all(|tag| is_tag(tag)) {
            self.fail(field, TAG_RULE);
        }
    }

    /// `schema::DOMAIN`: two or more labels of ASCII letters, digits and hyphens.
    pub fn domain(&mut self, field: &str, value: Option<&str>) {
        let Some(domain) = value else { return };
        let labels: Vec<&str> = domain.split('.').collect();
        let ok = (3..=253).contains(&domain.len())
            && labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !ok {
            self.fail(field, "must be a domain name such as example.com");
        }
    }

    pub fn custom_fields(&mut self, field: &str, fields: Option<&Map<String, Value>>) {
        let Some(fields) = fields else { return };
        if fields.len() > 50 {
            self.fail(field, "at most 50 custom fields");
        }
        for (key, value) in fields {
            let key_ok = (1..=64).contains(&key.len())
                && key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            let value_ok = match value {
                Value::String(text) => text.chars().count() <= 1000 && printable(text),
                Value::Number(_) | Value::Bool(_) | Value::Null => true,
                Value::Array(_) | Value::Object(_) => false,
            };
            if !key_ok || !value_ok {
                self.fail(field, "keys are 1-64 of a-z, 0-9, _; values are text (1000), numbers, booleans or null");
                break;
            }
        }
    }

    pub fn finish(self) -> Result<(), DomainError> {
        if self.0.is_empty() { Ok(()) } else { Err(DomainError::Invalid(self.0)) }
    }
}

const TAG_RULE: &str = "each tag is 1 to 50 ASCII letters, digits, spaces, - . : or /";

/// `schema::TAG`. ASCII only, so the rule reads the same in every JSON Schema tool; a tag is
/// also a filter value, matched as `,tag,` (so no `,` `%` `_` `\`).
pub fn is_tag(tag: &str) -> bool {
    (1..=50).contains(&tag.len())
        && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b" -.:/".contains(&b))
}

/// A tag used as a list filter.
pub fn check_tag_filter(tag: Option<&str>) -> Result<(), DomainError> {
    match tag {
        Some(tag) if !is_tag(tag) => Err(DomainError::invalid("tag", TAG_RULE)),
        _ => Ok(()),
    }
}

pub fn parse_date(text: &str) -> Option<time::Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, &format).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_collected_without_values() {
        let mut check = Check::new();
        check.name("first_name", "", 100);
        check.email("email", Some("not-an-email"));
        check.phone("phone", Some("call me maybe"));
        check.past_date("date_of_birth", Some("2999-01-01"));
        check.date("due_date", Some("2026-02-30"));
        check.identifier("ssn", Some("123-45-6789; DROP"), 32);
        check.country("country", Some("Germany"));
        check.tags("tags", Some(&["ok".into(), "bad,comma".into()]));
        let Err(DomainError::Invalid(problems)) = check.finish() else {
            panic!("expected problems")
        };
        assert_eq!(problems.len(), 8, "{problems:?}");
        let text = format!("{problems:?}");
        assert!(!text.contains("call me") && !text.contains("DROP"), "{text}");
    }

    #[test]
    fn good_values_pass() {
        let mut check = Check::new();
        check.name("first_name", "Ada", 100);
        check.email("email", Some("ada@example.com"));
        check.phone("phone", Some("+44 (20) 7946-0958"));
        check.past_date("date_of_birth", Some("1815-12-10"));
        check.identifier("ssn", Some("123-45-6789"), 32);
        check.country("country", Some("GB"));
        check.currency("currency", "EUR");
        check.tags("tags", Some(&["vip".into(), "q3:2026".into()]));
        assert!(check.finish().is_ok());
    }
}
