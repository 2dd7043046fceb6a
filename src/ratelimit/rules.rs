//! Rate-limit rules: what a rule matches, how much it allows, what it keys on, and what it
//! does when its shared backend (Redis) cannot be reached.
//!
//! The default set is the spec's two layers (`DEFAULT_RULES`, also shown in the README); a
//! TOML file named by `BULWARK_RATE_LIMITS_FILE` replaces it and is validated at start-up.

use std::time::Duration;

use serde::Deserialize;

use super::{RateCategory, RouteFamily};

/// The default rule set, in the file format (the README shows the same text).
pub const DEFAULT_RULES: &str = include_str!("default_rules.toml");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    Category(RateCategory),
    Family(RouteFamily),
}

/// What a rule counts per.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum KeyKind {
    #[serde(rename = "ip")]
    Ip,
    #[serde(rename = "user")]
    User,
    #[serde(rename = "ip+user")]
    IpUser,
    #[serde(rename = "api_key")]
    ApiKey,
    #[serde(rename = "tenant")]
    Tenant,
    /// The session of a refresh token; unknown tokens count per address.
    #[serde(rename = "session")]
    Session,
}

/// What a rule does when the shared backend is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnBackendError {
    /// Admit the request (and say so in the log and metrics).
    Open,
    /// Refuse with 503 until the backend is back.
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub matches: Match,
    pub limit: u32,
    pub window: Duration,
    pub key: KeyKind,
    pub on_backend_error: OnBackendError,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    #[serde(rename = "match")]
    matches: RawMatch,
    limit: u32,
    window: String,
    key: KeyKind,
    on_backend_error: Option<OnBackendError>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    category: Option<RateCategory>,
    family: Option<RouteFamily>,
}

/// Parses and validates a rule file; the message names the rule and the problem.
pub fn parse(text: &str) -> Result<Vec<Rule>, String> {
    let file: File = toml::from_str(text).map_err(|err| {
        // toml's message names the key and the expectation; keep its first line.
        format!("not a valid rule file: {}", err.message().lines().next().unwrap_or_default())
    })?;
    if file.rule.is_empty() {
        return Err("the file defines no [[rule]]".into());
    }
    let mut rules: Vec<Rule> = vec![];
    for raw in file.rule {
        let name = raw.name.trim().to_owned();
        let context = |problem: &str| format!("rule `{name}`: {problem}");
        if name.is_empty()
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(context("the name must be letters, digits, - or _"));
        }
        if rules.iter().any(|r| r.name == name) {
            return Err(context("the name is used twice"));
        }
        let matches = match (raw.matches.category, raw.matches.family) {
            (Some(RateCategory::Exempt), None) => {
                return Err(context("`exempt` routes are never limited"));
            }
            (Some(category), None) => Match::Category(category),
            (None, Some(family)) => Match::Family(family),
            _ => return Err(context("`match` needs exactly one of category or family")),
        };
        if raw.limit == 0 {
            return Err(context("the limit must be at least 1"));
        }
        let window = crate::config::parse_duration(&raw.window)
            .map_err(|e| context(&format!("window: {e}")))?;
        if window < Duration::from_secs(1) || window > Duration::from_secs(86_400) {
            return Err(context("the window must be between 1s and 24h"));
        }
        let on_backend_error = raw.on_backend_error.unwrap_or(match matches {
            Match::Category(
                RateCategory::Auth | RateCategory::Refresh | RateCategory::Sensitive,
            ) => OnBackendError::Closed,
            Match::Family(RouteFamily::Auth | RouteFamily::Admin) => OnBackendError::Closed,
            _ => OnBackendError::Open,
        });
        rules.push(Rule {
            name,
            matches,
            limit: raw.limit,
            window,
            key: raw.key,
            on_backend_error,
        });
    }
    Ok(rules)
}

pub fn defaults() -> Vec<Rule> {
    // The constant is checked by a unit test; it cannot fail at run time.
    parse(DEFAULT_RULES).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_set_is_the_two_layers_of_the_spec() {
        let rules = parse(DEFAULT_RULES).expect("defaults parse");
        let summary: Vec<(String, u32, u64)> =
            rules.iter().map(|r| (r.name.clone(), r.limit, r.window.as_secs())).collect();
        assert_eq!(
            summary,
            [
                ("read-per-minute".to_owned(), 200, 60),
                ("write-per-minute".to_owned(), 50, 60),
                ("sensitive-per-minute".to_owned(), 10, 60),
                ("auth-per-minute".to_owned(), 20, 60),
                ("refresh-per-minute".to_owned(), 10, 60),
                ("payment-webhooks-per-hour".to_owned(), 100, 3600),
                ("email-events-per-hour".to_owned(), 3600, 3600),
                ("uploads-per-hour".to_owned(), 50, 3600),
                ("auth-per-hour".to_owned(), 20, 3600),
                ("admin-per-hour".to_owned(), 30, 3600),
            ]
        );
        assert_eq!(defaults(), rules);
    }

    #[test]
    fn the_readme_shows_the_default_set() {
        let readme = include_str!("../../README.md");
        assert!(
            readme.contains(DEFAULT_RULES.trim()),
            "README.md must show DEFAULT_RULES verbatim"
        );
    }

    #[test]
    fn bad_files_are_refused_with_the_rule_named() {
        let cases = [
            ("", "no [[rule]]"),
            (
                "[[rule]]\nname = \"x\"\nmatch = { category = \"read\" }\nlimit = 0\nwindow = \"1m\"\nkey = \"ip\"\n",
                "at least 1",
            ),
            (
                "[[rule]]\nname = \"x\"\nmatch = { category = \"read\", family = \"auth\" }\nlimit = 1\nwindow = \"1m\"\nkey = \"ip\"\n",
                "exactly one",
            ),
            (
                "[[rule]]\nname = \"x\"\nmatch = { category = \"bogus\" }\nlimit = 1\nwindow = \"1m\"\nkey = \"ip\"\n",
                "not a valid",
            ),
            (
                "[[rule]]\nname = \"x\"\nmatch = { category = \"read\" }\nlimit = 1\nwindow = \"1 fortnight\"\nkey = \"ip\"\n",
                "window",
            ),
            (
                "[[rule]]\nname = \"x\"\nmatch = { category = \"read\" }\nlimit = 1\nwindow = \"1m\"\nkey = \"mac\"\n",
                "not a valid",
            ),
            (
                "[[rule]]\nname = \"x\"\nmatch = { category = \"read\" }\nlimit = 1\nwindow = \"1m\"\nkey = \"ip\"\nburst = 3\n",
                "not a valid",
            ),
        ];
        for (text, needle) in cases {
            let err = parse(text).expect_err(text);
            assert!(err.contains(needle), "{err} should mention {needle}");
        }
    }
}
