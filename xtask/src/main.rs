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

mod cross;
mod dist;
mod netlab;

/// Debian packages the tests need, by the program (or, starting with `/`,
/// the file) that shows they are there.
const TEST_PACKAGES: &[(&str, &str)] = &[
    // Building the native engine: OpenH264 is C++ built from source; Opus
    // is the system's libopus, found with pkg-config.
    ("g++", "g++"),
    ("pkg-config", "pkg-config"),
    ("/usr/include/opus/opus.h", "libopus-dev"),
    // Devices: ALSA for cpal; libclang for the V4L2 bindings nokhwa
    // generates; a PulseAudio with a null sink (and ALSA's route to it)
    // stands in for a sound card in the device tests.
    ("/usr/include/alsa/asoundlib.h", "libasound2-dev"),
    ("/usr/lib/llvm-14/lib/libclang.so", "libclang-dev"),
    ("pulseaudio", "pulseaudio"),
    (
        "/usr/lib/x86_64-linux-gnu/alsa-lib/libasound_module_pcm_pulse.so",
        "libasound2-plugins",
    ),
    ("turnserver", "coturn"),
    // The Redis backplane's cluster tests start their own Redis.
    ("redis-server", "redis-server"),
    ("python3", "python3"),
    ("node", "nodejs"),
    ("npm", "npm"),
    ("chromium", "chromium"),
    // The desktop app: WebKitGTK to build it, its WebDriver and a virtual
    // X server to drive it.
    (
        "/usr/include/webkitgtk-4.1/webkit2/webkit2.h",
        "libwebkit2gtk-4.1-dev",
    ),
    ("WebKitWebDriver", "webkit2gtk-driver"),
    ("Xvfb", "xvfb"),
    // A session bus, where a second launch of the app finds the first, and
    // a notification service on it (dunst; dbus-send asks what it showed).
    ("dbus-daemon", "dbus-daemon"),
    ("dbus-send", "dbus-bin"),
    ("dunst", "dunst"),
    // Moves the keyboard focus away from the app's window.
    ("xdotool", "xdotool"),
    // Recommended, not required, by WebKitGTK and Chromium, so absent with
    // `--no-install-recommends`: Mesa's software OpenGL (WebKit's EGL) and a
    // font for the pages to be drawn with.
    (
        "/usr/lib/x86_64-linux-gnu/dri/swrast_dri.so",
        "libgl1-mesa-dri",
    ),
    (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "fonts-dejavu-core",
    ),
    // The reactions and the raised hand are emoji: drawn as users' systems
    // draw them, not as empty boxes, in the screenshots.
    (
        "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",
        "fonts-noto-color-emoji",
    ),
];

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
        "/usr/include/webkitgtk-4.1/webkit2/webkit2.h",
        "libwebkit2gtk-4.1-dev",
    ),
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => run_app(),
        Some("serve") => serve(&args[1..]),
        Some("test") => test(&args[1..]),
        Some("attack") => attack(),
        Some("bench") => bench(&args[1..]),
        Some("bench-cluster") => bench_cluster(&args[1..]),
        Some("bench-media") => bench_media(),
        Some("bench-desktop") => bench_desktop(),
        Some("bindings") => bindings(),
        Some("netlab") => netlab_run(&args[1..]),
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

/// A failed step, described for the person running it.
type Failed = String;

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
    TIMES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push((name.to_owned(), started.elapsed()));
    let status = status.map_err(|e| format!("{name}: cannot start: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{name} failed ({status})"))
    }
}

/// Each step's name and how long it took, in the order they ran.
static TIMES: std::sync::Mutex<Vec<(String, std::time::Duration)>> =
    std::sync::Mutex::new(Vec::new());

