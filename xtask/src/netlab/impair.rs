//! The lab's impairment forwarder: delay, jitter (with the reordering it
//! brings), random and bursty loss, outages and policers, applied in user
//! space — this kernel has no `netem`, nor tc's `police` action.
//!
//! It runs in the router namespace (`cargo xtask netlab-impair`, started by
//! the lab under `ip netns exec`, the scenario on its stdin). For each way
//! it makes a TUN device (`ia` carries what goes toward A, `ib` toward B)
//! and a policy rule sending what arrives from one side for the other into
//! it; it reads each packet, decides its fate from the scenario at that
//! moment, and writes it back into the same device when its time comes,
//! from where the kernel routes it on — through the side's `tbf`
//! bottleneck. Traffic to the router itself (signalling to the server) is
//! delivered locally before the rules and is never impaired.
//!
//! ```text
//!   A ── ra ─rule─▶ ib (forwarder: drop? hold until due) ──▶ rb [tbf] ── B
//! ```
//!
//! The draws are seeded (`seed` in the scenario, and the way), so a run's
//! losses depend only on the order packets arrive in.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::lab::{ip, SUBNET_A, SUBNET_B};
use super::scenario::{Impairment, Scenario, Way};
use crate::Failed;

/// A small seeded generator (SplitMix64): the lab needs repeatable draws,
/// not cryptographic ones.
#[derive(Debug, Clone)]
pub struct Draws(u64);

