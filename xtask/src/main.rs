//! `cargo xtask <task>`: the project's two commands and their helpers.
//!
//! - `run`: builds the UI and starts the desktop app (release build).
//! - `serve [server flags…]`: builds the UI and runs `huddle-server` (which
//!   serves it to browsers) on port 8443.
//! - `test [part…] [--no-install]`: installs what the tests need (saying
//!   what), then runs the format check, clippy, every Rust test of the
//!   workspace, the UI's unit tests, the end-to-end run in headless
//!   Chromium and the desktop app's end-to-end run under Xvfb
//!   (tauri-driver + WebKitWebDriver), the Windows executables under wine
//!   (`cross.rs`) and the network lab's checks — or only the parts named
//!   ([`Part`]) — and prints each step's time and the total.
//! - `attack`: the attack suite alone — the server's attacks over real
//!   sockets (`signaling-server/tests/attacks.rs`) and the media attacks in
//!   headless Chromium (`src-ui/e2e/attack.mjs`) — printed as one table:
//!   attack, expected behaviour, observed.
//! - `bench`: the load benchmark, `huddle-server` next to PeerJS's server
//!   (installs the npm package `peer` into `bench/peerjs/` first).
//! - `bench-cluster`: what the Redis backplane costs — relay latency and
//!   CPU per signal on one instance, on one with Redis and on two sharing a
//!   Redis (pairs split across them), and Redis's own CPU.
//! - `bench-media`: the codec benchmark, then a 1:1 720p call between
//!   headless Chromium and a native `huddle-peer` (CPU of each, latency,
//!   time to first picture), release builds.
//! - `bench-desktop`: the desktop app's benchmark (start-up, idle memory,
//!   720p30 into the window, a 4-way call), release builds.
//! - `cross windows | test | bench`: Windows builds made here with
//!   mingw-w64, the installer, and the wine runs (`cross.rs`).
//! - `dist`: `huddle-server` for operators — Linux x86-64 and arm64,
//!   Windows — with the UI inside, as versioned archives and a checksum
//!   file (`dist.rs`).
//! - `bindings`: regenerates the TypeScript types generated from Rust
//!   (`src-ui/src/protocol/`, `src-ui/src/desktop/bindings/`).

use std::path::PathBuf;
use std::process::{Command, ExitCode};

mod bench;
mod cross;
mod dist;
mod failed;
mod netlab;
mod test;

use failed::Failed;

/// Debian packages building the UI needs.
const UI_PACKAGES: &[(&str, &str)] = &[("node", "nodejs"), ("npm", "npm")];

/// Debian packages building and running the desktop app needs.
const APP_PACKAGES: &[(&str, &str)] = &[
    ("g++", "g++"),
    ("pkg-config", "pkg-config"),
    ("/usr/include/opus/opus.h", "libopus-dev"),
    ("/usr/include/alsa/asoundlib.h", "libasound2-dev"),
    ("/usr/lib/llvm-14/lib/libclang.so", "libclang-dev"),
    (
        "/usr/include/pipewire-0.3/pipewire/pipewire.h",
        "libpipewire-0.3-dev",
    ),
    (
        "/usr/include/webkitgtk-4.1/webkit2/webkit2.h",
        "libwebkit2gtk-4.1-dev",
    ),
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => run_app(),
        Some("serve") => serve(&args[1..]),
        Some("test") => test::test(&args[1..]),
        Some("attack") => test::attack(),
        Some("bench") => bench::bench(&args[1..]),
        Some("bench-cluster") => bench::cluster(&args[1..]),
        Some("bench-media") => bench::media(),
        Some("bench-desktop") => bench::desktop(),
        Some("bindings") => bindings(),
        Some("netlab") => netlab::run(&args[1..]),
        Some("cross") => cross::main(&args[1..]),
        Some("dist") => dist::main(),
        // The lab's impairment forwarder, run by the lab in its router.
        Some("netlab-impair") => netlab::impair::main(),
        _ => {
            eprintln!("usage: cargo xtask run | serve [huddle-server flags] | test [quick|rust|ui|e2e|desktop|cross|netlab…] [--no-install] | attack | netlab [--native | --pair A-B] [--release] [scenario…] | bench [huddle-load flags] | bench-cluster [huddle-load flags] | bench-media | bench-desktop | bindings | cross windows|test|bench | dist");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The packages that make the product's binaries — the desktop app, the
/// server, the engine with `huddle-peer` — as cargo arguments.
const PRODUCT: [&str; 6] = ["-p", "huddle", "-p", "huddle-server", "-p", "huddle-engine"];

/// The checkout this xtask runs for. Read at run time (`cargo run` sets it):
/// with a build cache shared between checkouts, a compile-time path could name
/// another clone.
fn root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .join("..")
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

fn step(name: &str, cmd: &mut Command) -> Result<(), Failed> {
    eprintln!("xtask: {name}");
    let started = std::time::Instant::now();
    let status = cmd.status();
    lock(&TIMES).push((name.to_owned(), started.elapsed()));
    let status = status.map_err(Failed::io(format!("{name}: cannot start")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Failed::Step {
            name: name.to_owned(),
            status,
        })
    }
}

/// `mutex`'s guard, also after a thread panicked holding it (what it
/// guards here is a record, still worth reading).
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Each step's name and how long it took, in the order they ran.
static TIMES: std::sync::Mutex<Vec<(String, std::time::Duration)>> =
    std::sync::Mutex::new(Vec::new());

/// The steps' times and the total (`total` includes what ran outside a
/// step: package checks, the network lab's scenarios).
fn print_times(total: std::time::Duration) {
    let times = lock(&TIMES);
    eprintln!("xtask: times");
    for (name, took) in times.iter() {
        eprintln!("xtask: {:>8.1} s  {name}", took.as_secs_f64());
    }
    eprintln!("xtask: {:>8.1} s  total", total.as_secs_f64());
}

/// Starts the `huddle-server` at `exe` on 127.0.0.1:`port`, quiet but for
/// warnings.
fn spawn_server(exe: &std::path::Path, port: u32) -> Result<std::process::Child, Failed> {
    Command::new(exe)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--log-level",
            "warn",
        ])
        .spawn()
        .map_err(Failed::io(exe.display()))
}

