//! Repository hygiene checks that need no compiler: what `cargo xtask tidy` enforces.
//!
//! Each problem is reported as `path[:line]: what is wrong: how to fix it`.

use std::{
    fs,
    path::{Path, PathBuf},
};

use xshell::{Shell, cmd};

use crate::Result;

/// Directories whose Rust sources are checked.
const SOURCE_DIRS: &[&str] = &["crates", "tests", "xtask"];

/// The hard limit for one `.rs` file; the house style aims under 600 lines.
const MAX_LINES: usize = 800;

/// The limit for one tracked file: fixtures this large belong in a generator, not in git.
const MAX_TRACKED_BYTES: u64 = 1024 * 1024;

/// Text that must not appear in Rust sources, with the reason. Each pattern is spelled in two
/// halves so that this file passes its own check.
const FORBIDDEN: &[(&str, &str)] = &[
    (
        concat!("#[", "ignore"),
        "tests are never skipped (CONVENTIONS.md §8): make it pass or delete it",
    ),
    (
        concat!("todo", "!("),
        "finish the code or return a typed error",
    ),
    (
        concat!("unimplemented", "!("),
        "finish the code or return a typed error",
    ),
    (concat!("dbg", "!("), "remove the debug output"),
];

/// The line that makes a crate's README its crate documentation (and its example a doctest).
const CRATE_DOC: &str = r#"#![doc = include_str!("../README.md")]"#;

/// Runs every check and returns the problems found, empty when the tree is tidy.
pub(crate) fn check(sh: &Shell, root: &Path) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for dir in SOURCE_DIRS {
        for file in rust_files(&root.join(dir))? {
            let text = fs::read_to_string(&file)?;
            check_source(&relative(root, &file), &text, &mut problems);
        }
    }
    check_crates(root, &mut problems)?;
    check_tracked_sizes(sh, root, &mut problems)?;
    Ok(problems)
}

fn check_source(path: &str, text: &str, problems: &mut Vec<String>) {
    for (index, line) in text.lines().enumerate() {
        for (pattern, fix) in FORBIDDEN {
            if line.contains(pattern) {
                problems.push(format!(
                    "{path}:{}: `{pattern}` is not allowed: {fix}",
                    index + 1
                ));
            }
        }
    }
    let lines = text.lines().count();
    if lines > MAX_LINES {
        problems.push(format!(
            "{path}: {lines} lines, over the limit of {MAX_LINES} (the house style aims under \
             600): split the module"
        ));
    }
}

/// Every crate under crates/ has a README that is its crate doc, and the workspace lints.
fn check_crates(root: &Path, problems: &mut Vec<String>) -> Result<()> {
    let crates_dir = root.join("crates");
    let mut crates: Vec<PathBuf> = match fs::read_dir(&crates_dir) {
        Ok(entries) => entries
            .map(|entry| entry.map(|entry| entry.path()))
            .collect::<Result<_, _>>()?,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(err) => return Err(err.into()),
    };
    crates.retain(|dir| dir.join("Cargo.toml").is_file());
    crates.sort();
    for dir in crates {
        let name = relative(root, &dir);
        if !dir.join("README.md").is_file() {
            problems.push(format!(
                "{name}: no README.md: every crate has one, used as its crate doc"
            ));
        }
        let manifest = fs::read_to_string(dir.join("Cargo.toml"))?;
        if !has_workspace_lints(&manifest) {
            problems.push(format!(
                "{name}/Cargo.toml: no `[lints] workspace = true`: add it so the workspace \
                 lints apply"
            ));
        }
        let lib = dir.join("src/lib.rs");
        if lib.is_file() && !fs::read_to_string(&lib)?.contains(CRATE_DOC) {
            problems.push(format!(
                "{name}/src/lib.rs: no `{CRATE_DOC}`: make the README the crate doc"
            ));
        }
    }
    Ok(())
}

/// Whether a manifest opts into `[workspace.lints]`, in any of TOML's spellings.
fn has_workspace_lints(manifest: &str) -> bool {
    let mut in_lints = false;
    for line in manifest.lines() {
        let line: String = line
            .split('#')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        if line.starts_with('[') {
            in_lints = line == "[lints]";
        } else if (in_lints && line == "workspace=true")
            || line == "lints.workspace=true"
            || line == "lints={workspace=true}"
        {
            return true;
        }
    }
    false
}

fn check_tracked_sizes(sh: &Shell, root: &Path, problems: &mut Vec<String>) -> Result<()> {
    let tracked = cmd!(sh, "git ls-files -z").quiet().read()?;
    for path in tracked.split('\0').filter(|path| !path.is_empty()) {
        // A tracked file deleted in the work tree has no size to check.
        let Ok(meta) = fs::metadata(root.join(path)) else {
            continue;
        };
        if meta.len() > MAX_TRACKED_BYTES {
            problems.push(format!(
                "{path}: {} bytes, over the 1 MiB limit for tracked files: generate it instead",
                meta.len()
            ));
        }
    }
    Ok(())
}

/// The `.rs` files under `dir`, sorted, skipping build output and hidden directories.
fn rust_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(format!("cannot list {}: {err}", dir.display()).into()),
        };
        for entry in entries {
            let entry = entry?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if entry.file_type()?.is_dir() {
                if !(name.starts_with('.') || name == "target" || name == "node_modules") {
                    pending.push(path);
                }
            } else if name.ends_with(".rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems_in(text: &str) -> Vec<String> {
        let mut problems = Vec::new();
        check_source("x.rs", text, &mut problems);
        problems
    }

    #[test]
    fn forbidden_macros_are_reported_with_their_line() {
        let text = format!("fn f() {{}}\nfn g() {{ {}) }}\n", concat!("todo", "!("));
        let problems = problems_in(&text);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("x.rs:2: "), "{problems:?}");
    }

    #[test]
    fn skipped_tests_are_reported() {
        let text = format!("{}]\nfn t() {{}}\n", concat!("#[", "ignore"));
        assert_eq!(problems_in(&text).len(), 1);
    }

    #[test]
    fn long_files_are_reported() {
        assert!(problems_in(&"\n".repeat(MAX_LINES)).is_empty());
        assert_eq!(problems_in(&"\n".repeat(MAX_LINES + 1)).len(), 1);
    }

    #[test]
    fn workspace_lints_are_found_in_every_spelling() {
        assert!(has_workspace_lints(
            "[package]\nname = \"a\"\n\n[lints]\nworkspace = true\n"
        ));
        assert!(has_workspace_lints("[package]\nlints.workspace = true\n"));
        assert!(has_workspace_lints(
            "[package]\nlints = { workspace = true }\n"
        ));
        assert!(!has_workspace_lints("[package]\nname = \"a\"\n"));
        assert!(!has_workspace_lints(
            "[lints]\n[dependencies]\nworkspace = true\n"
        ));
        assert!(!has_workspace_lints("[lints]\n# workspace = true\n"));
    }
}
