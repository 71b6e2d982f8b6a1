//! Huddle for Windows, built on this Linux machine (issue 16): mingw-w64
//! compiles and links (`.cargo/config.toml` names
//! `xtask/windows/static-cxx-gcc.sh`, which keeps the C++ runtime inside
//! each `.exe`), and wine64 runs the executables in the tests.
//!
//! - `cargo xtask cross windows`: builds (profile `dist`) of the desktop app
//!   `huddle.exe` (with the `WebView2Loader.dll` it loads), `huddle-server.exe`
//!   and `huddle-peer.exe`, the installer (`src-tauri/windows/huddle.nsi`,
//!   packed by makensis), their sizes and the build time.
//! - [`windows_check`], part of `cargo xtask test` (alone: `cargo xtask
//!   cross test`): debug builds of all three — so code that stops compiling
//!   for Windows fails CI — with the server and the peer run under wine
//!   against Linux Chromium, a Linux `huddle-server` and a Linux
//!   `huddle-peer` (`src-ui/e2e/windows.mjs`), and the installer installed
//!   and uninstalled under wine.
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
    let dir = build_windows("dist")?;
    eprintln!(
        "xtask: Windows release build took {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let installer = pack_installer(&dir, true)?;
    for path in [
        dir.join("huddle.exe"),
        dir.join("WebView2Loader.dll"),
        dir.join("huddle-server.exe"),
        dir.join("huddle-peer.exe"),
        installer,
    ] {
        let size = std::fs::metadata(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .len();
        println!("{:.1} MB  {}", size as f64 / 1e6, path.display());
    }
    Ok(())
}

/// Builds `huddle.exe`, `huddle-server.exe` and `huddle-peer.exe` with
/// cargo's `profile` (`dev`, or `dist`: what users download); the directory
/// they are in.
fn build_windows(profile: &str) -> Result<PathBuf, Failed> {
    ensure_system_packages(BUILD_PACKAGES)?;
    step(
        "rustup target add (Windows)",
        Command::new("rustup").args(["target", "add", WINDOWS]),
    )?;
    let mut cmd = cargo();
    cmd.args(["build", "--target", WINDOWS, "--profile", profile]);
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
        .join(if profile == "dev" { "debug" } else { profile }))
}

/// The Windows executables under wine, with Linux Chromium, server and
/// peer (`linux_bin` holds the Linux builds).
pub fn windows_check(linux_bin: &Path) -> Result<(), Failed> {
    let dir = build_windows("dev")?;
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
    let result = result.and_then(|()| installer_check(&dir, &prefix));
    // The prefix's wineserver lingers after its last program; end it.
    let _ = Command::new(WINESERVER)
        .arg("-k")
        .env("WINEPREFIX", &prefix)
        .status();
    result
}

/// wine64 in the test prefix, quiet, with no offer to install wine's .NET
/// and HTML engines (nothing here uses them).
fn wine(prefix: &Path) -> Command {
    let mut cmd = Command::new(WINE);
    cmd.env("WINEPREFIX", prefix)
        .env("WINEDEBUG", "-all")
        .env("WINEDLLOVERRIDES", "mscoree,mshtml=");
    cmd
}

/// Packs the installer (`src-tauri/windows/huddle.nsi`) around the app in
/// `dir`; the installer's path.
fn pack_installer(dir: &Path, compressed: bool) -> Result<PathBuf, Failed> {
    ensure_system_packages(&[("makensis", "nsis")])?;
    let installer = dir.join(format!("Huddle-{}-setup.exe", env!("CARGO_PKG_VERSION")));
    let mut cmd = Command::new("makensis");
    cmd.arg("-V2")
        .arg(format!("-DVERSION={}", env!("CARGO_PKG_VERSION")))
        .arg(format!("-DAPPDIR={}", dir.display()))
        .arg(format!(
            "-DICON={}",
            root().join("icons/icon.ico").display()
        ))
        .arg(format!("-DOUTFILE={}", installer.display()));
    if !compressed {
        cmd.arg("-DUNCOMPRESSED");
    }
    cmd.arg(root().join("src-tauri/windows/huddle.nsi"));
    step("makensis (the Windows installer)", &mut cmd)?;
    Ok(installer)
}

/// The installer under wine, as a user would run it (silently here): the
/// app lands in the user's programs with a Start-menu entry and the
/// `huddle://` scheme; the uninstaller takes all of it away again.
fn installer_check(dir: &Path, prefix: &Path) -> Result<(), Failed> {
    let installer = pack_installer(dir, false)?;
    step(
        "install Huddle under wine (/S)",
        wine(prefix).arg(&installer).arg("/S"),
    )?;
    let users = prefix.join("drive_c/users");
    let home = std::fs::read_dir(&users)
        .map_err(|e| format!("{}: {e}", users.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.join("AppData/Local/Programs/Huddle").is_dir())
        .ok_or("the installer put no Huddle into any user's AppData\\Local\\Programs")?;
    let app = home.join("AppData/Local/Programs/Huddle");
    let shortcut = home.join("AppData/Roaming/Microsoft/Windows/Start Menu/Programs/Huddle.lnk");
    for file in [
        app.join("huddle.exe"),
        app.join("WebView2Loader.dll"),
        app.join("uninstall.exe"),
        shortcut.clone(),
    ] {
        if !file.is_file() {
            return Err(format!("the installer did not write {}", file.display()));
        }
    }
    let command = registry(prefix, r"HKCU\Software\Classes\huddle\shell\open\command")?
        .and_then(|out| {
            out.lines()
                .find(|l| l.contains("REG_SZ"))
                .map(str::to_owned)
        })
        .ok_or("the installer did not register huddle:// links")?;
    if !command.contains(r#"\Programs\Huddle\huddle.exe" "%1""#) {
        return Err(format!("huddle:// opens {command:?}"));
    }
    eprintln!("xtask: installed; huddle:// runs {}", command.trim());
    step(
        "uninstall Huddle under wine (/S)",
        wine(prefix).arg(app.join("uninstall.exe")).arg("/S"),
    )?;
    // NSIS's uninstaller copies itself away and returns at once; it is
    // done when the app's folder is gone.
    let until = Instant::now() + std::time::Duration::from_secs(60);
    while app.exists() && Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    if app.exists() || shortcut.exists() {
        return Err(format!("the uninstaller left {}", app.display()));
    }
    for key in [
        r"HKCU\Software\Classes\huddle",
        r"HKCU\Software\Microsoft\Windows\CurrentVersion\Uninstall\Huddle",
    ] {
        if registry(prefix, key)?.is_some() {
            return Err(format!("the uninstaller left {key}"));
        }
    }
    Ok(())
}

/// `reg query KEY` in the prefix: its output, or `None` when the key does
/// not exist.
fn registry(prefix: &Path, key: &str) -> Result<Option<String>, Failed> {
    let output = wine(prefix)
        .args(["reg", "query", key])
        .output()
        .map_err(|e| format!("wine reg: {e}"))?;
    Ok(output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).replace('\r', "")))
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
