//! Where raw setting values come from, in order of precedence (later wins):
//! defaults → TOML file → `BULWARK_*` environment → `BULWARK_*_FILE` (secrets only).
//!
//! Nothing here interprets a value; `super::load` does. Values of secret settings are held as
//! `Secret` from the moment they are read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use zeroize::Zeroize;

use super::settings::{self, Setting};
use crate::crypto::Secret;

/// Everything configuration may be read from. `main` fills it from the process; tests build
/// it by hand, so no test mutates the process environment.
#[derive(Debug, Default, Clone)]
pub struct ConfigInput {
    pub env: BTreeMap<String, String>,
    pub file: Option<PathBuf>,
}

impl ConfigInput {
    pub fn from_process(file: Option<PathBuf>) -> Self {
        // Non-UTF-8 variables cannot be ours (all our values are text); skip them.
        let env = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| k.starts_with("BULWARK_"))
            .collect();
        Self { env, file }
    }

    /// Convenience for tests and embedding: settings by name, no file.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            env: pairs.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
            file: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Default,
    File,
    Env,
    EnvFile,
}

pub enum RawValue {
    Plain(String),
    Secret(Secret<String>),
}

impl RawValue {
    fn new(setting: &Setting, mut value: String) -> Self {
        if setting.secret {
            RawValue::Secret(Secret::new(value))
        } else {
            let plain = RawValue::Plain(value.clone());
            value.zeroize();
            plain
        }
    }

    pub fn text(&self) -> &str {
        match self {
            RawValue::Plain(value) => value,
            RawValue::Secret(value) => value.expose(),
        }
    }
}

/// The merged raw values, plus every problem and warning met while reading them.
pub struct RawValues {
    values: BTreeMap<&'static str, (RawValue, Origin)>,
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
}

impl RawValues {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(|(value, _)| value.text())
    }

    pub fn origin(&self, name: &str) -> Option<Origin> {
        self.values.get(name).map(|(_, origin)| *origin)
    }

    /// True when the operator set the value (anything but the built-in default).
    pub fn is_set(&self, name: &str) -> bool {
        self.origin(name).is_some_and(|origin| origin != Origin::Default)
    }

    pub fn read(input: &ConfigInput) -> Self {
        let mut raw = RawValues { values: BTreeMap::new(), problems: vec![], warnings: vec![] };
        for setting in settings::all() {
            if let Some(default) = setting.default {
                raw.values.insert(
                    setting.name,
                    (RawValue::new(setting, default.to_owned()), Origin::Default),
                );
            }
        }
        if let Some(path) = &input.file {
            raw.read_file(path);
        }
        raw.read_env(&input.env);
        raw
    }

    fn read_file(&mut self, path: &Path) {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) => {
                self.problems.push(format!(
                    "configuration file {}: cannot be read ({})",
                    path.display(),
                    err.kind()
                ));
                return;
            }
        };
        let table: toml::Table = match text.parse() {
            Ok(table) => table,
            Err(err) => {
                // toml's message quotes the offending line, which may hold a secret: keep
                // only the position.
                let at = err
                    .span()
                    .map(|span| line_of(&text, span.start))
                    .map_or_else(String::new, |line| format!(" at line {line}"));
                self.problems
                    .push(format!("configuration file {}: not valid TOML{at}", path.display()));
                return;
            }
        };
        let mut flat = Vec::new();
        flatten("", &toml::Value::Table(table), &mut flat);
        for (key, value) in flat {
            let Some(setting) = settings::all().find(|s| s.key == key) else {
                self.warnings.push(format!(
                    "configuration file {}: unknown key `{key}` ignored",
                    path.display()
                ));
                continue;
            };
            match toml_text(&value) {
                Some(text) => {
                    self.values.insert(setting.name, (RawValue::new(setting, text), Origin::File));
                }
                None => self.problems.push(format!(
                    "configuration file {}: `{key}` must be a string, number, boolean or list",
                    path.display()
                )),
            }
        }
    }

    fn read_env(&mut self, env: &BTreeMap<String, String>) {
        for (name, value) in env {
            if let Some(setting) = settings::find(name) {
                self.values
                    .insert(setting.name, (RawValue::new(setting, value.clone()), Origin::Env));
                continue;
            }
            if let Some(base) = name.strip_suffix("_FILE")
                && let Some(setting) = settings::find(base)
            {
                if !setting.secret {
                    self.problems.push(format!(
                        "{name}: only secrets have a _FILE variant; set {base} instead"
                    ));
                } else if env.contains_key(base) {
                    self.problems.push(format!("{base} and {name} are both set; keep exactly one"));
                } else {
                    self.read_secret_file(setting, name, value);
                }
                continue;
            }
            // The test harness's own variables share the prefix.
            if !name.starts_with("BULWARK_TEST_") && name != "BULWARK_CONFIG" {
                self.warnings.push(unknown_name_warning(name));
            }
        }
    }

    fn read_secret_file(&mut self, setting: &'static Setting, name: &str, path: &str) {
        match std::fs::read_to_string(path) {
            Ok(mut text) => {
                // Mounted secrets usually end with a newline that is not part of the value.
                let value = text.trim_end_matches(['\n', '\r']).to_owned();
                text.zeroize();
                self.values.insert(setting.name, (RawValue::new(setting, value), Origin::EnvFile));
            }
            Err(err) => self
                .problems
                .push(format!("{name}: the file {path} cannot be read ({})", err.kind())),
        }
    }
}

