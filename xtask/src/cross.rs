//! Huddle for Windows, built on this Linux machine (issue 16): mingw-w64
//! compiles and links (`.cargo/config.toml` names
//! `xtask/windows/static-cxx-gcc.sh`, which keeps the C++ runtime inside
//! each `.exe`), and wine64 runs the executables in the tests.
//!
//! - `cargo xtask cross windows`: release builds of the desktop app
//!   `huddle.exe` (with the `WebView2Loader.dll` it loads), `huddle-server.exe`
//!   and `huddle-peer.exe`, their sizes and build time.
//! - [`windows_check`], part of `cargo xtask test` (alone: `cargo xtask
//!   cross test`): debug builds of all three — so code that stops compiling
//!   for Windows fails CI — and the server and the peer run under wine against Linux Chromium, a Linux `huddle-server` and a
//!   Linux `huddle-peer` (`src-ui/e2e/windows.mjs`).
//!
//! Only a test rig is added for wine: `bcryptprimitives.dll`
//! (`xtask/windows/bcryptprimitives.c`), which wine 8.0 lacks and Rust's
//! standard library imports. It is built beside the test executables and
//! never shipped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::{cargo, ensure_system_packages, root, step, target_dir, Failed};

/// The Windows target built here: the GNU ABI, linked by mingw-w64 (the
/// MSVC target needs Microsoft's SDK, which no registry here has).
pub const WINDOWS: &str = "x86_64-pc-windows-gnu";

/// Debian packages a Windows build needs: mingw-w64's C and C++ compilers
/// (OpenH264 is C++) and CMake (`audiopus_sys` builds libopus for the
/// target with it).
const BUILD_PACKAGES: &[(&str, &str)] = &[
    ("x86_64-w64-mingw32-gcc", "gcc-mingw-w64-x86-64"),
    ("x86_64-w64-mingw32-g++", "g++-mingw-w64-x86-64"),
    ("cmake", "cmake"),
];

/// wine's 64-bit loader, where Debian's `wine64` package puts it.
const WINE: &str = "/usr/lib/wine/wine64";
const WINESERVER: &str = "/usr/lib/wine/wineserver";

/// `cargo xtask cross windows`.
pub fn main(args: &[String]) -> Result<(), Failed> {
    match args.first().map(String::as_str) {
        Some("windows") => windows_release(),
        Some("test") => {
            crate::build_ui()?;
            crate::build_debug(&[])?;
            windows_check(&crate::target_dir().join("debug"))
        }
        _ => Err("usage: cargo xtask cross windows | test".into()),
    }
}

/// Release builds of the server and the headless peer for Windows; prints
/// how long it took and how big they are.
fn windows_release() -> Result<(), Failed> {
    crate::build_ui()?;
    let started = Instant::now();
    let dir = build_windows(true)?;
    eprintln!(
        "xtask: Windows release build took {:.0} s",
        started.elapsed().as_secs_f64()
    );
    for exe in [
        "huddle.exe",
        "WebView2Loader.dll",
        "huddle-server.exe",
        "huddle-peer.exe",
    ] {
        let path = dir.join(exe);
        let size = std::fs::metadata(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .len();
        println!("{exe}: {:.1} MB ({})", size as f64 / 1e6, path.display());
    }
    Ok(())
}

/// Builds `huddle.exe`, `huddle-server.exe` and `huddle-peer.exe`; the
/// directory they are in.
fn build_windows(release: bool) -> Result<PathBuf, Failed> {
    ensure_system_packages(BUILD_PACKAGES)?;
    step(
        "rustup target add (Windows)",
        Command::new("rustup").args(["target", "add", WINDOWS]),
    )?;
    let mut cmd = cargo();
    cmd.args(["build", "--target", WINDOWS]);
    if release {
        cmd.arg("--release");
    }
    cmd.args([
        "-p",
        "huddle",
        "-p",
        "huddle-server",
        "-p",
        "huddle-engine",
        "--bins",
    ]);
    step(&format!("cargo build --target {WINDOWS}"), &mut cmd)?;
    Ok(target_dir()
        .join(WINDOWS)
        .join(if release { "release" } else { "debug" }))
}

/// The Windows executables under wine, with Linux Chromium, server and
/// peer (`linux_bin` holds the Linux builds).
pub fn windows_check(linux_bin: &Path) -> Result<(), Failed> {
    let dir = build_windows(false)?;
    ensure_system_packages(&[(WINE, "wine64")])?;
    build_wine_shim(&dir)?;
    let prefix = target_dir().join("wine");
    let result = step(
        "Windows executables under wine (e2e/windows.mjs)",
        Command::new("node")
            .arg("e2e/windows.mjs")
            .env("HUDDLE_WINE", WINE)
            .env("HUDDLE_SERVER_EXE", dir.join("huddle-server.exe"))
            .env("HUDDLE_PEER_EXE", dir.join("huddle-peer.exe"))
            .env("HUDDLE_SERVER_BIN", linux_bin.join("huddle-server"))
            .env("HUDDLE_PEER_BIN", linux_bin.join("huddle-peer"))
            .env("WINEPREFIX", &prefix)
            // Quiet, and no offer to install wine's .NET and HTML engines
            // (nothing here uses them).
            .env("WINEDEBUG", "-all")
            .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
            .current_dir(root().join("src-ui")),
    );
    // The prefix's wineserver lingers after its last program; end it.
    let _ = Command::new(WINESERVER)
        .arg("-k")
        .env("WINEPREFIX", &prefix)
        .status();
    result
}

/// The test rig's `bcryptprimitives.dll`, built into `dir` beside the
/// executables wine runs.
fn build_wine_shim(dir: &Path) -> Result<(), Failed> {
    let source = root().join("xtask/windows");
    step(
        "build the wine rig's bcryptprimitives.dll",
        Command::new("x86_64-w64-mingw32-gcc")
            .args(["-shared", "-O2", "-o"])
            .arg(dir.join("bcryptprimitives.dll"))
            .arg(source.join("bcryptprimitives.c"))
            .arg(source.join("bcryptprimitives.def"))
            .arg("-ladvapi32"),
    )
}