fn has_program(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
        .unwrap_or(false)
}

/// Installs missing Debian packages with apt, as root or through sudo.
fn ensure_system_packages(packages: &[(&str, &str)]) -> Result<(), Failed> {
    let missing: Vec<&str> = packages
        .iter()
        .filter(|(what, _)| {
            if what.starts_with('/') {
                !std::path::Path::new(what).exists()
            } else {
                !has_program(what)
            }
        })
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!(
        "xtask: installing Debian packages the tests need: {}",
        missing.join(" ")
    );
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false);
    let apt = |args: &[&str]| {
        let mut cmd = if is_root {
            Command::new("apt-get")
        } else {
            Command::new("sudo")
        };
        if !is_root {
            cmd.arg("apt-get");
        }
        cmd.env("DEBIAN_FRONTEND", "noninteractive").args(args);
        cmd
    };
    step("apt-get update", &mut apt(&["update", "-q"]))?;
    let mut install = apt(&["install", "-y", "-q", "--no-install-recommends"]);
    install.args(&missing);
    step("apt-get install", &mut install)
}

/// Installs the UI's npm packages when needed and builds it into `src-ui/dist`
/// (which `huddle-server` embeds).
fn build_ui() -> Result<(), Failed> {
    ensure_system_packages(UI_PACKAGES)?;
    let ui = root().join("src-ui");
    let installed = ui.join("node_modules/.package-lock.json");
    let stale = match (
        std::fs::metadata(&installed).and_then(|m| m.modified()),
        std::fs::metadata(ui.join("package-lock.json")).and_then(|m| m.modified()),
    ) {
        (Ok(installed), Ok(lock)) => lock > installed,
        _ => true,
    };
    if stale {
        eprintln!("xtask: installing the UI's npm packages (src-ui/package-lock.json)");
        // `npm install`, not `npm ci`: npm 11 writes lock files without the
        // other platforms' optional packages (Rollup's native builds), and
        // `npm ci` then refuses them as out of sync. `install` still takes
        // every version the lock file pins.
        step(
            "npm install",
            Command::new("npm")
                .args(["install", "--no-audit", "--no-fund"])
                .current_dir(&ui),
        )?;
    }
    step(
        "build the UI",
        Command::new("npm").args(["run", "build"]).current_dir(&ui),
    )
}

/// Builds `packages` (and `extra` targets) in release mode; the directory
/// their binaries are in.
fn build_release(packages: &[&str], extra: &[&str]) -> Result<PathBuf, Failed> {
    let mut cmd = cargo();
    cmd.args(["build", "--release"]);
    for package in packages {
        cmd.args(["-p", package]);
    }
    cmd.args(extra);
    step("cargo build --release", &mut cmd)?;
    Ok(target_dir().join("release"))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// Builds `huddle-server` and `huddle-engine`'s binaries (and `extra`
/// targets) in debug mode, as the attack and network-lab runs use them.
fn build_debug(extra: &[&str]) -> Result<(), Failed> {
    let mut cmd = cargo();
    cmd.args([
        "build",
        "-p",
        "huddle-server",
        "-p",
        "huddle-engine",
        "--bins",
    ]);
    cmd.args(extra);
    step("cargo build -p huddle-server -p huddle-engine", &mut cmd)
}

/// The desktop app, with the UI it embeds built first.
fn run_app() -> Result<(), Failed> {
    ensure_system_packages(APP_PACKAGES)?;
    build_ui()?;
    step(
        "huddle (the desktop app)",
        cargo().args(["run", "--release", "-p", "huddle"]),
    )
}

/// Where `cargo install` puts the test tools (tauri-driver): beside the
/// build cache, so a fresh clone reuses them.
fn tools_dir() -> PathBuf {
    target_dir().join("tools")
}

fn serve(flags: &[String]) -> Result<(), Failed> {
    build_ui()?;
    let mut cmd = cargo();
    cmd.args(["run", "--release", "-p", "huddle-server", "--"]);
    if !flags.iter().any(|f| f.starts_with("--listen")) {
        cmd.args(["--listen", "0.0.0.0:8443"]);
    }
    cmd.args(flags);
    step("huddle-server", &mut cmd)
}

/// Writes 3 s (90 frames) of the busy test pattern at `size` (`WxH`) as a
/// Y4M file, for Chromium's fake camera (which loops it).
fn write_y4m(bin: &std::path::Path, path: &std::path::Path, size: &str) -> Result<(), Failed> {
    step(
        "write the Y4M camera file",
        Command::new(bin.join("examples/pattern_y4m"))
            .arg(path)
            .args([size, "90"]),
    )
}

fn bindings() -> Result<(), Failed> {
    for package in ["huddle-protocol", "huddle"] {
        let mut cmd = cargo();
        cmd.env("HUDDLE_BLESS", "1")
            .args(["test", "-p", package, "--test", "bindings"]);
        step(
            &format!("regenerate {package}'s TypeScript bindings"),
            &mut cmd,
        )?;
    }
    Ok(())
}
