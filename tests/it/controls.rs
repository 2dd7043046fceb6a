//! docs/CONTROLS.md is checked: every test it names exists, and a row without tests says
//! `planned`.

use std::collections::HashSet;
use std::path::Path;

#[test]
fn every_control_names_existing_tests_or_is_planned() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/CONTROLS.md")).expect("docs/CONTROLS.md");
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
            let (file, function) = name
                .rsplit_once("::")
                .unwrap_or_else(|| panic!("{id}: `{name}` is not file::function"));
            let source = std::fs::read_to_string(root.join(file))
                .unwrap_or_else(|_| panic!("{id}: {file} does not exist"));
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