/// The steps' times and the total (`total` includes what ran outside a
/// step: package checks, the network lab's scenarios).
fn print_times(total: std::time::Duration) {
    let times = TIMES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
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
        .map_err(|e| format!("{}: {e}", exe.display()))
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

/// tauri-driver (crates.io), installed once into [`tools_dir`].
fn ensure_tauri_driver() -> Result<PathBuf, Failed> {
    let bin = tools_dir().join("bin/tauri-driver");
    if bin.is_file() {
        return Ok(bin);
    }
    step(
        "cargo install tauri-driver",
        cargo()
            .args([
                "install",
                "tauri-driver",
                "--locked",
                "--version",
                "2.1.0",
                "--root",
            ])
            .arg(tools_dir()),
    )?;
    Ok(bin)
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

/// The parts of `cargo xtask test`; without one, all of them in this
/// order (what CI runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// fmt, clippy, the UI's unit tests, the protocol's and the server's
    /// tests: a few minutes warm, the loop while changing code.
    Quick,
    /// fmt, clippy, every Rust test of the workspace, the server's suite
    /// again over a Redis cluster.
    Rust,
    /// The UI's build and unit tests.
    Ui,
    /// The browser end-to-end run and the media attacks.
    E2e,
    /// The desktop app's end-to-end run.
    Desktop,
    /// Windows and macOS (`cross.rs`).
    Cross,
    /// The network lab's checks (as root).
    Netlab,
}

impl Part {
    const ALL: [Part; 7] = [
        Part::Quick,
        Part::Rust,
        Part::Ui,
        Part::E2e,
        Part::Desktop,
        Part::Cross,
        Part::Netlab,
    ];

    fn name(self) -> &'static str {
        match self {
            Part::Quick => "quick",
            Part::Rust => "rust",
            Part::Ui => "ui",
            Part::E2e => "e2e",
            Part::Desktop => "desktop",
            Part::Cross => "cross",
            Part::Netlab => "netlab",
        }
    }
}

/// What `cargo xtask test [part…] [--no-install]` is asked to run.
#[derive(Debug, PartialEq, Eq)]
struct TestPlan {
    parts: Vec<Part>,
    /// Install missing Debian packages first (the default).
    install: bool,
}

impl TestPlan {
    fn parse(args: &[String]) -> Result<TestPlan, Failed> {
        let mut parts = Vec::new();
        let mut install = true;
        for arg in args {
            if arg == "--no-install" {
                install = false;
                continue;
            }
            let part = Part::ALL
                .into_iter()
                .find(|p| p.name() == arg)
                .ok_or_else(|| {
                    let names: Vec<&str> = Part::ALL.iter().map(|p| p.name()).collect();
                    format!("no test part {arg:?} (parts: {})", names.join(", "))
                })?;
            parts.push(part);
        }
        if parts.is_empty() {
            // Everything: `quick` is within `rust` and `ui`.
            parts = Part::ALL
                .into_iter()
                .filter(|p| *p != Part::Quick)
                .collect();
        }
        Ok(TestPlan { parts, install })
    }

    fn has(&self, part: Part) -> bool {
        self.parts.contains(&part)
    }

    fn any(&self, parts: &[Part]) -> bool {
        parts.iter().any(|p| self.has(*p))
    }
}

/// Debian packages the quick part needs (the servers the server's tests
/// start, and Node.js for the UI); present after one full run, so it
/// installs nothing then.
const QUICK_PACKAGES: &[(&str, &str)] = &[
    ("turnserver", "coturn"),
    ("redis-server", "redis-server"),
    ("node", "nodejs"),
    ("npm", "npm"),
];

/// `cargo xtask test [part…] [--no-install]`, then each step's time and
/// the total, whether it passed or not.
fn test(args: &[String]) -> Result<(), Failed> {
    let plan = TestPlan::parse(args)?;
    let started = std::time::Instant::now();
    let result = run_tests(&plan);
    print_times(started.elapsed());
    result
}

