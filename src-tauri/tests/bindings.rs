//! The TypeScript types in `src-ui/src/desktop/bindings/` (what the desktop
//! shell and its window exchange) are generated from the shell's Rust
//! types. Fails if the committed files are stale; `HUDDLE_BLESS=1`
//! rewrites them.

#[path = "../../crates/protocol/tests/support/generated.rs"]
mod generated;

use std::path::Path;

use huddle_app::commands::{JoinArgs, Startup};
use huddle_app::events::UiEvent;
use huddle_app::pip::PipTarget;
use ts_rs::{Config, TS};

fn generate(dir: &Path) {
    let cfg = Config::new().with_out_dir(dir).with_large_int("number");
    UiEvent::export_all(&cfg).expect("export UiEvent");
    Startup::export_all(&cfg).expect("export Startup");
    JoinArgs::export_all(&cfg).expect("export JoinArgs");
    PipTarget::export_all(&cfg).expect("export PipTarget");
}

#[test]
fn typescript_bindings_are_current() {
    let committed = generated::manifest_dir().join("src-ui/src/desktop/bindings");
    generated::check_or_bless(
        &committed,
        generate,
        "HUDDLE_BLESS=1 cargo test -p huddle --test bindings",
    );
}
