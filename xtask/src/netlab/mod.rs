//! `cargo xtask netlab [SCENARIO…]`: calls over real network paths on this
//! machine. Each side runs in its own network namespace, joined through a
//! router namespace (which also runs the signaling server) by veth pairs;
//! the router's egress toward each side is a `tbf` queue — a real
//! bottleneck with a queue sized in milliseconds (RFC 8867 uses 300 ms) —
//! whose rate a scenario changes during the run. Two `huddle-peer`s call
//! each other through it and report what they received; the lab prints,
//! per direction and per phase, frames per second, bitrate against the
//! capacity, freezes, and how long video took to come back after the
//! capacity did.
//!
//! ```text
//!   ns A (10.91.1.2) ── veth ── ns R (router, server) ── veth ── ns B (10.91.2.2)
//!                          tbf toward A            tbf toward B
//! ```
//!
//! Delay, jitter, loss and outages are applied by a user-space forwarder
//! in the router (`impair.rs`; this kernel has no `netem`). A scenario
//! (`scenario.rs`) is a text file in `bench/netlab/`.
//!
//! Only the lab's own namespaces are touched (named `hnl<pid>-*`, removed
//! at the end). Needs root, `ip` and `tc` (iproute2).

pub mod impair;
mod lab;
mod meter;
mod report;
mod scenario;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lab::{Family, Lab};
use meter::Meter;
pub use report::Direction;
use report::{read_report, summarize, time_of_day};
pub use scenario::Scenario;
use scenario::{Event, Way};

use crate::test::TEST_PACKAGES;
use crate::{
    build_debug, build_release, build_ui, ensure_system_packages, root, target_dir, write_y4m,
    Failed,
};

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The program the forwarder runs: a copy of this very xtask. Not its
/// path — `cargo xtask test` builds the workspace while it runs, which may
/// replace the xtask binary on disk (other features), and the path then
/// names a deleted file (a CI run in session 25: "exec of …/xtask (deleted)
/// failed"). `/proc/self/exe` still reads the running one.
fn forwarder_program() -> Result<PathBuf, Failed> {
    let copy = target_dir().join("netlab").join("netlab-impair");
    if let Some(dir) = copy.parent() {
        std::fs::create_dir_all(dir).map_err(Failed::io(dir.display()))?;
    }
    // A fresh copy each time (a running forwarder's file is never written
    // over: the old one is removed first).
    let _ = std::fs::remove_file(&copy);
    std::fs::copy("/proc/self/exe", &copy).map_err(Failed::io(copy.display()))?;
    Ok(copy)
}

/// Starts the impairment forwarder in the router; returns once its rules
/// are in place (the scenario's clock starts then).
fn start_forwarder(lab: &Lab, scenario: &Scenario) -> Result<Kill, Failed> {
    let me = forwarder_program()?;
    let mut child = Kill(
        lab.exec("r", &me)
            .arg("netlab-impair")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(Failed::io("netlab-impair"))?,
    );
    if let Some(mut stdin) = child.0.stdin.take() {
        stdin
            .write_all(scenario.text.as_bytes())
            .map_err(Failed::io("netlab-impair"))?;
    }
    let stdout = child
        .0
        .stdout
        .take()
        .ok_or(Failed::check("netlab-impair: no stdout"))?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(Failed::io("netlab-impair"))?;
    if line.trim() != "ready" {
        return Err(Failed::check(
            "netlab-impair did not start (see its error above)",
        ));
    }
    Ok(child)
}

/// Who sits on one side of the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// `huddle-peer`: the native engine with the busy test pattern.
    Native,
    /// Headless Chromium running the UI, its fake camera playing the same
    /// pattern (`src-ui/e2e/netlab-peer.mjs`).
    Chromium,
}

impl Client {
    pub fn name(self) -> &'static str {
        match self {
            Client::Native => "native",
            Client::Chromium => "Chromium",
        }
    }
}

/// The pairs a full run compares, in the issue's order.
pub const PAIRS: [(Client, Client); 3] = [
    (Client::Native, Client::Native),
    (Client::Native, Client::Chromium),
    (Client::Chromium, Client::Chromium),
];

