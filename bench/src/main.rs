//! `huddle-load`: runs `huddle-server` and PeerJS's server (npm `peer`) side by
//! side on loopback, drives both with the same cheap load client, and prints
//! each figure for both and as a ratio. Run it with `cargo xtask bench`.
//!
//! Every run starts a fresh server process; memory and CPU are read from
//! `/proc`. The client runs on one thread, so it takes at most one of the
//! machine's cores; its own CPU is printed too, to show when it, rather than a
//! server, is the limit.

mod cluster;
mod dialect;
mod phases;
mod stats;
mod target;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use thiserror::Error;

use phases::{Pace, Run};
use stats::{duration, kilobytes, ratio_larger_better, ratio_smaller_better};
use target::{Kind, Programs, Server};

#[derive(Debug, Parser)]
#[command(
    name = "huddle-load",
    about = "huddle-server vs PeerJS's server, on loopback"
)]
struct Args {
    /// The huddle-server binary (build it with --release).
    #[arg(long)]
    huddle_server: PathBuf,
    /// The directory where `npm install` put PeerJS's server (`node_modules/peer`).
    #[arg(long, required_unless_present = "cluster")]
    peerjs: Option<PathBuf>,
    /// Sender/receiver pairs for the relay runs.
    #[arg(long, default_value_t = 1000)]
    pairs: usize,
    /// Length of each measured window, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Idle connection counts; RSS per connection is the slope between the last two.
    #[arg(long, value_delimiter = ',', default_values_t = [5000, 10000])]
    idle: Vec<usize>,
    /// Run only one server.
    #[arg(long, value_parser = ["huddle", "peerjs"])]
    only: Option<String>,
    /// Instead of PeerJS: relay runs on one huddle-server, on one with a
    /// Redis backplane and on two sharing a Redis (each pair split across
    /// them). Needs `redis-server` on PATH.
    #[arg(long, conflicts_with = "only")]
    cluster: bool,
}

