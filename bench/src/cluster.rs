//! `huddle-load --cluster`: what the Redis backplane costs. The same paced
//! relay load on one huddle-server (the in-memory default), on one with a
//! Redis backplane, and on two instances sharing a Redis with every pair's
//! sender on one instance and its receiver on the other; each run on fresh
//! processes. Prints latency, the instances' CPU and Redis's CPU per
//! relayed signal, and the cluster's p99 as a multiple of one instance's.

use std::time::Duration;

use crate::phases::{self, Pace, Run};
use crate::stats::duration;
use crate::target::{Programs, Server};
use crate::{cpu_per, Args, BenchError};

/// The goal: the split pairs' p99 at most this many times one instance's.
const GOAL_P99_RATIO: f64 = 2.0;

/// The three set-ups, by the instances they run (0: no Redis at all).
const SETUPS: [(&str, usize); 3] = [
    ("one instance", 0),
    ("one instance + Redis", 1),
    ("two instances + Redis", 2),
];

async fn start(programs: &Programs, instances: usize) -> Result<Server, BenchError> {
    match instances {
        0 => Server::start(crate::target::Kind::Huddle, programs).await,
        n => Server::cluster(programs, n).await,
    }
}

pub async fn compare(programs: &Programs, args: &Args) -> Result<(), BenchError> {
    let window = Duration::from_secs(args.seconds);
    let warmup = Duration::from_secs(2);
    for rate in [5_000.0, 20_000.0] {
        let mut runs: Vec<(&str, Run)> = Vec::new();
        for (name, instances) in SETUPS {
            eprintln!("cluster bench: {name}, {rate} msg/s");
            let server = start(programs, instances).await?;
            let run = phases::relay(&server, args.pairs, Pace::Rate(rate), warmup, window).await;
            server.stop().await;
            runs.push((name, run?));
        }
        print(rate, args.pairs, &mut runs);
    }
    Ok(())
}

fn print(rate: f64, pairs: usize, runs: &mut [(&str, Run)]) {
    println!("\n== relay {rate:.0} msg/s, {pairs} pairs (split across the instances where there are two) ==");
    println!(
        "  {:<22} {:>17} {:>12} {:>12} {:>9} {:>9} {:>9}",
        "", "delivered", "server/msg", "Redis/msg", "p50", "p99", "max"
    );
    for (name, run) in runs.iter_mut() {
        let redis_per = if run.delivered == 0 {
            Duration::ZERO
        } else {
            run.cpu.redis / run.delivered as u32
        };
        println!(
            "  {name:<22} {:>8}/{:<8} {:>12} {:>12} {:>9} {:>9} {:>9}   (servers {:.0}%, Redis {:.0}%, client {:.0}% of a core)",
            run.delivered,
            run.expected,
            duration(cpu_per(run, run.delivered)),
            duration(redis_per),
            duration(run.latency.percentile(50.0)),
            duration(run.latency.percentile(99.0)),
            duration(run.latency.max()),
            100.0 * run.cpu.server.as_secs_f64() / run.window.as_secs_f64(),
            100.0 * run.cpu.redis.as_secs_f64() / run.window.as_secs_f64(),
            100.0 * run.cpu.client.as_secs_f64() / run.window.as_secs_f64(),
        );
    }
    if let [(_, one), .., (_, two)] = runs {
        let (p99_one, p99_two) = (
            one.latency.percentile(99.0).as_secs_f64(),
            two.latency.percentile(99.0).as_secs_f64(),
        );
        let ratio = p99_two / p99_one.max(1e-9);
        let cpu_ratio = cpu_per(two, two.delivered).as_secs_f64()
            / cpu_per(one, one.delivered).as_secs_f64().max(1e-12);
        println!(
            "  two instances vs one: p99 {ratio:.2}× (goal ≤ {GOAL_P99_RATIO}×: {}), server CPU per signal {cpu_ratio:.2}×",
            if ratio <= GOAL_P99_RATIO { "met" } else { "not met" }
        );
    }
}
