//! The benchmarks: `bench` (huddle-server beside PeerJS's server),
//! `bench-cluster` (what the Redis backplane costs), `bench-media` (codecs,
//! then a 720p call with Chromium) and `bench-desktop` (the desktop app).

use std::process::Command;

use crate::test::{desktop_script, TEST_PACKAGES};
use crate::{
    build_release, build_ui, cargo, ensure_system_packages, has_program, root, step, write_y4m,
    Failed,
};

pub fn bench(flags: &[String]) -> Result<(), Failed> {
    if !has_program("node") || !has_program("npm") {
        return Err(Failed::Missing(
            "the benchmark runs PeerJS's server: install Node.js and npm first".into(),
        ));
    }
    let peerjs = root().join("bench/peerjs");
    if !peerjs.join("node_modules/peer").is_dir() {
        eprintln!("xtask: installing the npm package `peer` (PeerJS's server) into bench/peerjs/");
        step(
            "npm install",
            Command::new("npm")
                .args(["install", "--no-audit", "--no-fund"])
                .current_dir(&peerjs),
        )?;
    }
    let target = build_release(&["huddle-server", "huddle-bench"], &[])?;
    let mut cmd = huddle_load(&target);
    cmd.arg("--peerjs").arg(&peerjs).args(flags);
    step("huddle-load", &mut cmd)
}

/// `huddle-load` from `target`, told where `huddle-server` is. Thousands of
/// client sockets and as many on the servers it starts: the open-file limit
/// is raised to the hard limit for all of them.
fn huddle_load(target: &std::path::Path) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"ulimit -n "$(ulimit -Hn)" && exec "$@""#)
        .arg("huddle-load")
        .arg(target.join("huddle-load"))
        .arg("--huddle-server")
        .arg(target.join("huddle-server"))
        .current_dir(root());
    cmd
}

pub fn cluster(flags: &[String]) -> Result<(), Failed> {
    ensure_system_packages(&[("redis-server", "redis-server")])?;
    let target = build_release(&["huddle-server", "huddle-bench"], &[])?;
    step(
        "huddle-load --cluster",
        huddle_load(&target).arg("--cluster").args(flags),
    )
}

pub fn media() -> Result<(), Failed> {
    ensure_system_packages(TEST_PACKAGES)?;
    build_ui()?;
    step(
        "codec benchmark",
        cargo().args(["bench", "-p", "huddle-engine", "--bench", "codec"]),
    )?;
    let target = build_release(
        &["huddle-server", "huddle-engine"],
        &["--bins", "--example", "pattern_y4m"],
    )?;
    // Chromium's fake camera plays the same busy pattern the native peer
    // sends (3 s, looped).
    let y4m = std::env::temp_dir().join("huddle-busy-720p.y4m");
    write_y4m(&target, &y4m, "1280x720")?;
    step(
        "1:1 720p call, Chromium and huddle-peer",
        Command::new("node")
            .arg("e2e/bench-media.mjs")
            .env("HUDDLE_SERVER_BIN", target.join("huddle-server"))
            .env("HUDDLE_PEER_BIN", target.join("huddle-peer"))
            .env("HUDDLE_Y4M", &y4m)
            .current_dir(root().join("src-ui")),
    )
}

pub fn desktop() -> Result<(), Failed> {
    ensure_system_packages(TEST_PACKAGES)?;
    build_ui()?;
    let target = build_release(&["huddle", "huddle-server", "huddle-engine"], &["--bins"])?;
    desktop_script("desktop app benchmark", "e2e/bench-desktop.mjs", &target)
}