/// Why the bench could not finish.
#[derive(Debug, Error)]
pub enum BenchError {
    #[error("starting {0}: {1}")]
    Start(&'static str, String),
    #[error("reading /proc: no {0}")]
    Proc(&'static str),
    #[error("the server refused a client: {0}")]
    Refused(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error("a client task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("semaphore closed")]
    Semaphore(#[from] tokio::sync::AcquireError),
}

/// Everything measured for one server.
#[derive(Debug)]
struct Figures {
    idle: phases::Idle,
    relay_5k: Run,
    relay_20k: Run,
    max: Run,
    fanout: Run,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("huddle-load: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(bench(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("huddle-load: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn bench(args: Args) -> Result<(), BenchError> {
    let programs = Programs {
        huddle: args.huddle_server.clone(),
        peerjs: args.peerjs.clone().unwrap_or_default(),
    };
    if args.cluster {
        return cluster::compare(&programs, &args).await;
    }
    let kinds: Vec<Kind> = match args.only.as_deref() {
        Some("huddle") => vec![Kind::Huddle],
        Some(_) => vec![Kind::PeerJs],
        None => vec![Kind::Huddle, Kind::PeerJs],
    };
    let mut all = Vec::new();
    for kind in kinds {
        let figures = measure(kind, &programs, &args).await?;
        print_one(kind, &figures);
        all.push((kind, figures));
    }
    if let [(Kind::Huddle, ours), (Kind::PeerJs, theirs)] = &mut all[..] {
        print_comparison(ours, theirs);
    }
    Ok(())
}

async fn measure(kind: Kind, programs: &Programs, args: &Args) -> Result<Figures, BenchError> {
    let window = Duration::from_secs(args.seconds);
    let warmup = Duration::from_secs(2);
    eprintln!("{}: idle connections {:?}", kind.label(), args.idle);
    let server = Server::start(kind, programs).await?;
    let idle = phases::idle(&server, &args.idle).await?;
    server.stop().await;

    let relay = |rate: Option<f64>| async move {
        eprintln!(
            "{}: relay {}",
            kind.label(),
            rate.map_or("closed loop".into(), |r| format!("{r} msg/s"))
        );
        let server = Server::start(kind, programs).await?;
        let pace = rate.map_or(Pace::InFlight(4), Pace::Rate);
        let run = phases::relay(&server, args.pairs, pace, warmup, window).await;
        server.stop().await;
        run
    };
    let relay_5k = relay(Some(5_000.0)).await?;
    let relay_20k = relay(Some(20_000.0)).await?;
    let max = relay(None).await?;

    eprintln!("{}: chat fan-out", kind.label());
    let server = Server::start(kind, programs).await?;
    // 125 rooms of 8, one line per member per second: 7,000 deliveries a second.
    let fanout = phases::fanout(&server, 125, 1.0, warmup, window).await?;
    server.stop().await;
    Ok(Figures {
        idle,
        relay_5k,
        relay_20k,
        max,
        fanout,
    })
}

fn per_idle_connection(idle: &phases::Idle) -> f64 {
    match idle.rss.as_slice() {
        [.., (n0, r0), (n1, r1)] if n1 > n0 => (*r1 as f64 - *r0 as f64) / (n1 - n0) as f64,
        _ => 0.0,
    }
}

pub(crate) fn cpu_per(run: &Run, count: u64) -> Duration {
    if count == 0 {
        return Duration::ZERO;
    }
    run.cpu.server / count as u32
}

fn throughput(run: &Run) -> f64 {
    run.delivered as f64 / run.window.as_secs_f64()
}

fn print_run(name: &str, run: &mut Run) {
    println!(
        "  {name:<22} sent {:>7}  delivered {:>7}/{:<7}  server CPU {:>6}/msg  p50 {:>9}  p99 {:>9}  max {:>9}  (server {:.0}%, client {:.0}% of a core)",
        run.sent,
        run.delivered,
        run.expected,
        duration(cpu_per(run, run.delivered)),
        duration(run.latency.percentile(50.0)),
        duration(run.latency.percentile(99.0)),
        duration(run.latency.max()),
        100.0 * run.cpu.server.as_secs_f64() / run.window.as_secs_f64(),
        100.0 * run.cpu.client.as_secs_f64() / run.window.as_secs_f64(),
    );
}

fn print_one(kind: Kind, f: &Figures) {
    let mut f_join = f.idle.join.clone();
    println!("\n== {} ==", kind.label());
    for (n, rss) in &f.idle.rss {
        println!(
            "  RSS with {n:>6} idle joined connections: {:.1} MB",
            *rss as f64 / 1e6
        );
    }
    println!(
        "  RSS added per idle joined connection: {}",
        kilobytes(per_idle_connection(&f.idle))
    );
    println!(
        "  join (connect to ready), {} joins: p50 {}  p99 {}",
        f_join.len(),
        duration(f_join.percentile(50.0)),
        duration(f_join.percentile(99.0))
    );
    let mut runs = [
        ("relay 5,000 msg/s", clone_run(&f.relay_5k)),
        ("relay 20,000 msg/s", clone_run(&f.relay_20k)),
        ("relay closed loop", clone_run(&f.max)),
        ("fan-out (per delivery)", clone_run(&f.fanout)),
    ];
    for (name, run) in &mut runs {
        print_run(name, run);
    }
    println!("  max sustained relay: {:.0} msg/s", throughput(&f.max));
    println!(
        "  fan-out: server CPU per chat line to 7 members: {}",
        duration(cpu_per(&f.fanout, f.fanout.sent))
    );
}

fn clone_run(run: &Run) -> Run {
    Run {
        latency: run.latency.clone(),
        ..*run
    }
}

fn print_comparison(ours: &mut Figures, theirs: &mut Figures) {
    println!("\n== huddle-server vs peerjs-server (× = how many times better huddle-server is) ==");
    let row = |name: &str, a: String, b: String, ratio: String| {
        println!("  {name:<40} {a:>12} {b:>12} {ratio:>8}");
    };
    row("", "huddle".into(), "peerjs".into(), "ratio".into());
    let (a, b) = (
        per_idle_connection(&ours.idle),
        per_idle_connection(&theirs.idle),
    );
    row(
        "RSS per idle joined connection",
        kilobytes(a),
        kilobytes(b),
        ratio_smaller_better(a, b),
    );
    for p in [50.0, 99.0] {
        let (a, b) = (ours.idle.join.percentile(p), theirs.idle.join.percentile(p));
        row(
            &format!("join p{p}"),
            duration(a),
            duration(b),
            ratio_smaller_better(a.as_secs_f64(), b.as_secs_f64()),
        );
    }
    for (name, a, b) in [
        ("5,000 msg/s", &mut ours.relay_5k, &mut theirs.relay_5k),
        ("20,000 msg/s", &mut ours.relay_20k, &mut theirs.relay_20k),
    ] {
        let (ca, cb) = (cpu_per(a, a.delivered), cpu_per(b, b.delivered));
        row(
            &format!("{name}: server CPU per relayed signal"),
            duration(ca),
            duration(cb),
            ratio_smaller_better(ca.as_secs_f64(), cb.as_secs_f64()),
        );
        for (label, p) in [("p50", 50.0), ("p99", 99.0), ("max", 100.0)] {
            let (la, lb) = (a.latency.percentile(p), b.latency.percentile(p));
            row(
                &format!("{name}: relay latency {label}"),
                duration(la),
                duration(lb),
                ratio_smaller_better(la.as_secs_f64(), lb.as_secs_f64()),
            );
        }
    }
    let (ta, tb) = (throughput(&ours.max), throughput(&theirs.max));
    row(
        "max sustained relay (msg/s)",
        format!("{ta:.0}"),
        format!("{tb:.0}"),
        ratio_larger_better(ta, tb),
    );
    let (ca, cb) = (
        cpu_per(&ours.fanout, ours.fanout.sent),
        cpu_per(&theirs.fanout, theirs.fanout.sent),
    );
    row(
        "fan-out: server CPU per chat line (8 members)",
        duration(ca),
        duration(cb),
        ratio_smaller_better(ca.as_secs_f64(), cb.as_secs_f64()),
    );
    for (label, p) in [("p50", 50.0), ("p99", 99.0)] {
        let (la, lb) = (
            ours.fanout.latency.percentile(p),
            theirs.fanout.latency.percentile(p),
        );
        row(
            &format!("fan-out: delivery latency {label}"),
            duration(la),
            duration(lb),
            ratio_smaller_better(la.as_secs_f64(), lb.as_secs_f64()),
        );
    }
}
