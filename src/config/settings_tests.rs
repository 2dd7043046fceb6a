//! The settings table checked against the README and itself.

use crate::config::settings;

#[test]
fn the_readme_documents_every_setting() {
    let readme = include_str!("../../README.md");
    for setting in settings::all() {
        let row = format!("| `{}`", setting.name);
        assert!(readme.contains(&row), "README.md lacks a row for {}", setting.name);
        assert!(readme.contains(&format!("`{}`", setting.key)), "README.md lacks {}", setting.key);
    }
}

#[test]
fn names_and_keys_are_unique_and_well_formed() {
    let mut names = std::collections::HashSet::new();
    let mut keys = std::collections::HashSet::new();
    for setting in settings::all() {
        assert!(setting.name.starts_with("BULWARK_"), "{}", setting.name);
        assert!(!setting.name.ends_with("_FILE") || !setting.secret, "{}", setting.name);
        assert!(names.insert(setting.name), "duplicate {}", setting.name);
        assert!(keys.insert(setting.key), "duplicate {}", setting.key);
        assert!(setting.default.is_none() || !setting.secret, "secret with a default");
    }
}