/// What the lab runs: the binaries, and for Chromium the UI's scripts and
/// the camera file.
#[derive(Debug)]
pub struct Tools {
    /// Holds `huddle-server` and `huddle-peer`.
    pub bin: PathBuf,
    /// `src-ui/` (its `e2e/netlab-peer.mjs` and `node_modules`).
    pub ui: PathBuf,
    /// The busy pattern at the native peer's size, for Chromium's camera.
    pub camera: Option<PathBuf>,
}

/// Runs `scenario` with `pair` on sides A and B (and, in a three-member
/// scenario, the second of the pair on C too); what each side received
/// from each other, A→B and B→A first.
pub fn run_scenario(
    scenario: &Scenario,
    pair: (Client, Client),
    tools: &Tools,
    scratch: &Path,
) -> Result<Vec<Direction>, Failed> {
    let family = if scenario.ipv6_only {
        Family::V6
    } else {
        Family::V4
    };
    let lab = Lab::up(scenario.default_route, scenario.members, family)?;
    for side in &scenario.spares {
        lab.add_spares(side)?;
    }
    std::fs::create_dir_all(scratch).map_err(Failed::io(scratch.display()))?;
    let seconds = scenario.duration.as_secs() + 1;
    let run_name = format!("{}-{}-{}", scenario.name, pair.0.name(), pair.1.name());
    let report = |side: &str| scratch.join(format!("{run_name}-{side}.json"));
    let log_path = |side: &str| scratch.join(format!("{run_name}-{side}.log"));
    let log = |side: &str| -> Result<std::fs::File, Failed> {
        let path = log_path(side);
        std::fs::File::create(&path).map_err(Failed::io(path.display()))
    };
    let server_addr = lab.server_addr();
    let server_log = log("server")?;
    let _server = Kill(
        lab.exec("r", &tools.bin.join("huddle-server"))
            .args(["--listen", &server_addr])
            .stderr(server_log.try_clone().map_err(Failed::io("server log"))?)
            .stdout(server_log)
            .spawn()
            .map_err(Failed::io("huddle-server"))?,
    );
    std::thread::sleep(Duration::from_millis(500));
    let peer = |client: Client, side: &str| -> Result<Kill, Failed> {
        let name = side.to_uppercase();
        let mut cmd = match client {
            Client::Native => {
                let mut cmd = lab.exec(side, &tools.bin.join("huddle-peer"));
                cmd.args(["--server", &format!("ws://{server_addr}/ws")])
                    .args(["--room", "lab", "--name", &name])
                    .args(["--duration", &format!("{seconds}s")])
                    .args(["--measure", &format!("{}s", scenario.duration.as_secs())])
                    // Media on the engine's default addresses, as users have
                    // it: every address of either family, found anew on an
                    // ICE restart (a renumbered side gathers its new one).
                    // As costly to encode as a camera (the plain pattern is nearly free).
                    .args(["--content", "busy"])
                    .arg("--report")
                    .arg(report(side))
                    .args(["--size", &camera_size()])
                    // `NETLAB_NATIVE_ARGS="--size 1280x720 --kbps 2500"`:
                    // other media for an experiment (Chromium's camera stays).
                    .args(
                        std::env::var("NETLAB_NATIVE_ARGS")
                            .unwrap_or_default()
                            .split_whitespace(),
                    );
                cmd
            }
            Client::Chromium => {
                let mut cmd = lab.exec(side, Path::new("node"));
                cmd.arg(tools.ui.join("e2e/netlab-peer.mjs"))
                    .arg(format!("http://{server_addr}"))
                    .args(["lab", &name, &scenario.duration.as_secs().to_string()])
                    .arg(report(side))
                    .args(tools.camera.iter())
                    .current_dir(&tools.ui);
                cmd
            }
        };
        // `NETLAB_LOG=huddle_engine=debug` keeps each peer's log beside its report.
        cmd.env(
            "RUST_LOG",
            std::env::var("NETLAB_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::null())
        .stderr(log(side)?)
        .spawn()
        .map(Kill)
        .map_err(Failed::io(format!("{} peer", client.name())))
    };
    let _forwarder = if scenario.impaired() {
        Some(start_forwarder(&lab, scenario)?)
    } else {
        None
    };
    let started = Instant::now();
    let ways: &[Way] = if scenario.members > 2 {
        &[Way::AtoB, Way::BtoA, Way::ToC, Way::FromC]
    } else {
        &Way::BOTH
    };
    let meter = Meter::start(
        ways.iter()
            .map(|&w| {
                let (ns, dev) = lab.bottleneck(w);
                (w, ns, dev)
            })
            .collect(),
        started,
    );
    let sides: Vec<(&str, Client)> = [("a", pair.0), ("b", pair.1), ("c", pair.1)]
        .into_iter()
        .take(scenario.members)
        .collect();
    // A report left by an earlier run is never read as this one's.
    for &(side, _) in &sides {
        let _ = std::fs::remove_file(report(side));
    }
    let mut peers = sides
        .iter()
        .map(|&(side, client)| peer(client, side))
        .collect::<Result<Vec<Kill>, Failed>>()?;
    // What the lab does itself, in time order (the forwarder follows
    // the rest of the steps).
    for (at, event) in scenario.events() {
        if let Some(wait) = at.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
        let t = started.elapsed().as_secs_f64();
        // The time of day too, to line the event up with the peers' logs.
        let utc = time_of_day();
        match event {
            Event::Capacity(way, kbit) => {
                lab.set_capacity(way, kbit, scenario.queue_ms)?;
                eprintln!("netlab: {t:>5.1} s  {utc}  {} {kbit} kbit/s", way.arrow());
            }
            Event::Loss(way, share) => {
                eprintln!(
                    "netlab: {t:>5.1} s  {utc}  {} loss {:.0} %",
                    way.arrow(),
                    share * 100.0
                );
            }
            Event::Signaling(side, up) => {
                lab.cut_signaling(side, !up)?;
                let state = if up { "back" } else { "cut" };
                eprintln!(
                    "netlab: {t:>5.1} s  {utc}  {}'s signaling {state}",
                    side.to_uppercase()
                );
            }
            Event::Renumber(side) => {
                lab.renumber(side, scenario.default_route)?;
                eprintln!(
                    "netlab: {t:>5.1} s  {utc}  {} has a new address",
                    side.to_uppercase()
                );
            }
        }
    }
    for (child, &(side, client)) in peers.iter_mut().zip(&sides) {
        let status = child
            .0
            .wait()
            .map_err(Failed::io(format!("{} peer", client.name())))?;
        // What it reported still counts (a browser that fails to close
        // after writing its report); without a report the run fails below.
        if !status.success() {
            eprintln!(
                "netlab: the {} peer {} ended with {status}; its log: {}",
                client.name(),
                side.to_uppercase(),
                log_path(side).display()
            );
        }
    }
    let link = meter.finish();
    let mut directions = Vec::new();
    // A→B, B→A, then the rest.
    let mut routes: Vec<(usize, usize)> = vec![(0, 1), (1, 0)];
    for from in 0..sides.len() {
        for to in 0..sides.len() {
            if from != to && !routes.contains(&(from, to)) {
                routes.push((from, to));
            }
        }
    }
    for (from, to) in routes {
        let ((from_side, from_client), (to_side, to_client)) = (sides[from], sides[to]);
        let (from_name, to_name) = (from_side.to_uppercase(), to_side.to_uppercase());
        let mut received = read_report(&report(to_side), &from_name)?;
        if from_client == Client::Chromium {
            // Its camera file's pictures carry the stamps they were written
            // with, not when they were shown: no glass-to-glass to read.
            received.counted.latency_p50_ms = None;
            received.counted.latency_p95_ms = None;
        }
        let label = format!(
            "{}→{} {from_name}→{to_name}",
            from_client.name(),
            to_client.name()
        );
        let route = Way::route(from_side, to_side);
        directions.push(summarize(scenario, &route, label, &received, &link, 3));
    }
    Ok(directions)
}

pub fn print_table(scenario: &Scenario, directions: &[Direction]) {
    println!(
        "\n## {} ({} s, queue {} ms{})",
        scenario.name,
        scenario.duration.as_secs(),
        scenario.queue_ms,
        if scenario.default_route {
            ""
        } else {
            ", no default route"
        }
    );
    println!("| direction | phase | capacity | fps | kbit/s in | utilization | link use |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for d in directions {
        for p in &d.phases {
            let cap_text = p.capacity.map_or("∞".into(), |c| format!("{c} kbit/s"));
            let share = |kbps: f64| {
                p.capacity.map_or("–".into(), |c| {
                    format!("{:.0} %", 100.0 * kbps / f64::from(c))
                })
            };
            let link = p.link_kbps.map_or("–".into(), share);
            println!(
                "| {} | {}–{} s | {cap_text} | {:.1} | {:.0} | {} | {link} |",
                d.label,
                p.from,
                p.to,
                p.fps,
                p.kbps,
                share(p.kbps)
            );
        }
    }
    println!("\n| direction | size | freezes | frozen | longest | first picture after the path's return | full rate after it |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for d in directions {
        let seconds = |s: Option<u64>| s.map_or("never".into(), |s| format!("{s} s"));
        let (first, back) = (seconds(d.first_back_s), seconds(d.recovery_s));
        println!(
            "| {} | {}×{} | {} | {:.1} s | {:.1} s | {first} | {back} |",
            d.label,
            d.size.0,
            d.size.1,
            d.freeze_count,
            d.freeze_total_ms as f64 / 1000.0,
            d.freeze_longest_ms as f64 / 1000.0
        );
    }
    println!("\n| direction | audio concealed | audio jitter-buffer delay (mean) |");
    println!("| --- | --- | --- |");
    for d in directions {
        let concealed = d
            .audio_concealed
            .map_or("–".into(), |c| format!("{:.2} %", c * 100.0));
        let delay = d
            .audio_delay_ms
            .map_or("–".into(), |ms| format!("{ms:.0} ms"));
        println!("| {} | {concealed} | {delay} |", d.label);
    }
    println!(
        "\n| direction | glass-to-glass p50 | p95 | keyframes asked (PLI) | keyframes received |"
    );
    println!("| --- | --- | --- | --- | --- |");
    let or_dash = |v: Option<u64>, unit: &str| v.map_or("–".into(), |v| format!("{v}{unit}"));
    for d in directions {
        let c = &d.counted;
        println!(
            "| {} | {} | {} | {} | {} |",
            d.label,
            or_dash(c.latency_p50_ms, " ms"),
            or_dash(c.latency_p95_ms, " ms"),
            or_dash(c.keyframes_requested, ""),
            or_dash(c.keyframes_received, ""),
        );
    }
}

/// The most seconds `cargo xtask test` lets video take to come back to
/// full rate after the dip's capacity returns (measured 1–7 s with the
/// encoder stepping up every half second; 2–7 s, and 11 s once on CI,
/// when it stepped every second; the goal is 5; a loaded CI machine gets
/// some slack). In `mesh-600` 4–5 s here; 11 s once on CI by the old
/// every-second rule, when every direction ran at 25 fps.
pub const RECOVERY_LIMIT_S: u64 = 10;

/// The longest freeze `cargo xtask test` lets a native sender's video have
/// in the dip (measured 1.2–2.4 s, Chromium's own sender 2.0–2.9 s; it was
/// 6.4–6.8 s while the resends of the burst lost at the drop held the path)
/// and in `mesh-600`. With the rate read once a second and keyframes on
/// request once a second, C's picture froze 1.9–3.0 s in `mesh-600` here
/// and 4.7–5.1 s once on CI (session 19's CI run failed on it); read every 100 ms and
/// asked for and answered every half second: 1.3–2.0 s (three runs), the
/// dip 1.1–1.4 s native↔native, 1.0 s native→Chromium.
pub const FREEZE_LIMIT_MS: u64 = 5_000;

/// The longest freeze `cargo xtask test` lets video have when a side's
/// address changes mid-call (the goal: back within 3 s; measured 0.3–0.9 s,
/// the address list being read once a second).
pub const RENUMBER_FREEZE_LIMIT_MS: u64 = 3_000;

/// The longest freeze `cargo xtask test` accepts when a browser's address
/// changes under a call, native↔Chromium or Chromium↔Chromium (goal 3 s;
/// measured 2.0–2.5 s in ten runs since the page opens a spare signaling
/// socket when a path goes quiet, 2.9 s once in a full CI run — 2.4–3.9 s
/// before, its old socket found dead only by a probe's 1 s timeout; a
/// second of room for a loaded machine).
pub const BROWSER_RENUMBER_FREEZE_LIMIT_MS: u64 = 4_000;

/// The least share of a narrow link's capacity a call must use in
/// `cargo xtask test`'s RFC 8867 §5.1 run (the issue's goal, 80 %; every
/// byte of the call through the bottleneck, as RFC 8867 counts it —
/// measured 86–90 % native↔native, Chromium↔Chromium 84–89 %; the
/// media alone — RTP payloads, audio included — 72–80 % and 74–78 %)…
pub const LINK_USE_FLOOR: f64 = 0.8;
/// …in the phases whose capacity is under what the call would send on a
/// free path (1 Mbit/s of video, its audio and headers): on a wider link
/// the call's own ceiling, not adaptation, sets the use.
pub const NARROW_KBPS: u32 = 1_100;

/// The least frame rate a direction's first phase must have for
/// `cargo xtask test` to count its video as flowing (measured 23–30 fps;
/// headless Chromium may take a few seconds to start sending).
pub const FLOWING_FPS: f64 = 10.0;

/// The share of their own rate A and B must keep with each other while
/// C's link is weak in `mesh-600` (measured, debug build, three peers on
/// two cores: 0.76–0.98 in five runs with an encoding per group of links —
/// the low end CPU-bound; 0.22–0.26 when everyone got the weakest link's
/// rate; release peers, as `cargo xtask test` runs them: 1.0 in one run).
pub const MESH_KEEP_SHARE: f64 = 0.5;

/// The scenarios shipped with the project.
pub fn shipped() -> PathBuf {
    crate::root().join("bench/netlab")
}
/// The network lab: each scenario of `bench/netlab` (or those named) run
/// through a real bottleneck between two native peers, a native peer and
/// Chromium, and two Chromiums (only the first with `--native`), debug
/// builds unless `--release`; see `netlab/mod.rs`.
pub fn run(args: &[String]) -> Result<(), Failed> {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map_err(Failed::io("id"))?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Err(Failed::Missing(
            "the network lab needs root (network namespaces and tc)".into(),
        ));
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
    let dir = shipped();
    let paths: Vec<PathBuf> = if names.is_empty() {
        let mut all: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(Failed::io(dir.display()))?
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
    std::fs::create_dir_all(&scratch).map_err(Failed::io(scratch.display()))?;
    let camera = camera(&target_dir().join("debug"), &scratch)?;
    let tools = Tools {
        bin,
        ui: root().join("src-ui"),
        camera: Some(camera),
    };
    // `--pair native-Chromium`: that pair only.
    let chosen = args
        .iter()
        .position(|a| a == "--pair")
        .and_then(|i| args.get(i + 1));
    let pairs: Vec<(Client, Client)> = PAIRS
        .iter()
        .copied()
        .filter(|p| match chosen {
            Some(name) => name.eq_ignore_ascii_case(&format!("{}-{}", p.0.name(), p.1.name())),
            None => !native_only || *p == PAIRS[0],
        })
        .collect();
    if pairs.is_empty() {
        return Err(Failed::check(
            "--pair: one of native-native, native-Chromium, Chromium-Chromium",
        ));
    }
    for path in paths {
        let scenario = Scenario::load(&path)?;
        let mut directions = Vec::new();
        for &pair in &pairs {
            eprintln!(
                "netlab: {}, {} and {}",
                scenario.name,
                pair.0.name(),
                pair.1.name()
            );
            directions.extend(run_scenario(&scenario, pair, &tools, &scratch)?);
        }
        print_table(&scenario, &directions);
    }
    Ok(())
}

/// The camera's size in the lab, both kinds of peer: 640×360, or
/// `NETLAB_CAMERA=1280x720` (the desktop app's camera) for an experiment.
fn camera_size() -> String {
    std::env::var("NETLAB_CAMERA").unwrap_or_else(|_| "640x360".into())
}

/// Chromium's fake camera in the lab: the busy pattern at the native
/// peer's size (3 s, looped), written once into `scratch`.
pub fn camera(bin: &std::path::Path, scratch: &std::path::Path) -> Result<PathBuf, Failed> {
    let size = camera_size();
    let camera = scratch.join(format!("busy-{size}.y4m"));
    write_y4m(bin, &camera, &size)?;
    Ok(camera)
}