fn run_tests(plan: &TestPlan) -> Result<(), Failed> {
    use Part::*;
    if plan.install {
        let only_quick = plan.parts.iter().all(|p| matches!(p, Quick | Ui));
        ensure_system_packages(if only_quick {
            QUICK_PACKAGES
        } else {
            TEST_PACKAGES
        })?;
    }
    if plan.any(&[Quick, Rust]) {
        step(
            "cargo fmt --check",
            cargo().args(["fmt", "--all", "--check"]),
        )?;
    }
    // The server serves the built UI and the desktop app embeds it: both
    // need it before they compile.
    build_ui()?;
    if plan.any(&[Quick, Rust]) {
        step(
            "cargo clippy",
            cargo().args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]),
        )?;
    }
    if plan.any(&[Quick, Ui]) {
        let ui = root().join("src-ui");
        step(
            "UI unit tests (vitest)",
            Command::new("npm").args(["test"]).current_dir(&ui),
        )?;
    }
    if plan.has(Rust) {
        step(
            "cargo test",
            cargo().args(["test", "--workspace", "--no-fail-fast"]),
        )?;
        // The protocol suite again, each test's clients spread over two
        // instances sharing a real Redis (see signaling-server/tests/common).
        step(
            "cargo test -p huddle-server (cluster of two over Redis)",
            cargo().env("HUDDLE_TEST_CLUSTER", "1").args([
                "test",
                "-p",
                "huddle-server",
                "--test",
                "rooms",
                "--test",
                "resume",
            ]),
        )?;
    } else if plan.has(Quick) {
        step(
            "cargo test -p huddle-protocol -p huddle-server",
            cargo().args([
                "test",
                "-p",
                "huddle-protocol",
                "-p",
                "huddle-server",
                "--no-fail-fast",
            ]),
        )?;
    }
    if !plan.any(&[E2e, Desktop, Cross, Netlab]) {
        return Ok(());
    }
    step(
        "cargo build -p huddle -p huddle-server -p huddle-engine",
        cargo().arg("build").args(PRODUCT),
    )?;
    let bin = target_dir().join("debug");
    if plan.has(E2e) {
        browser_script("end-to-end in headless Chromium", "e2e/run.mjs", &bin)?;
        media_attacks(&bin)?;
    }
    if plan.has(Desktop) {
        desktop_script(
            "end-to-end of the desktop app (Xvfb, tauri-driver)",
            "e2e/desktop.mjs",
            &bin,
        )?;
    }
    if plan.has(Cross) {
        cross::platform_lints()?;
        cross::windows_check(&bin)?;
    }
    if plan.has(Netlab) {
        netlab_check(&bin)?;
    }
    Ok(())
}

