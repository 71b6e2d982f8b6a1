//! Huddle for Windows, built on this Linux machine (issue 16): mingw-w64
//! compiles and links (`.cargo/config.toml` names
//! `xtask/windows/static-cxx-gcc.sh`, which keeps the C++ runtime inside
//! each `.exe`), and wine64 runs the executables in the tests.
//!
//! - `cargo xtask cross windows`: builds (profile `dist`) of the desktop app
//!   `huddle.exe` (with the `WebView2Loader.dll` it loads), `huddle-server.exe`
//!   and `huddle-peer.exe`, the installer (`src-tauri/windows/huddle.nsi`,
//!   packed by makensis), their sizes and the build time.
//! - `cargo xtask cross bench`: the CPU `huddle-peer.exe` takes under wine
//!   in a 640×480 call, next to the Linux `huddle-peer` in the same call
//!   (dist builds of both; wine's own cost is part of the figure).
//! - [`windows_check`], part of `cargo xtask test` (alone: `cargo xtask
//!   cross test`): debug builds of all three — so code that stops compiling
//!   for Windows fails CI — with the server and the peer run under wine
//!   against Linux Chromium, a Linux `huddle-server` and a Linux
//!   `huddle-peer` (`src-ui/e2e/windows.mjs`), and the installer installed
//!   and uninstalled under wine.
//!
//! - [`platform_lints`], part of `cargo xtask test`: clippy with warnings
//!   as errors for Windows (the app, server, engine and protocol) and for
//!   macOS (server, engine and protocol; C through zig, from PyPI's
//!   `ziglang` and `cargo-zigbuild` — no Apple SDK can be fetched here, and
//!   the app's notification backend compiles Objective-C against Cocoa).
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
pub const BUILD_PACKAGES: &[(&str, &str)] = &[
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
        Some("bench") => windows_bench(),
        Some("test") => {
            crate::build_ui()?;
            platform_lints()?;
            crate::build_debug(&[])?;
            windows_check(&crate::target_dir().join("debug"))
        }
        _ => Err(Failed::Usage(
            "usage: cargo xtask cross windows | test | bench".into(),
        )),
    }
}

/// Dist builds of the app, the server and the headless peer for Windows,
/// and the installer around the app; prints how long the build took and
/// how big each is.
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
            .map_err(Failed::io(path.display()))?
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
    cmd.args(["build", "--target", WINDOWS, "--profile", profile])
        .args(crate::PRODUCT)
        .arg("--bins");
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
            .envs(wine_env(&prefix))
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

/// wine64 in the test prefix.
fn wine(prefix: &Path) -> Command {
    let mut cmd = Command::new(WINE);
    cmd.envs(wine_env(prefix));
    cmd
}

