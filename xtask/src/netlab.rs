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
//! Only the lab's own namespaces are touched (named `hnl<pid>-*`, removed
//! at the end). Needs root, `ip` and `tc` (iproute2). `netem` is not in
//! this kernel, so delay, jitter and loss are not modelled yet; capacity
//! and queueing are.
//!
//! A scenario is a text file (`bench/netlab/*.lab`):
//!
//! ```text
//! # what it is
//! duration 50s
//! queue 300ms          # the bottleneck's queue, in time at its rate
//! routes none          # no default route in A and B (default: via R)
//! at 0s both 2500kbit  # capacity toward both sides from 0 s
//! at 15s a>b 250kbit   # …toward B only (what A sends)
//! ```

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Failed;

/// Which way traffic goes through the bottleneck.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    AtoB,
    BtoA,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    duration: Duration,
    queue_ms: u32,
    default_route: bool,
    /// (when, which way, kbit/s), in time order.
    steps: Vec<(Duration, Way, u32)>,
}

fn parse_duration(text: &str) -> Option<Duration> {
    if let Some(ms) = text.strip_suffix("ms") {
        return ms.parse().ok().map(Duration::from_millis);
    }
    text.strip_suffix('s')?
        .parse::<f64>()
        .ok()
        .map(Duration::from_secs_f64)
}

impl Scenario {
    pub fn parse(name: &str, text: &str) -> Result<Scenario, Failed> {
        let mut scenario = Scenario {
            name: name.to_owned(),
            duration: Duration::from_secs(30),
            queue_ms: 300,
            default_route: true,
            steps: Vec::new(),
        };
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let bad = || format!("{name}:{}: cannot read {line:?}", n + 1);
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["duration", d] => scenario.duration = parse_duration(d).ok_or_else(bad)?,
                ["queue", d] => {
                    scenario.queue_ms = parse_duration(d).ok_or_else(bad)?.as_millis() as u32
                }
                ["routes", "none"] => scenario.default_route = false,
                ["routes", "default"] => scenario.default_route = true,
                ["at", at, way, rate] => {
                    let at = parse_duration(at).ok_or_else(bad)?;
                    let kbit = rate
                        .strip_suffix("kbit")
                        .and_then(|r| r.parse().ok())
                        .ok_or_else(bad)?;
                    let ways: &[Way] = match *way {
                        "both" => &[Way::AtoB, Way::BtoA],
                        "a>b" => &[Way::AtoB],
                        "b>a" => &[Way::BtoA],
                        _ => return Err(bad()),
                    };
                    for &w in ways {
                        scenario.steps.push((at, w, kbit));
                    }
                }
                _ => return Err(bad()),
            }
        }
        scenario.steps.sort_by_key(|s| s.0);
        Ok(scenario)
    }

    pub fn load(path: &Path) -> Result<Scenario, Failed> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let name = path
            .file_stem()
            .map_or("scenario".into(), |s| s.to_string_lossy().into_owned());
        Scenario::parse(&name, &text)
    }

    /// The capacity one way at `t` (None before the first step: unlimited).
    fn capacity(&self, way: Way, t: Duration) -> Option<u32> {
        self.steps
            .iter()
            .rev()
            .find(|s| s.1 == way && s.0 <= t)
            .map(|s| s.2)
    }
}

/// The lab's namespaces; removed when dropped.
struct Lab {
    prefix: String,
}

const SUBNET_A: &str = "10.91.1";
const SUBNET_B: &str = "10.91.2";

fn ip(args: &[&str]) -> Result<(), Failed> {
    run("ip", args)
}