fn unknown_name_warning(name: &str) -> String {
    let suggestion = settings::all()
        .map(|s| (edit_distance(name, s.name), s.name))
        .min()
        .filter(|(distance, _)| *distance <= 3)
        .map_or_else(String::new, |(_, known)| format!(" (did you mean {known}?)"));
    format!("{name} is not a Bulwark setting and is ignored{suggestion}")
}

/// Levenshtein distance, for "did you mean" hints on misspelled variable names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).map_or(0, |before| before.matches('\n').count()) + 1
}

fn flatten(prefix: &str, value: &toml::Value, out: &mut Vec<(String, toml::Value)>) {
    match value {
        toml::Value::Table(table) => {
            for (key, value) in table {
                let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                flatten(&path, value, out);
            }
        }
        other => out.push((prefix.to_owned(), other.clone())),
    }
}

/// TOML scalars and lists become the same text an environment variable would hold.
fn toml_text(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(text) => Some(text.clone()),
        toml::Value::Integer(n) => Some(n.to_string()),
        toml::Value::Boolean(true) => Some("on".into()),
        toml::Value::Boolean(false) => Some("off".into()),
        toml::Value::Array(items) => {
            let parts: Option<Vec<String>> = items.iter().map(toml_text).collect();
            Some(parts?.join(","))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_the_file_and_defaults_fill_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bulwark.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\nlog = \"debug\"\n[http]\ncors_origins = [\"https://a.example\", \"https://b.example\"]\n",
        )
        .expect("write");
        let input = ConfigInput {
            env: [("BULWARK_LOG".to_owned(), "warn".to_owned())].into(),
            file: Some(path),
        };
        let raw = RawValues::read(&input);
        assert!(raw.problems.is_empty(), "{:?}", raw.problems);
        assert_eq!(raw.get("BULWARK_LISTEN"), Some("127.0.0.1:9000"));
        assert_eq!(raw.get("BULWARK_LOG"), Some("warn"));
        assert_eq!(raw.get("BULWARK_CORS_ORIGINS"), Some("https://a.example,https://b.example"));
        assert_eq!(raw.get("BULWARK_ENV"), Some("development"));
        assert_eq!(raw.origin("BULWARK_ENV"), Some(Origin::Default));
    }

    #[test]
    fn secrets_come_from_files_without_the_trailing_newline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("jwt");
        std::fs::write(&path, "0123456789abcdef0123456789abcdef\n").expect("write");
        let input = ConfigInput::from_pairs([(
            "BULWARK_JWT_SECRET_FILE",
            path.to_str().expect("utf-8 path"),
        )]);
        let raw = RawValues::read(&input);
        assert_eq!(raw.get("BULWARK_JWT_SECRET"), Some("0123456789abcdef0123456789abcdef"));
        assert_eq!(raw.origin("BULWARK_JWT_SECRET"), Some(Origin::EnvFile));
    }

    #[test]
    fn a_secret_set_twice_or_a_file_variant_of_a_plain_setting_is_a_problem() {
        let raw = RawValues::read(&ConfigInput::from_pairs([
            ("BULWARK_JWT_SECRET", "x"),
            ("BULWARK_JWT_SECRET_FILE", "/nonexistent"),
            ("BULWARK_LISTEN_FILE", "/nonexistent"),
        ]));
        assert_eq!(raw.problems.len(), 2, "{:?}", raw.problems);
    }

    #[test]
    fn a_misspelled_name_is_warned_about_with_a_suggestion() {
        let raw = RawValues::read(&ConfigInput::from_pairs([("BULWARK_LISTN", "x")]));
        assert_eq!(raw.warnings.len(), 1);
        assert!(raw.warnings[0].contains("did you mean BULWARK_LISTEN"), "{:?}", raw.warnings);
    }

    #[test]
    fn a_broken_file_is_reported_without_quoting_its_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "log = \"info\"\n[secrets]\njwt_secret = \"s3cr3t-value-here\n")
            .expect("write");
        let raw = RawValues::read(&ConfigInput { env: BTreeMap::new(), file: Some(path) });
        assert_eq!(raw.problems.len(), 1);
        assert!(!raw.problems[0].contains("s3cr3t"), "{:?}", raw.problems);
        assert!(raw.problems[0].contains("line 3"), "{:?}", raw.problems);
    }
}