/// What every wine run here gets: the test prefix, quiet, and no offer to
/// install wine's .NET and HTML engines (nothing here uses them).
fn wine_env(prefix: &Path) -> [(&'static str, std::ffi::OsString); 3] {
    [
        ("WINEPREFIX", prefix.as_os_str().to_owned()),
        ("WINEDEBUG", "-all".into()),
        ("WINEDLLOVERRIDES", "mscoree,mshtml=".into()),
    ]
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
        .map_err(Failed::io(users.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.join("AppData/Local/Programs/Huddle").is_dir())
        .ok_or(Failed::check(
            "the installer put no Huddle into any user's AppData\\Local\\Programs",
        ))?;
    let app = home.join("AppData/Local/Programs/Huddle");
    let shortcut = home.join("AppData/Roaming/Microsoft/Windows/Start Menu/Programs/Huddle.lnk");
    for file in [
        app.join("huddle.exe"),
        app.join("WebView2Loader.dll"),
        app.join("uninstall.exe"),
        shortcut.clone(),
    ] {
        if !file.is_file() {
            return Err(Failed::check(format!(
                "the installer did not write {}",
                file.display()
            )));
        }
    }
    let command = registry(prefix, r"HKCU\Software\Classes\huddle\shell\open\command")?
        .and_then(|out| {
            out.lines()
                .find(|l| l.contains("REG_SZ"))
                .map(str::to_owned)
        })
        .ok_or(Failed::check(
            "the installer did not register huddle:// links",
        ))?;
    if !command.contains(r#"\Programs\Huddle\huddle.exe" "%1""#) {
        return Err(Failed::check(format!("huddle:// opens {command:?}")));
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
        return Err(Failed::check(format!(
            "the uninstaller left {}",
            app.display()
        )));
    }
    for key in [
        r"HKCU\Software\Classes\huddle",
        r"HKCU\Software\Microsoft\Windows\CurrentVersion\Uninstall\Huddle",
    ] {
        if registry(prefix, key)?.is_some() {
            return Err(Failed::check(format!("the uninstaller left {key}")));
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
        .map_err(Failed::io("wine reg"))?;
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

/// How long the benchmark's call lasts.
const BENCH_SECONDS: u64 = 40;

/// A 640×480 call between `huddle-peer.exe` under wine and the Linux
/// `huddle-peer`, through a Linux server, all dist builds: each one's CPU
/// (its own report, from /proc — wine programs are Linux processes), the
/// wineserver's, and the ratio.
fn windows_bench() -> Result<(), Failed> {
    crate::build_ui()?;
    let dir = build_windows("dist")?;
    ensure_system_packages(&[(WINE, "wine64")])?;
    build_wine_shim(&dir)?;
    step(
        "cargo build --profile dist (Linux server and peer)",
        cargo().args([
            "build",
            "--profile",
            "dist",
            "-p",
            "huddle-server",
            "-p",
            "huddle-engine",
            "--bins",
        ]),
    )?;
    let linux = target_dir().join("dist");
    let prefix = target_dir().join("wine");
    let scratch = target_dir().join("cross-bench");
    std::fs::create_dir_all(&scratch).map_err(Failed::io(scratch.display()))?;
    let port = 18_000 + std::process::id() % 1000;
    let mut server = crate::spawn_server(&linux.join("huddle-server"), port)?;
    let result = bench_call(&dir, &linux, &prefix, &scratch, port);
    let _ = server.kill();
    let _ = server.wait();
    let _ = Command::new(WINESERVER)
        .arg("-k")
        .env("WINEPREFIX", &prefix)
        .status();
    result
}

fn bench_call(
    dir: &Path,
    linux: &Path,
    prefix: &Path,
    scratch: &Path,
    port: u32,
) -> Result<(), Failed> {
    let url = format!("ws://127.0.0.1:{port}/ws");
    let peer_args = |name: &str, report: String| -> Vec<String> {
        [
            "--server",
            &url,
            "--room",
            "cross-bench",
            "--name",
            name,
            "--size",
            "640x480",
            "--content",
            "busy",
            "--udp",
            "[::]:0",
            "--duration",
            &format!("{BENCH_SECONDS}s"),
            "--report",
            &report,
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let linux_report = scratch.join("linux.json");
    let windows_report = scratch.join("windows.json");
    // A wineserver that stays up (`-p`) from before the call, so that its
    // CPU is read from the start.
    step(
        "wineserver -p",
        Command::new(WINESERVER).arg("-p").env("WINEPREFIX", prefix),
    )?;
    let wineserver_start = wineserver_cpu_s();
    let mut windows = wine(prefix)
        .arg(dir.join("huddle-peer.exe"))
        .args(peer_args(
            "Windows",
            format!("Z:{}", windows_report.display()).replace('/', "\\"),
        ))
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(Failed::io("wine"))?;
    let mut linux_peer = Command::new(linux.join("huddle-peer"))
        .args(peer_args("Linux", linux_report.display().to_string()))
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(Failed::io("huddle-peer"))?;
    // Both measured from outside, the same way: the peers' own figure is
    // wrong under wine (see `own_cpu` in huddle-peer). A wine program is a
    // Linux process, the one spawned here. The last reading before each
    // exits is its total.
    let (mut on_wine, mut on_linux) = (0.0, 0.0);
    let (mut wine_status, mut linux_status) = (None, None);
    while wine_status.is_none() || linux_status.is_none() {
        if wine_status.is_none() {
            on_wine = cpu_s(windows.id()).unwrap_or(on_wine);
            wine_status = windows.try_wait().map_err(Failed::io("wine"))?;
        }
        if linux_status.is_none() {
            on_linux = cpu_s(linux_peer.id()).unwrap_or(on_linux);
            linux_status = linux_peer.try_wait().map_err(Failed::io("huddle-peer"))?;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let wineserver_s = wineserver_cpu_s().zip(wineserver_start).map(|(a, b)| a - b);
    if !wine_status.is_some_and(|s| s.success()) || !linux_status.is_some_and(|s| s.success()) {
        return Err(Failed::check(
            "a peer of the benchmark call received nothing",
        ));
    }
    let percent = |seconds: f64| 100.0 * seconds / BENCH_SECONDS as f64;
    let (on_wine, on_linux) = (percent(on_wine), percent(on_linux));
    println!("640×480 busy pattern, 30 fps, both directions, {BENCH_SECONDS} s, dist builds:");
    println!("  huddle-peer.exe under wine: {on_wine:.1} % of one core");
    if let Some(s) = wineserver_s {
        println!(
            "  wineserver (wine's own cost, beside it): {:.1} % of one core",
            percent(s)
        );
    }
    println!("  huddle-peer on Linux: {on_linux:.1} % of one core");
    println!("  ratio, wine / Linux: {:.2}", on_wine / on_linux);
    if let Some(s) = wineserver_s {
        println!(
            "  ratio with the wineserver: {:.2}",
            (on_wine + percent(s)) / on_linux
        );
    }
    Ok(())
}

/// CPU seconds process `pid` has used (user + system), from /proc.
fn cpu_s(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat_cpu_s(&stat)
}

/// User + system seconds from a /proc/PID/stat line: fields 14 and 15 (11
/// and 12 after the command's closing parenthesis), in ticks of 1/100 s.
fn stat_cpu_s(stat: &str) -> Option<f64> {
    let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// CPU seconds the running wineservers (of every prefix) have used, if any
/// runs.
fn wineserver_cpu_s() -> Option<f64> {
    let mut total = None;
    for entry in std::fs::read_dir("/proc").ok()?.filter_map(Result::ok) {
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        if stat.contains("(wineserver") {
            if let Some(s) = stat_cpu_s(&stat) {
                *total.get_or_insert(0.0) += s;
            }
        }
    }
    total
}

/// The macOS target checked here (arm64: every Mac sold since 2020; the
/// `cfg(target_os = "macos")` code is the same for x86_64).
const MACOS: &str = "aarch64-apple-darwin";

/// PyPI packages that compile C for macOS without Apple's SDK.
const ZIG_PACKAGES: &[&str] = &["ziglang==0.17.1", "cargo-zigbuild==0.24.1"];

/// Clippy, warnings as errors, for Windows and macOS: code under
/// `cfg(windows)` or `cfg(target_os = "macos")` that stops compiling, or
/// warns, fails CI.
pub fn platform_lints() -> Result<(), Failed> {
    ensure_system_packages(BUILD_PACKAGES)?;
    step(
        "rustup target add (Windows, macOS)",
        Command::new("rustup").args(["target", "add", WINDOWS, MACOS]),
    )?;
    let packages = ["huddle-protocol", "huddle-server", "huddle-engine"];
    let mut windows = cargo();
    windows.args([
        "clippy",
        "--target",
        WINDOWS,
        "--all-targets",
        "-p",
        "huddle",
    ]);
    for p in packages {
        windows.args(["-p", p]);
    }
    step(
        &format!("cargo clippy --target {WINDOWS}"),
        windows.args(["--", "-D", "warnings"]),
    )?;
    let zig = zig_tools()?;
    let mut macos = Command::new(zig.join("cargo-zigbuild"));
    macos
        .current_dir(root())
        .env("PATH", path_with(&zig))
        .args(["clippy", "--target", MACOS, "--all-targets"]);
    for p in packages {
        macos.args(["-p", p]);
    }
    step(
        &format!("cargo zigbuild clippy --target {MACOS}"),
        macos.args(["--", "-D", "warnings"]),
    )
}

/// A Python environment beside the build cache with zig and cargo-zigbuild
/// (made once); its `bin` directory.
pub fn zig_tools() -> Result<PathBuf, Failed> {
    let venv = target_dir().join("tools/zig");
    let bin = venv.join("bin");
    if bin.join("cargo-zigbuild").is_file() {
        return Ok(bin);
    }
    step(
        "python3 -m venv (zig for macOS checks)",
        Command::new("python3").arg("-m").arg("venv").arg(&venv),
    )?;
    step(
        "pip install ziglang cargo-zigbuild",
        Command::new(bin.join("pip"))
            .args(["install", "--quiet"])
            .args(ZIG_PACKAGES),
    )?;
    Ok(bin)
}

/// `PATH` with `dir` first (cargo-zigbuild finds zig as `python3 -m
/// ziglang`, so the environment's python must come first).
pub fn path_with(dir: &Path) -> std::ffi::OsString {
    let mut paths = vec![dir.to_owned()];
    if let Some(path) = std::env::var_os("PATH") {
        paths.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(paths).unwrap_or_default()
}
