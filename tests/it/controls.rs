//! docs/CONTROLS.md is checked: every test it names is compiled into a test binary and not
//! ignored (from the binaries' own `--list`), every script or fuzz
//! target it names is run by the test command, and a row without tests says `planned`.

use std::collections::{HashMap, HashSet};
use std::path::Path;

/// The tests a test binary holds, from its own `--list` (libtest's terse format):
/// name -> ignored.
fn listed(binary: &Path) -> Option<HashMap<String, bool>> {
    let list = |ignored: bool| -> Option<Vec<String>> {
        let mut command = std::process::Command::new(binary);
        command.args(["--list", "--format", "terse"]);
        if ignored {
            command.arg("--ignored");
        }
        let output = command.output().ok().filter(|o| o.status.success())?;
        Some(
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .filter_map(|l| l.strip_suffix(": test").map(str::to_owned))
                .collect(),
        )
    };
    let ignored: HashSet<String> = list(true)?.into_iter().collect();
    Some(list(false)?.into_iter().map(|name| (name.clone(), ignored.contains(&name))).collect())
}

/// Every test of the two test binaries: (suite, name) -> ignored. The integration binary is
/// this very process; the library's unit-test binary sits beside it (`bulwark-<hash>`), the
/// newest one that lists the library's tests (older hashes of earlier builds may remain).
/// No cargo here: a nested build could replace binaries the running suite still needs.
fn compiled_tests() -> HashMap<(String, String), bool> {
    let me = std::env::current_exe().expect("the test binary's path");
    let mut tests = HashMap::new();
    for (name, ignored) in listed(&me).expect("the integration binary lists its tests") {
        tests.insert(("bulwark::it".to_owned(), name), ignored);
    }
    let dir = me.parent().expect("a directory");
    let mut candidates: Vec<(std::time::SystemTime, std::path::PathBuf)> = std::fs::read_dir(dir)
        .expect("the deps directory")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("bulwark-") && !n.contains('.'))
        })
        .filter_map(|path| Some((path.metadata().ok()?.modified().ok()?, path)))
        .collect();
    candidates.sort_by_key(|(modified, _)| std::cmp::Reverse(*modified));
    let library = candidates
        .iter()
        .filter_map(|(_, path)| listed(path))
        .find(|list| list.keys().any(|name| name.starts_with("layering::")))
        .expect("the library's unit-test binary beside this one");
    for (name, ignored) in library {
        tests.insert(("bulwark".to_owned(), name), ignored);
    }
    tests
}

/// The suite and the test names a `file::function` reference may have in the list.
fn candidates(file: &str, function: &str) -> (String, Vec<String>) {
    if let Some(module) = file.strip_prefix("tests/it/").and_then(|f| f.strip_suffix(".rs")) {
        return ("bulwark::it".into(), vec![format!("{}::{function}", module.replace('/', "::"))]);
    }
    let suite = if file == "src/main.rs" { "bulwark::bin/bulwark" } else { "bulwark" };
    let module = file
        .trim_start_matches("src/")
        .trim_end_matches(".rs")
        .trim_end_matches("/mod")
        .trim_end_matches("lib")
        .trim_end_matches("main")
        .replace('/', "::");
    let prefix = if module.is_empty() { String::new() } else { format!("{module}::") };
    (suite.into(), vec![format!("{prefix}{function}"), format!("{prefix}tests::{function}")])
}

/// The lines of a shell script that are code, comments removed.
fn code_of(script: &str) -> Vec<String> {
    script
        .lines()
        .map(|line| line.split_once('#').map_or(line, |(code, _)| code).trim().to_owned())
        .filter(|line| !line.is_empty())
        .collect()
}

/// Whether the test command runs `file`: `scripts/test.sh` invokes the script, or (fuzz
/// targets) `scripts/fuzz.sh` — which `scripts/test.sh` invokes — lists the target.
fn runs(root: &Path, file: &str) -> bool {
    let read =
        |script: &str| code_of(&std::fs::read_to_string(root.join(script)).unwrap_or_default());
    let test = read("scripts/test.sh");
    let invoked = |script: &str| test.iter().any(|line| line.contains(script));
    if let Some(target) =
        file.strip_prefix("fuzz/fuzz_targets/").and_then(|f| f.strip_suffix(".rs"))
    {
        return invoked("scripts/fuzz.sh")
            && read("scripts/fuzz.sh").iter().any(|line| {
                line.starts_with("TARGETS=")
                    && line
                        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .any(|w| w == target)
            });
    }
    file == "scripts/test.sh" || invoked(file)
}

#[test]
fn every_control_names_existing_tests_or_is_planned() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/CONTROLS.md")).expect("docs/CONTROLS.md");
    let compiled = compiled_tests();
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
                assert!(runs(root, name), "{id}: the test command does not run {name}");
                tested += 1;
                continue;
            };
            if file.ends_with(".py") {
                // Schemathesis hooks (loaded by scripts/api-fuzz.sh) and the browser tests (run
                // by scripts/browser-test.sh); the test command must run that script.
                let script = if file.starts_with("tests/browser/") {
                    "scripts/browser-test.sh"
                } else {
                    "scripts/api-fuzz.sh"
                };
                let source = std::fs::read_to_string(root.join(file))
                    .unwrap_or_else(|_| panic!("{id}: {file} does not exist"));
                assert!(
                    source.contains(&format!("def {function}(")),
                    "{id}: no {function} in {file}"
                );
                assert!(runs(root, script), "{id}: {script} is not run");
                tested += 1;
                continue;
            }
            let (suite, names) = candidates(file, function);
            let found = names.iter().find_map(|n| compiled.get(&(suite.clone(), n.clone())));
            assert_eq!(
                found,
                Some(&false),
                "{id}: {name} is not a compiled, non-ignored test of {suite} (looked for {names:?})"
            );
            tested += 1;
        }
    }
    assert!(rows >= 40, "only {rows} controls");
    assert!(tested >= 40, "only {tested} test references");
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
