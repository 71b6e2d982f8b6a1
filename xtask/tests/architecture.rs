//! The code map stays true: every source file is named in ARCHITECTURE.md,
//! by its file name (`h264.rs`) or, for a component, by its name in
//! backticks (`Lobby`). Entry points (`mod.rs`, `lib.rs`, `main.rs`,
//! `index.ts`) and generated code (`src-ui/src/protocol/`,
//! `src-ui/src/desktop/bindings/`) are named by their directory.
//!
//! And files stay small enough to read: one over [`LONG`] lines says why at
//! its top, in its first comment ("Over 600 lines: …").

use std::path::{Path, PathBuf};

/// Where sources live, and the extensions that count.
const TREES: &[(&str, &[&str])] = &[
    ("crates", &["rs"]),
    ("signaling-server/src", &["rs"]),
    ("src-tauri", &["rs"]),
    ("src-ui/src", &["ts", "tsx"]),
    ("xtask/src", &["rs"]),
];

const ENTRY_POINTS: &[&str] = &["mod.rs", "lib.rs", "main.rs", "index.ts"];
const GENERATED: &[&str] = &["src-ui/src/protocol", "src-ui/src/desktop/bindings"];
/// Inside `crates/` and `src-tauri/`, only sources count (not tests,
/// benches, examples or fuzz targets, which their crate's entry describes).
const NOT_SOURCES: &[&str] = &["tests", "benches", "examples", "fuzz", "target", "gen"];

/// A file longer than this says why at its top.
const LONG: usize = 600;
/// What that reason starts with, in the file's first comment.
const LONG_REASON: &str = "Over 600 lines";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The sources under `dir` with one of `extensions`, entry points left out
/// unless `entry_points`.
fn sources(dir: &Path, extensions: &[&str], entry_points: bool, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            let generated = GENERATED.iter().any(|g| path.ends_with(g));
            if !generated && !NOT_SOURCES.contains(&name.as_str()) && name != "node_modules" {
                sources(&path, extensions, entry_points, out);
            }
        } else if path
            .extension()
            .is_some_and(|e| extensions.contains(&e.to_string_lossy().as_ref()))
            && (entry_points || !ENTRY_POINTS.contains(&name.as_str()))
            && !name.ends_with(".d.ts")
        {
            out.push(path);
        }
    }
}

#[test]
fn every_source_file_is_on_the_map() {
    let root = root();
    let map = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let mut files = Vec::new();
    for (tree, extensions) in TREES {
        sources(&root.join(tree), extensions, false, &mut files);
    }
    assert!(files.len() > 100, "found only {} sources", files.len());
    let mut missing: Vec<String> = files
        .iter()
        .filter(|path| {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            let stem = path.file_stem().map(|n| n.to_string_lossy().into_owned());
            let (Some(name), Some(stem)) = (name, stem) else {
                return false;
            };
            !map.contains(&name) && !map.contains(&format!("`{stem}`"))
        })
        .map(|path| {
            path.strip_prefix(&root)
                .unwrap_or(path)
                .display()
                .to_string()
        })
        .collect();
    missing.sort();
    assert!(
        missing.is_empty(),
        "not named in ARCHITECTURE.md (say what each is for):\n  {}",
        missing.join("\n  ")
    );
}

/// The comment a file starts with (`//!`, `//` or `/* */` lines), as text.
fn first_comment(text: &str) -> String {
    text.lines()
        .skip_while(|line| line.trim().is_empty() || line.starts_with("#!"))
        .take_while(|line| {
            let line = line.trim_start();
            line.starts_with("//") || line.starts_with("/*") || line.starts_with('*')
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_long_file_says_why_at_its_top() {
    let root = root();
    let mut files = Vec::new();
    for (tree, extensions) in TREES {
        sources(&root.join(tree), extensions, true, &mut files);
    }
    sources(&root.join("src-ui/e2e"), &["mjs"], true, &mut files);
    let mut unexplained: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let text = std::fs::read_to_string(path).ok()?;
            let lines = text.lines().count();
            (lines > LONG && !first_comment(&text).contains(LONG_REASON)).then(|| {
                let shown = path.strip_prefix(&root).unwrap_or(path).display();
                format!("{shown}: {lines} lines")
            })
        })
        .collect();
    unexplained.sort();
    assert!(
        unexplained.is_empty(),
        "over {LONG} lines with no \"{LONG_REASON}: <why>\" in the first comment \
         (split it, or say why not):\n  {}",
        unexplained.join("\n  ")
    );
}

#[test]
fn the_first_comment_is_the_files_opening_comment_only() {
    let text = "//! One.\n//! Two.\n\nuse x;\n// Later.\n";
    assert_eq!(first_comment(text), "//! One.\n//! Two.");
    assert_eq!(first_comment("#!/usr/bin/env node\n// A.\nx"), "// A.");
    assert_eq!(first_comment("/**\n * A.\n */\nx"), "/**\n * A.\n */");
}