fn run(program: &str, args: &[&str]) -> Result<(), Failed> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Lab {
    fn ns(&self, side: &str) -> String {
        format!("{}-{side}", self.prefix)
    }

    fn up(default_route: bool) -> Result<Lab, Failed> {
        let lab = Lab {
            prefix: format!("hnl{}", std::process::id()),
        };
        let (r, a, b) = (lab.ns("r"), lab.ns("a"), lab.ns("b"));
        for ns in [&r, &a, &b] {
            ip(&["netns", "add", ns])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        for (side, ns, subnet) in [("a", &a, SUBNET_A), ("b", &b, SUBNET_B)] {
            let (outer, inner) = (format!("r{side}"), format!("v{side}"));
            ip(&[
                "-n", &r, "link", "add", &outer, "type", "veth", "peer", "name", &inner, "netns",
                ns,
            ])?;
            ip(&[
                "-n",
                &r,
                "addr",
                "add",
                &format!("{subnet}.1/24"),
                "dev",
                &outer,
            ])?;
            ip(&["-n", &r, "link", "set", &outer, "up"])?;
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{subnet}.2/24"),
                "dev",
                &inner,
            ])?;
            ip(&["-n", ns, "link", "set", &inner, "up"])?;
            let other = if side == "a" { SUBNET_B } else { SUBNET_A };
            if default_route {
                ip(&[
                    "-n",
                    ns,
                    "route",
                    "add",
                    "default",
                    "via",
                    &format!("{subnet}.1"),
                ])?;
            } else {
                // Only the other side's network is routed: an offline LAN.
                ip(&[
                    "-n",
                    ns,
                    "route",
                    "add",
                    &format!("{other}.0/24"),
                    "via",
                    &format!("{subnet}.1"),
                ])?;
            }
        }
        run(
            "ip",
            &[
                "netns",
                "exec",
                &r,
                "sysctl",
                "-q",
                "-w",
                "net.ipv4.ip_forward=1",
            ],
        )?;
        Ok(lab)
    }

    /// Sets the bottleneck one way: `tbf` at `kbit` with a queue of `queue_ms`.
    fn set_capacity(&self, way: Way, kbit: u32, queue_ms: u32) -> Result<(), Failed> {
        // Traffic toward B leaves the router on `rb`.
        let dev = if way == Way::AtoB { "rb" } else { "ra" };
        let bytes_per_ms = (u64::from(kbit) * 1000 / 8 / 1000).max(1);
        let limit = (bytes_per_ms * u64::from(queue_ms)).max(3000);
        let burst = (bytes_per_ms * 10).max(3000); // 10 ms of traffic, at least two packets
        let r = self.ns("r");
        let args = [
            "-n",
            &r,
            "qdisc",
            "replace",
            "dev",
            dev,
            "root",
            "tbf",
            "rate",
            &format!("{kbit}kbit"),
            "burst",
            &burst.to_string(),
            "limit",
            &limit.to_string(),
        ];
        run("tc", &args)
    }

    fn exec(&self, side: &str, program: &Path) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns(side)]).arg(program);
        cmd
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for side in ["a", "b", "r"] {
            let _ = ip(&["netns", "del", &self.ns(side)]);
        }
    }
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What one side received from the other, from its `--report`.
#[derive(Debug, Default)]
struct Received {
    fps_per_second: Vec<u32>,
    /// (second, kbit/s in, target kbit/s of the *sender* is not here) —
    /// (t, in kbit/s) from the receiver's stats.
    kbps_in: Vec<(f64, f64)>,
    freeze_count: u64,
    freeze_total_ms: u64,
    freeze_longest_ms: u64,
    width: u64,
    height: u64,
}

fn read_report(path: &Path) -> Result<Received, Failed> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let report: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let Some((_, peer)) = report["peers"].as_object().and_then(|p| p.iter().next()) else {
        return Ok(Received::default());
    };
    let u = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    Ok(Received {
        fps_per_second: peer["fps_per_second"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_u64().unwrap_or(0) as u32).collect())
            .unwrap_or_default(),
        kbps_in: peer["timeline"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|row| Some((row[0].as_f64()?, row[1].as_f64()?)))
                    .collect()
            })
            .unwrap_or_default(),
        freeze_count: u(&peer["freezes"]["count"]),
        freeze_total_ms: u(&peer["freezes"]["total_ms"]),
        freeze_longest_ms: u(&peer["freezes"]["longest_ms"]),
        width: u(&peer["width"]),
        height: u(&peer["height"]),
    })
}

