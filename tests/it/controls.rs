//! docs/CONTROLS.md is checked: every test it names exists, and a row without tests says
//! `planned`.

use std::collections::HashSet;
use std::path::Path;

#[test]
fn every_control_names_existing_tests_or_is_planned() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/CONTROLS.md")).expect("docs/CONTROLS.md");
    let test_command = ["scripts/test.sh", "scripts/api-fuzz.sh", "scripts/fuzz.sh"]
        .iter()
        .filter_map(|script| std::fs::read_to_string(root.join(script)).ok())
        .collect::<Vec<_>>()
        .join("\n");
    let mut ids = HashSet::new();
    let mut rows = 0;
    let mut tested = 0;
    for line in doc.lines().filter(|l| l.starts_with("| C")) {
        let cells: Vec<&str> =
            line.split(" | ").map(|c| c.trim_matches(|ch| ch == '|' || ch == ' ')).collect();
        assert_eq!(cells.len(), 4, "a row has four cells: {line}");
        let (id, tests) = (cells[0], cells[3]);
        assert!(ids.insert(id.to_owned()), "{id} is used twice");
        rows += 1;
        if tests == "planned" {
            continue;
        }
        let names: Vec<&str> = tests.split(", ").map(|t| t.trim_matches('`')).collect();
        assert!(!names.is_empty(), "{id} names no test and is not planned");
        for name in names {
            let Some((file, function)) = name.rsplit_once("::") else {
                // A whole file is evidence when the test command runs it: a script, a fuzz
                // target.
                assert!(root.join(name).is_file(), "{id}: {name} does not exist");
                assert!(
                    name == "scripts/test.sh" || runs(&test_command, name),
                    "{id}: the test command does not run {name}"
                );
                tested += 1;
                continue;
            };
            let source = std::fs::read_to_string(root.join(file))
                .unwrap_or_else(|_| panic!("{id}: {file} does not exist"));
            if file.ends_with(".py") {
                assert!(
                    source.contains(&format!("def {function}(")),
                    "{id}: no {function} in {file}"
                );
                tested += 1;
                continue;
            }
            let defined = source.contains(&format!("fn {function}("));
            let is_test = source
                .split(&format!("fn {function}("))
                .next()
                .and_then(|before| before.rsplit("\n\n").next())
                .is_some_and(|attrs| attrs.contains("#[test]") || attrs.contains("#[tokio::test]"));
            assert!(defined && is_test, "{id}: {file} has no test named {function}");
            tested += 1;
        }
    }
    assert!(rows >= 40, "only {rows} controls");
    assert!(tested >= 40, "only {tested} test references");
}

/// Whether the test command runs `file`: by path, or (fuzz targets) by its name in a loop over
/// the directory.
fn runs(test_command: &str, file: &str) -> bool {
    let stem = Path::new(file).file_stem().and_then(|s| s.to_str()).unwrap_or(file);
    test_command.contains(file)
        || test_command
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .any(|word| word == stem)
}

#[test]
fn the_security_policy_and_threat_model_say_what_they_must() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let policy = std::fs::read_to_string(root.join("SECURITY.md")).expect("SECURITY.md");
    for needed in [
        "CVSS v3.1",
        "72 hours",
        "7 days",
        "30 days",
        "90 days",
        "Safe harbour",
        "Supported versions",
    ] {
        assert!(policy.contains(needed), "SECURITY.md lacks {needed:?}");
    }
    let model =
        std::fs::read_to_string(root.join("docs/THREAT_MODEL.md")).expect("docs/THREAT_MODEL.md");
    assert!(model.contains("```mermaid"), "the threat model draws its data flows");
    for stride in [
        "Spoofing",
        "Tampering",
        "Repudiation",
        "Information disclosure",
        "Denial of service",
        "Elevation of privilege",
    ] {
        assert!(model.contains(stride), "the threat model lacks {stride}");
    }
}
