//! Rebuilds the server when the built UI changes, so a release binary
//! always embeds the current `src-ui/dist` (see `src/ui.rs`).

fn main() {
    println!("cargo:rerun-if-changed=../src-ui/dist");
    println!("cargo:rerun-if-changed=build.rs");
}