/// One direction's figures.
#[derive(Debug)]
pub struct Direction {
    pub label: &'static str,
    /// Per phase: (start s, end s, capacity kbit/s, mean fps, mean kbit/s in).
    pub phases: Vec<(u64, u64, Option<u32>, f64, f64)>,
    pub freeze_count: u64,
    pub freeze_total_ms: u64,
    pub freeze_longest_ms: u64,
    /// After the last rise in capacity: seconds until video ran at ≥ 80 %
    /// of its first phase's frame rate for 3 s running; None: never.
    pub recovery_s: Option<u64>,
    pub size: (u64, u64),
}

fn summarize(
    scenario: &Scenario,
    way: Way,
    label: &'static str,
    r: &Received,
    skip: u64,
) -> Direction {
    let end = scenario.duration.as_secs();
    let mut bounds: Vec<u64> = scenario
        .steps
        .iter()
        .filter(|s| s.1 == way)
        .map(|s| s.0.as_secs())
        .collect();
    bounds.push(end);
    bounds.dedup();
    let fps_at = |s: u64| f64::from(r.fps_per_second.get(s as usize).copied().unwrap_or(0));
    let mut phases = Vec::new();
    for pair in bounds.windows(2) {
        // Leave out the call's setup and the first seconds after a change.
        let from = (pair[0] + 3).max(skip);
        let to = pair[1];
        if from >= to {
            continue;
        }
        let fps = (from..to).map(fps_at).sum::<f64>() / (to - from) as f64;
        let rates: Vec<f64> = r
            .kbps_in
            .iter()
            .filter(|(t, k)| *t >= from as f64 && *t < to as f64 && *k >= 0.0)
            .map(|(_, k)| *k)
            .collect();
        let kbps = if rates.is_empty() {
            0.0
        } else {
            rates.iter().sum::<f64>() / rates.len() as f64
        };
        phases.push((
            pair[0],
            pair[1],
            scenario.capacity(way, Duration::from_secs(pair[0])),
            fps,
            kbps,
        ));
    }
    let first_fps = phases.first().map_or(0.0, |p| p.3);
    let last_rise = scenario
        .steps
        .windows(2)
        .filter(|w| w[1].1 == way)
        .rev()
        .find(|w| {
            scenario
                .capacity(way, w[1].0.saturating_sub(Duration::from_millis(1)))
                .unwrap_or(u32::MAX)
                < w[1].2
        })
        .map(|w| w[1].0.as_secs());
    let recovery_s = last_rise.and_then(|rise| {
        (rise..end.saturating_sub(2))
            .find(|&s| (s..s + 3).all(|t| fps_at(t) >= 0.8 * first_fps))
            .map(|s| s - rise)
    });
    Direction {
        label,
        phases,
        freeze_count: r.freeze_count,
        freeze_total_ms: r.freeze_total_ms,
        freeze_longest_ms: r.freeze_longest_ms,
        recovery_s: if last_rise.is_some() {
            recovery_s
        } else {
            Some(0)
        },
        size: (r.width, r.height),
    }
}