impl Draws {
    pub fn new(seed: u64) -> Draws {
        Draws(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Loss as a two-state (Gilbert) chain: in the bad state every packet is
/// lost. With mean burst `b` the chain leaves the bad state with chance
/// `r = 1/b`, and enters it with `p = loss·r/(1−loss)`, so that the share
/// lost, `p/(p+r)`, is `loss`. A burst of 1 is independent loss.
#[derive(Debug, Default)]
pub struct Losses {
    bad: bool,
}

impl Losses {
    pub fn lost(&mut self, now: &Impairment, draws: &mut Draws) -> bool {
        if now.loss <= 0.0 {
            self.bad = false;
            return false;
        }
        if now.loss >= 1.0 {
            return true;
        }
        if now.burst <= 1.0 {
            return draws.unit() < now.loss;
        }
        let leave = 1.0 / now.burst;
        let enter = now.loss * leave / (1.0 - now.loss);
        let flip = draws.unit();
        self.bad = if self.bad {
            flip >= leave
        } else {
            flip < enter
        };
        self.bad
    }
}

/// How much a policer lets through at once beyond its rate: this long at
/// its rate (and at least two full packets).
pub const POLICE_BURST: Duration = Duration::from_millis(100);

/// A policer: a token bucket that passes a packet while it holds the
/// packet's bytes and drops it otherwise — nothing waits, so no queue
/// builds and no delay grows; only loss says the rate is exceeded.
#[derive(Debug, Default)]
pub struct Policer {
    /// Bytes the bucket holds, and when it was last filled.
    tokens: f64,
    filled: Option<Instant>,
}

impl Policer {
    /// Whether a packet of `size` bytes arriving `at` is dropped.
    pub fn drops(&mut self, now: &Impairment, at: Instant, size: usize) -> bool {
        let Some(kbit) = now.police else {
            self.filled = None;
            return false;
        };
        let rate = f64::from(kbit) * 1000.0 / 8.0; // bytes a second
        let depth = (rate * POLICE_BURST.as_secs_f64()).max(3000.0);
        self.tokens = match self.filled {
            Some(then) => self.tokens + rate * at.saturating_duration_since(then).as_secs_f64(),
            None => depth,
        }
        .min(depth);
        self.filled = Some(at);
        if self.tokens < size as f64 {
            return true;
        }
        self.tokens -= size as f64;
        false
    }
}

/// How long a packet is held: the delay, give or take up to the jitter.
pub fn hold(now: &Impairment, draws: &mut Draws) -> Duration {
    let jitter = now.jitter.as_secs_f64() * (2.0 * draws.unit() - 1.0);
    Duration::from_secs_f64((now.delay.as_secs_f64() + jitter).max(0.0))
}

/// Opens TUN device `name` (layer 3, no packet-info header).
#[allow(unsafe_code)]
fn open_tun(name: &str) -> Result<File, Failed> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map_err(Failed::io("/dev/net/tun"))?;
    // struct ifreq: the name (16 bytes), then a union whose `short` flags
    // member is what TUNSETIFF reads; 40 bytes in all on Linux.
    let mut request = [0u8; 40];
    request[..name.len().min(15)].copy_from_slice(&name.as_bytes()[..name.len().min(15)]);
    let flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
    request[16..18].copy_from_slice(&flags.to_ne_bytes());
    // SAFETY: TUNSETIFF reads and writes one struct ifreq at the pointer;
    // `request` is that size, lives across the call, and the fd is ours.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, request.as_mut_ptr()) };
    if rc < 0 {
        return Err(Failed::check(format!(
            "TUNSETIFF {name}: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(file)
}

fn write_sysctl(path: &str, value: &str) -> Result<(), Failed> {
    std::fs::write(path, value).map_err(Failed::io(path))
}

/// A packet waiting for its time.
type Held = Reverse<(Instant, u64, Vec<u8>)>;

/// Forwards one way until the device closes.
fn forward(way: Way, scenario: &Scenario, tun: File, start: Instant) -> Result<(), Failed> {
    let mut out = tun.try_clone().map_err(Failed::io("tun"))?;
    let (tx, rx) = mpsc::channel::<(Instant, u64, Vec<u8>)>();
    let writer = std::thread::spawn(move || {
        let mut held: BinaryHeap<Held> = BinaryHeap::new();
        loop {
            let now = Instant::now();
            while held.peek().is_some_and(|Reverse((due, _, _))| *due <= now) {
                if let Some(Reverse((_, _, packet))) = held.pop() {
                    // A packet the kernel refuses is lost, as on a real link.
                    let _ = out.write(&packet);
                }
            }
            let next = match held.peek() {
                Some(Reverse((due, _, _))) => rx.recv_timeout(due.saturating_duration_since(now)),
                None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
            };
            match next {
                Ok(packet) => held.push(Reverse(packet)),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
    });
    let mut input = tun;
    let mut draws = Draws::new(scenario.seed ^ if way == Way::AtoB { 0xA } else { 0xB });
    let mut losses = Losses::default();
    let mut policer = Policer::default();
    let mut buf = vec![0u8; 65536];
    for seq in 0u64.. {
        let n = input.read(&mut buf).map_err(Failed::io("tun read"))?;
        let arrived = Instant::now();
        let now = scenario.impairment(way, arrived - start);
        if losses.lost(&now, &mut draws) || policer.drops(&now, arrived, n) {
            continue;
        }
        let due = arrived + hold(&now, &mut draws);
        if tx.send((due, seq, buf[..n].to_vec())).is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.join();
    Ok(())
}

/// `cargo xtask netlab-impair`: the forwarder, in the router namespace;
/// reads the scenario from stdin, says `ready` on stdout once the rules
/// are in place (the scenario's clock starts then), runs until killed.
pub fn main() -> Result<(), Failed> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(Failed::io("stdin"))?;
    let scenario = Scenario::parse("stdin", &text)?;
    // Packets come back in on a device other than the one their source is
    // routed through: reverse-path filtering would drop them.
    for dev in ["all", "default", "ra", "rb"] {
        write_sysctl(&format!("/proc/sys/net/ipv4/conf/{dev}/rp_filter"), "0")?;
    }
    let mut tuns = Vec::new();
    for (dev, from, toward, table) in [("ia", "rb", SUBNET_A, "101"), ("ib", "ra", SUBNET_B, "102")]
    {
        tuns.push(open_tun(dev)?);
        write_sysctl(&format!("/proc/sys/net/ipv4/conf/{dev}/rp_filter"), "0")?;
        ip(&["link", "set", dev, "up"])?;
        let net = format!("{toward}.0/24");
        ip(&["route", "add", &net, "dev", dev, "table", table])?;
        ip(&[
            "rule", "add", "iif", from, "to", &net, "table", table, "priority", "100",
        ])?;
    }
    let start = Instant::now();
    println!("ready");
    let _ = std::io::stdout().flush();
    let scenario = std::sync::Arc::new(scenario);
    let mut ways = Vec::new();
    for (way, tun) in [Way::BtoA, Way::AtoB].into_iter().zip(tuns) {
        let scenario = scenario.clone();
        ways.push(std::thread::spawn(move || {
            forward(way, &scenario, tun, start)
        }));
    }
    for way in ways {
        way.join()
            .map_err(|_| Failed::check("a forwarding thread panicked"))??;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn run(loss: f64, burst: f64, n: usize) -> Vec<bool> {
        let now = Impairment {
            loss,
            burst,
            ..Impairment::default()
        };
        let (mut draws, mut losses) = (Draws::new(7), Losses::default());
        (0..n).map(|_| losses.lost(&now, &mut draws)).collect()
    }

    fn bursts(lost: &[bool]) -> Vec<usize> {
        lost.split(|l| !l)
            .map(<[bool]>::len)
            .filter(|n| *n > 0)
            .collect()
    }

    #[test]
    fn independent_loss_has_the_share_asked() {
        let lost = run(0.05, 1.0, 200_000);
        let share = lost.iter().filter(|l| **l).count() as f64 / lost.len() as f64;
        assert!((share - 0.05).abs() < 0.003, "{share}");
        let b = bursts(&lost);
        let mean = b.iter().sum::<usize>() as f64 / b.len() as f64;
        assert!(
            mean < 1.2,
            "independent losses rarely come two in a row: {mean}"
        );
    }

    #[test]
    fn bursty_loss_has_the_share_and_the_burst_length_asked() {
        let lost = run(0.05, 5.0, 400_000);
        let share = lost.iter().filter(|l| **l).count() as f64 / lost.len() as f64;
        assert!((share - 0.05).abs() < 0.005, "{share}");
        let b = bursts(&lost);
        let mean = b.iter().sum::<usize>() as f64 / b.len() as f64;
        assert!((mean - 5.0).abs() < 0.5, "{mean}");
    }

    #[test]
    fn an_outage_loses_everything_and_no_loss_nothing() {
        assert!(run(1.0, 1.0, 1000).iter().all(|l| *l));
        assert!(run(0.0, 5.0, 1000).iter().all(|l| !*l));
    }

    #[test]
    fn a_policer_passes_its_rate_and_drops_the_rest_without_holding_any() {
        let now = Impairment {
            police: Some(500),
            ..Impairment::default()
        };
        let (start, mut policer) = (Instant::now(), Policer::default());
        // 1,000 kbit/s offered in 1,250-byte packets for 10 s: one every 10 ms.
        let passed = (0..1000u32)
            .filter(|i| {
                !policer.drops(
                    &now,
                    start + Duration::from_millis(u64::from(*i) * 10),
                    1250,
                )
            })
            .count();
        // 500 kbit/s for 10 s is 500 packets, plus the bucket's first burst.
        assert!((500..=510).contains(&passed), "{passed}");
        // Under its rate, nothing is dropped; with no policer, nothing either.
        let mut policer = Policer::default();
        assert!((0..1000u32).all(|i| !policer.drops(
            &now,
            start + Duration::from_millis(u64::from(i) * 25),
            1250
        )));
        let off = Impairment::default();
        assert!(!(0..100).any(|_| policer.drops(&off, start, 1250)));
    }

    #[test]
    fn jitter_spreads_around_the_delay_and_never_below_zero() {
        let now = Impairment {
            delay: Duration::from_millis(50),
            jitter: Duration::from_millis(30),
            ..Impairment::default()
        };
        let mut draws = Draws::new(3);
        let holds: Vec<Duration> = (0..10_000).map(|_| hold(&now, &mut draws)).collect();
        assert!(holds.iter().all(|h| (20..=80).contains(&h.as_millis())));
        let mean = holds.iter().map(Duration::as_secs_f64).sum::<f64>() / holds.len() as f64;
        assert!((mean - 0.050).abs() < 0.002, "{mean}");
        let wide = Impairment {
            jitter: Duration::from_millis(80),
            ..now
        };
        assert!((0..1000).all(|_| hold(&wide, &mut draws) <= Duration::from_millis(130)));
    }
}