/// The network lab's regression checks, which need root for namespaces:
/// the 250 kbit/s dip must not freeze video for good, native↔native (it
/// did until session 8) and native↔Chromium (native → Chromium did until
/// session 10); a side whose address changes mid-call must have its media
/// back within 3 s, native↔native (it never came back until session 17).
///
/// The peers are release builds, as users run them: three debug peers on
/// two cores are CPU-bound, and the encoder then rightly steps down for
/// the CPU (`pipeline/cpu.rs`), which a network check must not measure
/// (a debug mesh run kept 0.47 of A↔B's rate at 320×180 in stop 27's CI).
fn netlab_check(debug_bin: &std::path::Path) -> Result<(), Failed> {
    ensure_system_packages(&[("ip", "iproute2"), ("tc", "iproute2")])?;
    let scratch = target_dir().join("netlab");
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    build_debug(&["--example", "pattern_y4m"])?;
    let camera = netlab_camera(debug_bin, &scratch)?;
    let tools = netlab::Tools {
        bin: build_release(&["huddle-server", "huddle-engine"], &["--bins"])?,
        ui: root().join("src-ui"),
        camera: Some(camera),
    };
    let native = (netlab::Client::Native, netlab::Client::Native);
    let chromium = (netlab::Client::Native, netlab::Client::Chromium);
    let checks = [
        ("dip", native, netlab::FREEZE_LIMIT_MS),
        ("dip", chromium, netlab::FREEZE_LIMIT_MS),
        ("renumber", native, netlab::RENUMBER_FREEZE_LIMIT_MS),
        ("mesh-600", native, netlab::FREEZE_LIMIT_MS),
        ("ipv6-only", chromium, netlab::FREEZE_LIMIT_MS),
    ];
    for (name, pair, freeze_limit_ms) in checks {
        let scenario = netlab::Scenario::load(&netlab::shipped().join(format!("{name}.lab")))?;
        eprintln!(
            "xtask: network lab, {name} ({} s), {} and {}",
            scenario.duration.as_secs(),
            pair.0.name(),
            pair.1.name()
        );
        let directions = netlab::run_scenario(&scenario, pair, &tools, &scratch)?;
        netlab::print_table(&scenario, &directions);
        for d in &directions {
            // A call that never started has no freezes either.
            let first_fps = d.phases.first().map_or(0.0, |p| p.3);
            if first_fps < netlab::FLOWING_FPS {
                return Err(format!(
                    "{}: {first_fps:.1} fps in the first phase ({name})",
                    d.label
                ));
            }
            if d.label.starts_with("native→") && d.freeze_longest_ms > freeze_limit_ms {
                return Err(format!(
                    "{}: video froze for {} ms ({name})",
                    d.label, d.freeze_longest_ms
                ));
            }
            match d.recovery_s {
                Some(s) if s <= netlab::RECOVERY_LIMIT_S => {}
                Some(s) => {
                    return Err(format!(
                        "{}: video took {s} s to come back to full rate ({name})",
                        d.label
                    ))
                }
                None => {
                    return Err(format!(
                        "{}: video never came back to full rate ({name})",
                        d.label
                    ))
                }
            }
        }
        // A mesh: while C's link is weak, A and B keep their rate with
        // each other (A→B and B→A come first).
        if scenario.members > 2 {
            for d in directions.iter().take(2) {
                let rate = |i: usize| d.phases.get(i).map_or(0.0, |p| p.4);
                if rate(1) < netlab::MESH_KEEP_SHARE * rate(0) {
                    return Err(format!(
                        "{}: {:.0} kbit/s while C's link was weak, {:.0} before ({name})",
                        d.label,
                        rate(1),
                        rate(0)
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Chromium's fake camera in the lab: the busy pattern at the native
/// peer's size (3 s, looped), written once into `scratch`.
fn netlab_camera(bin: &std::path::Path, scratch: &std::path::Path) -> Result<PathBuf, Failed> {
    let camera = scratch.join("busy-640x360.y4m");
    write_y4m(bin, &camera, "640x360")?;
    Ok(camera)
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

/// The media attacks: a hostile room member's offers to a browser member
/// and a `huddle-peer` in a call (`src-ui/e2e/attack.mjs`).
fn media_attacks(bin: &std::path::Path) -> Result<(), Failed> {
    browser_script(
        "attacks on call media in headless Chromium",
        "e2e/attack.mjs",
        bin,
    )
}

/// `node <script>` in `src-ui/` with the server and `huddle-peer` of `bin`.
fn e2e_script(script: &str, bin: &std::path::Path) -> Command {
    let mut cmd = Command::new("node");
    cmd.arg(script)
        .env("HUDDLE_SERVER_BIN", bin.join("huddle-server"))
        .env("HUDDLE_PEER_BIN", bin.join("huddle-peer"))
        .current_dir(root().join("src-ui"));
    cmd
}

/// Runs a script of `src-ui/e2e/` that drives headless Chromium against the
/// server and `huddle-peer` in `bin`.
fn browser_script(name: &str, script: &str, bin: &std::path::Path) -> Result<(), Failed> {
    step(name, &mut e2e_script(script, bin))
}

/// `cargo xtask attack`: every attack test, and one table of what each showed.
fn attack() -> Result<(), Failed> {
    ensure_system_packages(TEST_PACKAGES)?;
    build_ui()?;
    eprintln!("xtask: the server's attack tests (real sockets)");
    let output = cargo()
        .args([
            "test",
            "-p",
            "huddle-server",
            "--test",
            "attacks",
            "--",
            "--nocapture",
            "--test-threads",
            "4",
        ])
        .output()
        .map_err(|e| format!("cargo test: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let rows: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("attack: "))
        .collect();
    build_debug(&[])?;
    let media = media_attacks(&target_dir().join("debug"));
    println!("\nattack | expected | observed");
    for row in &rows {
        println!("{row}");
    }
    if !output.status.success() {
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
        return Err("an attack on the server did not end as expected (see above)".into());
    }
    media
}

/// Runs a script of `src-ui/e2e/` that drives the desktop app, with the
/// binaries in `bin` and tauri-driver.
fn desktop_script(name: &str, script: &str, bin: &std::path::Path) -> Result<(), Failed> {
    let driver = ensure_tauri_driver()?;
    step(
        name,
        e2e_script(script, bin)
            .env("HUDDLE_APP_BIN", bin.join("huddle"))
            .env("TAURI_DRIVER", driver),
    )
}

fn bench_desktop() -> Result<(), Failed> {
    ensure_system_packages(TEST_PACKAGES)?;
    build_ui()?;
    let target = build_release(&["huddle", "huddle-server", "huddle-engine"], &["--bins"])?;
    desktop_script("desktop app benchmark", "e2e/bench-desktop.mjs", &target)
}

/// The network lab: each scenario of `bench/netlab` (or those named) run
/// through a real bottleneck between two native peers, a native peer and
/// Chromium, and two Chromiums (only the first with `--native`), debug
/// builds unless `--release`; see `netlab/mod.rs`.
fn netlab_run(args: &[String]) -> Result<(), Failed> {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| format!("id: {e}"))?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Err("the network lab needs root (network namespaces and tc)".into());
    }
    let native_only = args.iter().any(|a| a == "--native");
    let names: Vec<&String> = args
        .iter()
        .enumerate()
        .filter(|(i, a)| !a.starts_with("--") && (*i == 0 || args[i - 1] != "--pair"))
        .map(|(_, a)| a)
        .collect();
    ensure_system_packages(&[("ip", "iproute2"), ("tc", "iproute2")])?;
    if !native_only {
        ensure_system_packages(TEST_PACKAGES)?;
    }
    // The server embeds the UI, which Chromium's side loads from it.
    build_ui()?;
    build_debug(&["--example", "pattern_y4m"])?;
    let dir = netlab::shipped();
    let paths: Vec<PathBuf> = if names.is_empty() {
        let mut all: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "lab"))
            .collect();
        all.sort();
        all
    } else {
        names
            .iter()
            .map(|n| {
                if n.ends_with(".lab") {
                    PathBuf::from(n)
                } else {
                    dir.join(format!("{n}.lab"))
                }
            })
            .collect()
    };
    // `--release`: optimized peers, for figures that measure the media
    // rather than a debug build's CPU (three debug peers fill two cores).
    let bin = if args.iter().any(|a| a == "--release") {
        build_release(&["huddle-server", "huddle-engine"], &["--bins"])?
    } else {
        target_dir().join("debug")
    };
    let scratch = target_dir().join("netlab");
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let camera = netlab_camera(&target_dir().join("debug"), &scratch)?;
    let tools = netlab::Tools {
        bin,
        ui: root().join("src-ui"),
        camera: Some(camera),
    };
    // `--pair native-Chromium`: that pair only.
    let chosen = args
        .iter()
        .position(|a| a == "--pair")
        .and_then(|i| args.get(i + 1));
    let pairs: Vec<(netlab::Client, netlab::Client)> = netlab::PAIRS
        .iter()
        .copied()
        .filter(|p| match chosen {
            Some(name) => name.eq_ignore_ascii_case(&format!("{}-{}", p.0.name(), p.1.name())),
            None => !native_only || *p == netlab::PAIRS[0],
        })
        .collect();
    if pairs.is_empty() {
        return Err("--pair: one of native-native, native-Chromium, Chromium-Chromium".into());
    }
    for path in paths {
        let scenario = netlab::Scenario::load(&path)?;
        let mut directions = Vec::new();
        for &pair in &pairs {
            eprintln!(
                "netlab: {}, {} and {}",
                scenario.name,
                pair.0.name(),
                pair.1.name()
            );
            directions.extend(netlab::run_scenario(&scenario, pair, &tools, &scratch)?);
        }
        netlab::print_table(&scenario, &directions);
    }
    Ok(())
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

fn bench(flags: &[String]) -> Result<(), Failed> {
    if !has_program("node") || !has_program("npm") {
        return Err("the benchmark runs PeerJS's server: install Node.js and npm first".into());
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

fn bench_cluster(flags: &[String]) -> Result<(), Failed> {
    ensure_system_packages(&[("redis-server", "redis-server")])?;
    let target = build_release(&["huddle-server", "huddle-bench"], &[])?;
    step(
        "huddle-load --cluster",
        huddle_load(&target).arg("--cluster").args(flags),
    )
}

fn bench_media() -> Result<(), Failed> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(args: &[&str]) -> Result<TestPlan, Failed> {
        TestPlan::parse(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn no_part_is_every_part_but_quick_in_order() {
        let all = plan(&[]).expect("parses");
        assert!(all.install);
        assert_eq!(
            all.parts,
            [
                Part::Rust,
                Part::Ui,
                Part::E2e,
                Part::Desktop,
                Part::Cross,
                Part::Netlab
            ]
        );
    }

    #[test]
    fn parts_and_no_install_are_read_and_strangers_refused() {
        let quick = plan(&["quick", "--no-install"]).expect("parses");
        assert_eq!(quick.parts, [Part::Quick]);
        assert!(!quick.install);
        assert!(quick.any(&[Part::Quick, Part::Rust]));
        assert!(!quick.has(Part::E2e));
        let err = plan(&["fast"]).expect_err("no such part");
        assert!(
            err.contains("quick, rust, ui, e2e, desktop, cross, netlab"),
            "{err}"
        );
    }
}
