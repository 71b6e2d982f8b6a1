//! `cargo xtask test [part…] [--no-install]` and `cargo xtask attack`: the
//! parts of the test loop ([`Part`]), the packages they install, and the
//! steps of each — the format check and clippy, the Rust tests, the UI's
//! format check, lint and unit tests, the browser and desktop end-to-end
//! runs, the Windows runs under wine (`cross.rs`) and the network lab's
//! checks.

use std::path::PathBuf;
use std::process::Command;

use crate::{
    build_debug, build_release, build_ui, cargo, cross, ensure_system_packages, netlab,
    print_times, root, step, target_dir, tools_dir, Failed, PRODUCT,
};

/// Debian packages the tests need, by the program (or, starting with `/`,
/// the file) that shows they are there.
pub const TEST_PACKAGES: &[(&str, &str)] = &[
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
    // Screen sharing in a Wayland session reads the portal's PipeWire
    // stream; the test reads one from a PipeWire daemon of its own (with
    // WirePlumber linking) that a GStreamer test source feeds.
    (
        "/usr/include/pipewire-0.3/pipewire/pipewire.h",
        "libpipewire-0.3-dev",
    ),
    ("pipewire", "pipewire-bin"),
    ("wireplumber", "wireplumber"),
    ("gst-launch-1.0", "gstreamer1.0-tools"),
    (
        "/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstpipewire.so",
        "gstreamer1.0-pipewire",
    ),
    (
        "/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstvideotestsrc.so",
        "gstreamer1.0-plugins-base",
    ),
    ("pulseaudio", "pulseaudio"),
    // Suspends a device mid-test.
    ("pactl", "pulseaudio-utils"),
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

/// Debian packages the quick part needs (the servers the server's tests
/// start, and Node.js for the UI); present after one full run, so it
/// installs nothing then.
const QUICK_PACKAGES: &[(&str, &str)] = &[
    ("turnserver", "coturn"),
    ("redis-server", "redis-server"),
    ("node", "nodejs"),
    ("npm", "npm"),
];

/// The parts of `cargo xtask test`; without one, all of them in this
/// order (what CI runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// fmt, clippy, the UI's format check, lint and unit tests, the
    /// protocol's and the server's tests: a few minutes warm, the loop while
    /// changing code.
    Quick,
    /// fmt, clippy, every Rust test of the workspace, the server's suite
    /// again over a Redis cluster.
    Rust,
    /// The UI's build, format check, lint and unit tests.
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
                    Failed::Usage(format!(
                        "no test part {arg:?} (parts: {})",
                        names.join(", ")
                    ))
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

/// `cargo xtask test [part…] [--no-install]`, then each step's time and
/// the total, whether it passed or not.
pub fn test(args: &[String]) -> Result<(), Failed> {
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
            "UI format and lint (prettier, eslint)",
            Command::new("npm").args(["run", "lint"]).current_dir(&ui),
        )?;
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
            "cargo test -p huddle-protocol -p huddle-server -p xtask",
            cargo().args([
                "test",
                "-p",
                "huddle-protocol",
                "-p",
                "huddle-server",
                "-p",
                "xtask",
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
/// back within 3 s, native↔native (it never came back until session 17),
/// and within 8 s native↔Chromium when it is the browser's (measured
/// 2.3–3.9 s with a restart after 1.5 s of silence on the native side,
/// which was taken back; 7.3 s or never before session 24), and within 8 s
/// Chromium↔Chromium — the browser engine's own recovery (measured 2.4–4.4 s
/// in sessions 24–25; never before session 24).
///
/// The peers are release builds, as users run them: three debug peers on
/// two cores are CPU-bound, and the encoder then rightly steps down for
/// the CPU (`pipeline/cpu.rs`), which a network check must not measure
/// (a debug mesh run kept 0.47 of A↔B's rate at 320×180 in stop 27's CI).
fn netlab_check(debug_bin: &std::path::Path) -> Result<(), Failed> {
    ensure_system_packages(&[("ip", "iproute2"), ("tc", "iproute2")])?;
    let scratch = target_dir().join("netlab");
    std::fs::create_dir_all(&scratch).map_err(Failed::io(scratch.display()))?;
    build_debug(&["--example", "pattern_y4m"])?;
    let camera = netlab::camera(debug_bin, &scratch)?;
    let tools = netlab::Tools {
        bin: build_release(&["huddle-server", "huddle-engine"], &["--bins"])?,
        ui: root().join("src-ui"),
        camera: Some(camera),
    };
    let native = (netlab::Client::Native, netlab::Client::Native);
    let chromium = (netlab::Client::Native, netlab::Client::Chromium);
    let browsers = (netlab::Client::Chromium, netlab::Client::Chromium);
    let checks = [
        ("dip", native, netlab::FREEZE_LIMIT_MS),
        ("dip", chromium, netlab::FREEZE_LIMIT_MS),
        ("renumber", native, netlab::RENUMBER_FREEZE_LIMIT_MS),
        (
            "renumber-b",
            chromium,
            netlab::BROWSER_RENUMBER_FREEZE_LIMIT_MS,
        ),
        (
            "renumber",
            browsers,
            netlab::BROWSER_RENUMBER_FREEZE_LIMIT_MS,
        ),
        ("mesh-600", native, netlab::FREEZE_LIMIT_MS),
        ("ipv6-only", chromium, netlab::FREEZE_LIMIT_MS),
        ("rfc8867-variable", native, netlab::FREEZE_LIMIT_MS),
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
            let first_fps = d.phases.first().map_or(0.0, |p| p.fps);
            if first_fps < netlab::FLOWING_FPS {
                return Err(Failed::check(format!(
                    "{}: {first_fps:.1} fps in the first phase ({name})",
                    d.label
                )));
            }
            // A native sender is ours; so is a browser's when both sides
            // run the browser engine (with a native peer, Chromium's own
            // sending is not judged).
            let ours = d.label.starts_with("native→") || pair == browsers;
            if ours && d.freeze_longest_ms > freeze_limit_ms {
                return Err(Failed::check(format!(
                    "{}: video froze for {} ms ({name})",
                    d.label, d.freeze_longest_ms
                )));
            }
            match d.recovery_s {
                Some(s) if s <= netlab::RECOVERY_LIMIT_S => {}
                Some(s) => {
                    return Err(Failed::check(format!(
                        "{}: video took {s} s to come back to full rate ({name})",
                        d.label
                    )))
                }
                None => {
                    return Err(Failed::check(format!(
                        "{}: video never came back to full rate ({name})",
                        d.label
                    )))
                }
            }
        }
        // A narrow link is used (RFC 8867's utilization), as far as it
        // was measured (`link_kbps`).
        for d in directions.iter().filter(|d| d.label.starts_with("native→")) {
            for p in &d.phases {
                let (Some(capacity), Some(link)) = (p.capacity, p.link_kbps) else {
                    continue;
                };
                if capacity < netlab::NARROW_KBPS
                    && link < netlab::LINK_USE_FLOOR * f64::from(capacity)
                {
                    return Err(Failed::check(format!(
                        "{}: {link:.0} of {capacity} kbit/s used in {}–{} s ({name})",
                        d.label, p.from, p.to
                    )));
                }
            }
        }
        // A mesh: while C's link is weak, A and B keep their rate with
        // each other (A→B and B→A come first).
        if scenario.members > 2 {
            for d in directions.iter().take(2) {
                let rate = |i: usize| d.phases.get(i).map_or(0.0, |p| p.kbps);
                if rate(1) < netlab::MESH_KEEP_SHARE * rate(0) {
                    return Err(Failed::check(format!(
                        "{}: {:.0} kbit/s while C's link was weak, {:.0} before ({name})",
                        d.label,
                        rate(1),
                        rate(0)
                    )));
                }
            }
        }
    }
    Ok(())
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
pub fn attack() -> Result<(), Failed> {
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
        .map_err(Failed::io("cargo test"))?;
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
        return Err(Failed::check(
            "an attack on the server did not end as expected (see above)",
        ));
    }
    media
}

/// Runs a script of `src-ui/e2e/` that drives the desktop app, with the
/// binaries in `bin` and tauri-driver.
pub fn desktop_script(name: &str, script: &str, bin: &std::path::Path) -> Result<(), Failed> {
    let driver = ensure_tauri_driver()?;
    step(
        name,
        e2e_script(script, bin)
            .env("HUDDLE_APP_BIN", bin.join("huddle"))
            .env("TAURI_DRIVER", driver),
    )
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
            err.to_string()
                .contains("quick, rust, ui, e2e, desktop, cross, netlab"),
            "{err}"
        );
    }
}
