//! What went through each bottleneck: the bytes its device sent (after the
//! `tbf` queue), read once a second for the whole run. A phase's link use
//! counts every packet of the call — video, audio, RTCP, ICE, headers —
//! as RFC 8867 measures a link's utilization; the table's "kbit/s in" is
//! the received media, as each receiver's statistics count it: the RTP
//! payload of every stream, audio included, without packet headers.

use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::scenario::Way;
use crate::lock;

/// How often the counters are read.
const EVERY: Duration = Duration::from_secs(1);

/// Samples of each way's sent bytes: (seconds since the start, bytes).
#[derive(Debug, Default, Clone)]
pub struct LinkBytes {
    samples: HashMap<Way, Vec<(f64, u64)>>,
}

impl LinkBytes {
    /// The mean rate through `way`'s bottleneck from `from` to `to`
    /// seconds, in kbit/s, from the samples nearest those times.
    pub fn kbps(&self, way: Way, from: f64, to: f64) -> Option<f64> {
        let samples = self.samples.get(&way)?;
        let near = |t: f64| {
            samples
                .iter()
                .min_by(|a, b| (a.0 - t).abs().total_cmp(&(b.0 - t).abs()))
                .copied()
        };
        let ((t0, b0), (t1, b1)) = (near(from)?, near(to)?);
        (t1 > t0).then(|| b1.saturating_sub(b0) as f64 * 8.0 / 1000.0 / (t1 - t0))
    }
}

/// Reads the counters in the background until dropped.
pub struct Meter {
    stop: Arc<AtomicBool>,
    bytes: Arc<Mutex<LinkBytes>>,
    thread: Option<JoinHandle<()>>,
}

impl Meter {
    /// Starts reading `devices` (each way's namespace and device) now;
    /// times count from `started`.
    pub fn start(devices: Vec<(Way, String, &'static str)>, started: Instant) -> Meter {
        let stop = Arc::new(AtomicBool::new(false));
        let bytes = Arc::new(Mutex::new(LinkBytes::default()));
        let (flag, into) = (stop.clone(), bytes.clone());
        let thread = std::thread::spawn(move || {
            let mut next = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                for (way, ns, dev) in &devices {
                    if let Some(sent) = sent_bytes(ns, dev) {
                        let t = started.elapsed().as_secs_f64();
                        lock(&into).samples.entry(*way).or_default().push((t, sent));
                    }
                }
                next += EVERY;
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
        });
        Meter {
            stop,
            bytes,
            thread: Some(thread),
        }
    }

    /// Stops reading; what was read.
    pub fn finish(mut self) -> LinkBytes {
        self.halt();
        lock(&self.bytes).clone()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        self.halt();
    }
}

/// The bytes `dev` in namespace `ns` has sent (`None`: not readable —
/// a link that is gone measures nothing).
fn sent_bytes(ns: &str, dev: &str) -> Option<u64> {
    let path = format!("/sys/class/net/{dev}/statistics/tx_bytes");
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "cat", &path])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phases_rate_comes_from_the_samples_nearest_its_bounds() {
        let mut link = LinkBytes::default();
        // 125 000 bytes a second: 1000 kbit/s.
        link.samples.insert(
            Way::AtoB,
            (0..10)
                .map(|s| (f64::from(s) + 0.02, 125_000 * s as u64))
                .collect(),
        );
        let kbps = link.kbps(Way::AtoB, 3.0, 8.0).expect("measured");
        assert!((kbps - 1000.0).abs() < 1.0, "{kbps}");
        assert_eq!(link.kbps(Way::BtoA, 3.0, 8.0), None, "not measured");
        assert_eq!(link.kbps(Way::AtoB, 20.0, 30.0), None, "past the run");
    }
}