/// Runs `scenario` with the `huddle-server` and `huddle-peer` in `bin`.
pub fn run_scenario(
    scenario: &Scenario,
    bin: &Path,
    scratch: &Path,
) -> Result<[Direction; 2], Failed> {
    let lab = Lab::up(scenario.default_route)?;
    let server_addr = format!("{SUBNET_A}.1:8443");
    let _server = Kill(
        lab.exec("r", &bin.join("huddle-server"))
            .args(["--listen", &server_addr])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("huddle-server: {e}"))?,
    );
    std::thread::sleep(Duration::from_millis(500));
    std::fs::create_dir_all(scratch).map_err(|e| e.to_string())?;
    let seconds = scenario.duration.as_secs() + 1;
    let report = |side: &str| scratch.join(format!("{}-{side}.json", scenario.name));
    let log = |side: &str| -> Result<std::fs::File, Failed> {
        let path = scratch.join(format!("{}-{side}.log", scenario.name));
        std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))
    };
    let peer = |side: &str, name: &str, subnet: &str| -> Result<Kill, Failed> {
        lab.exec(side, &bin.join("huddle-peer"))
            .args([
                "--server",
                &format!("ws://{server_addr}/ws"),
                "--room",
                "lab",
                "--name",
                name,
            ])
            .args([
                "--duration",
                &format!("{seconds}s"),
                "--udp",
                &format!("{subnet}.2:0"),
            ])
            // As costly to encode as a camera (the plain pattern is nearly free).
            .args(["--content", "busy"])
            .arg("--report")
            .arg(report(side))
            // `NETLAB_LOG=huddle_engine=debug` keeps each peer's log beside its report.
            .env(
                "RUST_LOG",
                std::env::var("NETLAB_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(log(side)?)
            .spawn()
            .map(Kill)
            .map_err(|e| format!("huddle-peer: {e}"))
    };
    let started = Instant::now();
    let mut a = peer("a", "A", SUBNET_A)?;
    let mut b = peer("b", "B", SUBNET_B)?;
    for &(at, way, kbit) in &scenario.steps {
        if let Some(wait) = at.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
        lab.set_capacity(way, kbit, scenario.queue_ms)?;
        eprintln!(
            "netlab: {:>5.1} s  {} {kbit} kbit/s",
            started.elapsed().as_secs_f64(),
            if way == Way::AtoB { "A→B" } else { "B→A" }
        );
    }
    for child in [&mut a, &mut b] {
        let _ = child.0.wait();
    }
    let (to_a, to_b) = (read_report(&report("a"))?, read_report(&report("b"))?);
    Ok([
        summarize(scenario, Way::AtoB, "native→native A→B", &to_b, 3),
        summarize(scenario, Way::BtoA, "native→native B→A", &to_a, 3),
    ])
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
    println!("| direction | phase | capacity | fps | kbit/s in | utilization |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for d in directions {
        for (from, to, cap, fps, kbps) in &d.phases {
            let cap_text = cap.map_or("∞".into(), |c| format!("{c} kbit/s"));
            let util = cap.map_or("–".into(), |c| {
                format!("{:.0} %", 100.0 * kbps / f64::from(c))
            });
            println!(
                "| {} | {from}–{to} s | {cap_text} | {fps:.1} | {kbps:.0} | {util} |",
                d.label
            );
        }
    }
    println!("\n| direction | size | freezes | frozen | longest | back after the capacity |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for d in directions {
        let back = d.recovery_s.map_or("never".into(), |s| format!("{s} s"));
        println!(
            "| {} | {}×{} | {} | {:.1} s | {:.1} s | {back} |",
            d.label,
            d.size.0,
            d.size.1,
            d.freeze_count,
            d.freeze_total_ms as f64 / 1000.0,
            d.freeze_longest_ms as f64 / 1000.0
        );
    }
}

/// The most seconds `cargo xtask test` lets video take to come back after
/// the dip's capacity returns (measured 5–7 s; the goal is 5).
pub const RECOVERY_LIMIT_S: u64 = 15;

/// The scenarios shipped with the project.
pub fn shipped() -> PathBuf {
    crate::root().join("bench/netlab")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_read_as_written() {
        let s = Scenario::parse(
            "t",
            "duration 50s\nqueue 300ms\nat 0s both 2500kbit # start\nat 15s a>b 250kbit\n",
        )
        .unwrap();
        assert_eq!(s.duration, Duration::from_secs(50));
        assert_eq!(s.steps.len(), 3);
        assert_eq!(s.capacity(Way::AtoB, Duration::from_secs(20)), Some(250));
        assert_eq!(s.capacity(Way::BtoA, Duration::from_secs(20)), Some(2500));
        assert!(Scenario::parse("t", "at 1s sideways 5kbit").is_err());
    }
}
