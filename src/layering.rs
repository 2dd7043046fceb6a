//! The layering rules, checked by reading the source: domain code never imports the HTTP
//! layer, and SQL lives only in store code. A module that breaks either fails this test, so
//! the rule does not depend on reviewers noticing.
//!
//! - HTTP code is `src/http/`, the console (`src/console/`), every `routes.rs`, and the assembly in `app.rs`, `main.rs`
//!   and `lib.rs`. Every other file is domain code: no `crate::http`, no `axum`.
//! - Store code is every `store.rs` and everything under a `store/` directory. No other file
//!   runs a query or holds a statement (`SELECT …`, `INSERT INTO …`, `UPDATE … SET`,
//!   `DELETE FROM …`).
//! - No file is over 500 lines, its tests included: a module that grows past it splits by
//!   concern (or moves its tests to a `tests.rs` beside it, as `store/writer/` does).

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("src is readable") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    fn relative(path: &Path) -> String {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        path.strip_prefix(&root).unwrap_or(path).to_string_lossy().replace('\\', "/")
    }

    fn is_http(file: &str) -> bool {
        file.starts_with("http/")
            || file.starts_with("console/")
            || file.ends_with("routes.rs")
            || matches!(file, "app.rs" | "main.rs" | "lib.rs")
    }

    fn is_store(file: &str) -> bool {
        file == "store.rs"
            || file.ends_with("/store.rs")
            || file.starts_with("store/")
            || file.contains("/store/")
    }

    /// The code of a file without its `#[cfg(test)]` module (tests may say anything).
    fn code(text: &str) -> &str {
        text.find("#[cfg(test)]\nmod tests").map_or(text, |at| &text[..at])
    }

    fn all() -> Vec<(String, String)> {
        let mut files = vec![];
        sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
        files
            .into_iter()
            .map(|path| {
                let text = std::fs::read_to_string(&path).expect("readable source");
                (relative(&path), text)
            })
            .collect()
    }

    /// A string literal that opens with a statement.
    fn statement_in(line: &str) -> bool {
        ["\"SELECT ", "\"INSERT INTO ", "\"DELETE FROM ", "\"UPDATE "]
            .iter()
            .any(|keyword| line.contains(keyword))
    }

    #[test]
    fn domain_modules_never_import_the_http_layer() {
        let mut offenders = vec![];
        for (file, text) in all() {
            if is_http(&file) || file == "layering.rs" {
                continue;
            }
            for (n, line) in code(&text).lines().enumerate() {
                if line.contains("crate::http") || line.contains("axum") {
                    offenders.push(format!("{file}:{}: {}", n + 1, line.trim()));
                }
            }
        }
        assert!(offenders.is_empty(), "domain code imports HTTP:\n{}", offenders.join("\n"));
    }

    #[test]
    fn sql_lives_only_in_store_code() {
        let mut offenders = vec![];
        for (file, text) in all() {
            if is_store(&file) || file == "layering.rs" {
                continue;
            }
            for (n, line) in code(&text).lines().enumerate() {
                let runs_a_query = line.contains("query(\"")
                    || line.contains("sqlx::query")
                    || line.trim_start().starts_with("query(");
                if runs_a_query || statement_in(line) {
                    offenders.push(format!("{file}:{}: {}", n + 1, line.trim()));
                }
            }
        }
        assert!(offenders.is_empty(), "SQL outside store code:\n{}", offenders.join("\n"));
    }

    const MAX_LINES: usize = 500;

    #[test]
    fn no_source_file_is_over_500_lines() {
        let sources = all();
        assert!(sources.len() > 100, "the walk found the sources");
        let mut offenders: Vec<String> = sources
            .into_iter()
            .map(|(file, text)| (file, text.lines().count()))
            .filter(|(_, lines)| *lines > MAX_LINES)
            .map(|(file, lines)| format!("{file}: {lines} lines"))
            .collect();
        offenders.sort();
        assert!(offenders.is_empty(), "over {MAX_LINES} lines:\n{}", offenders.join("\n"));
    }

    #[test]
    fn the_rules_catch_what_they_claim() {
        assert!(statement_in(r#"        "SELECT id FROM contacts WHERE tenant_id = $1","#));
        assert!(statement_in(r#"    "DELETE FROM notes WHERE id = $1""#));
        assert!(statement_in(r#"    let sql = "UPDATE leads SET title = $1";"#));
        assert!(!statement_in("    // SELECT in a comment is prose"));
        assert!(is_http("crm/leads/routes.rs") && is_http("http/gate.rs"));
        assert!(!is_http("crm/leads/mod.rs"));
        assert!(is_store("crm/leads/store.rs") && is_store("store/sql.rs"));
        assert!(is_store("identity/store/sessions.rs"));
        assert!(!is_store("crm/leads/mod.rs"));
    }
}
