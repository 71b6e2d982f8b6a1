//! The code map stays true: every source file is named in ARCHITECTURE.md,
//! by its file name (`h264.rs`) or, for a component, by its name in
//! backticks (`Lobby`). Entry points (`mod.rs`, `lib.rs`, `main.rs`,
//! `index.ts`) and generated code (`src-ui/src/protocol/`,
//! `src-ui/src/desktop/bindings/`) are named by their directory.

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

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn sources(dir: &Path, extensions: &[&str], out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            let generated = GENERATED.iter().any(|g| path.ends_with(g));
            if !generated && !NOT_SOURCES.contains(&name.as_str()) && name != "node_modules" {
                sources(&path, extensions, out);
            }
        } else if path
            .extension()
            .is_some_and(|e| extensions.contains(&e.to_string_lossy().as_ref()))
            && !ENTRY_POINTS.contains(&name.as_str())
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
        sources(&root.join(tree), extensions, &mut files);
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
